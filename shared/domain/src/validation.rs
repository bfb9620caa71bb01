//! Validation of create and patch bodies. Every problem is reported at once, per field, so a client
//! can fix a request in one round trip.

use chrono::{Days, NaiveDate};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::assignment::{Assignee, CREATE_FIELDS, IMMUTABLE_FIELDS, NewAssignment, PATCHABLE_FIELDS, Patch, Target};
use crate::ids::{OrgId, Slug, canonical_uuid};
use crate::recurrence::{DEFAULT_WINDOW_DAYS, MAX_EVERY_MONTHS, MAX_WINDOW_DAYS, Recurrence};
use crate::vocabulary::{AssigneeType, ContentArea, TargetType};

/// Longest note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;
/// How far ahead a deadline may be set, in days (five years).
pub const MAX_DEADLINE_DAYS_AHEAD: u64 = 5 * 366;

/// The longest relative deadline, in days.
pub const MAX_DUE_IN_DAYS: u32 = 365;

/// Unknown fields named one by one in an error list; the rest are counted in one more entry, so a body
/// of thousands of junk keys cannot make an error response of thousands of entries.
pub const MAX_REPORTED_UNKNOWN: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("the request has invalid fields")]
    Fields(Vec<FieldError>),
    #[error("these fields cannot be changed: {}", .0.join(", "))]
    Immutable(Vec<String>),
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.to_owned(), message: message.into() });
    }

    fn unknown_fields(&mut self, body: &Map<String, Value>, allowed: &[&str]) {
        let unknown: Vec<&String> = body.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
        self.0.extend(unknown_field_errors(&unknown, "field", allowed));
    }

    fn required_str<'a>(&mut self, body: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
        match body.get(field) {
            None | Some(Value::Null) => {
                self.add(field, "is required");
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.add(field, "must be a string");
                None
            }
        }
    }

    fn wire_enum<T: std::str::FromStr>(
        &mut self,
        body: &Map<String, Value>,
        field: &str,
        expected: String,
    ) -> Option<T> {
        let raw = self.required_str(body, field)?;
        let parsed = raw.parse().ok();
        if parsed.is_none() {
            self.add(field, format!("must be one of: {expected}"));
        }
        parsed
    }

    fn deadline(&mut self, value: &Value, today: NaiveDate) -> Option<NaiveDate> {
        self.date("deadline", value, today)
    }

    /// A calendar date from today up to five years ahead.
    fn date(&mut self, field: &str, value: &Value, today: NaiveDate) -> Option<NaiveDate> {
        let Value::String(raw) = value else {
            self.add(field, "must be a date string like 2026-04-15");
            return None;
        };
        // Strict calendar date: chrono would also accept e.g. "+2026-04-15".
        let well_formed = raw.len() == 10 && raw.bytes().enumerate().all(|(i, b)| matches!(i, 4 | 7) == (b == b'-'));
        let Some(date) = well_formed.then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()).flatten() else {
            self.add(field, "must be a calendar date in the form YYYY-MM-DD");
            return None;
        };
        if date < today {
            self.add(field, "must not be in the past");
            return None;
        }
        let latest = today.checked_add_days(Days::new(MAX_DEADLINE_DAYS_AHEAD)).unwrap_or(NaiveDate::MAX);
        if date > latest {
            self.add(field, "must be within five years");
            return None;
        }
        Some(date)
    }

    fn bool(&mut self, value: &Value, field: &str) -> Option<bool> {
        let parsed = value.as_bool();
        if parsed.is_none() {
            self.add(field, "must be true or false");
        }
        parsed
    }

    /// `note`: a string (empty means none) or null.
    fn note(&mut self, value: &Value) -> Option<Option<String>> {
        match value {
            Value::Null => Some(None),
            Value::String(s) if s.chars().count() > MAX_NOTE_CHARS => {
                self.add("note", format!("must be at most {MAX_NOTE_CHARS} characters"));
                None
            }
            Value::String(s) if s.trim().is_empty() => Some(None),
            Value::String(s) => Some(Some(s.clone())),
            _ => {
                self.add("note", "must be a string or null");
                None
            }
        }
    }

    /// `recurrence`: `{"everyMonths": 1..36, "windowDays": 0..180}` (window 30 by default) or null.
    fn recurrence(&mut self, value: &Value) -> Option<Option<Recurrence>> {
        let Some(object) = value.as_object() else {
            if value.is_null() {
                return Some(None);
            }
            self.add("recurrence", "must be an object like {\"everyMonths\": 12, \"windowDays\": 30} or null");
            return None;
        };
        let before = self.0.len();
        for key in object.keys().filter(|k| !["everyMonths", "windowDays"].contains(&k.as_str())) {
            self.add(
                &format!("recurrence.{}", key.chars().take(64).collect::<String>()),
                "unknown field; expected everyMonths, windowDays",
            );
        }
        let mut whole =
            |field: &str, range: std::ops::RangeInclusive<u32>, default: Option<u32>| match object.get(field) {
                None | Some(Value::Null) if default.is_some() => default,
                None | Some(Value::Null) => {
                    self.add(&format!("recurrence.{field}"), "is required");
                    None
                }
                Some(v) => match whole_number(v).and_then(|n| u32::try_from(n).ok()).filter(|n| range.contains(n)) {
                    Some(n) => Some(n),
                    None => {
                        let (lo, hi) = (range.start(), range.end());
                        self.add(&format!("recurrence.{field}"), format!("must be a whole number from {lo} to {hi}"));
                        None
                    }
                },
            };
        let every_months = whole("everyMonths", 1..=MAX_EVERY_MONTHS, None);
        let window_days = whole("windowDays", 0..=MAX_WINDOW_DAYS, Some(DEFAULT_WINDOW_DAYS));
        if let (Some(months), Some(days)) = (every_months, window_days)
            && days >= months * 28
        {
            // The next cycle must open after the last one is done, not the day after every completion.
            self.add(
                "recurrence.windowDays",
                format!("must be shorter than everyMonths (at most {} days)", months * 28 - 1),
            );
        }
        if self.0.len() > before {
            return None;
        }
        Some(Some(Recurrence { every_months: every_months?, window_days: window_days? }))
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ValidationError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(ValidationError::Fields(self.0)),
        }
    }
}

/// A JSON number that is a whole number: `7` or, as JSON Schema counts integers, `7.0`.
fn whole_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value.as_f64().filter(|n| n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(n)).map(|n| n as u64)
    })
}

/// Errors for unknown names (body fields or query parameters): at most [`MAX_REPORTED_UNKNOWN`] named,
/// the rest counted. Names are cut to 64 characters.
pub fn unknown_field_errors<S: AsRef<str>>(unknown: &[S], what: &str, allowed: &[&str]) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = unknown
        .iter()
        .take(MAX_REPORTED_UNKNOWN)
        .map(|name| FieldError {
            field: name.as_ref().chars().take(64).collect(),
            message: format!("unknown {what}; expected one of: {}", allowed.join(", ")),
        })
        .collect();
    if unknown.len() > MAX_REPORTED_UNKNOWN {
        errors.push(FieldError {
            field: "*".into(),
            message: format!("{} more unknown {what}s", unknown.len() - MAX_REPORTED_UNKNOWN),
        });
    }
    errors
}

/// Validates a create body. `today` is the current UTC date: deadlines before it are refused.
pub fn validate_create(body: &Value, today: NaiveDate) -> Result<NewAssignment, ValidationError> {
    let body = body.as_object().ok_or(ValidationError::NotAnObject)?;
    let mut errors = Errors::default();
    errors.unknown_fields(body, CREATE_FIELDS);

    let area: Option<ContentArea> = errors.wire_enum(body, "contentArea", ContentArea::expected());
    let target_type: Option<TargetType> = errors.wire_enum(body, "targetType", TargetType::expected());
    if let (Some(area), Some(target_type)) = (area, target_type)
        && !target_type.belongs_to(area)
    {
        errors.add("targetType", format!("'{target_type}' is not a target of content area '{area}'"));
    }
    // Ids are kept in their canonical form only, so another spelling of the same id is the same target.
    let target_id = errors.required_str(body, "targetId").and_then(|id| {
        let canonical = match target_type {
            Some(TargetType::CustomCourse) => canonical_uuid(id),
            _ => Slug::parse(id).ok().map(String::from),
        };
        if canonical.is_none() {
            let what = if target_type == Some(TargetType::CustomCourse) { "a course UUID" } else { "a catalog slug" };
            errors.add("targetId", format!("must be {what}"));
        }
        canonical
    });

    let assignee_type: Option<AssigneeType> = errors.wire_enum(body, "assigneeType", AssigneeType::expected());
    let assignee_id = errors.required_str(body, "assigneeId").and_then(|id| {
        let canonical = match assignee_type {
            Some(AssigneeType::Org) => OrgId::parse(id).ok().map(String::from),
            _ => canonical_uuid(id),
        };
        if canonical.is_none() {
            let what = if assignee_type == Some(AssigneeType::Org) { "the organization id" } else { "a UUID" };
            errors.add("assigneeId", format!("must be {what}"));
        }
        canonical
    });

    let due_in_days = match body.get("dueInDays") {
        None | Some(Value::Null) => None,
        Some(value) => match whole_number(value).filter(|d| (1..=u64::from(MAX_DUE_IN_DAYS)).contains(d)) {
            Some(days) => u32::try_from(days).ok(),
            None => {
                errors.add("dueInDays", format!("must be a whole number of days from 1 to {MAX_DUE_IN_DAYS}"));
                None
            }
        },
    };
    let deadline = match (body.get("deadline"), body.get("dueInDays")) {
        (None | Some(Value::Null), None | Some(Value::Null)) => {
            errors.add("deadline", "is required");
            None
        }
        (None | Some(Value::Null), Some(_)) => {
            due_in_days.and_then(|days| today.checked_add_days(Days::new(u64::from(days))))
        }
        (Some(_), Some(days)) if !days.is_null() => {
            errors.add("dueInDays", "give either deadline or dueInDays, not both");
            None
        }
        (Some(value), _) => errors.deadline(value, today),
    };
    let new_starters_only = body.get("newStartersOnly").map_or(Some(false), |v| errors.bool(v, "newStartersOnly"));
    if new_starters_only == Some(true) {
        if !matches!(assignee_type, Some(AssigneeType::Org | AssigneeType::Team)) {
            errors.add("newStartersOnly", "applies to assigneeType org or team");
        }
        if body.get("dueInDays").is_none_or(Value::is_null) {
            errors.add("dueInDays", "is required with newStartersOnly (each new starter's days to finish)");
        }
    }
    let is_mandatory = body.get("isMandatory").map_or(Some(true), |v| errors.bool(v, "isMandatory"));
    let note = body.get("note").map_or(Some(None), |v| errors.note(v));
    let recurrence = body.get("recurrence").map_or(Some(None), |v| errors.recurrence(v));

    let built = (|| {
        Some(NewAssignment {
            target: Target { content_area: area?, target_type: target_type?, target_id: target_id? },
            assignee: Assignee { assignee_type: assignee_type?, assignee_id: assignee_id? },
            deadline: deadline?,
            due_in_days,
            new_starters_only: new_starters_only?,
            recurrence: recurrence?,
            is_mandatory: is_mandatory?,
            note: note?,
        })
    })();
    errors.finish(built)
}

/// Validates a patch body: only deadline, isMandatory, note (null clears), isActive and recurrence
/// (null stops it).
pub fn validate_patch(body: &Value, today: NaiveDate) -> Result<Patch, ValidationError> {
    let body = body.as_object().ok_or(ValidationError::NotAnObject)?;
    let immutable: Vec<String> = body.keys().filter(|k| IMMUTABLE_FIELDS.contains(&k.as_str())).cloned().collect();
    if !immutable.is_empty() {
        return Err(ValidationError::Immutable(immutable));
    }
    let mut errors = Errors::default();
    errors.unknown_fields(body, PATCHABLE_FIELDS);
    if body.is_empty() {
        errors.add("body", format!("must set at least one of: {}", PATCHABLE_FIELDS.join(", ")));
    }
    let mut patch = Patch::default();
    if let Some(value) = body.get("deadline") {
        patch.deadline = errors.deadline(value, today);
    }
    if let Some(value) = body.get("isMandatory") {
        patch.is_mandatory = errors.bool(value, "isMandatory");
    }
    if let Some(value) = body.get("note") {
        patch.note = errors.note(value);
    }
    if let Some(value) = body.get("isActive") {
        patch.is_active = errors.bool(value, "isActive");
    }
    if let Some(value) = body.get("recurrence") {
        patch.recurrence = errors.recurrence(value);
    }
    errors.finish(Some(patch))
}

mod learner;
pub use learner::{MAX_REASON_CHARS, validate_learner_patch};

#[cfg(test)]
mod tests;
