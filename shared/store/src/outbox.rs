//! The transactional outbox: the domain events of a change are one item written in the change's own
//! transaction, so they exist exactly when the change does. The table's stream carries each new outbox
//! item to the publisher (`outbox-publisher`), which sends its events; the item expires a week later.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{ComplianceTransition, DomainEvent, OrgId, ProgressRow, User, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dynamo::to_item;
use crate::records::{OutboxRecord, Record};
use crate::tx::Transaction;
use crate::{RowChange, Store, StoreError, keys};

/// The `entity` of an outbox item: what the stream's filter and the publisher pick out.
pub const OUTBOX_ENTITY: &str = "outbox";
/// Events one item holds at most (one transaction's; a roster chunk's `user_added` are the most).
pub const MAX_EVENTS_PER_ITEM: usize = 100;
/// What the events of one item may take (DynamoDB's item limit is 400 KB; the rest is keys and names).
const MAX_EVENT_BYTES: usize = 350 * 1024;
/// How long an outbox item stays after it is written: long past the stream's 24-hour retention.
const KEEP_DAYS: i64 = 7;

/// One transaction's events, as stored: details as JSON text so they come back byte for byte.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OutboxBatch {
    events: Vec<StoredEvent>,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEvent {
    id: Uuid,
    detail_type: String,
    detail: String,
    time: DateTime<Utc>,
}

impl From<&DomainEvent> for StoredEvent {
    fn from(e: &DomainEvent) -> Self {
        StoredEvent { id: e.id, detail_type: e.detail_type.clone(), detail: e.detail.to_string(), time: e.time }
    }
}

impl Store {
    /// Commits `events` alone (a request a worker takes from the bus): one outbox item, written once
    /// however often this is retried with the same events.
    pub async fn commit_events(&self, org: &OrgId, events: &[DomainEvent]) -> Result<(), StoreError> {
        let mut tx = self.transaction();
        tx.outbox(org, events)?;
        match tx.commit().await {
            Ok(()) => Ok(()),
            // Written already by an earlier attempt with the same events.
            Err(crate::tx::TxFailure::Cancelled(reasons)) if reasons.first().is_some_and(|r| r.condition_failed()) => {
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }
}

impl Transaction<'_> {
    /// Adds `events` to this transaction's outbox item (none when there are no events). Their first id
    /// names the item, so a retried transaction that carries the same events writes the same item; it
    /// expires [`KEEP_DAYS`] after the events were made: the latest of their ids' UUIDv7 times (when
    /// the use case built them) and their own times (which may be older: a join's or a completion's).
    pub(crate) fn outbox(&mut self, org: &OrgId, events: &[DomainEvent]) -> Result<Option<usize>, StoreError> {
        let Some(first) = events.first() else { return Ok(None) };
        if events.len() > MAX_EVENTS_PER_ITEM {
            return Err(StoreError::Other(format!(
                "{} events in one transaction; at most {MAX_EVENTS_PER_ITEM}",
                events.len()
            )));
        }
        let stored: Vec<StoredEvent> = events.iter().map(StoredEvent::from).collect();
        let bytes: usize = stored.iter().map(|e| e.detail.len() + e.detail_type.len() + 80).sum();
        if bytes > MAX_EVENT_BYTES {
            return Err(StoreError::Other(format!(
                "events of {bytes} bytes in one transaction; at most {MAX_EVENT_BYTES}"
            )));
        }
        let record = OutboxRecord {
            pk: keys::outbox_pk(org, first.id),
            sk: keys::OUTBOX_SK.to_owned(),
            entity: OUTBOX_ENTITY.to_owned(),
            batch: OutboxBatch { events: stored, expires_at: expires_at(events) },
        };
        Ok(Some(self.put(to_item(&record)?, Some("attribute_not_exists(PK)"))?))
    }
}

/// When an outbox item of `events` expires (seconds since the epoch, for the table's TTL): [`KEEP_DAYS`]
/// after the latest of their ids' UUIDv7 times (when the use case built them) and their own times
/// (a join's or a completion's may be long past; a test clock's may be ahead).
fn expires_at(events: &[DomainEvent]) -> i64 {
    let made = |e: &DomainEvent| {
        let built = e.id.get_timestamp().and_then(|t| {
            let (secs, nanos) = t.to_unix();
            DateTime::<Utc>::from_timestamp(i64::try_from(secs).ok()?, nanos)
        });
        built.map_or(e.time, |built| built.max(e.time))
    };
    events.iter().map(made).max().map_or(0, |latest| (latest + chrono::Duration::days(KEEP_DAYS)).timestamp())
}

/// What a write is about to commit, as the announcer sees it (before the transaction, and again on
/// each retry: the events commit with exactly the change they announce).
#[derive(Debug, Clone, Copy)]
pub enum Written<'a> {
    /// An existing row changed (progress, membership, an admin's override, a re-derivation).
    Row(&'a RowChange),
    /// A new row joined the roster (`row.removed_at` set: a leave's tombstone), and the learner's
    /// change of compliance with it, if announced.
    Added { row: &'a ProgressRow, compliance: Option<ComplianceTransition> },
    /// Only the learner's compliance changed (a rule change, a team move, the clock).
    Compliance(&'a ComplianceTransition),
}

impl Written<'_> {
    /// The learner the write is about.
    pub fn user_id(&self) -> UserId {
        match self {
            Written::Row(change) => change.after.user_id,
            Written::Added { row, .. } => row.user_id,
            Written::Compliance(t) => t.user_id,
        }
    }

    /// The learner's change of compliance that the write announces, if any.
    pub fn compliance(&self) -> Option<&ComplianceTransition> {
        match self {
            Written::Row(change) => change.compliance.as_ref(),
            Written::Added { compliance, .. } => compliance.as_ref(),
            Written::Compliance(t) => Some(t),
        }
    }
}

/// The caller's event builders: the events a [`Written`] change announces, given the learner's profile
/// (their names; `None` while the projection does not have them). The store reads the profile only
/// for a change that announces something.
pub type Announce<'a> = &'a (dyn Fn(&Written<'_>, Option<&User>) -> Vec<DomainEvent> + Sync);

/// An announcer for writes that announce nothing (seeding, benchmarks, the rest of a new roster, whose
/// `assignment.created` speaks for it).
pub fn announce_nothing(_: &Written<'_>, _: Option<&User>) -> Vec<DomainEvent> {
    Vec::new()
}

impl Store {
    /// The events `announce` gives for `written`, with the learners' names: asked first without a
    /// profile, and only when that gives events are the learners' profiles read (one BatchGetItem).
    pub(crate) async fn announced(
        &self,
        org: &OrgId,
        written: &[Written<'_>],
        announce: Announce<'_>,
    ) -> Result<Vec<DomainEvent>, StoreError> {
        let named: Vec<&Written<'_>> = written.iter().filter(|w| !announce(w, None).is_empty()).collect();
        if named.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<UserId> = named.iter().map(|w| w.user_id()).collect();
        ids.sort();
        ids.dedup();
        let profiles: HashMap<UserId, User> =
            self.get_users(org, &ids).await?.into_iter().map(|u| (u.user_id, u)).collect();
        Ok(named.into_iter().flat_map(|w| announce(w, profiles.get(&w.user_id()))).collect())
    }
}

/// The events of a stream record's new image (DynamoDB JSON, as Lambda delivers it): `None` for an item
/// that is not an outbox item, an error for an outbox item that cannot be read.
pub fn outbox_events(new_image: &serde_json::Value) -> Result<Option<Vec<DomainEvent>>, StoreError> {
    if new_image.pointer("/entity/S").and_then(serde_json::Value::as_str) != Some(OUTBOX_ENTITY) {
        return Ok(None);
    }
    let item: serde_dynamo::Item =
        serde_json::from_value(new_image.clone()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let record: OutboxRecord = serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let batch = record.into_entity();
    batch
        .events
        .into_iter()
        .map(|e| {
            let detail = serde_json::from_str(&e.detail).map_err(|err| StoreError::Corrupt(err.to_string()))?;
            Ok(DomainEvent { id: e.id, detail_type: e.detail_type, detail, time: e.time })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(n: u32) -> DomainEvent {
        DomainEvent {
            id: Uuid::now_v7(),
            detail_type: "assignment.user_added".into(),
            detail: json!({"n": n, "big": 9_007_199_254_740_993_u64, "text": "a \"quoted\" ü"}),
            time: "2026-03-01T12:00:00Z".parse().unwrap(),
        }
    }

    /// What Lambda delivers as `NewImage`: the item in DynamoDB JSON.
    fn stream_image(item: crate::dynamo::Item) -> serde_json::Value {
        let item: std::collections::HashMap<String, serde_dynamo::AttributeValue> =
            item.into_iter().map(|(k, v)| (k, v.into())).collect();
        serde_json::to_value(item).unwrap()
    }

    fn record(org: &OrgId, events: &[DomainEvent]) -> crate::dynamo::Item {
        let batch = OutboxBatch { events: events.iter().map(StoredEvent::from).collect(), expires_at: 0 };
        let first = events[0].id;
        to_item(&OutboxRecord {
            pk: keys::outbox_pk(org, first),
            sk: keys::OUTBOX_SK.into(),
            entity: OUTBOX_ENTITY.into(),
            batch,
        })
        .unwrap()
    }

    #[test]
    fn a_stream_image_gives_back_the_events_exactly() {
        let org = OrgId::parse("acme").unwrap();
        let events: Vec<_> = (0..3).map(event).collect();
        let image = stream_image(record(&org, &events));
        assert_eq!(image["entity"], json!({"S": "outbox"}));
        assert_eq!(outbox_events(&image).unwrap(), Some(events));
    }

    #[test]
    fn an_item_expires_a_week_after_its_events_were_made_however_old_their_own_times() {
        let built = |id: Uuid| {
            let (secs, _) = id.get_timestamp().unwrap().to_unix();
            i64::try_from(secs).unwrap()
        };
        let old = event(1);
        let week = KEEP_DAYS * 86_400;
        assert!((expires_at(std::slice::from_ref(&old)) - (built(old.id) + week)).abs() <= 1, "from the id's time");
        let mut ahead = event(2);
        ahead.time = "2999-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(expires_at(&[old, ahead.clone()]), (ahead.time + chrono::Duration::days(KEEP_DAYS)).timestamp());
    }

    #[test]
    fn other_items_are_not_outbox_items_and_a_broken_one_is_an_error() {
        assert_eq!(outbox_events(&json!({"entity": {"S": "assignment"}, "PK": {"S": "x"}})).unwrap(), None);
        assert_eq!(outbox_events(&json!({})).unwrap(), None);
        let broken = json!({"entity": {"S": "outbox"}, "PK": {"S": "x"}, "SK": {"S": "EVENTS"}, "events": {"S": "?"}});
        assert!(matches!(outbox_events(&broken), Err(StoreError::Corrupt(_))));
    }
}
