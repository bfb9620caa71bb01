//! Per-assignment counters kept on the assignment item and moved in the same transaction as the
//! progress change that moves them, so listing never reads progress rows.
//!
//! "Overdue" is not stored: it depends on the clock, not on a write. The stored counters classify each
//! row by its progress only; the summary turns not-started/in-progress users into overdue ones once
//! their due date has passed: the assignment's deadline for rows that follow it, and for rows with a
//! date of their own (a relative deadline, an extension) the date they are counted under in
//! [`DatedCounts`]. So the figures are exact at every moment without a job moving rows at midnight.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::deadline::has_passed;

/// A progress row's class for counting; independent of the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowClass {
    NotStarted,
    InProgress,
    Completed,
    /// Left the assignment's scope: kept for history, excluded from every rate.
    Removed,
    /// Exempted by an admin (with a reason): kept and shown, excluded from every rate like `Removed`.
    Exempt,
}

impl RowClass {
    /// Counted in the rates (in scope, not exempt).
    pub fn in_rates(self) -> bool {
        !matches!(self, RowClass::Removed | RowClass::Exempt)
    }

    fn incomplete(self) -> bool {
        matches!(self, RowClass::NotStarted | RowClass::InProgress)
    }
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// How many rows [`DatedCounts`] counts (the list's overdue/expired filters skip assignments
    /// without any). Kept like every counter, so it is right from creation on.
    #[serde(default)]
    pub dated_rows: i64,
    /// The part of `notStartedUsers` and `inProgressUsers` whose rows have a due date of their own,
    /// and the part of `completedUsers` whose recertification lapses on a date.
    #[serde(flatten, default)]
    pub dated: DatedCounts,
}

/// Incomplete rows in the rates that have their own due date, and recertified rows by the day their
/// completion lapses, counted by (date, class). Stored as
/// one top-level attribute per entry (`due#2026-04-15#not_started`), which an `ADD` creates when it
/// is missing: an assignment item never needs a migration to start counting a new date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatedCounts(pub BTreeMap<(NaiveDate, RowClass), i64>);

/// The attribute-name prefix of a [`DatedCounts`] entry.
pub const DATED_PREFIX: &str = "due#";

impl DatedCounts {
    /// The attribute name of one entry.
    pub fn attribute(date: NaiveDate, class: RowClass) -> String {
        let class = match class {
            RowClass::NotStarted => "not_started",
            RowClass::InProgress => "in_progress",
            RowClass::Completed => "completed",
            RowClass::Removed => "removed",
            RowClass::Exempt => "exempt",
        };
        format!("{DATED_PREFIX}{date}#{class}")
    }

    fn parse_attribute(name: &str) -> Option<(NaiveDate, RowClass)> {
        let (date, class) = name.strip_prefix(DATED_PREFIX)?.split_once('#')?;
        let class = match class {
            "not_started" => RowClass::NotStarted,
            "in_progress" => RowClass::InProgress,
            "completed" => RowClass::Completed,
            _ => return None,
        };
        Some((NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?, class))
    }

    /// Rows counted under any date.
    pub fn total(&self) -> i64 {
        self.0.values().sum()
    }

    fn merge(&mut self, other: &DatedCounts, sign: i64) {
        for (key, count) in &other.0 {
            let entry = self.0.entry(*key).or_default();
            *entry += sign * count;
            if *entry == 0 {
                self.0.remove(key);
            }
        }
    }
}

impl Serialize for DatedCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for ((date, class), count) in self.0.iter().filter(|(_, count)| **count != 0) {
            map.serialize_entry(&Self::attribute(*date, *class), count)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for DatedCounts {
    /// Picks the `due#` attributes out of the item's other attributes (it is flattened into the
    /// assignment). Zero entries (a date whose rows all moved on) are dropped.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = DatedCounts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map with due-date counters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DatedCounts, A::Error> {
                let mut counts = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    match DatedCounts::parse_attribute(&name) {
                        Some(key) => {
                            let count: i64 = map.next_value()?;
                            if count != 0 {
                                counts.insert(key, count);
                            }
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(DatedCounts(counts))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// What a row contributes to the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowContribution {
    pub class: RowClass,
    pub completed_items: u32,
    /// The row's own due date while it is incomplete and in the rates, or the day a recertified row's
    /// completion lapses (see [`DatedCounts`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_on: Option<NaiveDate>,
}

impl Aggregates {
    fn of_row(row: Option<RowContribution>) -> Self {
        let mut agg = Aggregates::default();
        let Some(row) = row else { return agg };
        match row.class {
            RowClass::Removed | RowClass::Exempt => return agg,
            RowClass::NotStarted => agg.not_started_users = 1,
            RowClass::InProgress => agg.in_progress_users = 1,
            RowClass::Completed => agg.completed_users = 1,
        }
        agg.total_users = 1;
        agg.completed_items_sum = i64::from(row.completed_items);
        if let Some(date) = row.due_on.filter(|_| row.class.incomplete() || row.class == RowClass::Completed) {
            agg.dated.0.insert((date, row.class), 1);
            agg.dated_rows = 1;
        }
        agg
    }

    /// The change in counters when a row goes from `before` to `after` (`None` = no row).
    pub fn delta(before: Option<RowContribution>, after: Option<RowContribution>) -> Self {
        Self::of_row(after) - Self::of_row(before)
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// The API's progress block as of `now`: incomplete rows are overdue once their due date has
    /// passed — the assignment's `deadline`, or their own date (see [`DatedCounts`]).
    pub fn summary(&self, item_count: u32, deadline: NaiveDate, today: NaiveDate) -> ProgressSummary {
        let total = self.total_users.max(0) as u64;
        let mut completed = self.completed_users.max(0) as u64;
        let dated_of = |wanted: RowClass| -> i64 {
            self.dated.0.iter().filter(|((_, class), _)| *class == wanted).map(|(_, count)| count).sum()
        };
        let mut not_started = (self.not_started_users - dated_of(RowClass::NotStarted)).max(0) as u64;
        let mut in_progress = (self.in_progress_users - dated_of(RowClass::InProgress)).max(0) as u64;
        let mut overdue = 0;
        let mut expired = 0;
        if has_passed(deadline, today) {
            overdue = in_progress + not_started;
            in_progress = 0;
            not_started = 0;
        }
        for ((date, class), count) in &self.dated.0 {
            let count = (*count).max(0) as u64;
            match class {
                RowClass::Completed if has_passed(*date, today) => {
                    expired += count;
                    completed = completed.saturating_sub(count);
                }
                RowClass::Completed => {}
                _ if has_passed(*date, today) => overdue += count,
                RowClass::NotStarted => not_started += count,
                _ => in_progress += count,
            }
        }
        let ratio = |num: f64, den: f64| if den > 0.0 { (num / den).clamp(0.0, 1.0) } else { 0.0 };
        ProgressSummary {
            total_users: total,
            completed_users: completed,
            in_progress_users: in_progress,
            not_started_users: not_started,
            overdue_users: overdue,
            expired_users: expired,
            completion_rate: ratio(completed as f64, total as f64),
            average_progress: ratio(self.completed_items_sum.max(0) as f64, total as f64 * f64::from(item_count)),
        }
    }
}

impl std::ops::Sub for Aggregates {
    type Output = Aggregates;
    fn sub(mut self, rhs: Self) -> Self {
        self.dated.merge(&rhs.dated, -1);
        Aggregates {
            total_users: self.total_users - rhs.total_users,
            completed_users: self.completed_users - rhs.completed_users,
            in_progress_users: self.in_progress_users - rhs.in_progress_users,
            not_started_users: self.not_started_users - rhs.not_started_users,
            completed_items_sum: self.completed_items_sum - rhs.completed_items_sum,
            dated_rows: self.dated_rows - rhs.dated_rows,
            dated: self.dated,
        }
    }
}

impl std::ops::Add for Aggregates {
    type Output = Aggregates;
    fn add(mut self, rhs: Self) -> Self {
        self.dated.merge(&rhs.dated, 1);
        Aggregates {
            total_users: self.total_users + rhs.total_users,
            completed_users: self.completed_users + rhs.completed_users,
            in_progress_users: self.in_progress_users + rhs.in_progress_users,
            not_started_users: self.not_started_users + rhs.not_started_users,
            completed_items_sum: self.completed_items_sum + rhs.completed_items_sum,
            dated_rows: self.dated_rows + rhs.dated_rows,
            dated: self.dated,
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
    /// Recertified learners whose completion lapsed before they renewed it (counted out of
    /// `completedUsers`).
    pub expired_users: u64,
    pub completion_rate: f64,
    pub average_progress: f64,
}

#[cfg(test)]
mod tests;
