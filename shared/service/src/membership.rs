//! Rosters follow membership: who belongs to which assignment, derived from the directory.
//!
//! Every membership change is applied at the directory's own time for the facts it rests on
//! ([`User::membership_at`]), so a late, older event never undoes a newer one, and the same code
//! serves the consumers (one user changed), reactivation and the reconcile job (one assignment).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{
    AssigneeType, Assignment, AssignmentId, Completion, OrgId, ProgressRow, TeamChange, TeamId, User, UserChange,
    UserId,
};
use store::{MembershipChange, Store, StoreError};

use crate::outbound;
use crate::{AppError, Applied, Ctx};

/// A user was created, changed, deactivated, joined or left a team (`mentioned_teams`: the teams the
/// event names). The directory is written first; then the rosters follow the directory as stored
/// (not the event), so a stale event changes nothing and a retry after a partial failure finishes the job.
pub async fn user_changed(
    ctx: &Ctx<'_>,
    org: &OrgId,
    user: UserId,
    change: &UserChange,
    mentioned_teams: &[TeamId],
    at: DateTime<Utc>,
) -> Result<Applied, AppError> {
    let now = ctx.now(org);
    // The head counts' last move is an index-settling time: the wall clock's, as the recount reads it.
    let user = ctx.store.change_user(org, user, change, at, now, ctx.clock.wall()).await?;
    // The learner's compliance counts in the team the directory now gives them.
    ctx.store.place_learner(org, user.user_id, now, &outbound::compliance_only(org, now)).await?;
    let reconciled = reconcile_user(ctx, org, &user, mentioned_teams).await?;
    Ok(Applied { rows: reconciled.repairs })
}

/// A team was renamed or deleted: only the directory changes (a deleted team's assignments keep
/// their rows and gain nobody).
pub async fn team_changed(
    ctx: &Ctx<'_>,
    org: &OrgId,
    team: TeamId,
    change: &TeamChange,
    at: DateTime<Utc>,
) -> Result<Applied, AppError> {
    ctx.store.change_team(org, team, change, at, ctx.now(org)).await?;
    Ok(Applied::default())
}

/// What reconciling did: rows written (each with the events it announces: `assignment.user_added`,
/// `assignment.completed` for completions it catches up on, `compliance.changed`).
#[derive(Debug, Default)]
pub struct Reconciled {
    pub repairs: usize,
}

/// A learner's logged completions, read at most once per reconcile.
struct CompletionLog<'a> {
    store: &'a Store,
    org: &'a OrgId,
    now: DateTime<Utc>,
    cache: HashMap<UserId, Vec<Completion>>,
}

impl<'a> CompletionLog<'a> {
    fn new(store: &'a Store, org: &'a OrgId, now: DateTime<Utc>) -> Self {
        Self { store, org, now, cache: HashMap::new() }
    }

    /// Brings a new (or returning) row up to date with completions logged while the learner had no
    /// row, so it does not matter whether a completion or the join arrived first.
    async fn catch_up(&mut self, a: &Assignment, user: &User) -> Result<(), StoreError> {
        if !self.cache.contains_key(&user.user_id) {
            let log = self.store.completion_log(self.org, user.user_id).await?;
            self.cache.insert(user.user_id, log);
        }
        let log = &self.cache[&user.user_id];
        if log.is_empty() {
            return Ok(());
        }
        let announce = outbound::row_events(self.org, a, false, self.now);
        self.store.record_completions(self.org, a, user.user_id, log, self.now.date_naive(), &announce).await?;
        Ok(())
    }
}

/// Applies the directory of `user` to every assignment it may concern: rows the user has, and the
/// active assignments aimed at the org, at the user, at their team and at `mentioned_teams` (teams the
/// event names: joined, left, previous).
///
/// Each row is a last-writer-wins register of "in scope", written at [`User::membership_at`] — a time
/// that only grows as events are applied — so whatever order events arrive in, every row ends as the
/// final directory says, and the set of rows written does not depend on the order either (a leave
/// with no row writes a removed row, so an older join arriving later cannot add the learner).
/// Joins only active assignments (a deactivated one gains nobody; a deleted team gains nobody).
pub async fn reconcile_user(
    ctx: &Ctx<'_>,
    org: &OrgId,
    user: &User,
    mentioned_teams: &[TeamId],
) -> Result<Reconciled, StoreError> {
    let (store, now) = (ctx.store, ctx.now(org));
    let at = user.membership_at();
    let mut rows: HashMap<AssignmentId, _> =
        store.user_progress_rows(org, user.user_id).await?.into_iter().map(|r| (r.assignment_id, r)).collect();
    let ids: Vec<_> = rows.keys().copied().collect();
    let mut candidates: HashMap<AssignmentId, Assignment> =
        store.get_assignments(org, &ids).await?.into_iter().map(|a| (a.id, a)).collect();
    let mut scopes = vec![(AssigneeType::Org, org.as_str().to_owned()), (AssigneeType::User, user.user_id.to_string())];
    let mut teams: Vec<TeamId> = user.team_id.iter().chain(mentioned_teams).copied().collect();
    teams.sort();
    teams.dedup();
    scopes.extend(teams.iter().map(|t| (AssigneeType::Team, t.to_string())));
    for (assignee_type, assignee_id) in scopes {
        for a in store.active_assignments_for(org, assignee_type, &assignee_id).await? {
            candidates.entry(a.id).or_insert(a);
        }
    }

    let mut out = Reconciled::default();
    let mut log = CompletionLog::new(store, org, now);
    let mut deleted_teams: HashMap<String, bool> = HashMap::new();
    let mut ordered: Vec<_> = candidates.into_values().collect();
    ordered.sort_by_key(|a| a.id);
    for a in &ordered {
        let in_scope = a.includes(user);
        let announce = outbound::row_events(org, a, false, now);
        if let Some(row) = rows.get_mut(&a.id)
            && forget_future(store, org, a, row, now, &announce).await?
        {
            out.repairs += 1;
        }
        match rows.get(&a.id) {
            // Already written at this time or later: the register ignores older writes anyway.
            Some(row) if row.membership_at >= at => continue,
            Some(_) if in_scope && !a.is_active => continue,
            Some(_) => {}
            None if !a.is_active => continue,
            None if !a.admits(user) => continue,
            None if in_scope
                && a.assignee.assignee_type == AssigneeType::Team
                && team_deleted(store, org, &a.assignee.assignee_id, &mut deleted_teams).await? =>
            {
                continue;
            }
            None => {}
        }
        let entered = a.entered_scope(user).unwrap_or(at);
        let change = store
            .set_membership(org, a, user.user_id, a.source(), in_scope, at, entered, now.date_naive(), &announce)
            .await?;
        if !change.changed() {
            continue;
        }
        out.repairs += 1;
        if change.created() {
            log.catch_up(a, user).await?;
        }
    }
    Ok(out)
}

/// Forgets the times `row` stored ahead of `now`, in the table and in `row` ([`ProgressRow::forget_future`]:
/// stored before consumed events were bounded), so that the membership change that follows applies.
/// Returns whether it stored a change.
async fn forget_future(
    store: &Store,
    org: &OrgId,
    a: &Assignment,
    row: &mut ProgressRow,
    now: DateTime<Utc>,
    announce: store::Announce<'_>,
) -> Result<bool, StoreError> {
    if !row.forget_future(now) {
        return Ok(false);
    }
    let Some(stored) = store.forget_future_of_row(org, a, row.user_id, now, announce).await? else {
        // Nothing stored to forget (another writer was first): the row as read, its times forgotten.
        return Ok(false);
    };
    *row = stored.after;
    Ok(true)
}

/// `users` with the times they stored ahead of `now` forgotten, in the table too ([`User::forget_future`]);
/// each user changed counts as a repair.
async fn forget_future_of_users(
    store: &Store,
    org: &OrgId,
    users: &[User],
    now: DateTime<Utc>,
    out: &mut Reconciled,
) -> Result<Vec<User>, StoreError> {
    let mut forgotten = Vec::with_capacity(users.len());
    for user in users {
        let mut user = user.clone();
        if user.forget_future(now)
            && let Some(stored) = store.forget_future_of_user(org, user.user_id, now).await?
        {
            out.repairs += 1;
            user = stored;
        }
        forgotten.push(user);
    }
    Ok(forgotten)
}

async fn team_deleted(
    store: &Store,
    org: &OrgId,
    team: &str,
    cache: &mut HashMap<String, bool>,
) -> Result<bool, StoreError> {
    if let Some(deleted) = cache.get(team) {
        return Ok(*deleted);
    }
    let deleted = match TeamId::parse(team) {
        Ok(id) => store.get_team(org, id).await?.is_some_and(|t| t.is_deleted),
        Err(_) => false,
    };
    cache.insert(team.to_owned(), deleted);
    Ok(deleted)
}

/// The first half of bringing an active assignment's roster in line with the directory, for one
/// page of `members` (as the assignee's listing gives them): members without a row join, removed ones
/// return (each at the directory's time, so newer events still win). With `catch_up_all`, every
/// member's row also takes the completions logged meanwhile (reactivation: completions are not
/// recorded on inactive assignments); otherwise only rows it creates do. Used by the roster runs
/// (`roster`): reactivation, the reconcile job, a build started again.
pub async fn reconcile_members(
    ctx: &Ctx<'_>,
    org: &OrgId,
    a: &Assignment,
    members: &[User],
    catch_up_all: bool,
) -> Result<Reconciled, StoreError> {
    let (store, now) = (ctx.store, ctx.now(org));
    let today = now.date_naive();
    let mut out = Reconciled::default();
    if !a.is_active {
        return Ok(out);
    }
    let members = forget_future_of_users(store, org, members, now, &mut out).await?;
    // The indexes are eventually consistent; the directory item itself decides.
    let members: Vec<&User> = members.iter().filter(|u| a.includes(u)).collect();
    let ids: Vec<UserId> = members.iter().map(|u| u.user_id).collect();
    let mut rows: HashMap<UserId, ProgressRow> =
        store.progress_rows_of(org, a.id, &ids).await?.into_iter().map(|r| (r.user_id, r)).collect();
    let team_is_deleted = a.assignee.assignee_type == AssigneeType::Team
        && team_deleted(store, org, &a.assignee.assignee_id, &mut HashMap::new()).await?;

    let mut log = CompletionLog::new(store, org, now);
    let announce = outbound::row_events(org, a, false, now);
    for user in members {
        let at = user.membership_at();
        let entered = a.entered_scope(user).unwrap_or(at);
        if let Some(row) = rows.get_mut(&user.user_id)
            && forget_future(store, org, a, row, now, &announce).await?
        {
            out.repairs += 1;
        }
        let change = match rows.get(&user.user_id) {
            None if team_is_deleted => continue,
            None => store.set_membership(org, a, user.user_id, a.source(), true, at, entered, today, &announce).await?,
            Some(row) if row.removed_at.is_some() => {
                store.set_membership(org, a, user.user_id, a.source(), true, at, entered, today, &announce).await?
            }
            Some(_) => MembershipChange::Unchanged,
        };
        if change.changed() {
            out.repairs += 1;
        }
        if change.created() || catch_up_all {
            log.catch_up(a, user).await?;
        }
    }
    Ok(out)
}

/// The second half, for one page of the assignment's `rows`: rows of people no longer in scope leave
/// (at the directory's time), rows derived under other tracked items or another recurrence (a
/// refresh that did not finish) are derived again.
pub async fn reconcile_rows(
    ctx: &Ctx<'_>,
    org: &OrgId,
    a: &Assignment,
    rows: &[ProgressRow],
) -> Result<Reconciled, StoreError> {
    let (store, now) = (ctx.store, ctx.now(org));
    let today = now.date_naive();
    let mut out = Reconciled::default();
    if !a.is_active {
        return Ok(out);
    }
    let announce = outbound::row_events(org, a, false, now);
    for row in rows {
        let mut row = row.clone();
        if forget_future(store, org, a, &mut row, now, &announce).await? {
            out.repairs += 1;
        }
        let mut probe = row.clone();
        probe.refresh(&a.units, a.item_count, a.recurrence);
        let stale = probe != row || row.counted != Some(row.contribution(&a.units, a.item_count));
        if !stale {
            continue;
        }
        if store.refresh_row(org, a, row.user_id, today, &announce).await?.is_some() {
            out.repairs += 1;
        }
    }
    let present: Vec<UserId> = rows.iter().filter(|r| r.removed_at.is_none()).map(|r| r.user_id).collect();
    for user in forget_future_of_users(store, org, &store.get_users(org, &present).await?, now, &mut out).await? {
        if a.includes(&user) {
            continue;
        }
        let at = user.membership_at();
        let change = store.set_membership(org, a, user.user_id, a.source(), false, at, at, today, &announce).await?;
        if change.changed() {
            out.repairs += 1;
        }
    }
    Ok(out)
}
