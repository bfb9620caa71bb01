//! What the read routes show, with the names it displays: an assignment's learners (the detail) and a
//! learner's active assignments (the learner view). Reads only; the routes shape the views.

use std::collections::HashMap;

use domain::{Assignment, AssignmentId, AuditEntry, OrgId, ProgressRow, Source, TeamId, User, UserId};
use store::{AssignmentFilter, AuditFilter, Page, PageKey, Store, StoreError};

use crate::{AppError, Ctx};

/// The org's assignments, newest first, filtered, up to `limit`. The `overdue` and `expired` filters
/// keep an assignment when its summary on their date counts someone overdue or expired (the store's
/// query reads a superset of them).
pub async fn list_assignments(
    ctx: &Ctx<'_>,
    org: &OrgId,
    filter: &AssignmentFilter,
    limit: usize,
    start: Option<PageKey>,
) -> Result<Page<Assignment>, AppError> {
    let mut page = ctx.store.list_assignments(org, filter, limit, start).await?;
    let summary_on = |a: &Assignment, today| a.aggregates.summary(a.item_count, a.deadline, today);
    if let Some(today) = filter.overdue_on {
        page.items.retain(|a| summary_on(a, today).overdue_users > 0);
    }
    if let Some(today) = filter.expired_on {
        page.items.retain(|a| summary_on(a, today).expired_users > 0);
    }
    Ok(page)
}

/// A page of the org's audit log, newest first, filtered by action, actor and a time range.
pub async fn audit_log(
    ctx: &Ctx<'_>,
    org: &OrgId,
    filter: &AuditFilter,
    limit: usize,
    start: Option<PageKey>,
) -> Result<Page<AuditEntry>, AppError> {
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(AppError::InvalidField { field: "from", message: "must not be after `to`" });
    }
    Ok(ctx.store.audit_page(org, filter, limit, start).await?)
}

/// A page of an assignment's learners.
#[derive(Debug)]
pub struct AssignmentLearners {
    pub assignment: Assignment,
    pub rows: Vec<ProgressRow>,
    /// The learners as projected (one may be missing while its `user.created` is in flight).
    pub users: HashMap<UserId, User>,
    pub team_names: HashMap<TeamId, String>,
    pub next: Option<PageKey>,
}

/// The assignment and a page of its learners (removed ones included: their progress is history).
pub async fn assignment_learners(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: AssignmentId,
    limit: usize,
    start: Option<PageKey>,
) -> Result<AssignmentLearners, AppError> {
    let store = ctx.store;
    let assignment = store.get_assignment(org, id).await?.ok_or(AppError::NotFound)?;
    let page = store.progress_page(org, id, limit, start).await?;
    let user_ids: Vec<_> = page.items.iter().map(|r| r.user_id).collect();
    let users = store.get_users(org, &user_ids).await?.into_iter().map(|u| (u.user_id, u)).collect();
    // One assignment aims at one team, so its team rows share one team: one read.
    let first_team = page.items.iter().find(|r| matches!(r.source, Source::Team { .. }));
    let team_names = team_names(store, org, first_team.into_iter()).await?;
    Ok(AssignmentLearners { assignment, rows: page.items, users, team_names, next: page.next })
}

/// One learner's row on an assignment, with their name and their team's.
#[derive(Debug)]
pub struct AssignmentLearner {
    pub assignment: Assignment,
    pub row: ProgressRow,
    pub user: Option<User>,
    pub team_names: HashMap<TeamId, String>,
}

/// `user`'s row on the assignment (removed and exempt ones included); not found when either is
/// missing in the org.
pub async fn assignment_learner(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: AssignmentId,
    user: UserId,
) -> Result<AssignmentLearner, AppError> {
    let store = ctx.store;
    let assignment = store.get_assignment(org, id).await?.ok_or(AppError::NotFound)?;
    let row = store.progress_row(org, id, user).await?.ok_or(AppError::NotFound)?;
    learner_with_names(store, org, assignment, row).await
}

pub(crate) async fn learner_with_names(
    store: &Store,
    org: &OrgId,
    assignment: Assignment,
    row: ProgressRow,
) -> Result<AssignmentLearner, AppError> {
    let user = store.get_user(org, row.user_id).await?;
    let team_names = team_names(store, org, std::iter::once(&row)).await?;
    Ok(AssignmentLearner { assignment, row, user, team_names })
}

/// A page of a learner's assignments: the active ones the learner is in scope of, with their row,
/// soonest due date (then oldest) first within the page; and the names of the teams they came through.
/// Reads at most `max` of the learner's rows (active or not).
pub async fn learner_assignments(
    ctx: &Ctx<'_>,
    org: &OrgId,
    user: UserId,
    max: usize,
    start: Option<PageKey>,
) -> Result<(Page<(Assignment, ProgressRow)>, HashMap<TeamId, String>), AppError> {
    let store = ctx.store;
    let page = store.user_progress_page(org, user, max, start).await?;
    let rows: Vec<_> = page.items.into_iter().filter(|r| r.removed_at.is_none()).collect();
    let ids: Vec<_> = rows.iter().map(|r| r.assignment_id).collect();
    let mut assignments: HashMap<_, _> =
        store.get_assignments(org, &ids).await?.into_iter().filter(|a| a.is_active).map(|a| (a.id, a)).collect();
    let team_names = team_names(store, org, rows.iter()).await?;
    let mut items: Vec<_> =
        rows.into_iter().filter_map(|row| assignments.remove(&row.assignment_id).map(|a| (a, row))).collect();
    items.sort_by_key(|(a, row)| (row.due_on(a.deadline), a.created_at));
    Ok((Page { items, next: page.next }, team_names))
}

/// The current names of the teams `rows` came through, one read per team.
async fn team_names<'r>(
    store: &Store,
    org: &OrgId,
    rows: impl Iterator<Item = &'r ProgressRow>,
) -> Result<HashMap<TeamId, String>, StoreError> {
    let mut names = HashMap::new();
    for row in rows {
        if let Source::Team { team_id } = row.source
            && !names.contains_key(&team_id)
            && let Some(team) = store.get_team(org, team_id).await?
        {
            names.insert(team_id, team.name);
        }
    }
    Ok(names)
}
