//! Access patterns 1 and 3: an assignment's roster (its progress rows), paged by assignment and by
//! learner, and kept equal to the counters.

use std::collections::HashMap;

use chrono::NaiveDate;
use domain::{
    Aggregates, Assignment, AssignmentId, ComplianceTransition, DatedCounts, Obligation, OrgId, ProgressRow, RowClass,
    UserId,
};

use crate::dynamo::{Item, n, s, to_item};
use crate::partition::Partition;
use crate::records::{AssignmentRecord, ProgressRecord, Record};
use crate::retry::Retry;
use crate::tx::counter_failure;
use crate::tx::{CancelReason, TxFailure};
use crate::written::{Announce, Written, announce_nothing};
use crate::{Page, PageKey, Pages, Store, StoreError, keys};

/// Progress rows written in the transaction that creates an assignment (100 minus the assignment, its
/// duplicate lock, its audit entry, the org's registry entry and the outbox item). Larger rosters
/// continue in chunks of `ROSTER_CHUNK`.
pub const ROSTER_ROWS_PER_TRANSACTION: usize = 95;
/// Rows per roster transaction after creation (100 minus the assignment's counter update and the
/// outbox item with the rows' events).
pub(crate) const ROSTER_CHUNK: usize = 98;
/// Rows per roster transaction of an assignment that obliges (active, mandatory): each row comes
/// with its learner's compliance item and, at most, their team's rollup; plus the counters, the
/// org's rollup and the outbox item (3 × 32 + 3 ≤ 100).
pub(crate) const OBLIGING_ROSTER_CHUNK: usize = 32;
/// Date counters one repair may set (see [`Store::repair_counters`]).
const MAX_REPAIRED_DATES: usize = 50;

/// The stored form of a row; records what the counters count for it (see [`ProgressRow::counted`]).
pub(crate) fn progress_item(org: &OrgId, row: &ProgressRow, assignment: &Assignment) -> Result<Item, StoreError> {
    let mut row = row.clone();
    let counted = row.contribution(&assignment.units, assignment.item_count);
    row.counted = Some(counted);
    let row_key = |day| keys::row_due_sort(day, row.assignment_id, row.user_id);
    let gsi3 = match (counted.class, counted.due_on) {
        (RowClass::Completed, Some(lapses)) => Some((keys::row_expiry_index(org), row_key(lapses))),
        (_, Some(due)) => Some((keys::row_due_index(org), row_key(due))),
        (_, None) => None,
    };
    let recert = row.window_opens_on.filter(|_| counted.class == RowClass::Completed);
    to_item(&ProgressRecord {
        pk: keys::assignment_pk(org, row.assignment_id),
        sk: keys::progress_sk(row.user_id),
        entity: "progress".into(),
        gsi2pk: Some(keys::user_assignments_index(org, row.user_id)),
        gsi2sk: Some(keys::assignment_ref(row.assignment_id)),
        gsi1pk: recert.map(|_| keys::row_recert_index(org)),
        gsi1sk: recert.map(row_key),
        gsi3pk: gsi3.as_ref().map(|(pk, _)| pk.clone()),
        gsi3sk: gsi3.map(|(_, sk)| sk),
        phase: Some(row.class(&assignment.units, assignment.item_count)),
        row,
    })
}

pub(crate) fn roster_delta(assignment: &Assignment, rows: &[ProgressRow]) -> Aggregates {
    rows.iter().fold(Aggregates::default(), |acc, row| {
        acc + Aggregates::delta(None, Some(row.contribution(&assignment.units, assignment.item_count)))
    })
}

/// The condition that a roster is building (and, with `run`, that `run` may go on), and the value of
/// `:run` when it is needed.
/// A roster write by run `run` (if given: only while it is the run that may go on, building or
/// repairing) or by anyone (only while the roster is building).
fn roster_run_condition(run: Option<uuid::Uuid>) -> (&'static str, Option<String>) {
    match run {
        Some(run) => ("rosterRun = :run", Some(run.to_string())),
        None => ("rosterStatus = :building", None),
    }
}

/// Progress rows out of their stored items.
/// Pattern 3: a user's progress rows, one per assignment they have (or had).
pub(crate) fn user_rows(org: &OrgId, user: UserId) -> Partition {
    Partition::index(keys::GSI2, keys::user_assignments_index(org, user)).prefixed("ASG#")
}

impl Store {
    /// Adds new rows to an assignment's roster, each chunk in one transaction with the counter update
    /// (and, for an obliging assignment, the learners' compliance). Rows that already exist are
    /// skipped (so a retried call is harmless). Returns how many were added.
    pub async fn add_roster_rows(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        rows: &[ProgressRow],
        today: NaiveDate,
    ) -> Result<usize, StoreError> {
        Ok(self.add_new_rows(org, assignment, rows, today).await?.len())
    }

    /// [`Store::add_roster_rows`], returning the learners whose rows it added (not those that existed).
    pub async fn add_new_rows(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        rows: &[ProgressRow],
        today: NaiveDate,
    ) -> Result<Vec<UserId>, StoreError> {
        // A new row only adds an obligation, so it can only make a learner non-compliant, and only
        // where the clock already has (a due day passed): left to the daily job, which finds it. The
        // rows of a new assignment are announced by its `assignment.created`.
        Ok(self.add_rows(org, assignment, rows, false, today, &announce_nothing).await?.0)
    }

    /// [`Store::add_roster_rows`]; with `transitions`, also the learners whose compliance the new rows
    /// changed (returned, and given to `announce` with each row: [`Written::Added`]). Each chunk
    /// commits with the events `announce` gives for its rows.
    pub(crate) async fn add_rows(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        rows: &[ProgressRow],
        transitions: bool,
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<(Vec<UserId>, Vec<ComplianceTransition>), StoreError> {
        let obliges = assignment.obliges();
        let chunk_size = if obliges { OBLIGING_ROSTER_CHUNK } else { ROSTER_CHUNK };
        let mut added = Vec::new();
        let mut announced = Vec::new();
        for chunk in rows.chunks(chunk_size) {
            let mut pending: Vec<&ProgressRow> = chunk.iter().collect();
            let mut attempts = Retry::CONFLICT.attempts();
            while !pending.is_empty() {
                if !attempts.next().await {
                    return Err(StoreError::TransactionConflict("learners' compliance kept changing".into()));
                }
                let owned: Vec<ProgressRow> = pending.iter().map(|r| (*r).clone()).collect();
                let delta = roster_delta(assignment, &owned);
                let learners = if obliges {
                    let wanted: Vec<_> = owned.iter().map(|r| (r.user_id, Obligation::of(r, assignment))).collect();
                    self.learner_changes(org, assignment, &wanted, transitions.then_some(today)).await?
                } else {
                    Vec::new()
                };
                let mut tx = self.transaction();
                tx.counters(org, assignment, &delta)?;
                for row in &pending {
                    tx.put(progress_item(org, row, assignment)?, Some("attribute_not_exists(PK)"))?;
                }
                let learner_indexes = tx.learners(org, &learners)?;
                let compliance: HashMap<UserId, ComplianceTransition> =
                    learners.iter().filter_map(|c| c.transition.map(|t| (c.after.user_id, t))).collect();
                let written: Vec<Written<'_>> = pending
                    .iter()
                    .map(|row| Written::Added { row, compliance: compliance.get(&row.user_id).copied() })
                    .collect();
                let events = self.announced(org, &written, announce).await?;
                tx.outbox(org, &events)?;
                match tx.commit().await {
                    Ok(()) => {
                        added.extend(pending.iter().map(|r| r.user_id));
                        pending.clear();
                        announced.extend(compliance.into_values());
                        self.forget_emptied_dates(org, assignment.id, &delta).await;
                    }
                    Err(TxFailure::Cancelled(reasons))
                        if reasons.first().is_some_and(CancelReason::condition_failed) =>
                    {
                        return Err(counter_failure(&reasons[0]));
                    }
                    Err(TxFailure::Cancelled(reasons))
                        if reasons.iter().skip(1).take(pending.len()).any(CancelReason::condition_failed) =>
                    {
                        let existing: Vec<bool> =
                            reasons.iter().skip(1).take(pending.len()).map(CancelReason::condition_failed).collect();
                        pending =
                            pending.into_iter().zip(existing).filter(|(_, exists)| !exists).map(|(r, _)| r).collect();
                    }
                    // A learner's compliance changed meanwhile (read it again), or another transaction
                    // held one of the items (the rollups are shared by the org): try again.
                    Err(TxFailure::Cancelled(reasons))
                        if learner_indexes
                            .iter()
                            .any(|i| reasons.get(*i).is_some_and(CancelReason::condition_failed))
                            || reasons.iter().any(CancelReason::conflicted) => {}
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok((added, announced))
    }

    /// Makes the assignment's counters equal the sum of what its rows count (the roster runs' repair
    /// for rows changed behind the service's back), reading the rows page by page (memory does not
    /// grow with the roster). Guarded: if any counter moved while the rows were read (`countersRev`),
    /// nothing is written (the next run repairs). Returns whether counters were corrected.
    pub async fn repair_counters(&self, org: &OrgId, id: AssignmentId) -> Result<bool, StoreError> {
        let Some(item) = self.get_item(keys::assignment_pk(org, id), keys::ASSIGNMENT_SK, true).await? else {
            return Ok(false);
        };
        let revision = item.get("countersRev").and_then(|v| v.as_n().ok()).cloned();
        let before = AssignmentRecord::entity_of(item)?;
        let rows = Partition::table(keys::assignment_pk(org, id)).prefixed(keys::PROGRESS_SK_PREFIX).consistent();
        let mut counted = Aggregates::default();
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            for row in pages.follow(self.page_of::<ProgressRecord>(&rows, start, 1_000).await?) {
                let contribution = row.counted.unwrap_or_else(|| row.contribution(&before.units, before.item_count));
                counted = counted + Aggregates::delta(None, Some(contribution));
            }
        }
        let stored = &before.aggregates;
        if counted == *stored {
            return Ok(false);
        }
        // Only the date counters that differ are set (each guarded by its stored value), which keeps
        // the expressions within DynamoDB's size limits for any realistic drift.
        let keys_of = |a: &Aggregates| a.dated.0.keys().copied().collect::<std::collections::BTreeSet<_>>();
        let differing: Vec<_> = keys_of(stored)
            .union(&keys_of(&counted))
            .filter(|key| stored.dated.0.get(key) != counted.dated.0.get(key))
            .copied()
            .collect();
        if differing.len() > MAX_REPAIRED_DATES {
            return Err(StoreError::Other(format!(
                "{} date counters drifted: more than one repair can set",
                differing.len()
            )));
        }
        let mut set = vec![
            "totalUsers = :t".to_owned(),
            "completedUsers = :c".into(),
            "inProgressUsers = :i".into(),
            "notStartedUsers = :n".into(),
            "completedItemsSum = :s".into(),
            format!("{} = :dr", keys::DATED_ROWS),
        ];
        let mut guards = vec![
            "totalUsers = :t0".to_owned(),
            "completedUsers = :c0".into(),
            "inProgressUsers = :i0".into(),
            "notStartedUsers = :n0".into(),
            "completedItemsSum = :s0".into(),
        ];
        let mut update = self
            .update_request()
            .key(keys::PK, s(keys::assignment_pk(org, id)))
            .key(keys::SK, s(keys::ASSIGNMENT_SK))
            .expression_attribute_values(":t", n(counted.total_users))
            .expression_attribute_values(":c", n(counted.completed_users))
            .expression_attribute_values(":i", n(counted.in_progress_users))
            .expression_attribute_values(":n", n(counted.not_started_users))
            .expression_attribute_values(":s", n(counted.completed_items_sum))
            .expression_attribute_values(":dr", n(counted.dated_rows))
            .expression_attribute_values(":t0", n(stored.total_users))
            .expression_attribute_values(":c0", n(stored.completed_users))
            .expression_attribute_values(":i0", n(stored.in_progress_users))
            .expression_attribute_values(":n0", n(stored.not_started_users))
            .expression_attribute_values(":s0", n(stored.completed_items_sum));
        // DynamoDB refuses a value no expression uses: `:zero` only where a guard does.
        let mut uses_zero = false;
        match revision {
            Some(revision) => {
                guards.push("countersRev = :rev".into());
                update =
                    update.expression_attribute_values(":rev", aws_sdk_dynamodb::types::AttributeValue::N(revision));
            }
            None => guards.push("attribute_not_exists(countersRev)".into()),
        }
        if stored.dated_rows == 0 {
            uses_zero = true;
            guards.push(format!("(attribute_not_exists({0}) OR {0} = :zero)", keys::DATED_ROWS));
        } else {
            guards.push(format!("{} = :dr0", keys::DATED_ROWS));
            update = update.expression_attribute_values(":dr0", n(stored.dated_rows));
        }
        // A date no row is counted under any more is removed, not set to 0: the item does not grow with dates.
        let mut remove = Vec::new();
        for (i, key) in differing.iter().enumerate() {
            update = update.expression_attribute_names(format!("#d{i}"), DatedCounts::attribute(key.0, key.1));
            match counted.dated.0.get(key) {
                Some(count) => {
                    update = update.expression_attribute_values(format!(":d{i}"), n(*count));
                    set.push(format!("#d{i} = :d{i}"));
                }
                None => remove.push(format!("#d{i}")),
            }
            match stored.dated.0.get(key) {
                Some(count) => {
                    guards.push(format!("#d{i} = :d{i}0"));
                    update = update.expression_attribute_values(format!(":d{i}0"), n(*count));
                }
                None => {
                    uses_zero = true;
                    guards.push(format!("(attribute_not_exists(#d{i}) OR #d{i} = :zero)"));
                }
            }
        }
        if uses_zero {
            update = update.expression_attribute_values(":zero", n(0));
        }
        let result = self
            .send_update(
                update
                    .update_expression(if remove.is_empty() {
                        format!("SET {}", set.join(", "))
                    } else {
                        format!("SET {} REMOVE {}", set.join(", "), remove.join(", "))
                    })
                    .condition_expression(guards.join(" AND ")),
            )
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

mod runs;

mod reads;
