//! Reading and keeping the rollups and the learners' listing: the summary's one Query, the learners
//! listing, the daily job's index of clock flips, and the maintenance (compaction of past days, the
//! count of mandatory assignments).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use domain::{ComplianceRollup, LearnerCompliance, OrgId, TeamId};

use crate::dynamo::{n, s};
use crate::partition::Partition;
use crate::records::{LearnerComplianceRecord, Record, RollupRecord};
use crate::{Page, PageKey, Store, StoreError, keys};

/// The org's compliance rollup, its teams' and how many assignments oblige (active, mandatory).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollups {
    pub org: ComplianceRollup,
    pub mandatory_assignments: i64,
    pub teams: Vec<(TeamId, ComplianceRollup)>,
}

/// Which learners a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnerFilter {
    pub team: Option<TeamId>,
    /// Only learners compliant (`true`) or not (`false`) on this day.
    pub compliant_on: Option<(bool, NaiveDate)>,
}

impl Store {
    /// The org's rollup and how many assignments oblige (one GetItem); zero before any obligation.
    pub async fn org_rollup(&self, org: &OrgId) -> Result<(ComplianceRollup, i64), StoreError> {
        let Some(item) = self.get(keys::compliance_pk(org), keys::ORG_ROLLUP_SK).await? else {
            return Ok((ComplianceRollup::default(), 0));
        };
        let record: RollupRecord = crate::dynamo::from_item(item)?;
        Ok((record.rollup, record.mandatory_assignments.unwrap_or(0)))
    }

    /// Up to `limit` of the teams' rollups, by team id, and where to go on.
    pub async fn team_rollups_page(
        &self,
        org: &OrgId,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<(TeamId, ComplianceRollup)>, StoreError> {
        let teams = Partition::table(keys::compliance_pk(org)).prefixed(keys::TEAM_ROLLUP_SK_PREFIX);
        let (items, next) = self.query_bounded(|q| teams.query(q), teams.index, false, start, limit).await?;
        let mut rollups = Vec::with_capacity(items.len());
        for item in items {
            let record: RollupRecord = crate::dynamo::from_item(item)?;
            if let Some(team) = record.team_id {
                rollups.push((team, record.rollup));
            }
        }
        Ok(Page { items: rollups, next })
    }

    /// The org's rollup and every team's (one Query of the whole partition): for tests and benches
    /// that compare them with a recount; the API pages the teams ([`Store::team_rollups_page`]).
    pub async fn compliance_rollups(&self, org: &OrgId) -> Result<Rollups, StoreError> {
        let items = self.query_all(|q| Partition::table(keys::compliance_pk(org)).query(q)).await?;
        let mut rollups = Rollups::default();
        for item in items {
            let record: RollupRecord = crate::dynamo::from_item(item)?;
            match record.team_id {
                Some(team) => rollups.teams.push((team, record.rollup)),
                None => {
                    rollups.org = record.rollup;
                    rollups.mandatory_assignments = record.mandatory_assignments.unwrap_or(0);
                }
            }
        }
        Ok(rollups)
    }

    /// A page of the learners who have obligations, by team then user, filtered.
    pub async fn compliance_learners_page(
        &self,
        org: &OrgId,
        filter: &LearnerFilter,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<LearnerCompliance>, StoreError> {
        let prefix = filter.team.map(|t| format!("{t}#"));
        let (items, next) = self
            .query_bounded(
                |q| {
                    let q = q
                        .index_name(keys::GSI1)
                        .expression_attribute_values(":pk", s(keys::compliance_learners_index(org)));
                    let q = match &prefix {
                        Some(p) => q
                            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :team)")
                            .expression_attribute_values(":team", s(p.as_str())),
                        None => q.key_condition_expression("GSI1PK = :pk"),
                    };
                    match filter.compliant_on {
                        Some((true, today)) => q
                            .filter_expression("attribute_not_exists(nonCompliantFrom) OR nonCompliantFrom > :today")
                            .expression_attribute_values(":today", s(today.to_string())),
                        Some((false, today)) => q
                            .filter_expression("nonCompliantFrom <= :today")
                            .expression_attribute_values(":today", s(today.to_string())),
                        None => q,
                    }
                },
                Some(keys::GSI1),
                filter.compliant_on.is_some(),
                start,
                limit,
            )
            .await?;
        Ok(Page { items: items.into_iter().map(LearnerComplianceRecord::entity_of).collect::<Result<_, _>>()?, next })
    }

    /// Learners whom the clock alone makes non-compliant on a day up to `until` and whose change is
    /// not announced yet (the daily job's `compliance.changed`), earliest first, a page at a time.
    /// Announced learners leave the index, so it holds only what is still owed.
    pub async fn compliance_flips_page(
        &self,
        org: &OrgId,
        until: NaiveDate,
        start: Option<PageKey>,
    ) -> Result<Page<Result<LearnerCompliance, crate::CorruptItem>>, StoreError> {
        let (items, next) = self
            .query_page(
                |q| {
                    q.index_name(keys::GSI3)
                        .key_condition_expression("GSI3PK = :pk AND GSI3SK <= :until")
                        .expression_attribute_values(":pk", s(keys::compliance_flips_index(org)))
                        .expression_attribute_values(":until", s(format!("{until}#~")))
                },
                start,
                Some(100),
            )
            .await?;
        Ok(Page { items: items.into_iter().map(LearnerComplianceRecord::entity_or_key).collect(), next })
    }

    /// Folds the rollups' days before `before` into one past counter per histogram (see
    /// `ComplianceRollup::folded_before`): figures as of `before` or later stay the same and the
    /// items stop growing with time. Each update is guarded by the values it folds, so a concurrent
    /// change is never lost (it is folded by a later run). Returns how many attributes were folded.
    pub async fn compact_rollups(&self, org: &OrgId, before: NaiveDate) -> Result<usize, StoreError> {
        let items = self.query_all(|q| Partition::table(keys::compliance_pk(org)).query(q)).await?;
        let mut folded = 0;
        for item in items {
            let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) = (item.get(keys::PK), item.get(keys::SK))
            else {
                continue;
            };
            let mut past: Vec<(&'static str, &String, i64)> = item
                .iter()
                .filter_map(|(name, value)| {
                    let prefix = ComplianceRollup::past_attribute(name, before)?;
                    let AttributeValue::N(count) = value else { return None };
                    Some((prefix, name, count.parse().ok()?))
                })
                .collect();
            past.sort();
            for chunk in past.chunks(40) {
                let mut update = self.update_request().key(keys::PK, s(pk.as_str())).key(keys::SK, s(sk.as_str()));
                let (mut set, mut remove, mut guards) = (Vec::new(), Vec::new(), Vec::new());
                let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
                for (i, (prefix, name, count)) in chunk.iter().enumerate() {
                    *sums.entry(prefix).or_default() += count;
                    remove.push(format!("#a{i}"));
                    guards.push(format!("#a{i} = :a{i}"));
                    update = update
                        .expression_attribute_names(format!("#a{i}"), name.as_str())
                        .expression_attribute_values(format!(":a{i}"), n(*count));
                }
                for (i, (prefix, sum)) in sums.iter().enumerate() {
                    set.push(format!("#p{i} = if_not_exists(#p{i}, :zero) + :p{i}"));
                    update = update
                        .expression_attribute_names(format!("#p{i}"), ComplianceRollup::past_name(prefix))
                        .expression_attribute_values(format!(":p{i}"), n(*sum));
                }
                let expression = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
                let result = self
                    .send_update(
                        update
                            .update_expression(expression)
                            .condition_expression(guards.join(" AND "))
                            .expression_attribute_values(":zero", n(0)),
                    )
                    .await;
                match result {
                    Ok(_) => folded += chunk.len(),
                    // Moved meanwhile: a later run folds it.
                    Err(StoreError::ConditionFailed | StoreError::TransactionConflict(_)) => {}
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(folded)
    }

    /// Sets the org's count of obliging assignments to `counted` if it still is `stored`; whether it did.
    pub async fn repair_obliging_assignments(
        &self,
        org: &OrgId,
        stored: i64,
        counted: i64,
    ) -> Result<bool, StoreError> {
        let guard = if stored == 0 {
            "attribute_not_exists(mandatoryAssignments) OR mandatoryAssignments = :stored"
        } else {
            "mandatoryAssignments = :stored"
        };
        let result = self
            .send_update(
                self.update_request()
                    .key(keys::PK, s(keys::compliance_pk(org)))
                    .key(keys::SK, s(keys::ORG_ROLLUP_SK))
                    .update_expression("SET entity = :entity, mandatoryAssignments = :counted")
                    .condition_expression(guard)
                    .expression_attribute_values(":entity", s("compliance-rollup"))
                    .expression_attribute_values(":stored", n(stored))
                    .expression_attribute_values(":counted", n(counted)),
            )
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        }
    }
}
