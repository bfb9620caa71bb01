//! Scheduled daily (template `Schedule`): dispatches the daily job, one run per org on the job queue
//! (see [`events::jobs`]); the `org-jobs` function runs them. The rules live in
//! [`service::jobs`]: `assignment.due_soon` 7 and 1 days before, `assignment.overdue` the day
//! after and then weekly, recertification notices, each once per (assignment, learner, notice).
//!
//! The scheduled event carries nothing the job needs: each org's day is its today when the schedule
//! fires. `{"date": "YYYY-MM-DD"}` runs it for another day (a rerun after an outage), `{"orgIds": [...]}`
//! for those orgs only.

use events::jobs::Dispatcher;
use service::jobs::Job;

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler<Dispatcher> =
    |dispatcher, event| Box::pin(async move { events::jobs::dispatch(dispatcher, Job::Reminders, &event).await });
