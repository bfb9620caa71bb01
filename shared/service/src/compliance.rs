//! Compliance with mandatory training: the org's and teams' figures, the learners listing, and the
//! `compliance.changed` events (see `domain::compliance` for the rules, `store` for where the state
//! is kept).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{ComplianceTransition, LearnerCompliance, LearnerFigures, OrgId, RollupFigures, TeamId, User};
use serde_json::json;
use store::{LearnerFilter, Page, PageKey, Store, StoreError};

use crate::outbound::{self, DomainEvent};
use crate::{AppError, Ctx};

/// `GET /compliance`: the org's figures and a page of its teams', as of `now`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub as_of: DateTime<Utc>,
    pub org: RollupFigures,
    pub mandatory_assignments: u64,
    pub teams: Vec<TeamFigures>,
    /// Where the teams go on (more than one page of them).
    pub next: Option<PageKey>,
}

#[derive(Debug, Clone)]
pub struct TeamFigures {
    pub team_id: TeamId,
    /// `None` while the team is not in the projection yet.
    pub name: Option<String>,
    pub figures: RollupFigures,
}

/// Reads the org's rollup (one GetItem), up to `limit` teams' rollups from `start` (by team id, a
/// bounded Query) and their names: the same reads and response size for an org of any number of teams.
pub async fn summary(
    ctx: &Ctx<'_>,
    org: &OrgId,
    limit: usize,
    start: Option<PageKey>,
    now: DateTime<Utc>,
) -> Result<Summary, AppError> {
    let store = ctx.store;
    let today = now.date_naive();
    let ((rollup, mandatory_assignments), page) =
        futures::try_join!(store.org_rollup(org), store.team_rollups_page(org, limit, start))?;
    let counted: Vec<_> = page.items.iter().filter(|(_, r)| r.learners > 0).collect();
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
        org: rollup.figures(today),
        mandatory_assignments: mandatory_assignments.max(0) as u64,
        teams,
        next: page.next,
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

/// How a share of a compliance sync ended (see [`sync_share`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncShare {
    /// Learners whose compliance changed.
    pub changed: usize,
    /// Every learner is in line (the marker is gone); else the request that the roster worker go on
    /// is committed.
    pub done: bool,
}

/// Brings learners' obligations of assignment `id` in line with its rules as stored (after a change of
/// its deadline, activity or mandatory flag), at most `pages` pages of 100 from `from`: a request's
/// share ([`crate::roster_build::INLINE_PAGES`]) or a worker run's. When every learner is in line it
/// clears the assignment's `complianceSync` marker; otherwise it commits
/// `assignment.compliance_sync_requested` with where it stopped, which the roster worker takes on, so
/// the sync goes on off the request path and never again from its first page. A newer rule change
/// meanwhile starts over under the new rules (learners already in line are no-ops). Nothing to do (no
/// marker, no assignment) is done.
pub async fn sync_share(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: domain::AssignmentId,
    from: Option<PageKey>,
    pages: usize,
    now: DateTime<Utc>,
) -> Result<SyncShare, AppError> {
    let store = ctx.store;
    let mut changed = 0;
    let Some(mut a) = store.get_assignment(org, id).await? else { return Ok(SyncShare { changed, done: true }) };
    let mut start = from;
    for _ in 0..pages.max(1) {
        if a.compliance_sync.is_none() {
            return Ok(SyncShare { changed, done: true });
        }
        let announce = outbound::compliance_only(org, now);
        match store.sync_compliance_page(org, &a, start.clone(), now, &announce).await {
            Ok(page) => {
                changed += page.items.len();
                match page.next {
                    Some(next) => start = Some(next),
                    None => {
                        store.finish_compliance_sync(org, &a).await?;
                        tracing::info!(assignment_id = %id, changed, "learners' compliance synced");
                        return Ok(SyncShare { changed, done: true });
                    }
                }
            }
            Err(StoreError::AssignmentChanged) => {
                let Some(current) = store.get_assignment(org, id).await? else {
                    return Ok(SyncShare { changed, done: true });
                };
                a = current;
                start = None;
            }
            Err(other) => return Err(other.into()),
        }
    }
    store.commit_events(org, &[sync_requested(org, id, start.as_ref(), now)]).await?;
    Ok(SyncShare { changed, done: false })
}

/// `assignment.compliance_sync_requested`: the request that the sync of `id`'s learners go on from
/// `from` (the roster worker's).
pub fn sync_requested(org: &OrgId, id: domain::AssignmentId, from: Option<&PageKey>, at: DateTime<Utc>) -> DomainEvent {
    let resume = from.map_or(serde_json::Value::Null, PageKey::resume_point);
    outbound::other(
        "assignment.compliance_sync_requested",
        org,
        at,
        serde_json::json!({"assignmentId": id, "resume": resume}),
    )
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
