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
