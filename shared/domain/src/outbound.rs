//! A domain event on its way out (EventBridge source `assignments`). It is written to the table's outbox
//! in the transaction of the change it announces and sent from there, so it carries its own id: a
//! consumer that sees the same id twice (delivery is at least once) drops the second.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// One event: its id (also `detail.eventId`), EventBridge detail type, detail and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    pub id: Uuid,
    pub detail_type: String,
    pub detail: Value,
    pub time: DateTime<Utc>,
}

impl DomainEvent {
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

/// A worker's lane: the work requests the service sends itself go to a worker's queue, not the bus, and
/// each org has one request of a lane running (or queued to run) at a time while its others wait in line
/// (`service::lanes`), so one org's backlog never keeps another org's request from running next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// `assignment.roster_requested` and `assignment.compliance_sync_requested`: the roster worker.
    Roster,
    /// `export.requested`: the export worker.
    Export,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Roster, Lane::Export];

    /// The lane of a work request's detail type; `None` for an event for the bus.
    pub fn of(detail_type: &str) -> Option<Lane> {
        match detail_type {
            "assignment.roster_requested" | "assignment.compliance_sync_requested" => Some(Lane::Roster),
            "export.requested" => Some(Lane::Export),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Roster => "roster",
            Lane::Export => "export",
        }
    }
}
