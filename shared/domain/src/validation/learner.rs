//! Validation of an admin's change of one learner (`PATCH /assignments/{id}/users/{userId}`).

use chrono::NaiveDate;
use serde_json::Value;

use super::{Errors, ValidationError};
use crate::progress::LearnerPatch;

const LEARNER_PATCH_FIELDS: &[&str] = &["dueOn", "exempt", "reason"];
/// Longest exemption reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Validates a `PATCH /assignments/{id}/users/{userId}` body: `dueOn` (a date from today, or null to
/// follow the assignment again) and/or `exempt` (true with a `reason`, or false).
pub fn validate_learner_patch(body: &Value, today: NaiveDate) -> Result<LearnerPatch, ValidationError> {
    let body = body.as_object().ok_or(ValidationError::NotAnObject)?;
    let mut errors = Errors::default();
    errors.unknown_fields(body, LEARNER_PATCH_FIELDS);
    if !body.contains_key("dueOn") && !body.contains_key("exempt") {
        errors.add("body", "must set dueOn, exempt, or both");
    }
    let mut patch = LearnerPatch::default();
    match body.get("dueOn") {
        None => {}
        Some(Value::Null) => patch.due_on = Some(None),
        Some(value) => patch.due_on = errors.date("dueOn", value, today).map(Some),
    }
    let reason = match body.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) if s.chars().count() > MAX_REASON_CHARS => {
            errors.add("reason", format!("must be at most {MAX_REASON_CHARS} characters"));
            None
        }
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(_) => {
            errors.add("reason", "must be a string");
            None
        }
    };
    match body.get("exempt").map(|v| errors.bool(v, "exempt")) {
        Some(Some(true)) if reason.is_none() && !errors.0.iter().any(|e| e.field == "reason") => {
            errors.add("reason", "is required to exempt a learner")
        }
        Some(Some(true)) => patch.exempt = Some(reason),
        Some(Some(false)) if body.get("reason").is_some_and(|r| !r.is_null()) => {
            errors.add("reason", "is only accepted with exempt: true")
        }
        Some(Some(false)) => patch.exempt = Some(None),
        Some(None) => {}
        None if body.get("reason").is_some_and(|r| !r.is_null()) => {
            errors.add("reason", "is only accepted with exempt: true")
        }
        None => {}
    }
    errors.finish(Some(patch))
}
