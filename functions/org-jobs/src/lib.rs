//! The job queue's consumer (template: an `SQS` event with partial batch responses): runs each org's
//! part of a scheduled job — the daily job or roster reconcile — that the schedules' functions
//! (`reminders`, `reconcile`) dispatched, each on its own budget; a part that stops puts its
//! continuation back on the queue. See [`events::jobs`] and `service::jobs`.

use events::jobs::Runner;

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler<Runner> =
    |runner, event| Box::pin(async move { events::jobs::run_batch(runner, event).await });
