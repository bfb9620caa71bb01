//! One learner's progress on one assignment, and the per-user status rules.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregates::{RowClass, RowContribution};
use crate::catalog::{TrackedItem, TrackedUnit, tracks};
use crate::ids::{AssignmentId, TeamId, UserId};
pub use crate::recurrence::CompletedItem;
use crate::recurrence::{CompletionLog, Cycle};
use crate::{deadline, skew};

/// The per-user status shown by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    NotStarted,
    InProgress,
    Completed,
    Overdue,
    Removed,
    Exempt,
    /// A recertification lapsed: the last completion's validity ended and the new cycle is not done.
    Expired,
}

impl UserStatus {
    /// The status on `today` of a row of `class` due on `due_on` (its own date or the assignment's
    /// deadline).
    pub fn of(class: RowClass, due_on: NaiveDate, today: NaiveDate) -> Self {
        match class {
            RowClass::Removed => UserStatus::Removed,
            RowClass::Exempt => UserStatus::Exempt,
            RowClass::Completed => UserStatus::Completed,
            _ if deadline::has_passed(due_on, today) => UserStatus::Overdue,
            RowClass::InProgress => UserStatus::InProgress,
            RowClass::NotStarted => UserStatus::NotStarted,
        }
    }
}

/// Why a learner has an assignment (the learner view's `source`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Source {
    Individual,
    #[serde(rename_all = "camelCase")]
    Team {
        team_id: TeamId,
    },
    Organization,
}

/// A learner completed a tracked item (from `challenge.completed` / `scenario.completed`).
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub item: TrackedItem,
    pub score: Option<f64>,
    pub at: DateTime<Utc>,
}

impl Completion {
    /// Only completions at or after an assignment's creation count towards it.
    pub fn counts_for(&self, assignment_created_at: DateTime<Utc>) -> bool {
        self.at >= assignment_created_at
    }
}

/// An admin took a learner out of an assignment's rates, saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exemption {
    pub reason: String,
    pub at: DateTime<Utc>,
    /// The audit actor id of the admin.
    pub by: String,
}

/// An admin's change of one learner's row (`PATCH /assignments/{id}/users/{userId}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnerPatch {
    /// `Some(Some(date))` sets the learner's date to `date`; `Some(None)` returns them to the date they
    /// would have without it (their relative date, else the assignment's deadline).
    pub due_on: Option<Option<NaiveDate>>,
    /// `Some(Some(reason))` exempts; `Some(None)` lifts an exemption.
    pub exempt: Option<Option<String>>,
}

/// A learner's row on an assignment. Rows are never deleted: leaving scope sets `removed_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressRow {
    pub assignment_id: AssignmentId,
    pub user_id: UserId,
    pub source: Source,
    /// Keyed by [`TrackedItem::key`].
    #[serde(default)]
    pub completed: BTreeMap<String, CompletedItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<DateTime<Utc>>,
    /// `occurredAt` of the newest membership event applied to this row, so an older event never
    /// undoes a newer one.
    pub membership_at: DateTime<Utc>,
    pub added_at: DateTime<Utc>,
    /// Bumped on every stored change; the store's optimistic-concurrency token for this row.
    #[serde(default)]
    pub revision: u64,
    /// What the assignment's counters count for this row, as of its last write. A change moves the
    /// counters from this to the new contribution, so counters stay the sum over rows even while the
    /// tracked items of a custom course change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<RowContribution>,
    /// The learner's own date from a relative deadline (`dueInDays` after the row was added); fixed
    /// when the row is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_due_on: Option<NaiveDate>,
    /// An admin's date for this learner: wins over the relative and the assignment's dates; for a
    /// recertified learner it can only move the lapse later (see [`ProgressRow::expires_on`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_to: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemption: Option<Exemption>,
    /// Recurring assignments: every completion of a tracked item that a derivation may still read (see
    /// [`crate::recurrence::compact`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log: CompletionLog,
    /// Recurring assignments: the first day `log` is whole from (`None`: every completion), after the
    /// cycles closed before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_from: Option<NaiveDate>,
    /// Recurring assignments: the completed cycles, derived from `log`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<Cycle>,
    /// Recurring assignments: the last cycle's validity and the first day of the next cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_opens_on: Option<NaiveDate>,
}

impl ProgressRow {
    /// A fresh row for a learner who just came into scope.
    pub fn new(assignment_id: AssignmentId, user_id: UserId, source: Source, at: DateTime<Utc>) -> Self {
        Self {
            assignment_id,
            user_id,
            source,
            completed: BTreeMap::new(),
            started_at: None,
            completed_at: None,
            removed_at: None,
            membership_at: at,
            added_at: at,
            revision: 0,
            counted: None,
            relative_due_on: None,
            extended_to: None,
            exemption: None,
            log: BTreeMap::new(),
            log_from: None,
            cycles: Vec::new(),
            valid_until: None,
            window_opens_on: None,
        }
    }

    /// The date this learner has of their own, if any: an extension, else a relative deadline's.
    pub fn own_due_on(&self) -> Option<NaiveDate> {
        self.extended_to.or(self.relative_due_on)
    }

    /// Applies an admin's `patch` by `by` at `now`; `None` when it changes nothing (a repeat). An
    /// exemption keeps its first time and author when only repeated; a new reason replaces it.
    pub fn overridden(&self, patch: &LearnerPatch, by: &str, now: DateTime<Utc>) -> Option<ProgressRow> {
        let mut next = self.clone();
        if let Some(due_on) = patch.due_on {
            next.extended_to = due_on;
        }
        match &patch.exempt {
            Some(Some(reason)) if self.exemption.as_ref().is_some_and(|e| &e.reason == reason) => {}
            Some(Some(reason)) => {
                next.exemption = Some(Exemption { reason: reason.clone(), at: now, by: by.to_owned() })
            }
            Some(None) => next.exemption = None,
            None => {}
        }
        (next != *self).then_some(next)
    }

    /// What an admin controls on this row, for audit before/after and the `user_updated` event.
    pub fn override_snapshot(&self, deadline: NaiveDate) -> serde_json::Value {
        serde_json::json!({
            "dueOn": self.due_on(deadline),
            "extendedTo": self.extended_to,
            "exempt": self.exemption.is_some(),
            "reason": self.exemption.as_ref().map(|e| e.reason.as_str()),
            "version": self.revision,
        })
    }

    /// The learner's due date (`dueOn`): when their recertification lapses, else their own date, else
    /// the assignment's `deadline`.
    pub fn due_on(&self, deadline: NaiveDate) -> NaiveDate {
        self.expires_on().or(self.own_due_on()).unwrap_or(deadline)
    }

    /// Records that `item` was completed at `at` with `score`. Idempotent and order-free: the best score
    /// and the earliest completion of each item are kept, `startedAt` is the earliest completion, and
    /// `completedAt` is when the last tracked item was first done — so any delivery order of the same
    /// events yields the same row. Returns whether the row changed; untracked items change nothing.
    pub fn record_completion(
        &mut self,
        item: &TrackedItem,
        score: Option<f64>,
        at: DateTime<Utc>,
        units: &[TrackedUnit],
        item_count: u32,
    ) -> bool {
        self.take_completion(item, at, units, |row| {
            row.completed.entry(item.key()).or_insert(CompletedItem { score, completed_at: at }).absorb(at, score);
            row.refresh_completion(units, item_count);
        })
    }

    /// What every kind of completion shares: an untracked item changes nothing, `startedAt` is the
    /// earliest completion, and the answer is whether `record` changed the row.
    pub(crate) fn take_completion(
        &mut self,
        item: &TrackedItem,
        at: DateTime<Utc>,
        units: &[TrackedUnit],
        record: impl FnOnce(&mut Self),
    ) -> bool {
        if !tracks(units, item) {
            return false;
        }
        let before = self.clone();
        record(self);
        self.started_at = Some(self.started_at.map_or(at, |s| s.min(at)));
        *self != before
    }

    /// The learner left the assignment's scope at `at` (left the team, was deactivated). The row is
    /// kept with its progress and excluded from rates. Ignored when a membership change at or after
    /// `at` was already applied, so a late or repeated event never undoes a newer one. Returns whether
    /// the row changed.
    pub fn leave(&mut self, at: DateTime<Utc>) -> bool {
        if at <= self.membership_at {
            return false;
        }
        self.membership_at = at;
        self.removed_at = Some(at);
        true
    }

    /// The learner is (again) in scope from `at`; a returning learner gets their old progress back.
    /// Ignored like [`ProgressRow::leave`] when not newer than the last change applied. The source does
    /// not change: it follows from the assignment's assignee, so the final row is the same whatever
    /// order membership events arrive in.
    pub fn join(&mut self, at: DateTime<Utc>) -> bool {
        if at <= self.membership_at {
            return false;
        }
        self.membership_at = at;
        self.removed_at = None;
        true
    }

    /// Times stored ahead of `now` (see [`crate::skew`]) stop ordering anything: the membership time is
    /// forgotten (the epoch: the next real join or leave applies); when the learner was added, started
    /// and left become `now` (it happened, and by now), and so do its completions unless the row keeps a
    /// recurring assignment's completion log: its cycles are derived from that log, which is left as it
    /// is (changing one without the other would be undone by the next derivation). Returns whether
    /// anything changed.
    pub fn forget_future(&mut self, now: DateTime<Utc>) -> bool {
        let mut changed = false;
        if skew::is_ahead(self.membership_at, now) {
            self.membership_at = DateTime::UNIX_EPOCH;
            changed = true;
        }
        changed |= skew::clamp_if_ahead(&mut self.added_at, now);
        for at in [&mut self.started_at, &mut self.removed_at].into_iter().flatten() {
            changed |= skew::clamp_if_ahead(at, now);
        }
        if self.log.is_empty() && self.cycles.is_empty() {
            for at in self.completed_at.iter_mut().chain(self.completed.values_mut().map(|c| &mut c.completed_at)) {
                changed |= skew::clamp_if_ahead(at, now);
            }
        }
        changed
    }

    /// Recomputes `completedAt` from the tracked items (after a completion, or when a custom course's
    /// items change): set iff every tracked item is done, to the time the last of them was first done.
    pub fn refresh_completion(&mut self, units: &[TrackedUnit], item_count: u32) {
        let tracked: Vec<&CompletedItem> = self
            .completed
            .iter()
            .filter(|(key, _)| TrackedItem::parse_key(key).is_some_and(|i| tracks(units, &i)))
            .map(|(_, c)| c)
            .collect();
        let done = item_count > 0 && tracked.len() as u64 >= u64::from(item_count);
        self.completed_at = if done { tracked.iter().map(|c| c.completed_at).max() } else { None };
    }

    /// Completed items that `units` still track (a custom course may have dropped some).
    pub fn completed_tracked(&self, units: &[TrackedUnit]) -> u32 {
        let count = self
            .completed
            .keys()
            .filter_map(|key| TrackedItem::parse_key(key))
            .filter(|item| tracks(units, item))
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    pub fn class(&self, units: &[TrackedUnit], item_count: u32) -> RowClass {
        if self.removed_at.is_some() {
            return RowClass::Removed;
        }
        if self.exemption.is_some() {
            return RowClass::Exempt;
        }
        if self.valid_until.is_some() {
            return RowClass::Completed;
        }
        RowClass::of_progress(self.completed_tracked(units), item_count, self.started_at.is_some())
    }

    pub fn contribution(&self, units: &[TrackedUnit], item_count: u32) -> RowContribution {
        let class = self.class(units, item_count);
        let due_on = match class {
            RowClass::NotStarted | RowClass::InProgress => self.own_due_on(),
            RowClass::Completed => self.expires_on(),
            RowClass::Removed | RowClass::Exempt => None,
        };
        // As the views show it: the cycle in progress (the last one's items until it has any).
        RowContribution { class, completed_items: self.completed_tracked(units), due_on }
    }

    pub fn status(&self, units: &[TrackedUnit], item_count: u32, deadline: NaiveDate, today: NaiveDate) -> UserStatus {
        let class = self.class(units, item_count);
        if class == RowClass::Completed && self.expires_on().is_some_and(|day| deadline::has_passed(day, today)) {
            return UserStatus::Expired;
        }
        UserStatus::of(class, self.due_on(deadline), today)
    }

    /// Fraction of tracked items done, 0..=1.
    pub fn progress(&self, units: &[TrackedUnit], item_count: u32) -> f64 {
        if item_count == 0 {
            return 0.0;
        }
        (f64::from(self.completed_tracked(units)) / f64::from(item_count)).min(1.0)
    }

    /// Mean of the best scores of tracked completed items that carry a score.
    pub fn average_score(&self, units: &[TrackedUnit]) -> Option<f64> {
        let scores: Vec<f64> = self
            .completed
            .iter()
            .filter(|(key, _)| TrackedItem::parse_key(key).is_some_and(|item| tracks(units, &item)))
            .filter_map(|(_, item)| item.score)
            .collect();
        (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
    }
}

mod recurring;

#[cfg(test)]
mod tests;
