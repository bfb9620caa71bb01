//! Compliance with mandatory training: one learner's standing and the team and org rollups.
//!
//! A learner is **compliant** when none of their *obligations* — their in-scope (not removed, not
//! exempt) rows of active, mandatory assignments — is overdue or expired. Optional assignments never
//! change it. Like the assignment counters, nothing here moves with the clock: an obligation stores
//! the dates it is judged by, a learner's standing is the first day on which an obligation makes them
//! overdue / expired, and a rollup counts learners by those days. So every figure is exact at any
//! `now` from items that change only when a row (or an assignment's rules) changes.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::aggregates::RowClass;
use crate::assignment::Assignment;
use crate::deadline;
use crate::ids::{AssignmentId, TeamId, UserId};
use crate::progress::ProgressRow;

/// An obligation due within this many days (and not yet overdue) is "due soon".
pub const DUE_SOON_DAYS: u64 = 30;

/// What one row of an active, mandatory assignment says about its learner's compliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Obligation {
    pub completed: bool,
    /// Incomplete: the learner's due date (their own, else the assignment's deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_on: Option<NaiveDate>,
    /// Completed with a recertification: the last day the completion is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

impl Obligation {
    /// The obligation `row` puts on its learner under `assignment`, if any.
    pub fn of(row: &ProgressRow, assignment: &Assignment) -> Option<Self> {
        if !assignment.obliges() {
            return None;
        }
        let counted = row.contribution(&assignment.units, assignment.item_count);
        match counted.class {
            RowClass::Removed | RowClass::Exempt => None,
            RowClass::Completed => Some(Obligation {
                completed: true,
                due_on: None,
                valid_until: counted.due_on,
                completed_at: row.completed_at,
            }),
            RowClass::NotStarted | RowClass::InProgress => Some(Obligation {
                completed: false,
                due_on: Some(row.due_on(assignment.deadline)),
                valid_until: None,
                completed_at: None,
            }),
        }
    }

    /// The first day this obligation is overdue (incomplete after its due day ended).
    fn overdue_from(&self) -> Option<NaiveDate> {
        self.due_on.filter(|_| !self.completed).and_then(deadline::passed_from)
    }

    /// The first day this obligation's completion has expired.
    fn expired_from(&self) -> Option<NaiveDate> {
        self.valid_until.filter(|_| self.completed).and_then(deadline::passed_from)
    }
}

/// What the rollups count for a learner who has obligations: the first day they are overdue on
/// one of them, and the first day one of their completions has expired. Changes only with writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub overdue_from: Option<NaiveDate>,
    pub expired_from: Option<NaiveDate>,
}

impl Standing {
    /// The first day the learner is not compliant (overdue or expired), if such a day comes.
    pub fn non_compliant_from(&self) -> Option<NaiveDate> {
        match (self.overdue_from, self.expired_from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// One learner's obligations, kept beside their other items and written in the same transaction as
/// each row change that moves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LearnerCompliance {
    pub user_id: UserId,
    /// The learner's team as the directory says (the team rollup they count in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<TeamId>,
    #[serde(default)]
    pub obligations: BTreeMap<AssignmentId, Obligation>,
    /// Bumped on every stored change (optimistic concurrency).
    #[serde(default)]
    pub revision: u64,
    /// The compliance last announced (`compliance.changed`); a learner starts compliant. Each write
    /// announces a difference from it as of its day, and the daily job the ones the clock makes, so
    /// every change is announced once, whoever sees it first.
    #[serde(default = "starts_compliant")]
    pub announced_compliant: bool,
}

fn starts_compliant() -> bool {
    true
}

/// One learner's figures as of a moment (the learners listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerFigures {
    pub mandatory_assigned: u32,
    /// Completed and still valid.
    pub completed: u32,
    pub due_soon: u32,
    pub overdue: u32,
    pub expired: u32,
    pub compliant: bool,
    pub non_compliant_since: Option<NaiveDate>,
    pub last_completed_at: Option<DateTime<Utc>>,
}

/// A learner became compliant or non-compliant (`compliance.changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComplianceTransition {
    pub user_id: UserId,
    pub team_id: Option<TeamId>,
    pub compliant: bool,
    /// For a learner who became non-compliant: the first day they were.
    pub since: Option<NaiveDate>,
}

impl LearnerCompliance {
    pub fn new(user_id: UserId, team_id: Option<TeamId>) -> Self {
        Self { user_id, team_id, obligations: BTreeMap::new(), revision: 0, announced_compliant: true }
    }

    /// What the rollups count for this learner; `None` without obligations (not counted).
    pub fn standing(&self) -> Option<Standing> {
        if self.obligations.is_empty() {
            return None;
        }
        let min = |f: fn(&Obligation) -> Option<NaiveDate>| self.obligations.values().filter_map(f).min();
        Some(Standing { overdue_from: min(Obligation::overdue_from), expired_from: min(Obligation::expired_from) })
    }

    /// Compliant on `today` (a learner without obligations is).
    pub fn compliant_on(&self, today: NaiveDate) -> bool {
        self.standing().and_then(|s| s.non_compliant_from()).is_none_or(|day| day > today)
    }

    /// Sets (or, with `None`, drops) the obligation of `assignment`; whether it changed.
    pub fn set(&mut self, assignment: AssignmentId, obligation: Option<Obligation>) -> bool {
        let before = self.obligations.get(&assignment).copied();
        match obligation {
            Some(o) => self.obligations.insert(assignment, o),
            None => self.obligations.remove(&assignment),
        };
        before != obligation
    }

    /// Records the compliance of `today` as announced; the transition when it differs from the
    /// last one announced.
    pub fn announce(&mut self, today: NaiveDate) -> Option<ComplianceTransition> {
        let compliant = self.compliant_on(today);
        if compliant == self.announced_compliant {
            return None;
        }
        self.announced_compliant = compliant;
        Some(ComplianceTransition {
            user_id: self.user_id,
            team_id: self.team_id,
            compliant,
            since: if compliant { None } else { self.standing().and_then(|s| s.non_compliant_from()) },
        })
    }

    /// The day the clock will make this learner non-compliant, while their compliance is what was
    /// last announced (the daily job's index).
    pub fn clock_flip_on(&self) -> Option<NaiveDate> {
        self.standing()?.non_compliant_from().filter(|_| self.announced_compliant)
    }

    pub fn figures(&self, now: DateTime<Utc>) -> LearnerFigures {
        let today = now.date_naive();
        let soon = today.checked_add_days(Days::new(DUE_SOON_DAYS)).unwrap_or(NaiveDate::MAX);
        let mut figures = LearnerFigures {
            mandatory_assigned: 0,
            completed: 0,
            due_soon: 0,
            overdue: 0,
            expired: 0,
            compliant: self.compliant_on(today),
            non_compliant_since: self.standing().and_then(|s| s.non_compliant_from()).filter(|day| *day <= today),
            last_completed_at: self.obligations.values().filter_map(|o| o.completed_at).max(),
        };
        for o in self.obligations.values() {
            figures.mandatory_assigned += 1;
            if o.completed {
                if o.expired_from().is_some_and(|day| day <= today) {
                    figures.expired += 1;
                } else {
                    figures.completed += 1;
                }
            } else if o.overdue_from().is_some_and(|day| day <= today) {
                figures.overdue += 1;
            } else if o.due_on.is_some_and(|day| day <= soon) {
                figures.due_soon += 1;
            }
        }
        figures
    }
}

mod rollup;
pub use rollup::{ComplianceRollup, PAST, RollupFigures, rollup_deltas};

#[cfg(test)]
mod tests;
