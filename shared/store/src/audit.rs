//! Pattern 8: the audit log of an org, newest first.

use chrono::{DateTime, Utc};
use domain::{AuditEntry, DomainEvent, OrgId};

use crate::dynamo::{Item, s, to_item};
use crate::records::{AuditRecord, Record};
use crate::{Page, PageKey, Store, StoreError, keys};

pub(crate) fn audit_item(org: &OrgId, entry: &AuditEntry) -> Result<Item, StoreError> {
    to_item(&AuditRecord {
        pk: keys::audit_pk(org),
        sk: keys::audit_sk(entry.created_at, entry.id),
        entity: "audit".into(),
        entry: entry.clone(),
    })
}

/// Filters of the audit-log listing.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_email: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Store {
    /// Writes an audit entry, with the events that announce it, for actions that change nothing else
    /// (like an export).
    pub async fn put_audit(&self, org: &OrgId, entry: &AuditEntry, events: &[DomainEvent]) -> Result<(), StoreError> {
        let mut tx = self.transaction();
        tx.audit(org, entry)?;
        tx.outbox(org, events)?;
        tx.commit().await?;
        Ok(())
    }

    /// A page of the org's audit log, newest first. `from`/`to` are a key range; the rest filter.
    pub async fn audit_page(
        &self,
        org: &OrgId,
        filter: &AuditFilter,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let pk = keys::audit_pk(org);
        // Sort keys are `<RFC 3339 millis>#<id>`; '#' < '~' so `<to>~` bounds the whole millisecond.
        let millis = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut values = vec![(":pk".to_owned(), s(pk))];
        let key_condition = match (filter.from, filter.to) {
            (None, None) => "PK = :pk",
            (Some(from), None) => {
                values.push((":low".into(), s(millis(from))));
                "PK = :pk AND SK >= :low"
            }
            (None, Some(to)) => {
                values.push((":high".into(), s(format!("{}~", millis(to)))));
                "PK = :pk AND SK <= :high"
            }
            (Some(from), Some(to)) => {
                values.push((":low".into(), s(millis(from))));
                values.push((":high".into(), s(format!("{}~", millis(to)))));
                "PK = :pk AND SK BETWEEN :low AND :high"
            }
        };
        let mut conditions = Vec::new();
        if let Some(action) = &filter.action {
            conditions.push("#action = :action");
            values.push((":action".into(), s(action.as_str())));
        }
        if let Some(email) = &filter.actor_email {
            conditions.push("actorEmail = :email");
            values.push((":email".into(), s(email.as_str())));
        }
        let filter_expression = (!conditions.is_empty()).then(|| conditions.join(" AND "));
        let filtered = filter_expression.is_some();
        let (items, next) = self
            .query_bounded(
                |q| {
                    let q = q
                        .key_condition_expression(key_condition)
                        .set_filter_expression(filter_expression.clone())
                        .set_expression_attribute_values(Some(values.iter().cloned().collect()))
                        .scan_index_forward(false);
                    if filter.action.is_some() { q.expression_attribute_names("#action", "action") } else { q }
                },
                None,
                filtered,
                start,
                limit,
            )
            .await?;
        let items = items.into_iter().map(AuditRecord::entity_of).collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }
}
