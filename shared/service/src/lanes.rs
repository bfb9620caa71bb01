//! Fair work across orgs: each org has one request of a worker's lane ([`Lane`]) in the worker's queue
//! or running at a time; its other requests wait in line in the table and go to the queue one by one,
//! each when the one before it ends. The queue then holds at most one request per org, so when a worker
//! slot frees the next request is the next org's, whatever one org's backlog: an org's backlog costs
//! that org time, never another's.
//!
//! - The outbox publisher [`admit`]s each request: it takes the lane (then goes to the queue) or waits
//!   in line (then does not).
//! - The worker [`begin`]s the request it receives (keeping the lane while it runs) and, once it is done,
//!   [`finish`]es it: the first request in line takes the lane, reissued through the outbox in the same
//!   transaction (so nothing in line is lost), or the lane is freed.
//! - A holder that never finishes (its message parked in the dead-letter queue, a crash past its
//!   retries) holds the lane until its time runs out; the hourly reconcile then hands the lane on
//!   ([`revive`]); a request that arrives first takes it itself (and hands on when done).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use domain::{DomainEvent, Lane, OrgId};
use uuid::Uuid;

use crate::{AppError, Ctx};

/// How long an admitted request holds its lane before it runs: a head may wait in its queue behind
/// every other org's, which is the point; past this its lane is handed on (and it still runs, out of
/// line, if it comes).
pub const QUEUED_HOLD: Duration = Duration::from_secs(6 * 3600);
/// Attempts at a lane step that lost a race to another (a request put in line while the lane was being
/// freed): each attempt reads again, so two are nearly always enough.
const ATTEMPTS: usize = 4;
/// Unreadable requests one hand-over takes out of line at most (each logged by its key).
const MAX_UNREADABLE: usize = 10;

/// How long a running request holds its lane: its worker's timeout (the template's), with a margin.
pub fn running_hold(lane: Lane) -> Duration {
    let timeout = match lane {
        Lane::Roster => 300,
        Lane::Export => 900,
    };
    Duration::from_secs(timeout + 300)
}

fn after(at: DateTime<Utc>, hold: Duration) -> DateTime<Utc> {
    at + TimeDelta::from_std(hold).unwrap_or(TimeDelta::MAX)
}

/// What the publisher does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It holds the lane: send it to the worker's queue.
    Send,
    /// It waits in line: the request before it hands the lane on.
    InLine,
}

/// Takes `request`'s lane for it, or puts it in line behind the request that holds it. Idempotent: the
/// publisher sends a record again after a failure, and the holder's or waiting request's again is the
/// same answer.
pub async fn admit(ctx: &Ctx<'_>, org: &OrgId, lane: Lane, request: &DomainEvent) -> Result<Admission, AppError> {
    for _ in 0..ATTEMPTS {
        let now = ctx.now(org);
        if ctx.store.take_lane(org, lane, request.id, now, after(now, QUEUED_HOLD)).await? {
            return Ok(Admission::Send);
        }
        if ctx.store.wait_in_lane(org, lane, request, now).await? {
            tracing::info!(org = %org, lane = lane.as_str(), event_id = %request.id, "request in line");
            return Ok(Admission::InLine);
        }
    }
    Err(AppError::Contended)
}

/// The worker took request `id` of `org` from its queue: whether it holds the lane (it keeps it for
/// its run). One that does not (its lane was handed on while it waited) still runs, out of line.
pub async fn begin(ctx: &Ctx<'_>, org: &OrgId, lane: Lane, id: Uuid) -> Result<bool, AppError> {
    let now = ctx.now(org);
    Ok(ctx.store.keep_lane(org, lane, id, after(now, running_hold(lane))).await?)
}

/// Request `id`, which held the lane, is done: the first request in line takes the lane (reissued to
/// the outbox, in one transaction), or the lane is freed. Nothing when `id` no longer holds it.
pub async fn finish(ctx: &Ctx<'_>, org: &OrgId, lane: Lane, id: Uuid) -> Result<(), AppError> {
    // Unreadable items taken out of line on the way (each one, not a lost race, so not an attempt).
    let mut unreadable = 0;
    let mut attempts = 0;
    while attempts < ATTEMPTS {
        match ctx.store.first_in_lane(org, lane).await? {
            Some(Err(corrupt)) if unreadable < MAX_UNREADABLE => {
                tracing::error!(org = %org, lane = lane.as_str(), pk = corrupt.pk, sk = corrupt.sk,
                                "a request in line cannot be read: taken out of line");
                ctx.store.drop_unreadable_from_lane(org, lane, &corrupt).await?;
                unreadable += 1;
                continue;
            }
            Some(Err(corrupt)) => {
                return Err(store::StoreError::Corrupt(format!("{corrupt}: more unreadable requests in line")).into());
            }
            None => {
                if ctx.store.free_lane(org, lane, id).await? {
                    return Ok(());
                }
            }
            Some(Ok(waiting)) => {
                let now = ctx.now(org);
                let next = waiting.reissued(Uuid::now_v7(), now);
                if ctx.store.hand_on_lane(org, lane, id, waiting.id, &next, after(now, QUEUED_HOLD)).await? {
                    tracing::info!(org = %org, lane = lane.as_str(), event_id = %next.id, "request out of line");
                    return Ok(());
                }
            }
        }
        // A request came into line meanwhile, or the lane is no longer `id`'s.
        if ctx.store.lane(org, lane).await?.holder != Some(id) {
            return Ok(());
        }
        attempts += 1;
    }
    Err(AppError::Contended)
}

/// Hands on each lane of `org` whose holder's time ran out while requests wait (the reconcile job's
/// hourly check): how many were handed on.
pub async fn revive(ctx: &Ctx<'_>, org: &OrgId) -> Result<usize, AppError> {
    let mut revived = 0;
    for lane in Lane::ALL {
        let state = ctx.store.lane(org, lane).await?;
        let (Some(holder), Some(until)) = (state.holder, state.until) else { continue };
        if state.waiting == 0 || until >= ctx.now(org) {
            continue;
        }
        tracing::warn!(org = %org, lane = lane.as_str(), event_id = %holder, "lane holder ran out of time: handed on");
        finish(ctx, org, lane, holder).await?;
        revived += 1;
    }
    Ok(revived)
}
