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
        if !assignment.is_active || !assignment.is_mandatory {
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
        self.due_on.filter(|_| !self.completed).and_then(|d| d.checked_add_days(Days::new(1)))
    }

    /// The first day this obligation's completion has expired.
    fn expired_from(&self) -> Option<NaiveDate> {
        self.valid_until.filter(|_| self.completed).and_then(|d| d.checked_add_days(Days::new(1)))
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
    /// The learner's team as the user projection says (the team rollup they count in).
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

/// Learners counted by the day their standing changes: kept per team and for the whole org, moved
/// by `ADD` in the transaction that changes a learner's standing. Signed, so it also is a delta.
/// Stored as top-level attributes `learners`, `overdue#<day>`, `expired#<day>`, `noncompliant#<day>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComplianceRollup {
    /// Learners with at least one obligation.
    pub learners: i64,
    pub overdue_from: BTreeMap<NaiveDate, i64>,
    pub expired_from: BTreeMap<NaiveDate, i64>,
    pub non_compliant_from: BTreeMap<NaiveDate, i64>,
}

/// A rollup read as of a day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollupFigures {
    pub learners: u64,
    pub compliant_learners: u64,
    pub overdue_learners: u64,
    pub expired_learners: u64,
    /// 0..1; 1 when there are no learners (nobody is out of compliance).
    pub compliance_rate: f64,
}

const LEARNERS_ATTRIBUTE: &str = "learners";
/// The day past days are folded into (see [`ComplianceRollup::folded_before`]): `0001-01-01`.
pub const PAST: NaiveDate = match NaiveDate::from_ymd_opt(1, 1, 1) {
    Some(day) => day,
    None => NaiveDate::MIN,
};
const HISTOGRAMS: [&str; 3] = ["overdue#", "expired#", "noncompliant#"];

impl ComplianceRollup {
    /// What one learner of `standing` (`None`: no obligations) counts for.
    pub fn of(standing: Option<Standing>) -> Self {
        let mut rollup = Self::default();
        let Some(standing) = standing else { return rollup };
        rollup.learners = 1;
        let count = |map: &mut BTreeMap<NaiveDate, i64>, day: Option<NaiveDate>| {
            if let Some(day) = day {
                map.insert(day, 1);
            }
        };
        count(&mut rollup.overdue_from, standing.overdue_from);
        count(&mut rollup.expired_from, standing.expired_from);
        count(&mut rollup.non_compliant_from, standing.non_compliant_from());
        rollup
    }

    /// The change when a learner's standing goes from `before` to `after`.
    pub fn delta(before: Option<Standing>, after: Option<Standing>) -> Self {
        let mut delta = Self::of(after);
        delta.merge(&Self::of(before), -1);
        delta
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// Adds `sign` × `other`; entries that reach zero are dropped.
    pub fn merge(&mut self, other: &ComplianceRollup, sign: i64) {
        self.learners += sign * other.learners;
        for (mine, theirs) in [
            (&mut self.overdue_from, &other.overdue_from),
            (&mut self.expired_from, &other.expired_from),
            (&mut self.non_compliant_from, &other.non_compliant_from),
        ] {
            for (day, count) in theirs {
                let entry = mine.entry(*day).or_default();
                *entry += sign * count;
                if *entry == 0 {
                    mine.remove(day);
                }
            }
        }
    }

    /// Every attribute of this rollup (or delta) and its count: what an `ADD` moves.
    pub fn attributes(&self) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        if self.learners != 0 {
            out.push((LEARNERS_ATTRIBUTE.to_owned(), self.learners));
        }
        for (prefix, map) in HISTOGRAMS.iter().zip([&self.overdue_from, &self.expired_from, &self.non_compliant_from]) {
            out.extend(map.iter().filter(|(_, c)| **c != 0).map(|(day, c)| (format!("{prefix}{day}"), *c)));
        }
        out
    }

    /// Days before `day` folded into [`PAST`]: every figure as of `day` or later stays the same, and
    /// the rollup stops growing with the days that went by (the daily job's compaction).
    pub fn folded_before(&self, day: NaiveDate) -> Self {
        let mut out = self.clone();
        for map in [&mut out.overdue_from, &mut out.expired_from, &mut out.non_compliant_from] {
            let past: i64 = map.range(..day).map(|(_, c)| *c).sum();
            map.retain(|d, _| *d >= day);
            if past != 0 {
                map.insert(PAST, past);
            }
        }
        out
    }

    /// The attributes [`ComplianceRollup::folded_before`] folds: each past day's name, per histogram
    /// prefix, other than [`PAST`] itself.
    pub fn past_attribute(name: &str, day: NaiveDate) -> Option<&'static str> {
        HISTOGRAMS.iter().copied().find(|prefix| {
            name.strip_prefix(prefix)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .is_some_and(|d| d < day && d != PAST)
        })
    }

    /// The attribute holding a histogram's folded past.
    pub fn past_name(prefix: &str) -> String {
        format!("{prefix}{PAST}")
    }

    pub fn figures(&self, today: NaiveDate) -> RollupFigures {
        let by = |map: &BTreeMap<NaiveDate, i64>| map.range(..=today).map(|(_, c)| *c).sum::<i64>().max(0) as u64;
        let learners = self.learners.max(0) as u64;
        let compliant = learners.saturating_sub(by(&self.non_compliant_from));
        RollupFigures {
            learners,
            compliant_learners: compliant,
            overdue_learners: by(&self.overdue_from),
            expired_learners: by(&self.expired_from),
            compliance_rate: if learners == 0 { 1.0 } else { compliant as f64 / learners as f64 },
        }
    }

    fn set_attribute(&mut self, name: &str, count: i64) {
        if name == LEARNERS_ATTRIBUTE {
            self.learners = count;
            return;
        }
        for (prefix, map) in
            HISTOGRAMS.iter().zip([&mut self.overdue_from, &mut self.expired_from, &mut self.non_compliant_from])
        {
            if let Some(day) = name.strip_prefix(prefix).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) {
                if count != 0 {
                    map.insert(day, count);
                }
                return;
            }
        }
    }
}

impl std::ops::Add for ComplianceRollup {
    type Output = Self;
    fn add(mut self, other: Self) -> Self {
        self.merge(&other, 1);
        self
    }
}

impl Serialize for ComplianceRollup {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let attributes = self.attributes();
        let mut map = serializer.serialize_map(Some(attributes.len()))?;
        for (name, count) in &attributes {
            map.serialize_entry(name, count)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ComplianceRollup {
    /// Picks the rollup's attributes out of the item's others (it is flattened into a record).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Attributes;
        impl<'de> Visitor<'de> for Attributes {
            type Value = ComplianceRollup;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map with compliance counters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ComplianceRollup, A::Error> {
                let mut rollup = ComplianceRollup::default();
                while let Some(name) = map.next_key::<String>()? {
                    let counted = name == LEARNERS_ATTRIBUTE || HISTOGRAMS.iter().any(|p| name.starts_with(p));
                    if counted {
                        let count: i64 = map.next_value()?;
                        rollup.set_attribute(&name, count);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(rollup)
            }
        }
        deserializer.deserialize_map(Attributes)
    }
}

/// The rollup deltas of one learner change: the org's, and each team's (a learner who moves teams
/// leaves one rollup and enters another).
pub fn rollup_deltas(
    before: &LearnerCompliance,
    after: &LearnerCompliance,
) -> (ComplianceRollup, Vec<(TeamId, ComplianceRollup)>) {
    let (was, is) = (before.standing(), after.standing());
    let org = ComplianceRollup::delta(was, is);
    let mut teams = Vec::new();
    if before.team_id == after.team_id {
        if let Some(team) = after.team_id.filter(|_| !org.is_zero()) {
            teams.push((team, org.clone()));
        }
    } else {
        if let Some(team) = before.team_id {
            teams.push((team, ComplianceRollup::delta(was, None)));
        }
        if let Some(team) = after.team_id {
            teams.push((team, ComplianceRollup::delta(None, is)));
        }
        teams.retain(|(_, d)| !d.is_zero());
    }
    (org, teams)
}

#[cfg(test)]
mod tests;
