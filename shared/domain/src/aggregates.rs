//! Per-assignment counters kept on the assignment item and moved in the same transaction as the
//! progress change that moves them, so listing never reads progress rows.
//!
//! "Overdue" is not stored: it depends on the clock, not on a write. The stored counters classify each
//! row by its progress only; the summary turns not-started/in-progress users into overdue ones once the
//! deadline has passed.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::progress::is_past_deadline;

/// A progress row's class for counting; independent of the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowClass {
    NotStarted,
    InProgress,
    Completed,
    /// Left the assignment's scope: kept for history, excluded from every rate.
    Removed,
}

impl RowClass {
    /// Classifies a row that is in scope by how many of `item_count` tracked items it has done.
    pub fn of_progress(completed_items: u32, item_count: u32, started: bool) -> Self {
        if item_count > 0 && completed_items >= item_count {
            RowClass::Completed
        } else if started || completed_items > 0 {
            RowClass::InProgress
        } else {
            RowClass::NotStarted
        }
    }
}

/// The counters stored on an assignment. Signed so that the same type expresses a delta.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregates {
    /// Users in scope (removed users excluded).
    pub total_users: i64,
    pub completed_users: i64,
    pub in_progress_users: i64,
    pub not_started_users: i64,
    /// Sum over users in scope of their completed tracked items; with `item_count` it gives the
    /// average progress without reading rows.
    pub completed_items_sum: i64,
}

/// What a row contributes to the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowContribution {
    pub class: RowClass,
    pub completed_items: u32,
}

impl Aggregates {
    fn of_row(row: Option<RowContribution>) -> Self {
        let mut agg = Aggregates::default();
        let Some(row) = row else { return agg };
        match row.class {
            RowClass::Removed => return agg,
            RowClass::NotStarted => agg.not_started_users = 1,
            RowClass::InProgress => agg.in_progress_users = 1,
            RowClass::Completed => agg.completed_users = 1,
        }
        agg.total_users = 1;
        agg.completed_items_sum = i64::from(row.completed_items);
        agg
    }

    /// The change in counters when a row goes from `before` to `after` (`None` = no row).
    pub fn delta(before: Option<RowContribution>, after: Option<RowContribution>) -> Self {
        Self::of_row(after) - Self::of_row(before)
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// The API's progress block as of `now`.
    pub fn summary(&self, item_count: u32, deadline: NaiveDate, now: DateTime<Utc>) -> ProgressSummary {
        let total = self.total_users.max(0) as u64;
        let completed = self.completed_users.max(0) as u64;
        let mut in_progress = self.in_progress_users.max(0) as u64;
        let mut not_started = self.not_started_users.max(0) as u64;
        let mut overdue = 0;
        if is_past_deadline(deadline, now) {
            overdue = in_progress + not_started;
            in_progress = 0;
            not_started = 0;
        }
        let ratio = |num: f64, den: f64| if den > 0.0 { (num / den).clamp(0.0, 1.0) } else { 0.0 };
        ProgressSummary {
            total_users: total,
            completed_users: completed,
            in_progress_users: in_progress,
            not_started_users: not_started,
            overdue_users: overdue,
            completion_rate: ratio(completed as f64, total as f64),
            average_progress: ratio(self.completed_items_sum.max(0) as f64, total as f64 * f64::from(item_count)),
        }
    }
}

impl std::ops::Sub for Aggregates {
    type Output = Aggregates;
    fn sub(self, rhs: Self) -> Self {
        Aggregates {
            total_users: self.total_users - rhs.total_users,
            completed_users: self.completed_users - rhs.completed_users,
            in_progress_users: self.in_progress_users - rhs.in_progress_users,
            not_started_users: self.not_started_users - rhs.not_started_users,
            completed_items_sum: self.completed_items_sum - rhs.completed_items_sum,
        }
    }
}

impl std::ops::Add for Aggregates {
    type Output = Aggregates;
    fn add(self, rhs: Self) -> Self {
        Aggregates {
            total_users: self.total_users + rhs.total_users,
            completed_users: self.completed_users + rhs.completed_users,
            in_progress_users: self.in_progress_users + rhs.in_progress_users,
            not_started_users: self.not_started_users + rhs.not_started_users,
            completed_items_sum: self.completed_items_sum + rhs.completed_items_sum,
        }
    }
}

/// `progress` of the assignment resource. Rates are numbers in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressSummary {
    pub total_users: u64,
    pub completed_users: u64,
    pub in_progress_users: u64,
    pub not_started_users: u64,
    pub overdue_users: u64,
    pub completion_rate: f64,
    pub average_progress: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(class: RowClass, completed_items: u32) -> Option<RowContribution> {
        Some(RowContribution { class, completed_items })
    }

    #[test]
    fn classification_follows_progress() {
        assert_eq!(RowClass::of_progress(0, 11, false), RowClass::NotStarted);
        assert_eq!(RowClass::of_progress(0, 11, true), RowClass::InProgress);
        assert_eq!(RowClass::of_progress(3, 11, false), RowClass::InProgress);
        assert_eq!(RowClass::of_progress(11, 11, true), RowClass::Completed);
        assert_eq!(RowClass::of_progress(12, 11, true), RowClass::Completed);
        // An empty course is never "completed" by default.
        assert_eq!(RowClass::of_progress(0, 0, false), RowClass::NotStarted);
    }

    #[test]
    fn deltas_move_exactly_one_user_between_buckets() {
        let added = Aggregates::delta(None, row(RowClass::NotStarted, 0));
        assert_eq!(added, Aggregates { total_users: 1, not_started_users: 1, ..Default::default() });

        let finished = Aggregates::delta(row(RowClass::InProgress, 10), row(RowClass::Completed, 11));
        assert_eq!(
            finished,
            Aggregates { in_progress_users: -1, completed_users: 1, completed_items_sum: 1, ..Default::default() }
        );

        let removed = Aggregates::delta(row(RowClass::Completed, 11), row(RowClass::Removed, 11));
        assert_eq!(
            removed,
            Aggregates { total_users: -1, completed_users: -1, completed_items_sum: -11, ..Default::default() }
        );
        assert!(Aggregates::delta(row(RowClass::Removed, 4), row(RowClass::Removed, 5)).is_zero());
        assert!(Aggregates::delta(row(RowClass::InProgress, 2), row(RowClass::InProgress, 2)).is_zero());
    }

    #[test]
    fn summary_rates_and_overdue_switch_at_end_of_deadline_day() {
        let agg = Aggregates {
            total_users: 4,
            completed_users: 1,
            in_progress_users: 2,
            not_started_users: 1,
            completed_items_sum: 11 + 5 + 3,
        };
        let deadline = NaiveDate::from_ymd_opt(2026, 4, 15).unwrap();
        let last_moment = Utc.with_ymd_and_hms(2026, 4, 15, 23, 59, 59).unwrap();
        let before = agg.summary(11, deadline, last_moment);
        assert_eq!((before.in_progress_users, before.not_started_users, before.overdue_users), (2, 1, 0));
        assert_eq!(before.completion_rate, 0.25);
        assert!((before.average_progress - 19.0 / 44.0).abs() < 1e-12);

        let after = agg.summary(11, deadline, Utc.with_ymd_and_hms(2026, 4, 16, 0, 0, 0).unwrap());
        assert_eq!((after.in_progress_users, after.not_started_users, after.overdue_users), (0, 0, 3));
        assert_eq!(after.completed_users, 1);
    }

    #[test]
    fn empty_assignment_has_zero_rates_not_nan() {
        let s = Aggregates::default().summary(0, NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(), Utc::now());
        assert_eq!((s.completion_rate, s.average_progress), (0.0, 0.0));
    }
}
