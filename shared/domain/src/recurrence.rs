//! Recertification: a completion is valid for `everyMonths`, a new cycle opens `windowDays` before
//! it lapses, and a learner whose new cycle is not done when it lapses is `expired`.
//!
//! A recurring assignment's row keeps every completion of a tracked item (at most one entry per item
//! and UTC day: the day's first time and best score) and derives its cycles from them. Cycle
//! boundaries fall on UTC days, so the per-day entries lose nothing the derivation needs, and the
//! derivation is a function of the set of completions: any delivery order of the same events gives
//! the same cycles.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{TrackedItem, TrackedUnit, tracks};
use crate::progress::{CompletedItem, ProgressRow};

/// Longest and shortest validity, in months, and the longest window, in days.
pub const MAX_EVERY_MONTHS: u32 = 36;
pub const MAX_WINDOW_DAYS: u32 = 180;
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
/// A row derives at most this many cycles (more than a century of monthly recertification).
const MAX_CYCLES: usize = 1_500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recurrence {
    pub every_months: u32,
    pub window_days: u32,
}

impl Recurrence {
    /// The last day a completion at `at` is valid.
    pub fn valid_until(&self, at: DateTime<Utc>) -> NaiveDate {
        let day = at.date_naive();
        day.checked_add_months(Months::new(self.every_months)).unwrap_or(day)
    }

    /// The first day of the next cycle after a completion valid until `valid_until`.
    pub fn window_opens(&self, valid_until: NaiveDate) -> NaiveDate {
        valid_until.checked_sub_days(Days::new(u64::from(self.window_days))).unwrap_or(valid_until)
    }
}

/// One completed cycle: when, with which average score, valid until when. The audit evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cycle {
    pub completed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_score: Option<f64>,
    pub valid_until: NaiveDate,
}

/// Every completion of each tracked item, one entry per UTC day (earliest time, best score).
pub type CompletionLog = BTreeMap<String, Vec<CompletedItem>>;

/// Adds a completion to `log`; returns whether it changed.
pub fn log_completion(log: &mut CompletionLog, item: &TrackedItem, score: Option<f64>, at: DateTime<Utc>) -> bool {
    let entries = log.entry(item.key()).or_default();
    let before = entries.clone();
    match entries.iter_mut().find(|e| e.completed_at.date_naive() == at.date_naive()) {
        Some(entry) => entry.absorb(at, score),
        None => {
            entries.push(CompletedItem { score, completed_at: at });
            entries.sort_by_key(|e| e.completed_at);
        }
    }
    *entries != before
}

/// What the log says: the completed cycles, and the items of the cycle in progress (the last cycle's
/// items while the next has none yet, so a learner who just finished shows 100 %).
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub cycles: Vec<Cycle>,
    pub current: BTreeMap<String, CompletedItem>,
    /// The first day completions count towards the cycle in progress (`None`: the first cycle).
    pub current_from: Option<NaiveDate>,
}

/// Derives the cycles of `log` for `units` (`item_count` tracked items) under `recurrence`. A cycle
/// is complete when every tracked item has an entry on or after its first day; it is valid until
/// `everyMonths` after the day of its last item; the next cycle counts from the window's first day
/// (and never from the completion day itself).
pub fn derive(log: &CompletionLog, units: &[TrackedUnit], item_count: u32, recurrence: Recurrence) -> Derived {
    let tracked: Vec<(&String, &Vec<CompletedItem>)> =
        log.iter().filter(|(key, _)| TrackedItem::parse_key(key).is_some_and(|item| tracks(units, &item))).collect();
    let first_from = |from: Option<NaiveDate>| -> BTreeMap<String, CompletedItem> {
        tracked
            .iter()
            .filter_map(|(key, entries)| {
                let counting: Vec<&CompletedItem> =
                    entries.iter().filter(|e| from.is_none_or(|day| e.completed_at.date_naive() >= day)).collect();
                let first = counting.first()?;
                let best = counting.iter().filter_map(|e| e.score).reduce(f64::max);
                Some(((*key).clone(), CompletedItem { score: best, completed_at: first.completed_at }))
            })
            .collect()
    };
    let mut cycles: Vec<Cycle> = Vec::new();
    let mut from: Option<NaiveDate> = None;
    let mut last_items = BTreeMap::new();
    loop {
        let items = first_from(from);
        let complete = item_count > 0 && items.len() as u64 >= u64::from(item_count);
        if !complete || cycles.len() >= MAX_CYCLES {
            let current = if items.is_empty() { last_items } else { items };
            return Derived { cycles, current, current_from: from };
        }
        let completed_at = items.values().map(|c| c.completed_at).max().unwrap_or_default();
        let done_day = completed_at.date_naive();
        // The cycle's score: each item's best score from the cycle's first day to its completion day.
        let scores: Vec<f64> = tracked
            .iter()
            .filter_map(|(_, entries)| {
                entries
                    .iter()
                    .filter(|e| {
                        let day = e.completed_at.date_naive();
                        from.is_none_or(|f| day >= f) && day <= done_day
                    })
                    .filter_map(|e| e.score)
                    .reduce(f64::max)
            })
            .collect();
        let average_score = (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64);
        let valid_until = recurrence.valid_until(completed_at);
        cycles.push(Cycle { completed_at, average_score, valid_until });
        let next_day = done_day.succ_opt().unwrap_or(done_day);
        from = Some(recurrence.window_opens(valid_until).max(next_day));
        last_items = items;
    }
}

/// A recurring assignment's rows: their cycles, derived from their log.
impl ProgressRow {
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
        self.take_completion(item, at, units, |row| {
            log_completion(&mut row.log, item, score, at);
            row.recertify(units, item_count, recurrence);
        })
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
        let derived = derive(&self.log, units, item_count, recurrence);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Slug;
    use chrono::TimeZone;

    fn units() -> Vec<TrackedUnit> {
        vec![TrackedUnit::Topic { topic_id: Slug::parse("sql-injection").unwrap(), challenges: 2 }]
    }

    fn item(i: u16) -> TrackedItem {
        TrackedItem::parse_key(&format!("c:sql-injection:{i}")).unwrap()
    }

    fn day(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    const YEARLY: Recurrence = Recurrence { every_months: 12, window_days: 30 };

    #[test]
    fn a_year_of_validity_then_a_window_then_a_second_cycle() {
        let events = [
            (item(0), Some(60.0), day(2026, 1, 10, 9)),
            (item(1), Some(80.0), day(2026, 1, 12, 9)),
            // Before the window opens (2026-12-13): does not count towards cycle 2.
            (item(0), Some(100.0), day(2026, 11, 1, 9)),
            (item(0), Some(70.0), day(2026, 12, 20, 9)),
            (item(1), Some(90.0), day(2027, 1, 5, 9)),
            (item(1), Some(95.0), day(2027, 1, 5, 8)),
        ];
        let derive_in = |order: &[usize]| {
            let mut log = CompletionLog::new();
            for &i in order {
                let (item, score, at) = &events[i];
                log_completion(&mut log, item, *score, *at);
            }
            derive(&log, &units(), 2, YEARLY)
        };
        let d = derive_in(&[0, 1, 2, 3, 4, 5]);
        assert_eq!(d.cycles.len(), 2);
        assert_eq!(d.cycles[0].completed_at, day(2026, 1, 12, 9));
        assert_eq!(d.cycles[0].valid_until, NaiveDate::from_ymd_opt(2027, 1, 12).unwrap());
        assert_eq!(d.cycles[0].average_score, Some(70.0), "each item's best within the cycle: (60 + 80) / 2");
        assert_eq!(d.cycles[1].completed_at, day(2027, 1, 5, 8), "the day's earliest time");
        assert_eq!(d.cycles[1].average_score, Some(82.5), "70 and 95: the November 100 was before the window");
        assert_eq!(d.cycles[1].valid_until, NaiveDate::from_ymd_opt(2028, 1, 5).unwrap());
        assert_eq!(d.current.len(), 2, "just finished: the last cycle's items");
        for order in [[5, 4, 3, 2, 1, 0], [2, 0, 4, 1, 5, 3], [3, 5, 0, 2, 4, 1]] {
            assert_eq!(derive_in(&order), d, "{order:?}");
        }
        let twice = derive_in(&[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
        assert_eq!(twice, d, "duplicates change nothing");
    }

    #[test]
    fn an_open_cycle_shows_its_own_progress_and_a_first_cycle_counts_everything() {
        let mut log = CompletionLog::new();
        log_completion(&mut log, &item(0), None, day(2026, 1, 10, 9));
        let first = derive(&log, &units(), 2, YEARLY);
        assert_eq!((first.cycles.len(), first.current.len(), first.current_from), (0, 1, None));
        log_completion(&mut log, &item(1), None, day(2026, 1, 11, 9));
        log_completion(&mut log, &item(1), None, day(2026, 12, 30, 9));
        let d = derive(&log, &units(), 2, YEARLY);
        assert_eq!(d.cycles.len(), 1);
        assert_eq!(d.current_from, NaiveDate::from_ymd_opt(2026, 12, 12));
        assert_eq!(d.current.keys().collect::<Vec<_>>(), ["c:sql-injection:1"], "the new cycle's one item");
        // A window longer than the validity opens the next cycle the day after completion.
        let eager = derive(&log, &units(), 2, Recurrence { every_months: 1, window_days: 180 });
        assert_eq!(eager.current_from, NaiveDate::from_ymd_opt(2026, 1, 12));
    }
}
