//! Progress changes: a row and the assignment's counters move together, or not at all.

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use domain::{Aggregates, Assignment, OrgId, ProgressRow, Source, TrackedItem, UserId};

use crate::assignments::{counter_update, progress_item, put};
use crate::dynamo::{CancelReason, TxFailure, n};
use crate::{Store, StoreError};

/// Attempts of a read-modify-write before giving up on a contended row.
const ATTEMPTS: u32 = 12;

impl Store {
    /// Stores `after` in place of `before` (which must still be stored at `before.revision`) and moves
    /// the assignment's counters by the difference, in one transaction. A concurrent change of the row
    /// is [`StoreError::VersionConflict`]: read again and retry.
    pub async fn apply_progress(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        before: &ProgressRow,
        after: &ProgressRow,
    ) -> Result<ProgressRow, StoreError> {
        let mut next = after.clone();
        next.revision = before.revision + 1;
        let delta = Aggregates::delta(
            Some(before.contribution(&assignment.units, assignment.item_count)),
            Some(next.contribution(&assignment.units, assignment.item_count)),
        );
        let row = put(progress_item(org, &next, assignment)?, Some("revision = :rev")).map(|mut p| {
            p.expression_attribute_values = Some([(":rev".to_owned(), n(before.revision))].into());
            p
        })?;
        let mut items = vec![TransactWriteItem::builder().put(row).build()];
        if !delta.is_zero() {
            items.push(counter_update(org, assignment.id, &delta)?);
        }
        match self.tx(items).await {
            Ok(()) => Ok(next),
            Err(TxFailure::Cancelled(reasons)) if reasons.first().is_some_and(CancelReason::condition_failed) => {
                Err(StoreError::VersionConflict)
            }
            Err(TxFailure::Cancelled(reasons)) if reasons.get(1).is_some_and(CancelReason::condition_failed) => {
                Err(StoreError::NotFound)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Records a completed item on `user`'s row of `assignment`: idempotent and order-free (see
    /// [`ProgressRow::record_completion`]), retried on concurrent changes. Returns the stored row when
    /// it changed, `None` when there was nothing to do (no row, untracked, or a duplicate).
    pub async fn record_completion(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        user: UserId,
        item: &TrackedItem,
        score: Option<f64>,
        at: DateTime<Utc>,
    ) -> Result<Option<ProgressRow>, StoreError> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(crate::dynamo::backoff(attempt.min(4))).await;
            }
            // Removed rows still record progress (history; they count in no rate while removed), so the
            // result does not depend on whether a completion arrives before or after a leave/return.
            let Some(before) = self.progress_row(org, assignment.id, user).await? else { return Ok(None) };
            let mut after = before.clone();
            if !after.record_completion(item, score, at, &assignment.units, assignment.item_count) {
                return Ok(None);
            }
            match self.apply_progress(org, assignment, &before, &after).await {
                Ok(stored) => return Ok(Some(stored)),
                Err(StoreError::VersionConflict | StoreError::TransactionConflict(_)) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::TransactionConflict(format!("progress row of {user} kept changing")))
    }

    /// Applies a membership change of `user` on `assignment` that occurred at `at`: `joined` brings the
    /// learner into scope (a returning learner gets their row and progress back), otherwise the row is
    /// marked removed (kept, excluded from rates). Order-safe: a change not newer than the last one
    /// applied is ignored. A leave with no row writes a removed row (a tombstone) so that an older join
    /// arriving later cannot add the learner. Returns whether anything changed.
    pub async fn set_membership(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        user: UserId,
        source: Source,
        joined: bool,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(crate::dynamo::backoff(attempt.min(4))).await;
            }
            let Some(before) = self.progress_row(org, assignment.id, user).await? else {
                let mut row = ProgressRow::new(assignment.id, user, source.clone(), at);
                if !joined {
                    row.removed_at = Some(at);
                }
                if self.add_roster_rows(org, assignment, &[row]).await? == 1 {
                    return Ok(true);
                }
                continue; // another writer created the row meanwhile: apply to it
            };
            let mut after = before.clone();
            let changed = if joined { after.join(at) } else { after.leave(at) };
            if !changed {
                return Ok(false);
            }
            match self.apply_progress(org, assignment, &before, &after).await {
                Ok(_) => return Ok(true),
                Err(StoreError::VersionConflict | StoreError::TransactionConflict(_)) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::TransactionConflict(format!("membership of {user} kept changing")))
    }
}
