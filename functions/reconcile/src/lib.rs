//! Scheduled (template `Schedule`): the safety net for lost membership events. Every active team and
//! org-wide assignment's roster is compared with the membership projection; missing rows are added,
//! stale ones marked removed, drifted counters corrected; the number of repairs is logged. The rules
//! live in [`service::scheduled::reconcile_rosters`].

use events::consumer::outcome;
use events::schedule::only_orgs;
use serde_json::{Value, json};

/// This function's handler, for its `main.rs` and the local gateway. `{"orgIds": [...]}` limits a run
/// to those orgs; the scheduled event itself carries nothing needed.
pub const HANDLER: events::entry::Handler = |consumer, event| Box::pin(handle(consumer, event));

pub async fn handle(consumer: &events::Consumer, event: Value) -> Result<Value, events::ConsumerError> {
    let only = match only_orgs(&event) {
        Ok(only) => only,
        Err(reason) => return Ok(json!({"dropped": reason})),
    };
    let report = match outcome(service::scheduled::reconcile_rosters(&consumer.ctx(), only.as_deref()).await)? {
        Ok(report) => report,
        Err(reason) => return Ok(json!({"dropped": reason})),
    };
    Ok(json!({"orgs": report.orgs, "assignments": report.assignments, "repairs": report.count}))
}
