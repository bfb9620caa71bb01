//! Compliance with mandatory training: the org's and teams' figures, the learners listing, and the
//! `compliance.changed` events (see `domain::compliance` for the rules, `store` for where the state
//! is kept).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::event::ComplianceSyncRequested;
use domain::{LearnerCompliance, LearnerFigures, OrgId, RollupFigures, TeamId, User};
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
    /// `None` while the team is not in the directory yet.
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
    // By name as people read it; teams not in the directory yet last.
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
    /// Nothing is left to this sync: every learner is in line (the marker is gone), or a newer change
    /// has a sync of its own. Else the request that the roster worker go on is committed.
    pub done: bool,
}

/// How much of a sync one share does: at most `pages` pages of 100 learners, and no new page once
/// `time` has passed (each page is up to 100 single-learner transactions).
#[derive(Debug, Clone, Copy)]
pub struct ShareSize {
    pub pages: usize,
    pub time: std::time::Duration,
}

impl ShareSize {
    /// A request's share (and the reconcile job's): two pages, within a few seconds of the request's 10.
    pub const INLINE: Self = Self { pages: crate::roster::INLINE_PAGES, time: std::time::Duration::from_secs(3) };
    /// A roster worker run's: well within its 300 s timeout.
    pub const WORKER: Self = Self { pages: crate::roster::PAGES_PER_RUN, time: std::time::Duration::from_secs(180) };
}

/// Brings learners' obligations of assignment `id` in line with its rules as stored (after a change of
/// its deadline, activity or mandatory flag), one share of at most `size`: a request's or a worker
/// run's. A share of change `rev` (the `complianceSync` marker that change set; none: the marker as
/// read, for a sync that starts at the first page) goes on from `from`. When every learner is in line
/// it clears the marker; otherwise it commits `assignment.compliance_sync_requested` (the change and
/// where it stopped), which the roster worker takes on, so the sync goes on off the request path and
/// never again from its first page. A share of an older change stops: the newer change's sync covers
/// every learner. Tracked items changed meanwhile (`unitsRev`): the share starts over under them.
pub async fn sync_share(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: domain::AssignmentId,
    rev: Option<u64>,
    from: Option<PageKey>,
    size: ShareSize,
    now: DateTime<Utc>,
) -> Result<SyncShare, AppError> {
    let store = ctx.store;
    let started = std::time::Instant::now();
    let mut changed = 0;
    let done = |changed| Ok(SyncShare { changed, done: true });
    // Strongly consistent: a share right after the change that set the marker must see it.
    let Some(mut a) = store.current_assignment(org, id).await? else { return done(changed) };
    let Some(rev) = rev.or(a.compliance_sync) else { return done(changed) };
    let mut start = from;
    for page in 0..size.pages.max(1) {
        if a.compliance_sync != Some(rev) {
            return done(changed);
        }
        if page > 0 && started.elapsed() >= size.time {
            break;
        }
        let announce = outbound::compliance_only(org, now);
        match store.sync_compliance_page(org, &a, start.clone(), now, &announce).await {
            Ok(page) => {
                changed += page.items.len();
                match page.next {
                    Some(next) => start = Some(next),
                    None => {
                        store.finish_compliance_sync(org, &a, rev).await?;
                        tracing::info!(assignment_id = %id, changed, "learners' compliance synced");
                        return done(changed);
                    }
                }
            }
            Err(StoreError::AssignmentChanged) => {
                let Some(current) = store.current_assignment(org, id).await? else { return done(changed) };
                a = current;
                start = None;
            }
            Err(other) => return Err(other.into()),
        }
    }
    let request = sync_requested(org, id, rev, start.as_ref(), now);
    let handed_on = store.hand_on_compliance_sync(org, id, rev, now, &[request]).await?;
    Ok(SyncShare { changed, done: !handed_on })
}

/// `assignment.compliance_sync_requested`: the request that the sync of change `rev` of `id`'s learners
/// go on from `from` (the roster worker's).
pub fn sync_requested(
    org: &OrgId,
    id: domain::AssignmentId,
    rev: u64,
    from: Option<&PageKey>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let resume = from.map(PageKey::resume_point);
    outbound::event(org, at, &ComplianceSyncRequested { assignment_id: id, rev, resume })
}
