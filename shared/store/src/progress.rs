//! Progress changes: a row and the assignment's counters move together, or not at all.

use aws_sdk_dynamodb::types::Put;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    Aggregates, Assignment, AuditEntry, Completion, ComplianceTransition, Obligation, OrgId, ProgressRow, Source,
    TrackedItem, UserId,
};
use serde::{Deserialize, Serialize};

use crate::dynamo::{from_item, n, to_item};
use crate::partition::Partition;
use crate::retry::Retry;
use crate::roster::progress_item;
use crate::tx::counter_failure;
use crate::tx::{CancelReason, TxFailure};
use crate::written::{Announce, RowChange, Written, announce_nothing};
use crate::{Store, StoreError, keys};

/// What a membership change did to a learner's row (and to their compliance, if it changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    /// Nothing: the row already reflects this or a newer change.
    Unchanged,
    /// A new row was written (a joiner, or a removed "tombstone" for a leave that arrived first).
    Created(Option<ComplianceTransition>),
    /// An existing row joined or left.
    Changed(Option<ComplianceTransition>),
}

impl MembershipChange {
    pub fn created(&self) -> bool {
        matches!(self, MembershipChange::Created(_))
    }

    pub fn changed(&self) -> bool {
        *self != MembershipChange::Unchanged
    }

    /// The learner became compliant or non-compliant with it.
    pub fn compliance(&self) -> Option<ComplianceTransition> {
        match self {
            MembershipChange::Unchanged => None,
            MembershipChange::Created(t) | MembershipChange::Changed(t) => *t,
        }
    }
}

/// One entry of a learner's completion log (`ORG#o#USER#u` / `DONE#<item>#<ms>`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompletionRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    entity: String,
    item_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    completed_at: DateTime<Utc>,
}

impl Store {
    /// Stores `after` in place of `before` (which must still be stored at `before.revision`) and moves
    /// the assignment's counters from what they count for the row to its new contribution, and the
    /// learner's compliance with it, in one transaction with the events `announce` gives for the
    /// change (its outbox item). A concurrent change of the row is [`StoreError::VersionConflict`], a
    /// change of the assignment's tracked items (or of its compliance rules)
    /// [`StoreError::AssignmentChanged`]: read again and retry. The learner's item records a change of
    /// compliance as announced, so `announce` should announce [`RowChange::compliance`].
    pub async fn apply_progress(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        before: &ProgressRow,
        after: &ProgressRow,
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<RowChange, StoreError> {
        self.write_row(org, assignment, before, after, None, today, announce).await
    }

    /// [`Store::apply_progress`] for an admin's change of one learner's row: its audit entry commits
    /// in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn override_row(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        before: &ProgressRow,
        after: &ProgressRow,
        audit: &AuditEntry,
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<RowChange, StoreError> {
        self.write_row(org, assignment, before, after, Some(audit), today, announce).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_row(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        before: &ProgressRow,
        after: &ProgressRow,
        audit: Option<&AuditEntry>,
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<RowChange, StoreError> {
        let mut next = after.clone();
        next.revision = before.revision + 1;
        let contribution = next.contribution(&assignment.units, assignment.item_count);
        next.counted = Some(contribution);
        let counted = before.counted.unwrap_or_else(|| before.contribution(&assignment.units, assignment.item_count));
        let delta = Aggregates::delta(Some(counted), Some(contribution));
        // Only active, mandatory assignments oblige; a change of those rules re-syncs every learner
        // (`Store::sync_compliance`), and bumps `unitsRev` so that rows written meanwhile redo.
        let obliges = assignment.obliges();
        let mut attempts = Retry::CONFLICT.attempts();
        while attempts.next().await {
            let learner = if obliges {
                let wanted = [(next.user_id, Obligation::of(&next, assignment))];
                self.learner_changes(org, assignment, &wanted, Some(today)).await?
            } else {
                Vec::new()
            };
            let mut tx = self.transaction();
            let row_index = tx.put_with(
                Put::builder()
                    .set_item(Some(progress_item(org, &next, assignment)?))
                    .condition_expression("revision = :rev")
                    .expression_attribute_values(":rev", n(before.revision)),
            )?;
            // With a learner change the counters item is there even at a zero delta: its `unitsRev`
            // condition proves the obligation was computed under the assignment as stored.
            let counters_index =
                if delta.is_zero() && learner.is_empty() { None } else { Some(tx.counters(org, assignment, &delta)?) };
            if let Some(entry) = audit {
                tx.audit(org, entry)?;
            }
            let learner_indexes = tx.learners(org, &learner)?;
            let planned = RowChange {
                before: before.clone(),
                after: next.clone(),
                compliance: learner.first().and_then(|c| c.transition),
            };
            let events = self.announced(org, &[Written::Row(&planned)], announce).await?;
            tx.outbox(org, &events)?;
            match tx.commit().await {
                Ok(()) => {
                    self.forget_emptied_dates(org, assignment.id, &delta).await;
                    return Ok(planned);
                }
                Err(TxFailure::Cancelled(reasons))
                    if reasons.get(row_index).is_some_and(CancelReason::condition_failed) =>
                {
                    return Err(StoreError::VersionConflict);
                }
                Err(TxFailure::Cancelled(reasons))
                    if counters_index.and_then(|i| reasons.get(i)).is_some_and(CancelReason::condition_failed) =>
                {
                    return Err(counter_failure(&reasons[counters_index.unwrap_or_default()]));
                }
                // The learner's compliance changed meanwhile (another of their rows): read it again.
                Err(TxFailure::Cancelled(reasons))
                    if learner_indexes.iter().any(|i| reasons.get(*i).is_some_and(CancelReason::condition_failed)) =>
                {
                    continue;
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::TransactionConflict(format!("compliance of {} kept changing", next.user_id)))
    }

    /// Read-modify-write of `user`'s row on `assignment`, retried on concurrent changes of the row or
    /// of the assignment's tracked items. `change` edits the row under the assignment as currently
    /// stored and says whether it changed anything. Returns the row before and after when it changed;
    /// `None` when there is no row or nothing to do.
    async fn change_row(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        user: UserId,
        change: impl Fn(&mut ProgressRow, &Assignment) -> bool,
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<Option<RowChange>, StoreError> {
        let mut current = assignment.clone();
        let mut attempts = Retry::CONFLICT.attempts();
        while attempts.next().await {
            let Some(before) = self.progress_row(org, current.id, user).await? else { return Ok(None) };
            let mut after = before.clone();
            if !change(&mut after, &current) {
                return Ok(None);
            }
            match self.write_row(org, &current, &before, &after, None, today, announce).await {
                Ok(change) => return Ok(Some(change)),
                Err(StoreError::VersionConflict | StoreError::TransactionConflict(_)) => continue,
                Err(StoreError::AssignmentChanged) => {
                    current = self.get_assignment(org, current.id).await?.ok_or(StoreError::NotFound)?;
                }
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::TransactionConflict(format!("progress row of {user} kept changing")))
    }

    /// Records completed items on `user`'s row of `assignment`: idempotent and order-free (see
    /// [`ProgressRow::record_completion`]); completions before the assignment's creation and untracked
    /// items are ignored. Removed rows record too (history; they count in no rate while removed), so
    /// the result does not depend on whether a completion arrives before or after a leave or return.
    /// Returns the change when there was one (committed with the events `announce` gives for it).
    pub async fn record_completions(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        user: UserId,
        completions: &[Completion],
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<Option<RowChange>, StoreError> {
        self.change_row(
            org,
            assignment,
            user,
            |row, a| {
                let mut changed = false;
                for c in completions.iter().filter(|c| c.counts_for(a.created_at)) {
                    changed |= match a.recurrence {
                        Some(r) => row.record_recurring_completion(&c.item, c.score, c.at, &a.units, a.item_count, r),
                        None => row.record_completion(&c.item, c.score, c.at, &a.units, a.item_count),
                    };
                }
                changed
            },
            today,
            announce,
        )
        .await
    }

    /// [`Store::record_completions`] for one item, announcing nothing (seeding and tests).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_completion(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        user: UserId,
        item: &TrackedItem,
        score: Option<f64>,
        at: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<Option<RowChange>, StoreError> {
        self.record_completions(
            org,
            assignment,
            user,
            &[Completion { item: item.clone(), score, at }],
            today,
            &announce_nothing,
        )
        .await
    }

    /// Re-evaluates `user`'s row after the assignment's tracked items or recurrence changed: completion
    /// state (cycles, for a recurring one) and
    /// what the counters count for it. Returns the change when there was one (committed with the
    /// events `announce` gives for it).
    pub async fn refresh_row(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        user: UserId,
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<Option<RowChange>, StoreError> {
        self.change_row(
            org,
            assignment,
            user,
            |row, a| {
                let before = row.clone();
                row.refresh(&a.units, a.item_count, a.recurrence);
                *row != before || row.counted != Some(row.contribution(&a.units, a.item_count))
            },
            today,
            announce,
        )
        .await
    }

    /// Forgets the times `user`'s row stored ahead of `now` (the org's clock; see
    /// [`ProgressRow::forget_future`]), so that a real membership change after them applies. Returns
    /// the change when there was one.
    pub async fn forget_future_of_row(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        user: UserId,
        now: DateTime<Utc>,
        announce: Announce<'_>,
    ) -> Result<Option<RowChange>, StoreError> {
        self.change_row(org, assignment, user, |row, _| row.forget_future(now), now.date_naive(), announce).await
    }

    /// Logs a completion under the learner (idempotent), so that assignments the learner joins later
    /// can count it: a learner's row then does not depend on whether the completion or the join
    /// arrived first.
    pub async fn log_completion(&self, org: &OrgId, user: UserId, c: &Completion) -> Result<(), StoreError> {
        let key = c.item.key();
        let record = CompletionRecord {
            pk: keys::user_pk(org, user),
            sk: keys::completion_sk(&key, c.at),
            entity: "completion".into(),
            item_key: key,
            score: c.score,
            completed_at: c.at,
        };
        self.send_put(self.put_request().set_item(Some(to_item(&record)?))).await?;
        Ok(())
    }

    /// Every logged completion of a learner (strongly consistent).
    pub async fn completion_log(&self, org: &OrgId, user: UserId) -> Result<Vec<Completion>, StoreError> {
        let log = Partition::table(keys::user_pk(org, user)).prefixed(keys::COMPLETION_SK_PREFIX).consistent();
        self.query_all(|q| log.query(q))
            .await?
            .into_iter()
            .map(|item| {
                let record: CompletionRecord = from_item(item)?;
                let item = TrackedItem::parse_key(&record.item_key)
                    .ok_or_else(|| StoreError::Corrupt(format!("completion item {}", record.item_key)))?;
                Ok(Completion { item, score: record.score, at: record.completed_at })
            })
            .collect()
    }
}

mod membership;
