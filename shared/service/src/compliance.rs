//! Compliance with mandatory training: the org's and teams' figures, the learners listing, and the
//! `compliance.changed` events (see `domain::compliance` for the rules, `store` for where the state
//! is kept).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{ComplianceTransition, LearnerCompliance, LearnerFigures, OrgId, RollupFigures, TeamId, User};
use serde_json::json;
use store::retry::Retry;
use store::{LearnerFilter, Page, PageKey, Pages, Store, StoreError};

use crate::outbound::{self, DomainEvent};
use crate::{AppError, Ctx};

/// `GET /compliance`: the org's figures and each team's, as of `now`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub as_of: DateTime<Utc>,
    pub org: RollupFigures,
    pub mandatory_assignments: u64,
    pub teams: Vec<TeamFigures>,
}

#[derive(Debug, Clone)]
pub struct TeamFigures {
    pub team_id: TeamId,
    /// `None` while the team is not in the projection yet.
    pub name: Option<String>,
    pub figures: RollupFigures,
}

/// Reads the rollups (one Query of one partition: an item per team) and the teams' names.
pub async fn summary(ctx: &Ctx<'_>, org: &OrgId, now: DateTime<Utc>) -> Result<Summary, AppError> {
    let store = ctx.store;
    let today = now.date_naive();
    let rollups = store.compliance_rollups(org).await?;
    let counted: Vec<_> = rollups.teams.iter().filter(|(_, r)| r.learners > 0).collect();
    let ids: Vec<TeamId> = counted.iter().map(|(t, _)| *t).collect();
    let names = team_names(store, org, &ids).await?;
    let mut teams: Vec<TeamFigures> = counted
        .into_iter()
        .map(|(team, rollup)| TeamFigures {
            team_id: *team,
            name: names.get(team).cloned(),
            figures: rollup.figures(today),
        })
        .collect();
    // By name as people read it; teams not in the projection yet last.
    teams.sort_by_cached_key(|t| (t.name.is_none(), t.name.as_deref().map(str::to_lowercase), t.team_id));
    Ok(Summary {
        as_of: now,
        org: rollups.org.figures(today),
        mandatory_assignments: rollups.mandatory_assignments.max(0) as u64,
        teams,
    })
}

/// One line of `GET /compliance/learners`.
#[derive(Debug, Clone)]
pub struct LearnerLine {
    pub learner: LearnerCompliance,
    pub user: Option<User>,
    pub team_name: Option<String>,
    pub figures: LearnerFigures,
}

/// A page of learners with obligations (by team, then user), with their names and figures as of `now`.
pub async fn learners(
    ctx: &Ctx<'_>,
    org: &OrgId,
    filter: &LearnerFilter,
    limit: usize,
    start: Option<PageKey>,
    now: DateTime<Utc>,
) -> Result<Page<LearnerLine>, AppError> {
    let store = ctx.store;
    let page = store.compliance_learners_page(org, filter, limit, start).await?;
    let ids: Vec<_> = page.items.iter().map(|l| l.user_id).collect();
    let mut users: HashMap<_, _> = store.get_users(org, &ids).await?.into_iter().map(|u| (u.user_id, u)).collect();
    let mut teams: Vec<TeamId> = page.items.iter().filter_map(|l| l.team_id).collect();
    teams.sort();
    teams.dedup();
    let names = team_names(store, org, &teams).await?;
    let items = page
        .items
        .into_iter()
        .map(|learner| LearnerLine {
            user: users.remove(&learner.user_id),
            team_name: learner.team_id.and_then(|t| names.get(&t).cloned()),
            figures: learner.figures(now),
            learner,
        })
        .collect();
    Ok(Page { items, next: page.next })
}

async fn team_names(store: &Store, org: &OrgId, teams: &[TeamId]) -> Result<HashMap<TeamId, String>, StoreError> {
    Ok(store.get_teams(org, teams).await?.into_iter().map(|t| (t.team_id, t.name)).collect())
}

/// Brings every learner's obligation of assignment `id` in line with its rules as stored (after a
/// change of its deadline, activity or mandatory flag) page by page (100 rows), each learner whose
/// compliance changed announced in their own write; then clears
/// the assignment's "not yet synced" marker. A newer rule change meanwhile restarts it under the new
/// rules (learners already in line are no-ops). Returns how many learners' compliance changed.
pub async fn sync_assignment(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: domain::AssignmentId,
    now: DateTime<Utc>,
) -> Result<usize, AppError> {
    let store = ctx.store;
    let mut changed = 0;
    let mut attempts = Retry::CONFLICT.attempts();
    'rules: while attempts.next().await {
        let Some(a) = store.get_assignment(org, id).await? else { return Ok(changed) };
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let announce = outbound::compliance_only(org, now);
            let transitions = match store.sync_compliance_page(org, &a, start, now, &announce).await {
                Ok(page) => pages.follow(page),
                Err(StoreError::AssignmentChanged) => continue 'rules,
                Err(other) => return Err(other.into()),
            };
            changed += transitions.len();
        }
        store.finish_compliance_sync(org, &a).await?;
        tracing::info!(assignment_id = %id, changed, "learners' compliance synced");
        return Ok(changed);
    }
    Err(AppError::Contended)
}

/// `compliance.changed`: a learner became compliant or non-compliant.
pub(crate) fn changed(org: &OrgId, t: &ComplianceTransition, profile: Option<&User>, at: DateTime<Utc>) -> DomainEvent {
    let detail = json!({
        "userId": t.user_id,
        "userName": profile.map(|u| u.name.as_str()),
        "userEmail": profile.map(|u| u.email.as_str()),
        "teamId": t.team_id,
        "compliant": t.compliant,
        "nonCompliantSince": t.since,
    });
    outbound::other("compliance.changed", org, at, detail)
}
