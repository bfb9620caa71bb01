//! What the scheduled jobs read and claim: the orgs with assignments, the deadline index (pattern 6),
//! reminder claims.

use chrono::NaiveDate;
use domain::{Assignment, AssignmentId, DomainEvent, OrgId, ProgressRow, UserId};

use crate::dynamo::{Item, continuation_key, s};
use crate::records::{AssignmentRecord, ProgressRecord, Record};
use crate::tx::{CancelReason, TxFailure};
use crate::{CorruptItem, Page, PageKey, Store, StoreError, keys};

/// An item of a job's listing: its entity (or, unreadable, its key) and where the listing goes on
/// after it, so that a job that stops at an item starts there again, wherever the item went meanwhile.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub item: Result<T, CorruptItem>,
    pub after: PageKey,
}

impl Store {
    /// A page of the orgs that have assignments (the scheduled jobs' starting point), by id; with
    /// `prefix`, only the orgs whose id starts with it.
    pub async fn orgs_page(&self, prefix: Option<&str>, start: Option<PageKey>) -> Result<Page<OrgId>, StoreError> {
        let (items, next) = self
            .query_page(
                |q| {
                    let q = q.expression_attribute_values(":pk", s(keys::ORGS_PK));
                    match prefix {
                        Some(prefix) => q
                            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                            .expression_attribute_values(":prefix", s(prefix)),
                        None => q.key_condition_expression("PK = :pk"),
                    }
                },
                start,
                Some(100),
            )
            .await?;
        let items = items
            .into_iter()
            .filter_map(|item| match item.get(keys::SK) {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(org)) => OrgId::parse(org).ok(),
                _ => None,
            })
            .collect();
        Ok(Page { items, next })
    }

    /// Pattern 6: a page of the org's active assignments with a deadline on or before `until`,
    /// earliest first (the sparse deadline index holds only active assignments), each with the key a
    /// job goes on from after it; an item that cannot be read is its key, for the job to skip and
    /// report.
    pub async fn due_assignments_page(
        &self,
        org: &OrgId,
        until: NaiveDate,
        start: Option<PageKey>,
    ) -> Result<Page<Listed<Assignment>>, StoreError> {
        let pk = keys::due_index(org);
        let (items, next) = self
            .query_page(
                |q| {
                    q.index_name(keys::GSI3)
                        .key_condition_expression("GSI3PK = :pk AND GSI3SK <= :until")
                        .expression_attribute_values(":pk", s(pk.as_str()))
                        .expression_attribute_values(":until", s(format!("{until}#~")))
                },
                start,
                Some(100),
            )
            .await?;
        let items = items
            .into_iter()
            .map(|item| {
                let after = continuation_key(&item, Some(keys::GSI3))?;
                Ok(Listed { item: AssignmentRecord::entity_or_key(item), after })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }

    /// How many of the org's active assignments are mandatory, counted in the deadline index (which holds
    /// only active ones) a page (1 MB) at a time without returning them.
    pub async fn count_obliging_assignments(&self, org: &OrgId) -> Result<i64, StoreError> {
        let mut total = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::GSI3)
                .key_condition_expression("GSI3PK = :pk")
                .filter_expression("isMandatory = :yes")
                .expression_attribute_values(":pk", s(keys::due_index(org)))
                .expression_attribute_values(":yes", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .set_return_consumed_capacity(self.capacity_mode())
                .send()
                .await
                .map_err(crate::dynamo::classify)?;
            self.count(|c| c.record(out.consumed_capacity()));
            total += i64::from(out.count);
            match out.last_evaluated_key.filter(|key| !key.is_empty()) {
                Some(key) => start = Some(key),
                None => return Ok(total),
            }
        }
    }

    /// Pattern 6 for rows with a due date of their own: a page of them due on or before `until`,
    /// earliest first (the sparse index holds only incomplete rows in the rates).
    pub async fn own_dated_rows_page(
        &self,
        org: &OrgId,
        until: NaiveDate,
        start: Option<PageKey>,
    ) -> Result<Page<Result<ProgressRow, CorruptItem>>, StoreError> {
        self.rows_by_day(keys::GSI3, keys::row_due_index(org), None, until, start).await
    }

    /// Recertified rows whose next cycle opens on a day in `from..=until`.
    pub async fn recert_opening_page(
        &self,
        org: &OrgId,
        from: NaiveDate,
        until: NaiveDate,
        start: Option<PageKey>,
    ) -> Result<Page<Result<ProgressRow, CorruptItem>>, StoreError> {
        self.rows_by_day(keys::GSI1, keys::row_recert_index(org), Some(from), until, start).await
    }

    /// Recertified rows whose completion lapses on a day in `from..=until`.
    pub async fn expiring_rows_page(
        &self,
        org: &OrgId,
        from: NaiveDate,
        until: NaiveDate,
        start: Option<PageKey>,
    ) -> Result<Page<Result<ProgressRow, CorruptItem>>, StoreError> {
        self.rows_by_day(keys::GSI3, keys::row_expiry_index(org), Some(from), until, start).await
    }

    /// A page of the rows a sparse date index holds under `pk`, for days up to `until` (from
    /// `from`), earliest first; a row that cannot be read is its key.
    async fn rows_by_day(
        &self,
        index: &'static str,
        pk: String,
        from: Option<NaiveDate>,
        until: NaiveDate,
        start: Option<PageKey>,
    ) -> Result<Page<Result<ProgressRow, CorruptItem>>, StoreError> {
        let (pk_name, sk_name) =
            if index == keys::GSI1 { (keys::GSI1PK, keys::GSI1SK) } else { (keys::GSI3PK, keys::GSI3SK) };
        let (items, next) = self
            .query_page(
                |q| {
                    let q = q
                        .index_name(index)
                        .expression_attribute_names("#pk", pk_name)
                        .expression_attribute_names("#sk", sk_name)
                        .expression_attribute_values(":pk", s(pk.as_str()))
                        .expression_attribute_values(":until", s(format!("{until}#~")));
                    match from {
                        Some(from) => q
                            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :until")
                            .expression_attribute_values(":from", s(from.to_string())),
                        None => q.key_condition_expression("#pk = :pk AND #sk <= :until"),
                    }
                },
                start,
                Some(100),
            )
            .await?;
        Ok(Page { items: items.into_iter().map(ProgressRecord::entity_or_key).collect(), next })
    }

    /// A page of 100 of an assignment's progress rows, by user id, for a job: a row that cannot be
    /// read is its key.
    pub async fn progress_page_for_job(
        &self,
        org: &OrgId,
        id: AssignmentId,
        start: Option<PageKey>,
    ) -> Result<Page<Result<ProgressRow, CorruptItem>>, StoreError> {
        let rows = crate::partition::Partition::table(keys::assignment_pk(org, id)).prefixed(keys::PROGRESS_SK_PREFIX);
        let (items, next) = self.query_bounded(|q| rows.query(q), rows.index, false, start, 100).await?;
        Ok(Page { items: items.into_iter().map(ProgressRecord::entity_or_key).collect(), next })
    }

    /// Records that a reminder `kind` went to `user` on `assignment`, with the `events` that send it, in
    /// one transaction; `false` (and nothing written) if it already had.
    pub async fn claim_reminder(
        &self,
        org: &OrgId,
        assignment: AssignmentId,
        user: UserId,
        kind: &str,
        events: &[DomainEvent],
    ) -> Result<bool, StoreError> {
        let claim_item = Item::from([
            (keys::PK.to_owned(), s(keys::reminder_pk(org, assignment))),
            (keys::SK.to_owned(), s(format!("{user}#{kind}"))),
            ("entity".to_owned(), s("reminder")),
        ]);
        let mut tx = self.transaction();
        let claim = tx.put(claim_item, Some("attribute_not_exists(PK)"))?;
        tx.outbox(org, events)?;
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(claim).is_some_and(CancelReason::condition_failed) => {
                Ok(false)
            }
            Err(other) => Err(other.into()),
        }
    }
}
