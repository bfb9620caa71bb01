//! Scheduled daily (template `Schedule`): deadline reminders, `assignment.due_soon` 7 and 1 days
//! before and `assignment.overdue` the day after and then weekly, each once per (assignment, learner,
//! reminder). The rules live in [`events::scheduled::send_reminders`].
//!
//! The scheduled event carries nothing the job needs; `{"date": "YYYY-MM-DD"}` runs it for another day
//! (a re-run after an outage, or a test through the local Lambda Invoke API), `{"orgIds": [...]}` limits
//! the run to those orgs.

use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler = |consumer, event| Box::pin(handle(consumer, event));

pub async fn handle(consumer: &events::Consumer, event: Value) -> Result<Value, events::ConsumerError> {
    let today = match event.get("date").and_then(Value::as_str) {
        Some(raw) => match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(date) => date,
            Err(_) => {
                tracing::warn!(date = raw, "not a date (YYYY-MM-DD); nothing sent");
                return Ok(json!({"dropped": "date must be YYYY-MM-DD"}));
            }
        },
        None => Utc::now().date_naive(),
    };
    let only = match events::scheduled::only_orgs(&event) {
        Ok(only) => only,
        Err(reason) => return Ok(json!({"dropped": reason})),
    };
    let report = events::scheduled::send_reminders(consumer, today, only.as_deref()).await?;
    Ok(json!({"date": today, "orgs": report.orgs, "assignments": report.assignments, "sent": report.count}))
}
