//! Roster runs: the rows of a team or org assignment written or brought in line with the directory
//! page by page, off the request path.
//!
//! Create writes the first page of members with the assignment and, when there are more, commits
//! `assignment.roster_requested` (which run, what it does, where the listing goes on) in the same
//! transaction. Reactivation and the reconcile job start a run themselves, do a bounded share of it
//! here ([`INLINE_PAGES`]) and leave the rest to the worker the same way. Each worker run does up to
//! [`PAGES_PER_RUN`] pages, each page's rows in the transactions that move the counters with them (so
//! the counters always equal the rows present), then marks the roster complete or commits the request
//! for the next run with the hand-over. Only the run the assignment names (`rosterRun`) may go on, so a
//! duplicated request stops once its twin has handed over; rows that exist are skipped, so a run
//! repeated from an older point adds nothing twice; a learner who joined or left meanwhile keeps the
//! row their membership event wrote.

use chrono::{DateTime, Utc};
use domain::event::{RosterFrom, RosterRequested};
use domain::{AssigneeType, Assignment, AssignmentId, OrgId, RosterStatus, Source, TeamId};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use store::retry::Retry;
use store::{PageKey, StoreError};

use crate::membership::{reconcile_members, reconcile_rows};
use crate::reach::{members_page, rows_of};
use crate::{AppError, Ctx, outbound};

/// Pages one worker run goes through (each up to `PAGE` members or rows): bounded work per
/// invocation.
pub const PAGES_PER_RUN: usize = 50;
/// Pages a request (a reactivation) or the reconcile job goes through itself before leaving the rest
/// to the worker: a roster of up to one page of members is in line when it answers.
pub const INLINE_PAGES: usize = 2;
/// Members (or rows) read per page: one roster transaction's rows.
const PAGE: usize = 96;
/// A run named on the assignment for this long without finishing has stopped (its request was
/// dropped, or parked in the failed-events queue): the reconcile job starts the roster's run again.
/// Longer than a request may wait: in its org's line and then behind other orgs in the worker's queue
/// (its lane's hold, `lanes::QUEUED_HOLD`, 6 hours), and its retries (five, a minute apart).
pub const STOPPED_AFTER: chrono::Duration = chrono::Duration::hours(12);

/// What a run does, and which listing it goes through: the request's (`assignment.roster_requested`,
/// [`domain::event::RosterRequested`]).
pub use domain::event::{RosterMode as Mode, RosterPhase as Phase};

/// Where a run starts: what it does, in which listing, from which key (`None`: the listing's start).
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub mode: Mode,
    pub phase: Phase,
    pub resume: Option<PageKey>,
}

impl Position {
    /// The start of a run of `mode`.
    pub fn start(mode: Mode) -> Self {
        Self { mode, phase: Phase::Members, resume: None }
    }

    /// The position a request's detail names (`mode` and `phase` default to a build's members, as
    /// create requests them); a resume point outside `org` is refused.
    pub fn of_request(org: &OrgId, detail: &Value) -> Result<Self, &'static str> {
        let from: RosterFrom = domain::event::fields(detail).map_err(|_| "unknown mode or phase")?;
        Self::of(org, &from)
    }

    /// The position a request names; a resume point outside `org` is refused.
    pub fn of(org: &OrgId, from: &RosterFrom) -> Result<Self, &'static str> {
        let resume = match &from.resume {
            None => None,
            Some(point) => Some(PageKey::resume_at(org, point).map_err(|_| "resume point outside the org")?),
        };
        Ok(Self { mode: from.mode, phase: from.phase, resume })
    }
}

/// `assignment.roster_requested`: the request that run `run` go on with the roster of `id` from `at`.
pub fn requested(
    org: &OrgId,
    id: AssignmentId,
    from: &Position,
    run: uuid::Uuid,
    at: DateTime<Utc>,
) -> domain::DomainEvent {
    let from =
        RosterFrom { mode: from.mode, phase: from.phase, resume: from.resume.as_ref().map(PageKey::resume_point) };
    outbound::event(org, at, &RosterRequested { assignment_id: id, run, from })
}

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterRun {
    /// Rows it added or changed.
    pub rows: usize,
    /// The roster is complete (or there is nothing to build: the assignment is gone, or complete
    /// already).
    pub complete: bool,
}

impl RosterRun {
    const STOPPED: Self = Self { rows: 0, complete: false };
}

/// Goes through the roster of `id` from `from`, at most `pages` pages (the worker: [`PAGES_PER_RUN`]),
/// then requests the next run if there is more. `run` is the request's run: one that is no longer the
/// run that may go on (a duplicated request whose twin handed over first, a run taken over) stops;
/// `None` (a test's run) goes on regardless while the roster is building.
pub async fn build(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: AssignmentId,
    from: Position,
    pages: usize,
    run: Option<uuid::Uuid>,
) -> Result<RosterRun, AppError> {
    let store = ctx.store;
    let Some(mut a) = store.get_assignment(org, id).await? else {
        return Ok(RosterRun { rows: 0, complete: true });
    };
    match run {
        Some(_) if a.roster_run != run => return Ok(RosterRun::STOPPED),
        None if a.roster_status != RosterStatus::Building => return Ok(RosterRun { rows: 0, complete: true }),
        _ => {}
    }
    if !a.is_active {
        // A deactivated assignment gains nobody; a building roster stays building (members are
        // missing) until a reactivation brings it in line.
        return Ok(RosterRun::STOPPED);
    }
    let mode = from.mode;
    let (mut phase, mut start) = (from.phase, from.resume);
    let mut rows = 0;
    for page_number in 0..pages.max(1) {
        if page_number > 0 {
            // Read again before each page: a run that was taken over, or an assignment deactivated
            // meanwhile (it gains nobody), stops here.
            match store.get_assignment(org, id).await? {
                Some(current) if current.is_active && (run.is_none() || current.roster_run == run) => a = current,
                Some(_) => return Ok(RosterRun { rows, complete: false }),
                None => return Ok(RosterRun { rows, complete: true }),
            }
        }
        let next = match phase {
            Phase::Members => {
                let page = members_page(store, org, &a.assignee, PAGE, start.clone()).await?;
                let written = match mode {
                    Mode::Build => add_members(ctx, org, &mut a, &page.items).await?,
                    Mode::Repair | Mode::CatchUp => {
                        reconcile_members(ctx, org, &a, &page.items, mode == Mode::CatchUp).await?.repairs
                    }
                };
                rows += written;
                match (page.next, mode) {
                    (Some(next), _) => Some(next),
                    (None, Mode::Build) => None,
                    (None, Mode::Repair | Mode::CatchUp) => {
                        phase = Phase::Rows;
                        start = None;
                        continue;
                    }
                }
            }
            Phase::Rows => {
                let page = store.progress_page(org, id, PAGE, start.clone()).await?;
                rows += reconcile_rows(ctx, org, &a, &page.items).await?.repairs;
                page.next
            }
        };
        match next {
            Some(next) => start = Some(next),
            None => {
                if !store.finish_roster(org, id, run).await? {
                    tracing::info!(assignment_id = %id, rows, ?mode, "another run took the roster over");
                    return Ok(RosterRun { rows, complete: false });
                }
                if mode != Mode::Build {
                    // Rows changed behind the service's back move no counter: compared once the rows
                    // are in line (guarded: if the counters move meanwhile, the next run looks again).
                    match store.repair_counters(org, id).await {
                        Ok(true) => {
                            rows += 1;
                            tracing::warn!(org = %org, assignment_id = %id, "counters repaired");
                        }
                        Ok(false) => {}
                        Err(error) => tracing::error!(org = %org, assignment_id = %id, %error, "counters not repaired"),
                    }
                }
                tracing::info!(assignment_id = %id, rows, ?mode, "roster complete");
                return Ok(RosterRun { rows, complete: true });
            }
        }
    }
    // More to go through: the next run's request, committed before this one ends, so it cannot be lost.
    let next = uuid::Uuid::now_v7();
    let request = requested(org, id, &Position { mode, phase, resume: start }, next, ctx.now(org));
    if store.hand_over_roster(org, id, run, next, &[request]).await? {
        tracing::info!(assignment_id = %id, rows, ?mode, "roster continues in another run");
    } else {
        tracing::info!(assignment_id = %id, rows, ?mode, "another run goes on with this roster");
    }
    Ok(RosterRun { rows, complete: false })
}

/// Learners' logs read at once while a page catches up.
const CATCH_UP_CONCURRENCY: usize = 8;

/// A build's page: rows for the members who have none, under the assignment's current items (re-read
/// into `a` if they changed meanwhile), then every member's row takes the completions in their log —
/// not only the rows this call added: a row an earlier, interrupted attempt wrote is skipped here but
/// may have missed its catch-up (recording completions again changes nothing).
async fn add_members(
    ctx: &Ctx<'_>,
    org: &OrgId,
    a: &mut Assignment,
    members: &[domain::User],
) -> Result<usize, AppError> {
    let (store, now) = (ctx.store, ctx.now(org));
    let source = match a.assignee.assignee_type {
        AssigneeType::Org => Source::Organization,
        AssigneeType::Team => Source::Team {
            team_id: TeamId::parse(&a.assignee.assignee_id).map_err(|e| AppError::Unavailable(e.to_string()))?,
        },
        AssigneeType::User => Source::Individual,
    };
    let mut attempts = Retry::CONFLICT.attempts();
    loop {
        if !attempts.next().await {
            // Retried by the request's queue, not dropped: the roster must finish.
            return Err(StoreError::TransactionConflict(format!("roster of {} kept changing", a.id)).into());
        }
        let rows = rows_of(a, members, &source);
        match store.add_new_rows(org, a, &rows, now.date_naive()).await {
            Ok(added) => {
                // A learner who completed items before their row existed has them in their log.
                let announce = outbound::row_events(org, a, false, now);
                let catch_ups: Vec<_> =
                    rows.iter().map(|row| catch_up(store, org, a, row.user_id, now, &announce)).collect();
                futures::stream::iter(catch_ups)
                    .buffer_unordered(CATCH_UP_CONCURRENCY)
                    .try_collect::<Vec<()>>()
                    .await?;
                return Ok(added.len());
            }
            // The tracked items changed meanwhile (a custom course edit): rows under the new ones.
            Err(StoreError::AssignmentChanged) => {
                *a = store.get_assignment(org, a.id).await?.ok_or(AppError::NotFound)?;
                if !a.is_active {
                    return Ok(0);
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
}

/// Gives the row of `user` the completions in their log (nothing when it is empty).
async fn catch_up(
    store: &store::Store,
    org: &OrgId,
    a: &Assignment,
    user: domain::UserId,
    now: DateTime<Utc>,
    announce: store::Announce<'_>,
) -> Result<(), StoreError> {
    let log = store.completion_log(org, user).await?;
    if !log.is_empty() {
        store.record_completions(org, a, user, &log, now.date_naive(), announce).await?;
    }
    Ok(())
}

/// Goes through up to `pages` pages of run `run` here (a request's or the reconcile job's bounded
/// share), leaving the rest to the worker. A run that fails here is requested again from its start, so
/// the caller's change stands and the worker finishes the roster; only if that request cannot be
/// committed either is the error returned (the reconcile job then finds the run stopped).
pub async fn run_here(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: AssignmentId,
    mode: Mode,
    pages: usize,
    run: uuid::Uuid,
) -> Result<RosterRun, AppError> {
    match build(ctx, org, id, Position::start(mode), pages, Some(run)).await {
        Ok(done) => Ok(done),
        Err(error) => {
            tracing::warn!(assignment_id = %id, %error, ?mode, "roster run failed here: the worker starts it again");
            let next = uuid::Uuid::now_v7();
            let request = requested(org, id, &Position::start(mode), next, ctx.now(org));
            match ctx.store.hand_over_roster(org, id, Some(run), next, &[request]).await {
                Ok(_) => Ok(RosterRun::STOPPED),
                Err(_) => Err(error),
            }
        }
    }
}

/// The reconcile job's look at the roster of `a` (an active team or org assignment): while a run goes
/// on, nothing; a roster whose run stopped (see [`STOPPED_AFTER`]) is started again (a building one with a
/// catch-up); a complete one is repaired; [`INLINE_PAGES`] here and the rest by the worker.
pub async fn reconcile(ctx: &Ctx<'_>, org: &OrgId, a: &Assignment) -> Result<RosterRun, AppError> {
    // A run's id carries when it was requested, by the wall clock.
    if !a.is_active || a.roster_run.is_some_and(|run| !stopped(run, ctx.clock.wall())) {
        return Ok(RosterRun::STOPPED);
    }
    let mode = match a.roster_status {
        RosterStatus::Building => {
            tracing::warn!(org = %org, assignment_id = %a.id, "roster run had stopped: started again");
            Mode::CatchUp
        }
        RosterStatus::Complete => Mode::Repair,
    };
    let run = uuid::Uuid::now_v7();
    if !ctx.store.take_over_roster(org, a.id, a.roster_run, run).await? {
        return Ok(RosterRun::STOPPED);
    }
    run_here(ctx, org, a.id, mode, INLINE_PAGES, run).await
}

/// Whether run `run` (a UUIDv7: it carries when it was requested) has stopped by `now`.
fn stopped(run: uuid::Uuid, now: DateTime<Utc>) -> bool {
    let Some((secs, nanos)) = run.get_timestamp().map(|t| t.to_unix()) else { return true };
    let requested = DateTime::from_timestamp(secs as i64, nanos).unwrap_or(DateTime::UNIX_EPOCH);
    now - requested > STOPPED_AFTER
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_run_requested_more_than_twelve_hours_ago_has_stopped() {
        let run = uuid::Uuid::now_v7();
        let now = crate::Clock::wall(&crate::SystemClock);
        assert!(!stopped(run, now));
        assert!(!stopped(run, now + chrono::Duration::minutes(12 * 60 - 1)));
        assert!(stopped(run, now + chrono::Duration::minutes(12 * 60 + 1)));
        // Longer than a request may wait for its turn in its lane.
        assert!(STOPPED_AFTER > chrono::Duration::from_std(crate::lanes::QUEUED_HOLD).unwrap());
        assert!(stopped(uuid::Uuid::new_v4(), now), "no time in it: treated as stopped");
    }

    #[test]
    fn a_request_names_its_position_and_create_requests_default_to_a_build() {
        let org = OrgId::parse("org-a").unwrap();
        let event = requested(
            &org,
            AssignmentId::new_v7(),
            &Position::start(Mode::CatchUp),
            uuid::Uuid::now_v7(),
            DateTime::UNIX_EPOCH,
        );
        let detail = event.detail;
        assert_eq!(detail["mode"], "catch_up");
        assert_eq!(Position::of_request(&org, &detail), Ok(Position::start(Mode::CatchUp)));
        assert_eq!(Position::of_request(&org, &json!({})), Ok(Position::start(Mode::Build)));
        assert!(Position::of_request(&org, &json!({"mode": "rebuild"})).is_err());
    }
}
