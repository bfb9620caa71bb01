//! Compliance state: each learner's obligations (`ORG#o#USER#u` / `COMPLIANCE`) and the org's and
//! teams' rollups (`ORG#o#COMPLIANCE` / `ORG` | `TEAM#t`), written in the transaction of the row
//! change that moves them (see `domain::compliance`). The summary reads one partition whose size
//! grows with the number of teams, never with learners or assignments.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{ConditionCheck, Update};
use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    Assignment, ComplianceRollup, ComplianceTransition, LearnerCompliance, Obligation, OrgId, ProgressRow, TeamId,
    UserId,
};

use crate::dynamo::{Item, n, s, to_item};
use crate::records::{LearnerComplianceRecord, Record, UserRecord};
use crate::retry::Retry;
use crate::tx::{Transaction, TxFailure};
use crate::written::{Announce, Written};
use crate::{Store, StoreError, keys};

mod rollups;
mod sync;

pub use rollups::{LearnerFilter, Rollups};

/// One learner's compliance as stored (`None`: no item yet) and as it is to be stored.
#[derive(Debug, Clone)]
pub(crate) struct LearnerChange {
    pub before: Option<LearnerCompliance>,
    pub after: LearnerCompliance,
    /// The change of compliance (as of the write's day) this write announces.
    pub transition: Option<ComplianceTransition>,
}

impl LearnerChange {
    /// `after` as the next revision of `before`, written on `today`, with the change of compliance
    /// it announces (the writer must announce it: the item records it as announced).
    pub(crate) fn new(before: Option<LearnerCompliance>, mut after: LearnerCompliance, today: NaiveDate) -> Self {
        after.revision = before.as_ref().map_or(0, |b| b.revision) + 1;
        let transition = after.announce(today);
        Self { before, after, transition }
    }

    /// `after` as the next revision of `before`, announcing nothing (for writers that cannot: a
    /// change they leave unannounced is the daily job's, which finds it by its day).
    pub(crate) fn unannounced(before: Option<LearnerCompliance>, mut after: LearnerCompliance) -> Self {
        after.revision = before.as_ref().map_or(0, |b| b.revision) + 1;
        Self { before, after, transition: None }
    }
}

fn learner_item(org: &OrgId, learner: &LearnerCompliance) -> Result<Item, StoreError> {
    let listed = !learner.obligations.is_empty();
    let team = learner.team_id.map_or_else(|| keys::NO_TEAM.to_owned(), |t| t.to_string());
    let flips_on = learner.clock_flip_on();
    to_item(&LearnerComplianceRecord {
        pk: keys::user_pk(org, learner.user_id),
        sk: keys::COMPLIANCE_SK.into(),
        entity: "learner-compliance".into(),
        gsi1pk: listed.then(|| keys::compliance_learners_index(org)),
        gsi1sk: listed.then(|| keys::compliance_learner_sort(&team, learner.user_id)),
        gsi3pk: flips_on.map(|_| keys::compliance_flips_index(org)),
        gsi3sk: flips_on.map(|day| format!("{day}#{}", learner.user_id)),
        non_compliant_from: learner.standing().and_then(|s| s.non_compliant_from()),
        learner: learner.clone(),
    })
}

impl Transaction<'_> {
    /// Stores each learner's new compliance (each conditioned on the revision read) and moves the org
    /// and team rollups by the sum of the changes, one update per rollup item. Returns the indexes
    /// of the learner items.
    pub(crate) fn learners(&mut self, org: &OrgId, changes: &[LearnerChange]) -> Result<Vec<usize>, StoreError> {
        let mut org_delta = ComplianceRollup::default();
        let mut team_deltas: BTreeMap<TeamId, ComplianceRollup> = BTreeMap::new();
        let mut indexes = Vec::with_capacity(changes.len());
        for change in changes {
            let empty = LearnerCompliance::new(change.after.user_id, None);
            let (org_part, team_parts) =
                domain::compliance::rollup_deltas(change.before.as_ref().unwrap_or(&empty), &change.after);
            org_delta.merge(&org_part, 1);
            for (team, delta) in team_parts {
                team_deltas.entry(team).or_default().merge(&delta, 1);
            }
            let index = match &change.before {
                None => self.put(learner_item(org, &change.after)?, Some("attribute_not_exists(PK)"))?,
                Some(before) => self.put_with(
                    aws_sdk_dynamodb::types::Put::builder()
                        .set_item(Some(learner_item(org, &change.after)?))
                        .condition_expression("revision = :rev")
                        .expression_attribute_values(":rev", n(before.revision)),
                )?,
            };
            indexes.push(index);
        }
        if !org_delta.is_zero() {
            self.update(rollup_update(org, None, &org_delta))?;
        }
        for (team, delta) in team_deltas.iter().filter(|(_, d)| !d.is_zero()) {
            self.update(rollup_update(org, Some(*team), delta))?;
        }
        Ok(indexes)
    }

    /// Moves the org's count of obliging assignments (one became active and mandatory, or stopped).
    pub(crate) fn obliging_assignments(&mut self, org: &OrgId, delta: i64) -> Result<usize, StoreError> {
        self.update(
            Update::builder()
                .key(keys::PK, s(keys::compliance_pk(org)))
                .key(keys::SK, s(keys::ORG_ROLLUP_SK))
                .update_expression("SET entity = :entity ADD mandatoryAssignments :d")
                .expression_attribute_values(":entity", s("compliance-rollup"))
                .expression_attribute_values(":d", n(delta)),
        )
    }

    /// Commits only if the assignment still has the rules (`unitsRev`) `assignment` was read with.
    fn rules_unchanged(&mut self, org: &OrgId, assignment: &Assignment) -> Result<usize, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .key(keys::PK, s(keys::assignment_pk(org, assignment.id)))
            .key(keys::SK, s(keys::ASSIGNMENT_SK))
            .condition_expression("unitsRev = :ur")
            .expression_attribute_values(":ur", n(assignment.units_rev))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(self.check(check))
    }

    /// Commits only if the user's profile is as read (`None`: still absent).
    fn profile_unchanged(
        &mut self,
        org: &OrgId,
        user: UserId,
        profile: Option<&UserRecord>,
    ) -> Result<usize, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .key(keys::PK, s(keys::user_pk(org, user)))
            .key(keys::SK, s(keys::PROFILE_SK));
        let check = match profile {
            None => check.condition_expression("attribute_not_exists(PK)"),
            Some(UserRecord { revision: Some(revision), .. }) => {
                check.condition_expression("revision = :rev").expression_attribute_values(":rev", n(*revision))
            }
            // Written whole (seeded), without a revision: its time says whether it changed.
            Some(record) => check
                .condition_expression("attribute_not_exists(revision) AND updatedAtMs = :ms")
                .expression_attribute_values(":ms", n(record.updated_at_ms.unwrap_or_default())),
        };
        Ok(self.check(check.build().map_err(|e| StoreError::Other(e.to_string()))?))
    }

    /// Commits only if `row` is still stored at its revision.
    fn row_unchanged(&mut self, org: &OrgId, row: &ProgressRow) -> Result<usize, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .key(keys::PK, s(keys::assignment_pk(org, row.assignment_id)))
            .key(keys::SK, s(keys::progress_sk(row.user_id)))
            .condition_expression("revision = :rev")
            .expression_attribute_values(":rev", n(row.revision))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(self.check(check))
    }
}

fn rollup_update(
    org: &OrgId,
    team: Option<TeamId>,
    delta: &ComplianceRollup,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let sk = team.map_or_else(|| keys::ORG_ROLLUP_SK.to_owned(), keys::team_rollup_sk);
    let mut update = Update::builder()
        .key(keys::PK, s(keys::compliance_pk(org)))
        .key(keys::SK, s(sk))
        .expression_attribute_values(":entity", s("compliance-rollup"));
    let mut adds = Vec::new();
    for (i, (name, count)) in delta.attributes().into_iter().enumerate() {
        adds.push(format!("#c{i} :c{i}"));
        update = update
            .expression_attribute_names(format!("#c{i}"), name)
            .expression_attribute_values(format!(":c{i}"), n(count));
    }
    let mut set = "SET entity = :entity".to_owned();
    if let Some(team) = team {
        set.push_str(", teamId = :team");
        update = update.expression_attribute_values(":team", s(team.to_string()));
    }
    update.update_expression(format!("{set} ADD {}", adds.join(", ")))
}

impl Store {
    /// One learner's compliance item (strongly consistent).
    pub async fn learner_compliance(&self, org: &OrgId, user: UserId) -> Result<Option<LearnerCompliance>, StoreError> {
        self.get_item(keys::user_pk(org, user), keys::COMPLIANCE_SK, true)
            .await?
            .map(LearnerComplianceRecord::entity_of)
            .transpose()
    }

    /// Several learners' compliance items (strongly consistent), by user.
    async fn learner_compliances(
        &self,
        org: &OrgId,
        users: &[UserId],
    ) -> Result<HashMap<UserId, LearnerCompliance>, StoreError> {
        let keys = users
            .iter()
            .map(|u| {
                Item::from([
                    (keys::PK.to_owned(), s(keys::user_pk(org, *u))),
                    (keys::SK.to_owned(), s(keys::COMPLIANCE_SK)),
                ])
            })
            .collect();
        self.batch_get_with(keys, true)
            .await?
            .into_iter()
            .map(|item| LearnerComplianceRecord::entity_of(item).map(|l| (l.user_id, l)))
            .collect()
    }

    /// The changes that set each `(user, obligation)` of `assignment` (`None` drops it), announced on
    /// `today` (`None`: unannounced, see [`LearnerChange::unannounced`]); learners seen for the first
    /// time count in the team the directory gives them.
    pub(crate) async fn learner_changes(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        obligations: &[(UserId, Option<Obligation>)],
        today: Option<NaiveDate>,
    ) -> Result<Vec<LearnerChange>, StoreError> {
        let users: Vec<UserId> = obligations.iter().map(|(u, _)| *u).collect();
        let mut stored = self.learner_compliances(org, &users).await?;
        let unseen: Vec<UserId> = users.iter().filter(|u| !stored.contains_key(u)).copied().collect();
        let teams: HashMap<UserId, Option<TeamId>> = if unseen.is_empty() {
            HashMap::new()
        } else {
            self.get_users(org, &unseen).await?.into_iter().map(|u| (u.user_id, u.team_id)).collect()
        };
        let mut changes = Vec::new();
        for (user, obligation) in obligations {
            let before = stored.remove(user);
            let mut after =
                before.clone().unwrap_or_else(|| LearnerCompliance::new(*user, teams.get(user).copied().flatten()));
            if after.set(assignment.id, *obligation) {
                changes.push(match today {
                    Some(today) => LearnerChange::new(before, after, today),
                    None => LearnerChange::unannounced(before, after),
                });
            }
        }
        Ok(changes)
    }

    /// Puts the learner in the team the directory gives them (read strongly consistent, and
    /// checked unchanged when the move commits, so concurrent user events cannot leave an older team),
    /// creating their item if needed, and moves their standing between team rollups. Returns the
    /// change of compliance it announces, if any (one the clock made since the last announcement),
    /// committed with the events `announce` gives for it.
    pub async fn place_learner(
        &self,
        org: &OrgId,
        user: UserId,
        now: DateTime<Utc>,
        announce: Announce<'_>,
    ) -> Result<Option<ComplianceTransition>, StoreError> {
        let mut attempts = Retry::CONFLICT.attempts();
        while attempts.next().await {
            let profile: Option<UserRecord> = self
                .get_item(keys::user_pk(org, user), keys::PROFILE_SK, true)
                .await?
                .map(crate::dynamo::from_item)
                .transpose()?;
            let team = profile.as_ref().and_then(|p| p.user.team_id);
            let before = self.learner_compliance(org, user).await?;
            if before.as_ref().is_some_and(|b| b.team_id == team) {
                return Ok(None);
            }
            let mut after = before.clone().unwrap_or_else(|| LearnerCompliance::new(user, team));
            after.team_id = team;
            let change = LearnerChange::new(before, after, now.date_naive());
            let mut tx = self.transaction();
            tx.profile_unchanged(org, user, profile.as_ref())?;
            tx.learners(org, std::slice::from_ref(&change))?;
            if let Some(t) = &change.transition {
                tx.outbox(org, &announce(&Written::Compliance(t), profile.as_ref().map(|p| &p.user)))?;
            }
            match tx.commit().await {
                Ok(()) => return Ok(change.transition),
                Err(TxFailure::Cancelled(reasons)) if reasons.iter().any(|r| r.lost_a_race()) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::TransactionConflict(format!("compliance of {user} kept changing")))
    }

    /// Records that the clock made `user` non-compliant by `today` (the daily job): the transition
    /// it announces (committed with the events `announce` gives for it), or `None` when it is not due
    /// or a write (or an earlier run) announced it.
    pub async fn announce_clock_flip(
        &self,
        org: &OrgId,
        user: UserId,
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<Option<ComplianceTransition>, StoreError> {
        let mut attempts = Retry::CONFLICT.attempts();
        while attempts.next().await {
            let Some(before) = self.learner_compliance(org, user).await? else { return Ok(None) };
            let mut after = before.clone();
            let Some(transition) = after.announce(today).filter(|t| !t.compliant) else { return Ok(None) };
            after.revision += 1;
            let mut tx = self.transaction();
            tx.learners(org, &[LearnerChange { before: Some(before), after, transition: Some(transition) }])?;
            let events = self.announced(org, &[Written::Compliance(&transition)], announce).await?;
            tx.outbox(org, &events)?;
            match tx.commit().await {
                Ok(()) => return Ok(Some(transition)),
                Err(TxFailure::Cancelled(reasons)) if reasons.iter().any(|r| r.lost_a_race()) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(StoreError::TransactionConflict(format!("compliance of {user} kept changing")))
    }
}
