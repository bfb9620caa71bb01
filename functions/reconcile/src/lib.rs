//! Scheduled hourly (template `Schedule`): dispatches roster reconcile, one run per org on the job
//! queue (see [`events::jobs`]); the `org-jobs` function runs them. The safety net for lost membership
//! events: every active team and org-wide assignment's roster is compared with the
//! directory, missing rows added, stale ones marked removed, drifted counters corrected. The rules
//! live in [`service::jobs`]. `{"orgIds": [...]}` limits a run to those orgs.

use events::jobs::Dispatcher;
use service::jobs::Job;

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler<Dispatcher> =
    |dispatcher, event| Box::pin(async move { events::jobs::dispatch(dispatcher, Job::Reconcile, &event).await });
