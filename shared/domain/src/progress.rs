//! One learner's progress on one assignment, and the per-user status rules.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregates::{RowClass, RowContribution};
use crate::catalog::{TrackedItem, TrackedUnit, tracks};
use crate::ids::{AssignmentId, TeamId, UserId};
use crate::recurrence::{self, CompletionLog, Cycle, Recurrence};

/// An assignee is overdue only once their due day has ended in UTC.
pub fn is_past_deadline(deadline: NaiveDate, now: DateTime<Utc>) -> bool {
    now.date_naive() > deadline
}

/// The per-user status shown by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// The status of a row of `class` due on `due_on` (its own date or the assignment's deadline).
    pub fn of(class: RowClass, due_on: NaiveDate, now: DateTime<Utc>) -> Self {
        match class {
            RowClass::Removed => UserStatus::Removed,
            RowClass::Exempt => UserStatus::Exempt,
            RowClass::Completed => UserStatus::Completed,
            _ if is_past_deadline(due_on, now) => UserStatus::Overdue,
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

/// One completed tracked item: best score and first completion time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletedItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub completed_at: DateTime<Utc>,
}

impl CompletedItem {
    /// Takes in another completion of the same item: the earliest time and the best score are kept,
    /// so any order of the same completions gives the same result.
    pub fn absorb(&mut self, at: DateTime<Utc>, score: Option<f64>) {
        self.completed_at = self.completed_at.min(at);
        self.score = match (self.score, score) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
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
    /// Recurring assignments: every completion of a tracked item (see [`crate::recurrence`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log: CompletionLog,
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
            cycles: Vec::new(),
            valid_until: None,
            window_opens_on: None,
        }
    }

    /// [`ProgressRow::record_completion`] on a recurring assignment: the completion joins the log and
    /// the cycles are derived again (order-free, idempotent). Returns whether the row changed.
    pub fn record_recurring_completion(
        &mut self,
        item: &TrackedItem,
        score: Option<f64>,
        at: DateTime<Utc>,
        units: &[TrackedUnit],
        item_count: u32,
        recurrence: Recurrence,
    ) -> bool {
        if !tracks(units, item) {
            return false;
        }
        let before = self.clone();
        recurrence::log_completion(&mut self.log, item, score, at);
        self.started_at = Some(self.started_at.map_or(at, |s| s.min(at)));
        self.recertify(units, item_count, recurrence);
        *self != before
    }

    /// Re-derives completion after the assignment's tracked items or recurrence changed.
    pub fn refresh(&mut self, units: &[TrackedUnit], item_count: u32, recurrence: Option<Recurrence>) {
        match recurrence {
            Some(recurrence) => self.recertify(units, item_count, recurrence),
            None => {
                // No longer recurring: each item's first completion and best score, as a one-off
                // assignment keeps them (merged with what it recorded since); the cycles stay as history.
                for (key, entries) in &self.log {
                    for entry in entries {
                        let kept = self.completed.entry(key.clone()).or_insert_with(|| entry.clone());
                        kept.absorb(entry.completed_at, entry.score);
                    }
                }
                (self.valid_until, self.window_opens_on) = (None, None);
                self.refresh_completion(units, item_count);
            }
        }
    }

    fn recertify(&mut self, units: &[TrackedUnit], item_count: u32, recurrence: Recurrence) {
        // Completions recorded while the assignment was not recurring (before it became so, or between
        // two recurring spells) join the log; items the log has already come from it.
        for (key, item) in &self.completed {
            if !self.log.contains_key(key) {
                self.log.insert(key.clone(), vec![item.clone()]);
            }
        }
        let derived = recurrence::derive(&self.log, units, item_count, recurrence);
        self.completed = derived.current;
        self.cycles = derived.cycles;
        let last = self.cycles.last();
        self.completed_at = last.map(|c| c.completed_at);
        self.valid_until = last.map(|c| c.valid_until);
        self.window_opens_on = derived.current_from.filter(|_| last.is_some());
    }

    /// The day a recertified learner's completion lapses (an extension can only move it later).
    pub fn expires_on(&self) -> Option<NaiveDate> {
        self.valid_until.map(|valid| self.extended_to.map_or(valid, |extended| extended.max(valid)))
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
        if !tracks(units, item) {
            return false;
        }
        let before = self.clone();
        self.completed.entry(item.key()).or_insert(CompletedItem { score, completed_at: at }).absorb(at, score);
        self.started_at = Some(self.started_at.map_or(at, |s| s.min(at)));
        self.refresh_completion(units, item_count);
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

    pub fn status(
        &self,
        units: &[TrackedUnit],
        item_count: u32,
        deadline: NaiveDate,
        now: DateTime<Utc>,
    ) -> UserStatus {
        let class = self.class(units, item_count);
        if class == RowClass::Completed && self.expires_on().is_some_and(|day| is_past_deadline(day, now)) {
            return UserStatus::Expired;
        }
        UserStatus::of(class, self.due_on(deadline), now)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Slug;
    use chrono::TimeZone;

    fn units() -> Vec<TrackedUnit> {
        vec![
            TrackedUnit::Topic { topic_id: Slug::parse("sql-injection").unwrap(), challenges: 2 },
            TrackedUnit::Scenario { scenario_id: Slug::parse("idor").unwrap() },
        ]
    }

    fn row_with(keys: &[(&str, Option<f64>)]) -> ProgressRow {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let mut row = ProgressRow::new(AssignmentId::new_v7(), UserId(uuid::Uuid::nil()), Source::Individual, at);
        for (key, score) in keys {
            row.completed.insert((*key).to_owned(), CompletedItem { score: *score, completed_at: at });
        }
        if !keys.is_empty() {
            row.started_at = Some(at);
        }
        row
    }

    #[test]
    fn deadline_day_counts_until_midnight_utc() {
        let deadline = NaiveDate::from_ymd_opt(2026, 4, 15).unwrap();
        assert!(!is_past_deadline(deadline, Utc.with_ymd_and_hms(2026, 4, 15, 0, 0, 0).unwrap()));
        assert!(!is_past_deadline(deadline, Utc.with_ymd_and_hms(2026, 4, 15, 23, 59, 59).unwrap()));
        assert!(is_past_deadline(deadline, Utc.with_ymd_and_hms(2026, 4, 16, 0, 0, 0).unwrap()));
    }

    #[test]
    fn statuses_follow_progress_deadline_and_removal() {
        let deadline = NaiveDate::from_ymd_opt(2026, 4, 15).unwrap();
        let before = Utc.with_ymd_and_hms(2026, 4, 10, 0, 0, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 4, 16, 0, 0, 0).unwrap();
        let u = units();

        let fresh = row_with(&[]);
        assert_eq!(fresh.status(&u, 3, deadline, before), UserStatus::NotStarted);
        assert_eq!(fresh.status(&u, 3, deadline, after), UserStatus::Overdue);

        let partial = row_with(&[("c:sql-injection:0", Some(80.0))]);
        assert_eq!(partial.status(&u, 3, deadline, before), UserStatus::InProgress);
        assert_eq!(partial.status(&u, 3, deadline, after), UserStatus::Overdue);

        let done = row_with(&[("c:sql-injection:0", None), ("c:sql-injection:1", None), ("s:idor", None)]);
        assert_eq!(done.status(&u, 3, deadline, after), UserStatus::Completed, "completion beats the deadline");

        let mut gone = done.clone();
        gone.removed_at = Some(before);
        assert_eq!(gone.status(&u, 3, deadline, before), UserStatus::Removed);

        let mut extended = partial.clone();
        extended.extended_to = Some(NaiveDate::from_ymd_opt(2026, 4, 20).unwrap());
        assert_eq!(extended.status(&u, 3, deadline, after), UserStatus::InProgress, "their own date counts");
        assert_eq!(extended.contribution(&u, 3).due_on, extended.extended_to);
        extended.relative_due_on = Some(NaiveDate::from_ymd_opt(2026, 4, 12).unwrap());
        assert_eq!(extended.due_on(deadline), NaiveDate::from_ymd_opt(2026, 4, 20).unwrap(), "an extension wins");

        let mut exempt = partial.clone();
        exempt.exemption = Some(Exemption { reason: "on leave".into(), at: before, by: "user:x".into() });
        assert_eq!(exempt.status(&u, 3, deadline, after), UserStatus::Exempt);
        assert_eq!(exempt.contribution(&u, 3).due_on, None);
        assert_eq!(done.contribution(&u, 3).due_on, None, "complete rows are not counted by date");
    }

    #[test]
    fn overrides_extend_exempt_and_repeat_as_no_ops() {
        let now = Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).unwrap();
        let row = row_with(&[]);
        let date = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let extend = LearnerPatch { due_on: Some(Some(date)), exempt: None };
        let extended = row.overridden(&extend, "user:a", now).unwrap();
        assert_eq!(extended.extended_to, Some(date));
        assert!(extended.overridden(&extend, "user:a", now).is_none(), "a repeat changes nothing");

        let exempt = LearnerPatch { due_on: None, exempt: Some(Some("joined after the audit".into())) };
        let exempted = extended.overridden(&exempt, "user:a", now).unwrap();
        assert_eq!(exempted.exemption.as_ref().map(|e| (e.by.as_str(), e.at)), Some(("user:a", now)));
        let later = now + chrono::Duration::hours(1);
        assert!(exempted.overridden(&exempt, "user:b", later).is_none(), "same reason: kept as first made");

        let back = LearnerPatch { due_on: Some(None), exempt: Some(None) };
        let restored = exempted.overridden(&back, "user:a", later).unwrap();
        assert_eq!((restored.extended_to, restored.exemption), (None, None));
        let snapshot = exempted.override_snapshot(NaiveDate::from_ymd_opt(2026, 4, 15).unwrap());
        assert_eq!((snapshot["dueOn"].as_str(), snapshot["exempt"].as_bool()), (Some("2026-05-01"), Some(true)));
    }

    #[test]
    fn a_recertified_row_is_completed_until_it_lapses_then_expired() {
        let topic = vec![TrackedUnit::Topic { topic_id: Slug::parse("sql-injection").unwrap(), challenges: 2 }];
        let yearly = Recurrence { every_months: 12, window_days: 30 };
        let t = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap();
        let deadline = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
        let mut row = row_with(&[]);
        for (i, at) in [(0, t(2026, 1, 10)), (1, t(2026, 1, 12))] {
            let item = TrackedItem::parse_key(&format!("c:sql-injection:{i}")).unwrap();
            assert!(row.record_recurring_completion(&item, Some(70.0), at, &topic, 2, yearly));
        }
        let lapses = NaiveDate::from_ymd_opt(2027, 1, 12).unwrap();
        assert_eq!((row.cycles.len(), row.valid_until, row.completed_at), (1, Some(lapses), Some(t(2026, 1, 12))));
        assert_eq!(row.window_opens_on, NaiveDate::from_ymd_opt(2026, 12, 13));
        assert_eq!(row.due_on(deadline), lapses, "a recertified learner is due when their completion lapses");
        let contribution = row.contribution(&topic, 2);
        assert_eq!(
            (contribution.class, contribution.due_on, contribution.completed_items),
            (RowClass::Completed, Some(lapses), 2)
        );
        assert_eq!(row.status(&topic, 2, deadline, t(2027, 1, 12)), UserStatus::Completed);
        assert_eq!(row.status(&topic, 2, deadline, t(2027, 1, 13)), UserStatus::Expired);

        // One item of the new cycle: still expired, with the new cycle's progress.
        let item = TrackedItem::parse_key("c:sql-injection:0").unwrap();
        row.record_recurring_completion(&item, None, t(2027, 2, 1), &topic, 2, yearly);
        assert_eq!(
            (row.status(&topic, 2, deadline, t(2027, 2, 2)), row.completed_tracked(&topic)),
            (UserStatus::Expired, 1)
        );
        // An extension can only move the lapse later.
        row.extended_to = NaiveDate::from_ymd_opt(2026, 6, 1);
        assert_eq!(row.expires_on(), Some(lapses));
        row.extended_to = NaiveDate::from_ymd_opt(2027, 3, 1);
        assert_eq!(row.status(&topic, 2, deadline, t(2027, 2, 2)), UserStatus::Completed);

        // No longer recurring: completed once and for all; the cycles stay as history.
        row.refresh(&topic, 2, None);
        assert_eq!((row.valid_until, row.cycles.len()), (None, 1));
        assert_eq!(row.status(&topic, 2, deadline, t(2030, 1, 1)), UserStatus::Completed);
    }

    #[test]
    fn only_currently_tracked_items_count() {
        let u = units();
        // index 5 is beyond the topic's 2 challenges; another topic is not tracked at all.
        let row = row_with(&[("c:sql-injection:0", Some(50.0)), ("c:sql-injection:5", Some(0.0)), ("c:xxe:0", None)]);
        assert_eq!(row.completed_tracked(&u), 1);
        assert!((row.progress(&u, 3) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(row.average_score(&u), Some(50.0));
        assert_eq!(row_with(&[]).average_score(&u), None);
    }

    #[test]
    fn completions_are_idempotent_order_free_and_keep_the_best_score() {
        let u = units();
        let t = |h| Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap();
        let events = [
            (TrackedItem::parse_key("c:sql-injection:0").unwrap(), Some(40.0), t(9)),
            (TrackedItem::parse_key("c:sql-injection:0").unwrap(), Some(90.0), t(11)),
            (TrackedItem::parse_key("s:idor").unwrap(), None, t(10)),
            (TrackedItem::parse_key("c:sql-injection:1").unwrap(), Some(70.0), t(12)),
            (TrackedItem::parse_key("c:xxe:0").unwrap(), Some(10.0), t(8)),
        ];
        let assignment_id = AssignmentId::new_v7();
        let apply = |order: &[usize]| {
            let mut row = row_with(&[]);
            row.assignment_id = assignment_id;
            for &i in order {
                let (item, score, at) = &events[i];
                row.record_completion(item, *score, *at, &u, 3);
            }
            row
        };
        let forward = apply(&[0, 1, 2, 3, 4]);
        for order in [[4, 3, 2, 1, 0], [1, 3, 0, 4, 2], [2, 0, 4, 1, 3]] {
            assert_eq!(apply(&order), forward, "{order:?}");
        }
        let twice = apply(&[0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
        assert_eq!(twice, forward, "duplicates change nothing");

        let sql0 = &forward.completed["c:sql-injection:0"];
        assert_eq!((sql0.score, sql0.completed_at), (Some(90.0), t(9)), "best score, first completion");
        assert!(!forward.completed.contains_key("c:xxe:0"), "untracked items are ignored");
        assert_eq!(forward.started_at, Some(t(9)));
        assert_eq!(forward.completed_at, Some(t(12)), "when the last item was first done");
        assert_eq!(forward.class(&u, 3), RowClass::Completed);

        let mut partial = row_with(&[]);
        assert!(partial.record_completion(&events[2].0, None, t(10), &u, 3));
        assert!(!partial.record_completion(&events[2].0, None, t(10), &u, 3), "a duplicate is not a change");
        assert_eq!((partial.completed_at, partial.class(&u, 3)), (None, RowClass::InProgress));
    }

    #[test]
    fn membership_changes_are_order_safe_and_keep_progress() {
        let u = units();
        let t = |h| Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap();
        let mut row = row_with(&[("c:sql-injection:0", Some(50.0))]);
        row.membership_at = t(8);

        assert!(row.leave(t(10)));
        assert_eq!((row.class(&u, 3), row.removed_at), (RowClass::Removed, Some(t(10))));
        assert!(!row.leave(t(10)), "a repeated event changes nothing");
        assert!(!row.join(t(9)), "an older join arriving late does not undo the leave");
        assert_eq!(row.class(&u, 3), RowClass::Removed);

        assert!(row.join(t(11)), "a returning learner comes back");
        assert_eq!(row.class(&u, 3), RowClass::InProgress);
        assert_eq!(row.completed.len(), 1, "with their old progress");

        // Every delivery order of the same three events ends in the same row.
        let events: [(bool, u32); 3] = [(false, 10), (true, 11), (false, 12)];
        let run = |order: [usize; 3]| {
            let mut r = row_with(&[]);
            r.assignment_id = row.assignment_id;
            r.membership_at = t(8);
            for i in order {
                let (joins, hour) = events[i];
                if joins {
                    r.join(t(hour))
                } else {
                    r.leave(t(hour))
                };
            }
            r
        };
        let ordered = run([0, 1, 2]);
        for order in [[2, 1, 0], [1, 0, 2], [1, 2, 0], [0, 2, 1], [2, 0, 1]] {
            assert_eq!(run(order), ordered, "{order:?}");
        }
        assert_eq!(ordered.removed_at, Some(t(12)));
    }

    #[test]
    fn source_serialises_with_a_kind_tag() {
        let team = Source::Team { team_id: TeamId(uuid::Uuid::nil()) };
        let json = serde_json::to_value(&team).unwrap();
        assert_eq!(json["kind"], "team");
        assert_eq!(serde_json::from_value::<Source>(json).unwrap(), team);
    }
}
