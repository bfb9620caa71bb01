//! Bringing learners' obligations in line after an assignment's rules change (deadline, activity,
//! mandatory flag): page by page, each learner guarded by their row's revision and the assignment's
//! `unitsRev`, with a marker on the assignment until every learner is in line.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use domain::{Assignment, ComplianceTransition, Obligation, OrgId, ProgressRow, UserId};

use super::LearnerChange;
use crate::dynamo::{n, s};
use crate::partition::Partition;
use crate::records::{AssignmentRecord, ProgressRecord, Record};
use crate::retry::Retry;
use crate::tx::{CancelReason, TxFailure};
use crate::written::{Announce, Written};
use crate::{Page, PageKey, Pages, Store, StoreError, keys};

impl Store {
    /// Makes every learner's obligation of `assignment` match their row under the assignment as
    /// stored (after a change of its deadline, activity or mandatory flag): [`Store::sync_compliance_page`]
    /// over the whole roster. Returns the learners whose compliance changed.
    pub async fn sync_compliance(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        now: DateTime<Utc>,
        announce: Announce<'_>,
    ) -> Result<Vec<ComplianceTransition>, StoreError> {
        let mut transitions = Vec::new();
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let page = self.sync_compliance_page(org, assignment, start, now, announce).await?;
            transitions.extend(pages.follow(page));
        }
        Ok(transitions)
    }

    /// One page (100 rows) of [`Store::sync_compliance`]: returns the learners whose compliance changed
    /// and where to go on. Each learner commits with checks that their row did not change meanwhile
    /// (else it is read again) and that the assignment still has the rules it was read with: when it
    /// does not, [`StoreError::AssignmentChanged`] (read it again and start over; learners already
    /// in line are no-ops). Each learner's change commits with the events `announce` gives for it.
    pub async fn sync_compliance_page(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        start: Option<PageKey>,
        now: DateTime<Utc>,
        announce: Announce<'_>,
    ) -> Result<Page<ComplianceTransition>, StoreError> {
        let today = now.date_naive();
        let rows = Partition::table(keys::assignment_pk(org, assignment.id)).prefixed(keys::PROGRESS_SK_PREFIX);
        let page = self.page_of::<ProgressRecord>(&rows, start, 100).await?;
        let wanted: Vec<(UserId, Option<Obligation>)> =
            page.items.iter().map(|row| (row.user_id, Obligation::of(row, assignment))).collect();
        let changes = self.learner_changes(org, assignment, &wanted, Some(today)).await?;
        let by_user: HashMap<UserId, &ProgressRow> = page.items.iter().map(|r| (r.user_id, r)).collect();
        let mut transitions = Vec::new();
        for change in changes {
            let row = by_user[&change.after.user_id];
            transitions.extend(self.sync_learner(org, assignment, row.clone(), change, today, announce).await?);
        }
        Ok(Page { items: transitions, next: page.next })
    }

    async fn sync_learner(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        mut row: ProgressRow,
        mut change: LearnerChange,
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<Option<ComplianceTransition>, StoreError> {
        let user = row.user_id;
        let mut attempts = Retry::CONFLICT.attempts();
        while attempts.next().await {
            let mut tx = self.transaction();
            let rules = tx.rules_unchanged(org, assignment)?;
            tx.row_unchanged(org, &row)?;
            tx.learners(org, std::slice::from_ref(&change))?;
            if let Some(t) = &change.transition {
                let events = self.announced(org, &[Written::Compliance(t)], announce).await?;
                tx.outbox(org, &events)?;
            }
            match tx.commit().await {
                Ok(()) => return Ok(change.transition),
                Err(TxFailure::Cancelled(reasons))
                    if reasons.get(rules).is_some_and(CancelReason::condition_failed) =>
                {
                    return Err(StoreError::AssignmentChanged);
                }
                Err(TxFailure::Cancelled(reasons)) if reasons.iter().any(|r| r.lost_a_race()) => {
                    let Some(current) = self.progress_row_consistent(org, assignment.id, user).await? else {
                        return Ok(None);
                    };
                    row = current;
                    let wanted = [(user, Obligation::of(&row, assignment))];
                    match self.learner_changes(org, assignment, &wanted, Some(today)).await?.pop() {
                        Some(next) => change = next,
                        None => return Ok(None),
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::TransactionConflict(format!("compliance of {user} kept changing")))
    }

    /// Records that every learner's obligation of `assignment` follows the rules of change `rev` (the
    /// marker that change set, see [`Store::update_assignment`]): the marker goes, unless a newer change
    /// set its own or the tracked items changed meanwhile (`unitsRev`).
    pub async fn finish_compliance_sync(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        rev: u64,
    ) -> Result<(), StoreError> {
        let result = self
            .send_update(
                self.update_request()
                    .key(keys::PK, s(keys::assignment_pk(org, assignment.id)))
                    .key(keys::SK, s(keys::ASSIGNMENT_SK))
                    .update_expression(format!("REMOVE {}, {}", keys::COMPLIANCE_SYNC, keys::COMPLIANCE_SYNC_AT))
                    .condition_expression(format!(
                        "attribute_exists(PK) AND unitsRev = :units AND {} = :rev",
                        keys::COMPLIANCE_SYNC
                    ))
                    .expression_attribute_values(":units", n(assignment.units_rev))
                    .expression_attribute_values(":rev", n(rev)),
            )
            .await;
        match result {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Hands the sync of change `rev` on to its next share: `events` (the request) commit with the time
    /// it moved last (`complianceSyncAt`), if `rev` is still the assignment's change to sync. `false`
    /// (nothing written): a newer change has its own sync, or this one is done.
    pub async fn hand_on_compliance_sync(
        &self,
        org: &OrgId,
        id: domain::AssignmentId,
        rev: u64,
        at: DateTime<Utc>,
        events: &[domain::DomainEvent],
    ) -> Result<bool, StoreError> {
        let mut tx = self.transaction();
        let marker = tx.update(
            aws_sdk_dynamodb::types::Update::builder()
                .key(keys::PK, s(keys::assignment_pk(org, id)))
                .key(keys::SK, s(keys::ASSIGNMENT_SK))
                .update_expression(format!("SET {} = :at", keys::COMPLIANCE_SYNC_AT))
                .condition_expression(format!("{} = :rev", keys::COMPLIANCE_SYNC))
                .expression_attribute_values(":at", s(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
                .expression_attribute_values(":rev", n(rev)),
        )?;
        tx.outbox(org, events)?;
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(marker).is_some_and(CancelReason::condition_failed) => {
                Ok(false)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The org's assignments (active or not) whose rule change has not reached every learner yet (an
    /// interrupted patch): the reconcile job finishes them. Reads the org's assignment index.
    pub async fn assignments_awaiting_compliance_sync(&self, org: &OrgId) -> Result<Vec<Assignment>, StoreError> {
        self.query_all(|q| {
            Partition::index(keys::GSI1, keys::org_assignments(org))
                .query(q)
                .filter_expression("attribute_exists(#sync)")
                .expression_attribute_names("#sync", keys::COMPLIANCE_SYNC)
        })
        .await?
        .into_iter()
        .map(AssignmentRecord::entity_of)
        .collect()
    }

    async fn progress_row_consistent(
        &self,
        org: &OrgId,
        id: domain::AssignmentId,
        user: UserId,
    ) -> Result<Option<ProgressRow>, StoreError> {
        self.get_item(keys::assignment_pk(org, id), &keys::progress_sk(user), true)
            .await?
            .map(ProgressRecord::entity_of)
            .transpose()
    }
}
