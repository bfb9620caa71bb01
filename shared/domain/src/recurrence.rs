//! Recertification: a completion is valid for `everyMonths`, a new cycle opens `windowDays` before
//! it lapses, and a learner whose new cycle is not done when it lapses is `expired`.
//!
//! A recurring assignment's row keeps every completion of a tracked item (at most one entry per item
//! and UTC day: the day's first time and best score) and derives its cycles from them. Cycle
//! boundaries fall on UTC days, so the per-day entries lose nothing the derivation needs, and the
//! derivation is a function of the set of completions: any delivery order of the same events gives
//! the same cycles.
//!
//! The log does not grow for good ([`compact`]): completions more than [`LATE_COMPLETION_DAYS`] older
//! than the newest one are reduced to what the derivation still reads — nothing before the start of the
//! last completed cycle that began before then (the cycles before it are closed, kept as derived), and in
//! each later cycle each item's first completion and the ones that beat its best score so far. A
//! completion that arrives more than that late is judged against what is left.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{TrackedItem, TrackedUnit, tracks};

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

/// Longest and shortest validity, in months, and the longest window, in days.
pub const MAX_EVERY_MONTHS: u32 = 36;
pub const MAX_WINDOW_DAYS: u32 = 180;
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
/// A row derives at most this many cycles (more than a century of monthly recertification).
const MAX_CYCLES: usize = 1_500;
/// How much older than the newest completion of a row a completion may be and still be kept whole:
/// completions that arrive up to this late give the cycles that in-order delivery gives.
pub const LATE_COMPLETION_DAYS: u64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The first day of each of `cycles` (`None`: the first cycle, and cycles closed before the log's
    /// start).
    pub starts: Vec<Option<NaiveDate>>,
}

/// Derives the cycles of `log` for `units` (`item_count` tracked items) under `recurrence`. A cycle
/// is complete when every tracked item has an entry on or after its first day; it is valid until
/// `everyMonths` after the day of its last item; the next cycle counts from the window's first day
/// (and never from the completion day itself).
pub fn derive(log: &CompletionLog, units: &[TrackedUnit], item_count: u32, recurrence: Recurrence) -> Derived {
    derive_since(log, units, item_count, recurrence, Vec::new(), None)
}

/// [`derive()`] of a log that starts on `log_from` (see [`compact`]), after the cycles `closed` before it.
pub fn derive_since(
    log: &CompletionLog,
    units: &[TrackedUnit],
    item_count: u32,
    recurrence: Recurrence,
    closed: Vec<Cycle>,
    log_from: Option<NaiveDate>,
) -> Derived {
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
    let mut starts: Vec<Option<NaiveDate>> = vec![None; closed.len()];
    let mut cycles = closed;
    let mut from = log_from;
    let mut last_items = BTreeMap::new();
    loop {
        let items = first_from(from);
        let complete = item_count > 0 && items.len() as u64 >= u64::from(item_count);
        if !complete || cycles.len() >= MAX_CYCLES {
            let current = if items.is_empty() { last_items } else { items };
            return Derived { cycles, current, current_from: from, starts };
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
        starts.push(from);
        let next_day = done_day.succ_opt().unwrap_or(done_day);
        from = Some(recurrence.window_opens(valid_until).max(next_day));
        last_items = items;
    }
}

/// Drops from `log` (derived as `derived`; whole from `log_from`) what no derivation can read any more,
/// keeping the last [`LATE_COMPLETION_DAYS`] before its newest completion whole: before that, nothing
/// before the start of the last completed cycle that began then (its cycles are closed), and in each
/// later cycle each item's first completion and those that beat the item's best score so far in the
/// cycle (the derivation reads an item's first completion in a cycle and its best score up to a day).
/// Returns the day the log is whole from now.
pub fn compact(log: &mut CompletionLog, derived: &Derived, log_from: Option<NaiveDate>) -> Option<NaiveDate> {
    let day_of = |e: &CompletedItem| e.completed_at.date_naive();
    let Some(newest) = log.values().flatten().map(day_of).max() else { return log_from };
    let horizon = newest.checked_sub_days(Days::new(LATE_COMPLETION_DAYS)).unwrap_or(NaiveDate::MIN);
    let from = derived.starts.iter().flatten().copied().filter(|start| *start <= horizon).max().max(log_from);
    let mut bounds: Vec<NaiveDate> =
        derived.starts.iter().flatten().copied().chain(derived.current_from).filter(|b| Some(*b) >= from).collect();
    bounds.sort_unstable();
    for entries in log.values_mut() {
        // The cycle of the entry before (by the cycle's first day; `Some(None)`: the first cycle) and the
        // item's best score in it so far.
        let mut segment: Option<Option<NaiveDate>> = None;
        let mut best: Option<f64> = None;
        entries.retain(|entry| {
            let day = day_of(entry);
            if from.is_some_and(|from| day < from) {
                return false;
            }
            let cycle = bounds.iter().rev().find(|b| **b <= day).copied();
            let first = segment != Some(cycle);
            if first {
                (segment, best) = (Some(cycle), None);
            }
            let beats = match (entry.score, best) {
                (Some(score), Some(best)) => score > best,
                (score, None) => score.is_some(),
                (None, Some(_)) => false,
            };
            if beats {
                best = entry.score;
            }
            day >= horizon || first || beats
        });
    }
    log.retain(|_, entries| !entries.is_empty());
    from
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

    /// Six years of near-daily completions of two items, delivered in order but for some up to 60 days
    /// late, recorded on a row: the row's cycles, progress and dates are what deriving the whole log
    /// gives, under yearly and monthly recurrence, while the row's log stays bounded — the last 90 days
    /// whole, before that each item's first completion per cycle and the scores that beat its best.
    #[test]
    fn a_compacted_log_derives_what_the_whole_log_derives_and_stays_bounded() {
        use crate::ids::{AssignmentId, UserId};
        use crate::progress::{ProgressRow, Source};
        for recurrence in [YEARLY, Recurrence { every_months: 1, window_days: 7 }] {
            let mut seed: u64 = 42;
            let mut next = |bound: u64| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 33) % bound
            };
            let start = day(2026, 1, 1, 9);
            let mut events: Vec<(i64, TrackedItem, Option<f64>, DateTime<Utc>)> = Vec::new();
            for d in 0..(6 * 365) {
                for i in 0..2u16 {
                    if next(3) == 0 {
                        continue;
                    }
                    let at = start + chrono::Duration::days(d) + chrono::Duration::minutes(next(600) as i64);
                    let score = (next(4) > 0).then(|| next(101) as f64);
                    // Delivered a little late, some of them up to 60 days.
                    let delay = if next(20) == 0 { next(60) as i64 } else { 0 };
                    events.push((d + delay, item(i), score, at));
                }
            }
            events.sort_by_key(|(arrives, _, _, at)| (*arrives, *at));
            let mut row =
                ProgressRow::new(AssignmentId::new_v7(), UserId(uuid::Uuid::nil()), Source::Individual, start);
            let mut whole = CompletionLog::new();
            let mut most = 0;
            for (n, (_, item, score, at)) in events.iter().enumerate() {
                row.record_recurring_completion(item, *score, *at, &units(), 2, recurrence);
                log_completion(&mut whole, item, *score, *at);
                most = most.max(row.log.values().map(Vec::len).max().unwrap_or(0));
                if n % 97 == 0 || n == events.len() - 1 {
                    let expected = derive(&whole, &units(), 2, recurrence);
                    assert_eq!(row.cycles, expected.cycles, "{recurrence:?}, after {n} completions");
                    assert_eq!(row.completed, expected.current, "{recurrence:?}, after {n} completions");
                    let last = expected.cycles.last();
                    assert_eq!(row.valid_until, last.map(|c| c.valid_until));
                    assert_eq!(row.window_opens_on, expected.current_from.filter(|_| last.is_some()));
                }
            }
            assert!(row.cycles.len() >= 5, "{recurrence:?}: {} cycles", row.cycles.len());
            assert!(row.log_from.is_some(), "{recurrence:?}: compacted");
            // Per item: the 90 days kept whole, plus firsts and score records of the cycles before them.
            let records = if recurrence == YEARLY { 2 * 101 } else { 5 * 101 };
            assert!(most <= 91 + records, "{recurrence:?}: {most} entries of one item");
            let whole_most = whole.values().map(Vec::len).max().unwrap();
            assert!(most * 3 < whole_most, "{recurrence:?}: {most} of {whole_most} entries kept");
        }
    }
}
