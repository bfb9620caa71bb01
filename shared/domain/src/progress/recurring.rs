//! A recurring assignment's rows: their cycles, derived from their completion log
//! ([`crate::recurrence`] holds the rules).

use chrono::{DateTime, NaiveDate, Utc};

use super::ProgressRow;
use crate::catalog::{TrackedItem, TrackedUnit};
use crate::recurrence::{Recurrence, compact, derive_since, log_completion};

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
            let in_log = self.log_from.is_none_or(|from| item.completed_at.date_naive() >= from);
            if in_log && !self.log.contains_key(key) {
                self.log.insert(key.clone(), vec![item.clone()]);
            }
        }
        // Cycles closed before the log's start stay as they were derived.
        let closed = match self.log_from {
            Some(from) => self.cycles.iter().filter(|c| c.completed_at.date_naive() < from).cloned().collect(),
            None => Vec::new(),
        };
        let derived = derive_since(&self.log, units, item_count, recurrence, closed, self.log_from);
        self.log_from = compact(&mut self.log, &derived, self.log_from);
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
