//! The roster worker: the rows of a large team or org assignment, written off the request path.
//!
//! Create writes the first page of members with the assignment and, when there are more, commits
//! `assignment.roster_requested` (with where the members' listing goes on) in the same transaction.
//! Each run of the worker writes up to [`PAGES_PER_RUN`] pages of members, each page's rows in the
//! transactions that move the counters with them (so the counters always equal the rows present), then
//! either marks the roster complete or commits the request for the next run. Rows that exist are
//! skipped, so a run repeated from an older point (a retried or duplicated event) adds nothing twice,
//! and a learner who joined or left meanwhile keeps the row their membership event wrote.

use chrono::{DateTime, Utc};
use domain::{AssigneeType, AssignmentId, OrgId, RosterStatus, Source, TeamId};
use serde_json::{Value, json};
use store::retry::Retry;
use store::{PageKey, StoreError};

use crate::roster::{members_page, rows_of};
use crate::{AppError, Ctx, outbound};

/// Pages of members one run writes (each up to [`PAGE`] rows): bounded work per invocation.
pub const PAGES_PER_RUN: usize = 50;
/// Members read per page: one roster transaction's rows.
const PAGE: usize = 96;

/// `assignment.roster_requested`: the request that run `run` write the roster of `id` from `resume`.
pub fn requested(
    org: &OrgId,
    id: AssignmentId,
    resume: Option<&PageKey>,
    run: uuid::Uuid,
    at: DateTime<Utc>,
) -> domain::DomainEvent {
    let resume = resume.map_or(Value::Null, PageKey::resume_point);
    outbound::other("assignment.roster_requested", org, at, json!({"assignmentId": id, "resume": resume, "run": run}))
}

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterRun {
    pub rows_added: usize,
    /// The roster is complete (or there is nothing to build: the assignment is gone, inactive, or
    /// complete already).
    pub complete: bool,
}

/// Writes the roster of `id` from `resume` (the start of the members' listing when `None`), at most
/// `pages` pages (the worker: [`PAGES_PER_RUN`]), then requests the next run if there is more. `run`
/// is the request's run: one that is no longer the run that may go on (a duplicated request whose
/// twin handed over first) stops; `None` (an operator's or a test's run) goes on regardless.
pub async fn build(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: AssignmentId,
    resume: Option<PageKey>,
    pages: usize,
    run: Option<uuid::Uuid>,
) -> Result<RosterRun, AppError> {
    let store = ctx.store;
    let Some(mut a) = store.get_assignment(org, id).await? else {
        return Ok(RosterRun { rows_added: 0, complete: true });
    };
    if a.roster_status != RosterStatus::Building {
        return Ok(RosterRun { rows_added: 0, complete: true });
    }
    if run.is_some() && a.roster_run != run {
        return Ok(RosterRun { rows_added: 0, complete: false });
    }
    if !a.is_active {
        // A deactivated assignment gains nobody; the roster stays building (not complete: members are
        // missing) until a reactivation brings it in line.
        return Ok(RosterRun { rows_added: 0, complete: false });
    }
    let source = match a.assignee.assignee_type {
        AssigneeType::Org => Source::Organization,
        AssigneeType::Team => Source::Team {
            team_id: TeamId::parse(&a.assignee.assignee_id).map_err(|e| AppError::Unavailable(e.to_string()))?,
        },
        AssigneeType::User => Source::Individual,
    };
    let mut start = resume;
    let mut added = 0;
    for _ in 0..pages.max(1) {
        let page = members_page(store, org, &a.assignee, PAGE, start.clone()).await?;
        let mut attempts = Retry::CONFLICT.attempts();
        loop {
            if !attempts.next().await {
                // Retried by the event's source (the rule), not dropped: the roster must finish.
                return Err(StoreError::TransactionConflict(format!("roster of {id} kept changing")).into());
            }
            match store.add_new_rows(org, &a, &rows_of(&a, &page.items, &source)).await {
                Ok(users) => {
                    added += users.len();
                    // A learner who completed items before their row existed has them in their log.
                    let announce = outbound::row_events(org, &a, false);
                    for user in users {
                        let log = store.completion_log(org, user).await?;
                        if !log.is_empty() {
                            store.record_completions(org, &a, user, &log, &announce).await?;
                        }
                    }
                    break;
                }
                // The tracked items changed meanwhile (a custom course edit): rows under the new ones.
                Err(StoreError::AssignmentChanged) => {
                    a = store.get_assignment(org, id).await?.ok_or(AppError::NotFound)?;
                    if !a.is_active {
                        // Deactivated meanwhile: it gains nobody; the roster stays building.
                        return Ok(RosterRun { rows_added: added, complete: false });
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
        match page.next {
            Some(next) => start = Some(next),
            None => {
                store.finish_roster(org, id, run).await?;
                tracing::info!(assignment_id = %id, rows = added, "roster complete");
                return Ok(RosterRun { rows_added: added, complete: true });
            }
        }
    }
    // More to write: the next run's request, committed before this one ends, so it cannot be lost.
    let next = uuid::Uuid::now_v7();
    let request = requested(org, id, start.as_ref(), next, Utc::now());
    if store.hand_over_roster(org, id, run, next, &[request]).await? {
        tracing::info!(assignment_id = %id, rows = added, "roster continues in another run");
    } else {
        tracing::info!(assignment_id = %id, rows = added, "another run goes on with this roster");
    }
    Ok(RosterRun { rows_added: added, complete: false })
}
