//! Creating an assignment: the dry run's preview, and the assignment itself with its audit entry and
//! roster rows (one transaction, then chunks; see `Store::create_assignment`).

use std::collections::HashSet;

use domain::{
    AssigneeType, AssignmentId, ItemCounts, NewAssignment, OrgId, ProgressRow, RosterStatus, Source, Target, TeamId,
    User, UserId,
};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use store::{AssignmentFilter, Headcount, Pages};

use crate::reach::{members_page, resolve_group, resolve_target, resolve_user, rows_of};
use crate::{Actor, AppError, Ctx, outbound};

/// What creating would do (`dryRun`).
#[derive(Debug, Clone)]
pub struct Preview {
    pub items: ItemCounts,
    pub learners: u32,
    pub assignee_name: String,
    /// Learners who already have an active assignment of the same target, through any assignee.
    pub already_assigned: usize,
    pub new_starters_only: bool,
}

impl Preview {
    /// "Will assign 3 challenges to 12 learners" ("… to each new starter").
    pub fn summary(&self) -> String {
        if self.new_starters_only {
            return domain::preview::new_starters_summary(self.items);
        }
        domain::preview::summary(self.items, self.learners)
    }
}

pub async fn preview(ctx: &Ctx<'_>, org: &OrgId, new: &NewAssignment) -> Result<Preview, AppError> {
    let store = ctx.store;
    let resolved = resolve_target(store, org, &new.target).await?;
    let (assignee_name, reach, learners) = match new.assignee.assignee_type {
        AssigneeType::User => {
            let user = resolve_user(store, org, &new.assignee).await?;
            (user.name.clone(), Reach::User(user), 1)
        }
        _ => {
            let (name, source) = resolve_group(store, org, &new.assignee).await?;
            let reach = match source {
                Source::Team { team_id } => Reach::Team(team_id),
                _ => Reach::Org,
            };
            let learners = headcount(ctx, org, reach.headcount()).await?;
            (name, reach, learners)
        }
    };
    let learners = if new.new_starters_only { 0 } else { learners };
    let already_assigned =
        if learners == 0 { 0 } else { already_assigned(ctx, org, &new.target, &reach, learners).await? };
    Ok(Preview {
        items: ItemCounts::of(&resolved.units),
        learners: u32::try_from(learners).unwrap_or(u32::MAX),
        assignee_name,
        already_assigned: usize::try_from(already_assigned).unwrap_or(usize::MAX),
        new_starters_only: new.new_starters_only,
    })
}

/// Creates the assignment for everyone its assignee reaches now (nobody, for a new-starters
/// assignment: its learners arrive as they join) and announces `assignment.created`. A team or the
/// org with more members than one transaction's first rows ([`store::ROSTER_ROWS_PER_TRANSACTION`])
/// gets those rows now and the rest from the roster worker (`rosterStatus: building`, see
/// [`crate::roster`]), so creating costs the same whatever the roster's size.
/// `view` is how the audit entry shows the new assignment (the API's representation); `completes`,
/// the request's idempotency key and its answer, committed with the assignment (see
/// [`store::Store::create_assignment_answering`]).
pub async fn create(
    ctx: &Ctx<'_>,
    org: &OrgId,
    new: NewAssignment,
    actor: &Actor,
    view: impl FnOnce(&domain::Assignment) -> Value,
    completes: Option<store::CreateAnswer<'_>>,
) -> Result<domain::Assignment, AppError> {
    let store = ctx.store;
    let resolved = resolve_target(store, org, &new.target).await?;
    let id = AssignmentId::new_v7();
    let new_starters_only = new.new_starters_only;
    let (mut assignment, rows, rest) = if new.assignee.assignee_type == AssigneeType::User {
        let user = resolve_user(store, org, &new.assignee).await?;
        let assignment = new.into_assignment(id, resolved, user.name.clone(), actor.id.clone(), actor.now);
        let rows: Vec<ProgressRow> = std::iter::once(&user)
            .filter(|_| !new_starters_only)
            .map(|user| individual_row(&assignment, user, actor.now))
            .collect();
        (assignment, rows, None)
    } else {
        let (name, source) = resolve_group(store, org, &new.assignee).await?;
        let assignment = new.into_assignment(id, resolved, name, actor.id.clone(), actor.now);
        if new_starters_only {
            (assignment, Vec::new(), None)
        } else {
            let first =
                members_page(store, org, &assignment.assignee, store::ROSTER_ROWS_PER_TRANSACTION, None).await?;
            let rows = rows_of(&assignment, &first.items, &source);
            (assignment, rows, first.next)
        }
    };
    let mut events = Vec::new();
    if let Some(rest) = &rest {
        assignment.roster_status = RosterStatus::Building;
        // An obliging assignment's first rows are written after its transaction (their compliance
        // items do not fit in it): the worker starts from the first page, so a failure there leaves
        // no gap (rows that exist are skipped).
        let obliges = assignment.is_active && assignment.is_mandatory;
        let run = uuid::Uuid::now_v7();
        assignment.roster_run = Some(run);
        let from = crate::roster::Position {
            resume: (!obliges).then(|| rest.clone()),
            ..crate::roster::Position::start(crate::roster::Mode::Build)
        };
        events.push(crate::roster::requested(org, id, &from, run, actor.now));
    }
    let audit = created_audit(actor, &assignment, view(&assignment), rows.len());
    events.insert(0, outbound::created(org, &assignment, &actor.id, actor.now));
    let created = store.create_assignment_answering(org, &assignment, &audit, &rows, &events, completes).await?;
    tracing::info!(assignment_id = %id, learners = rows.len(), roster = assignment.roster_status.as_str(), "assignment created");
    Ok(created)
}

/// The row of an individual assignment's learner, in scope from the directory's membership time
/// (so a leave that is older than the row but arrives later still removes them).
pub(crate) fn individual_row(
    assignment: &domain::Assignment,
    user: &User,
    at: chrono::DateTime<chrono::Utc>,
) -> ProgressRow {
    let mut row = assignment.new_row(user.user_id, Source::Individual, at);
    row.membership_at = user.membership_at();
    row
}

/// The audit entry of a created assignment: `after` is how the API shows it.
pub(crate) fn created_audit(
    actor: &Actor,
    assignment: &domain::Assignment,
    after: Value,
    learners: usize,
) -> domain::AuditEntry {
    actor.audit(
        "assignment.created",
        ("assignment", assignment.id.to_string(), assignment.target_title.clone()),
        json!({"before": null, "after": after, "learnerCount": learners,
               "rosterStatus": assignment.roster_status.as_str()}),
    )
}

/// Whom a dry run's assignee reaches.
enum Reach {
    Org,
    Team(TeamId),
    User(User),
}

impl Reach {
    fn headcount(&self) -> Headcount {
        match self {
            Reach::Team(team) => Headcount::Team(*team),
            _ => Headcount::Org,
        }
    }
}

/// Learners named one by one (individual assignees, new-starters-only rosters) that a dry run of a team
/// or the org reads at most; beyond them it counts as if nobody else were covered (a lower bound).
const MAX_LISTED_LEARNERS: usize = 5_000;

/// Pages of the org's active assignments (200 each) a dry run reads for ones of the same target: an org
/// with more than 2,000 active assignments gets a count from the first 2,000 (a lower bound), in a
/// bounded number of reads.
const MAX_ASSIGNMENT_PAGES: usize = 10;

/// How many of the `learners` the assignee reaches already have an active assignment of the same
/// target, through any assignee — from the assignees of those assignments, not by listing members:
/// an org-wide one covers everyone; a team's, that team's members (its head count; a user is in one
/// team at most); an individual one, its learner; a new-starters-only one, the learners on its roster.
/// Reads the org's active assignments (at most [`MAX_ASSIGNMENT_PAGES`] pages); for a team or the org,
/// the learners named one by one (at most [`MAX_LISTED_LEARNERS`]) and the covered teams' head counts;
/// for a user, their row on each new-starters-only assignment.
async fn already_assigned(
    ctx: &Ctx<'_>,
    org: &OrgId,
    target: &Target,
    reach: &Reach,
    learners: u64,
) -> Result<u64, AppError> {
    let store = ctx.store;
    let mut same_target = Vec::new();
    let filter = AssignmentFilter { is_active: Some(true), ..Default::default() };
    let mut pages = Pages::default();
    let mut read = 0;
    while let Some(start) = pages.next_start().filter(|_| read < MAX_ASSIGNMENT_PAGES) {
        read += 1;
        let page = pages.follow(store.list_assignments(org, &filter, 200, start).await?);
        same_target.extend(
            page.into_iter()
                .filter(|a| a.target.target_type == target.target_type && a.target.target_id == target.target_id),
        );
    }
    let (starters, by_assignee): (Vec<_>, Vec<_>) = same_target.iter().partition(|a| a.new_starters_only);
    if by_assignee.iter().any(|a| a.assignee.assignee_type == AssigneeType::Org) {
        return Ok(learners);
    }
    let teams: HashSet<TeamId> = by_assignee
        .iter()
        .filter(|a| a.assignee.assignee_type == AssigneeType::Team)
        .filter_map(|a| TeamId::parse(&a.assignee.assignee_id).ok())
        .collect();
    let individuals = by_assignee
        .iter()
        .filter(|a| a.assignee.assignee_type == AssigneeType::User)
        .filter_map(|a| UserId::parse(&a.assignee.assignee_id).ok());
    let team_of = |user: &User| user.team_id.filter(|_| user.is_active);

    if let Reach::User(user) = reach {
        let mut covered =
            team_of(user).is_some_and(|team| teams.contains(&team)) || individuals.clone().any(|id| id == user.user_id);
        for a in &starters {
            if covered {
                break;
            }
            covered = store.progress_row(org, a.id, user.user_id).await?.is_some_and(|r| r.removed_at.is_none());
        }
        return Ok(u64::from(covered).min(learners));
    }
    if let Reach::Team(team) = reach
        && teams.contains(team)
    {
        return Ok(learners);
    }

    let mut listed: HashSet<UserId> = individuals.take(MAX_LISTED_LEARNERS).collect();
    for a in &starters {
        let mut rows = Pages::default();
        while let Some(start) = rows.next_start().filter(|_| listed.len() < MAX_LISTED_LEARNERS) {
            let page = rows.follow(store.progress_page(org, a.id, 200, start).await?);
            listed.extend(page.iter().filter(|r| r.removed_at.is_none()).map(|r| r.user_id));
        }
    }
    let listed: Vec<UserId> = listed.into_iter().collect();
    let listed = store.get_users(org, &listed).await?;
    let covered = match reach {
        Reach::Team(team) => listed.iter().filter(|u| team_of(u) == Some(*team)).count() as u64,
        _ => {
            // A team whose count is not established yet (too large to count here) counts as nobody:
            // the answer is then a lower bound, not a failed dry run.
            let now = ctx.clock.wall();
            let counts = futures::stream::iter(
                teams.iter().copied().map(|team| store.headcount(org, Headcount::Team(team), now)),
            )
            .buffer_unordered(4)
            .try_collect::<Vec<_>>();
            let in_teams: u64 = counts.await?.into_iter().flatten().sum();
            let elsewhere = listed.iter().filter(|u| u.is_active && !team_of(u).is_some_and(|t| teams.contains(&t)));
            in_teams + elsewhere.count() as u64
        }
    };
    Ok(covered.min(learners))
}

/// A head count, or [`AppError::Unavailable`] while it is too large to count in a request and not yet
/// established by the reconcile job (users written before counts existed).
async fn headcount(ctx: &Ctx<'_>, org: &OrgId, count: Headcount) -> Result<u64, AppError> {
    ctx.store.headcount(org, count, ctx.clock.wall()).await?.ok_or_else(|| {
        AppError::Unavailable(format!("{count:?}: head count not established yet (the reconcile job establishes it)"))
    })
}
