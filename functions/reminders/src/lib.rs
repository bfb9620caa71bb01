//! Scheduled daily (template `Schedule`): deadline reminders, `assignment.due_soon` 7 and 1 days
//! before and `assignment.overdue` the day after and then weekly, each once per (assignment, learner,
//! reminder). The rules live in [`service::scheduled::send_reminders`].
//!
//! The scheduled event carries nothing the job needs: each org's day is its today. `{"date": "YYYY-MM-DD"}`
//! runs it for another day
//! (a re-run after an outage, or a test through the local Lambda Invoke API), `{"orgIds": [...]}` limits
//! the run to those orgs.

use events::consumer::outcome;
use events::schedule::{only_orgs, run_date};
use serde_json::{Value, json};

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler = |consumer, event| Box::pin(handle(consumer, event));

pub async fn handle(consumer: &events::Consumer, event: Value) -> Result<Value, events::ConsumerError> {
    let (date, only) = match (run_date(&event), only_orgs(&event)) {
        (Ok(date), Ok(only)) => (date, only),
        (Err(reason), _) => {
            tracing::warn!(reason, "nothing sent");
            return Ok(json!({"dropped": reason}));
        }
        (_, Err(reason)) => return Ok(json!({"dropped": reason})),
    };
    let report = match outcome(service::scheduled::send_reminders(&consumer.ctx(), date, only.as_deref()).await)? {
        Ok(report) => report,
        Err(reason) => return Ok(json!({"dropped": reason})),
    };
    // The day it ran for: the one given, else each org's today (one day unless a run spans midnight).
    let date = date.or_else(|| report.days.iter().next_back().copied());
    Ok(json!({"date": date, "days": report.days, "orgs": report.orgs, "assignments": report.assignments,
              "sent": report.count}))
}
