//! The org's and each team's compliance rollup: head counts of learners by the day they turn overdue, expired or non-compliant, moved by each learner's change.

use super::*;

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
