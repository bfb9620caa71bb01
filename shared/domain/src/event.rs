//! The service's events, one type per EventBridge detail type: the events it publishes (source
//! `assignments`) and the work requests it sends itself. Each type is the one home of its detail's
//! shape: the producer serialises it ([`DomainEvent::new`]) and the consumers and workers parse it
//! ([`DomainEvent::detail_as`], [`parse`]); its detail type is [`Event::DETAIL_TYPE`] and nowhere else.
//!
//! An event is written to the table's outbox in the transaction of the change it announces and sent
//! from there, so it carries its own id: a consumer that sees the same id twice (delivery is at least
//! once) drops the second. Every detail carries the data as of that commit (a snapshot), so a webhook
//! consumer needs nothing else to act on it.
//!
//! The platform's events this service consumes are parsed by `events::platform`, whose detail types
//! implement [`Event`] too.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::assignment::{AssignmentResource, AssignmentSummary};
use crate::directory::User;
use crate::ids::{AssignmentId, OrgId, TeamId, UserId};
use crate::progress::{ProgressRow, UserStatus};

/// An event type: the detail of one EventBridge detail type.
pub trait Event {
    /// Its EventBridge `detail-type`.
    const DETAIL_TYPE: &'static str;
}

/// A detail as it goes out: what every event of the service carries, and the event's own fields
/// (`E`, flattened into the same object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail<E> {
    /// The event's id (also the EventBridge entry's): a consumer drops an id it has seen.
    pub event_id: Uuid,
    /// The org (tenant) the event belongs to.
    pub org_id: OrgId,
    /// When the change it announces was made (a completion: when the learner completed).
    pub occurred_at: DateTime<Utc>,
    /// The event's own fields.
    #[serde(flatten)]
    pub event: E,
}

/// One event on its way out: its id (also `detail.eventId`), EventBridge detail type, detail and
/// time. The detail is kept as JSON: it is stored in the outbox and read back as such.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    pub id: Uuid,
    pub detail_type: String,
    pub detail: Value,
    pub time: DateTime<Utc>,
}

impl DomainEvent {
    /// `event` of `org` made at `at`, under `id`: its detail is the [`Detail`] of `event`.
    pub fn new<E: Event + Serialize>(id: Uuid, org: &OrgId, at: DateTime<Utc>, event: &E) -> DomainEvent {
        let detail = Detail { event_id: id, org_id: org.clone(), occurred_at: at, event };
        // Serialising a detail cannot fail: its fields are ids, strings, numbers, booleans, dates and
        // structs of them, and no map has keys other than strings (the round-trip test goes through
        // every type).
        let detail = serde_json::to_value(&detail).unwrap_or_default();
        DomainEvent { id, detail_type: E::DETAIL_TYPE.to_owned(), detail, time: at }
    }

    /// Whether this is an event of type `E`.
    pub fn is<E: Event>(&self) -> bool {
        self.detail_type == E::DETAIL_TYPE
    }

    /// The detail as `E`'s; `Err` if this is another type's event or its detail does not fit.
    pub fn detail_as<E: Event + DeserializeOwned>(&self) -> Result<Detail<E>, ParseError> {
        parse(&self.detail_type, &self.detail)
    }

    /// The same request again under a new id made at `at` (`detail.eventId` too): a request handed on
    /// from a lane's line is a new outbox entry, whose item is named by its first event's id.
    pub fn reissued(&self, id: Uuid, at: DateTime<Utc>) -> DomainEvent {
        let mut detail = self.detail.clone();
        if let Some(obj) = detail.as_object_mut() {
            obj.insert("eventId".into(), Value::String(id.to_string()));
        }
        DomainEvent { id, detail_type: self.detail_type.clone(), detail, time: at }
    }
}

/// The org a detail names (its `orgId`, which every detail carries); `None` if it names none.
pub fn org_of(detail: &Value) -> Option<OrgId> {
    detail.get("orgId").and_then(Value::as_str).and_then(|o| OrgId::parse(o).ok())
}

/// Why a detail is not the detail of an event type. The reason never quotes a value of the detail
/// (serde's messages do: `invalid type: string "ada@example.com"`), so it can be logged without
/// personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("detail-type {found:?} is not {expected}")]
    OtherType { expected: &'static str, found: String },
    #[error("detail is missing the field {0}")]
    MissingField(String),
    #[error("a detail field has the wrong type or value")]
    Invalid,
}

/// The detail of an event of `detail_type` as `E`'s ([`Detail`]: with the id, org and time).
pub fn parse<E: Event + DeserializeOwned>(detail_type: &str, detail: &Value) -> Result<Detail<E>, ParseError> {
    if detail_type != E::DETAIL_TYPE {
        return Err(ParseError::OtherType { expected: E::DETAIL_TYPE, found: detail_type.chars().take(64).collect() });
    }
    fields(detail)
}

/// `detail` (or a part of it) as `T`, with a [`ParseError`] that quotes no value of it.
pub fn fields<T: DeserializeOwned>(detail: &Value) -> Result<T, ParseError> {
    serde_json::from_value(detail.clone()).map_err(|e| {
        let message = e.to_string();
        match message.strip_prefix("missing field ") {
            Some(field) if !field.contains('"') => ParseError::MissingField(field.to_owned()),
            _ => ParseError::Invalid,
        }
    })
}

/// A worker's lane: the work requests the service sends itself go to a worker's queue, not the bus, and
/// each org has one request of a lane running (or queued to run) at a time while its others wait in line
/// (`service::lanes`), so one org's backlog never keeps another org's request from running next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// [`RosterRequested`] and [`ComplianceSyncRequested`]: the roster worker.
    Roster,
    /// [`ExportRequested`]: the export worker.
    Export,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Roster, Lane::Export];

    /// The lane of a work request's detail type; `None` for an event for the bus.
    pub fn of(detail_type: &str) -> Option<Lane> {
        if detail_type == RosterRequested::DETAIL_TYPE || detail_type == ComplianceSyncRequested::DETAIL_TYPE {
            Some(Lane::Roster)
        } else if detail_type == ExportRequested::DETAIL_TYPE {
            Some(Lane::Export)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Roster => "roster",
            Lane::Export => "export",
        }
    }
}

/// A work request as its worker reads it: the org it is for and the request's own fields. The id and
/// time are not read: an operator's direct invocation of a worker may leave them out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkRequest<E> {
    /// The org the request is for.
    pub org_id: OrgId,
    /// The request's own fields.
    #[serde(flatten)]
    pub request: E,
}

impl<E: Event + DeserializeOwned> WorkRequest<E> {
    /// The request in `detail` (a message's, whatever its detail type says).
    pub fn of(detail: &Value) -> Result<Self, ParseError> {
        fields(detail)
    }
}

mod catalog;
mod changes;
mod notices;
mod parts;
mod samples;
mod scanning;
mod work;

pub use catalog::*;
pub use changes::*;
pub use notices::*;
pub use parts::*;
pub use scanning::*;
pub use work::*;

#[cfg(test)]
mod tests;
