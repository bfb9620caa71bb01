//! A customer's webhook endpoint: what it is (URL, description, the event types it subscribes to, the
//! active toggle), where its deliveries stand (health, backlog) and what a client may send to make or
//! change one. The signing secret is not part of it: it is sealed (encrypted) by the service and only
//! the delivery ever opens it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::delivery::Health;
use super::{EndpointUrl, MAX_DESCRIPTION_CHARS};
use crate::validation::{FieldError, ValidationError, unknown_field_errors};

/// Most deliveries of one endpoint waiting for an attempt. Past it, a new event's delivery is recorded
/// `failed` at once ("backlog full"), so nothing is lost: `recover` sends those again once the
/// receiver catches up.
pub const MAX_BACKLOG: u64 = 10_000;
/// Most event types one endpoint may subscribe to (more than the catalog holds).
pub const MAX_SUBSCRIBED: usize = 32;

/// What a client may send to create an endpoint (wire names).
pub const CREATE_FIELDS: &[&str] = &["url", "description", "events", "isActive"];
/// What a client may change.
pub const PATCHABLE_FIELDS: &[&str] = CREATE_FIELDS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// The event types delivered to it (each one of the catalog's).
    pub events: Vec<String>,
    /// Turned off by an admin: nothing is queued for it while off.
    pub is_active: bool,
    /// When a delivery spent its schedule and the endpoint was disabled; turning it active clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since when it takes events: its creation, or when it was last turned back on (an event that
    /// happened while it was off, or before it existed, is not queued for it, however late the bus
    /// brings it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<DateTime<Utc>>,
    /// Whether its last attempt delivered; `None` before any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Its deliveries waiting for an attempt (counted as they are recorded and as they end).
    #[serde(default)]
    pub pending: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl Endpoint {
    /// A new endpoint `id` made at `now` as `new` says: no delivery yet, taking events from `now`.
    pub fn new(id: Uuid, new: NewEndpoint, now: DateTime<Utc>) -> Self {
        Endpoint {
            id,
            url: new.url.as_str().to_owned(),
            description: new.description,
            events: new.events,
            is_active: new.is_active,
            disabled_at: None,
            active_since: Some(now),
            last_delivered: None,
            last_attempt_at: None,
            pending: 0,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    pub fn health(&self) -> Health {
        Health::of(self.last_delivered, self.disabled_at.is_some())
    }

    /// Whether an event of `event_type` that happened at `at` is queued for it now.
    pub fn takes(&self, event_type: &str, at: DateTime<Utc>) -> bool {
        self.is_active
            && self.disabled_at.is_none()
            && self.active_since.is_none_or(|since| at >= since)
            && self.events.iter().any(|e| e == event_type)
    }
}

/// A validated create body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: EndpointUrl,
    pub description: String,
    pub events: Vec<String>,
    pub is_active: bool,
}

/// A validated patch: the fields sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPatch {
    pub url: Option<EndpointUrl>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

impl EndpointPatch {
    /// The endpoint after the patch at `now` (not yet its version). Turning it active clears `disabled`
    /// and starts it taking events from `now`.
    pub fn apply(&self, endpoint: &Endpoint, now: DateTime<Utc>) -> Endpoint {
        let mut next = endpoint.clone();
        if let Some(url) = &self.url {
            next.url = url.as_str().to_owned();
        }
        if let Some(description) = &self.description {
            next.description.clone_from(description);
        }
        if let Some(events) = &self.events {
            next.events.clone_from(events);
        }
        if let Some(active) = self.is_active {
            let resumed = active && (!endpoint.is_active || endpoint.disabled_at.is_some());
            next.is_active = active;
            if active {
                next.disabled_at = None;
            }
            if resumed {
                next.active_since = Some(now);
            }
        }
        next.updated_at = now;
        next
    }
}

/// How an endpoint URL is judged: by the rules of [`EndpointUrl::parse`] (every deployed function), or
/// also admitting what only the local stack may reach (its receivers on loopback).
pub type UrlRule = fn(&str) -> Result<EndpointUrl, super::UrlError>;

/// Checks a create body: every problem at once, per field. `known` are the event types an endpoint may
/// subscribe to.
pub fn validate_new(body: &Value, rule: UrlRule, known: &[&str]) -> Result<NewEndpoint, ValidationError> {
    let body = body.as_object().ok_or(ValidationError::NotAnObject)?;
    let mut errors = unknown(body, CREATE_FIELDS);
    let url = match body.get("url") {
        None | Some(Value::Null) => {
            errors.push(error("url", "is required"));
            None
        }
        Some(value) => url(value, rule, &mut errors),
    };
    let description = description(body.get("description"), &mut errors).unwrap_or_default();
    let events = match body.get("events") {
        None | Some(Value::Null) => {
            errors.push(error("events", "is required"));
            None
        }
        Some(value) => events(value, known, &mut errors),
    };
    let is_active = flag(body.get("isActive"), &mut errors).unwrap_or(true);
    match (url, events) {
        (Some(url), Some(events)) if errors.is_empty() => Ok(NewEndpoint { url, description, events, is_active }),
        _ => Err(ValidationError::Fields(errors)),
    }
}

/// Checks a patch body: only the fields sent change; an empty patch is refused.
pub fn validate_patch(body: &Value, rule: UrlRule, known: &[&str]) -> Result<EndpointPatch, ValidationError> {
    let body = body.as_object().ok_or(ValidationError::NotAnObject)?;
    let mut errors = unknown(body, PATCHABLE_FIELDS);
    if body.is_empty() {
        errors.push(error("body", format!("must change at least one of: {}", PATCHABLE_FIELDS.join(", "))));
    }
    let patch = EndpointPatch {
        url: body.get("url").and_then(|value| url(value, rule, &mut errors)),
        description: description(body.get("description"), &mut errors),
        events: body.get("events").and_then(|value| events(value, known, &mut errors)),
        is_active: flag(body.get("isActive"), &mut errors),
    };
    if errors.is_empty() { Ok(patch) } else { Err(ValidationError::Fields(errors)) }
}

fn error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_owned(), message: message.into() }
}

fn unknown(body: &Map<String, Value>, allowed: &[&str]) -> Vec<FieldError> {
    let names: Vec<&String> = body.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
    unknown_field_errors(&names, "field", allowed)
}

fn url(value: &Value, rule: UrlRule, errors: &mut Vec<FieldError>) -> Option<EndpointUrl> {
    let Some(raw) = value.as_str() else {
        errors.push(error("url", "must be a string"));
        return None;
    };
    rule(raw).map_err(|reason| errors.push(error("url", reason.to_string()))).ok()
}

fn description(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        None => None,
        Some(Value::Null) => Some(String::new()),
        Some(Value::String(text)) if text.chars().count() <= MAX_DESCRIPTION_CHARS => Some(text.trim().to_owned()),
        Some(Value::String(_)) => {
            errors.push(error("description", format!("must be at most {MAX_DESCRIPTION_CHARS} characters")));
            None
        }
        Some(_) => {
            errors.push(error("description", "must be a string"));
            None
        }
    }
}

fn flag(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<bool> {
    match value {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push(error("isActive", "must be true or false"));
            None
        }
    }
}

/// The subscribed types: a non-empty list of the catalog's, each once, in the order sent.
fn events(value: &Value, known: &[&str], errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
    let Some(list) = value.as_array() else {
        errors.push(error("events", "must be an array of event types"));
        return None;
    };
    if list.is_empty() || list.len() > MAX_SUBSCRIBED {
        errors.push(error("events", format!("must name between 1 and {MAX_SUBSCRIBED} event types")));
        return None;
    }
    let mut events: Vec<String> = Vec::with_capacity(list.len());
    let mut bad = Vec::new();
    for item in list {
        match item.as_str() {
            Some(name) if known.contains(&name) => {
                if !events.iter().any(|e| e == name) {
                    events.push(name.to_owned());
                }
            }
            Some(name) => bad.push(name.chars().take(64).collect::<String>()),
            None => bad.push(item.to_string().chars().take(64).collect()),
        }
    }
    if bad.is_empty() {
        return Some(events);
    }
    errors.push(error(
        "events",
        format!(
            "unknown event types: {}; see GET /webhook-endpoints/events",
            bad.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ),
    ));
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KNOWN: &[&str] = &["assignment.created", "assignment.completed"];

    fn fields(err: ValidationError) -> Vec<String> {
        match err {
            ValidationError::Fields(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_create_body_is_checked_field_by_field() {
        let ok = validate_new(
            &json!({"url": "https://hooks.example.com/in", "events": ["assignment.created", "assignment.created"]}),
            EndpointUrl::parse,
            KNOWN,
        )
        .unwrap();
        assert_eq!(ok.events, ["assignment.created"], "each type once");
        assert!(ok.is_active, "active unless sent otherwise");
        let err = validate_new(
            &json!({"url": "http://10.0.0.1/", "events": ["assignment.roster_requested"], "description": "x".repeat(256), "isActive": "yes", "extra": 1}),
            EndpointUrl::parse,
            KNOWN,
        )
        .unwrap_err();
        assert_eq!(fields(err), ["extra", "url", "description", "events", "isActive"]);
        assert_eq!(fields(validate_new(&json!({}), EndpointUrl::parse, KNOWN).unwrap_err()), ["url", "events"]);
        assert_eq!(
            fields(
                validate_new(&json!({"url": "https://a.example/", "events": []}), EndpointUrl::parse, KNOWN)
                    .unwrap_err()
            ),
            ["events"]
        );
    }

    #[test]
    fn a_patch_changes_what_it_sends_and_turning_active_clears_disabled() {
        assert_eq!(fields(validate_patch(&json!({}), EndpointUrl::parse, KNOWN).unwrap_err()), ["body"]);
        let patch = validate_patch(&json!({"isActive": true}), EndpointUrl::parse, KNOWN).unwrap();
        let now = DateTime::UNIX_EPOCH;
        let endpoint = Endpoint {
            id: Uuid::nil(),
            url: "https://a.example/".into(),
            description: String::new(),
            events: vec!["assignment.created".into()],
            is_active: false,
            disabled_at: Some(now),
            active_since: Some(now),
            last_delivered: Some(false),
            last_attempt_at: Some(now),
            pending: 0,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        assert_eq!(endpoint.health(), Health::Disabled);
        assert!(!endpoint.takes("assignment.created", now));
        let later = now + chrono::Duration::minutes(5);
        let after = patch.apply(&endpoint, later);
        assert_eq!((after.is_active, after.disabled_at, after.active_since), (true, None, Some(later)));
        assert_eq!(after.health(), Health::Failing, "the last attempt still failed");
        assert!(after.takes("assignment.created", later) && !after.takes("assignment.completed", later));
        assert!(!after.takes("assignment.created", now), "not what happened while it was off");
    }
}
