//! The transactional outbox: the domain events of a change are one item written in the change's own
//! transaction, so they exist exactly when the change does. The table's stream carries each new outbox
//! item to the publisher (`outbox-publisher`), which sends its events and then *confirms* the item
//! (or *parks* it, when it can never be sent): until then the item is in an index of items not
//! confirmed (GSI4, [`keys::unconfirmed_pk`]), where the publisher's sweep finds what the stream gave
//! up on. The item expires a week after it was written.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{DomainEvent, OrgId, User, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dynamo::{s, to_item};
use crate::records::{Record, record};
use crate::tx::Transaction;
use crate::written::{Announce, Written};
use crate::{Store, StoreError, keys};

/// When the publisher confirmed an outbox item.
const PUBLISHED_AT: &str = "publishedAt";
/// The `entity` of an outbox item: what the stream's filter and the publisher pick out.
pub const OUTBOX_ENTITY: &str = "outbox";
/// Events one item holds at most (one transaction's; a roster chunk's `user_added` are the most).
pub const MAX_EVENTS_PER_ITEM: usize = 100;
/// What the events of one item may take (DynamoDB's item limit is 400 KB; the rest is keys and names).
const MAX_EVENT_BYTES: usize = 350 * 1024;
/// How long an outbox item stays after it is written: long past the stream's 24-hour retention.
pub const OUTBOX_KEEP_DAYS: i64 = 7;

/// One transaction's events, as stored: details as JSON text so they come back byte for byte.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OutboxBatch {
    events: Vec<StoredEvent>,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
}

record!(
    /// One transaction's domain events (see `outbox`); expires by TTL. GSI4 only until the publisher
    /// confirms (or parks) it: the sweep's index of items not confirmed.
    OutboxRecord {
        gsi4pk: Option<String> = "GSI4PK",
        gsi4sk: Option<String> = "GSI4SK",
    } flatten batch: crate::outbox::OutboxBatch
);

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
    /// expires [`OUTBOX_KEEP_DAYS`] after the events were made: the latest of their ids' UUIDv7 times (when
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
            gsi4pk: Some(keys::unconfirmed_pk(first.id)),
            gsi4sk: Some(unconfirmed_sort_key(first.id)),
            batch: OutboxBatch { events: stored, expires_at: expires_at(events) },
        };
        Ok(Some(self.put(to_item(&record)?, Some("attribute_not_exists(PK)"))?))
    }
}

/// When an outbox item of `events` expires (seconds since the epoch, for the table's TTL): [`OUTBOX_KEEP_DAYS`]
/// after the latest of their ids' UUIDv7 times (when the use case built them) and their own times
/// (a join's or a completion's may be long past; a test clock's may be ahead).
fn expires_at(events: &[DomainEvent]) -> i64 {
    events.iter().map(made).max().map_or(0, |latest| (latest + chrono::Duration::days(OUTBOX_KEEP_DAYS)).timestamp())
}

/// When `event` was made: the later of its id's UUIDv7 time and its own time.
fn made(event: &DomainEvent) -> DateTime<Utc> {
    id_time(event.id).map_or(event.time, |built| built.max(event.time))
}

/// The time in a UUIDv7: when the service built it, by its own clock.
fn id_time(id: Uuid) -> Option<DateTime<Utc>> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    DateTime::<Utc>::from_timestamp(i64::try_from(secs).ok()?, nanos)
}

/// The sort key of an item not confirmed: when its first event was made by the service's clock (its
/// UUIDv7 time, never an event's own time, which a test clock may put ahead) as text that sorts by
/// time, then its id.
fn unconfirmed_sort_key(first: Uuid) -> String {
    format!("{}#{first}", id_time(first).map(sortable).unwrap_or_default())
}

fn sortable(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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

/// The key of an outbox item, as read from the item: what the publisher confirms or parks. Only an
/// outbox item's own key (`ORG#…#OUTBOX#…`) is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxKey(String);

impl OutboxKey {
    /// The key `pk`, if it is an outbox item's.
    pub fn of(pk: &str) -> Option<Self> {
        let rest = pk.strip_prefix("ORG#")?;
        let (org, id) = rest.split_once("#OUTBOX#")?;
        (OrgId::parse(org).is_ok() && Uuid::parse_str(id).is_ok()).then(|| Self(pk.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OutboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An outbox item's events, and its key.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub key: OutboxKey,
    pub events: Vec<DomainEvent>,
}

/// What an item is to the publisher.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxImage {
    /// Another entity's item: not the publisher's.
    Other,
    Item(OutboxItem),
    /// An outbox item whose events cannot be read: its key, when that can be, and why.
    Unreadable {
        key: Option<OutboxKey>,
        reason: String,
    },
}

/// What a stream record's new image (DynamoDB JSON, as Lambda delivers it) is to the publisher.
pub fn outbox_image(new_image: &serde_json::Value) -> OutboxImage {
    if new_image.pointer("/entity/S").and_then(serde_json::Value::as_str) != Some(OUTBOX_ENTITY) {
        return OutboxImage::Other;
    }
    let key = new_image.pointer("/PK/S").and_then(serde_json::Value::as_str).and_then(OutboxKey::of);
    let item = serde_json::from_value::<serde_dynamo::Item>(new_image.clone()).map_err(|e| e.to_string());
    match item.and_then(|item| outbox_item(item.into())) {
        Ok(item) => OutboxImage::Item(item),
        Err(reason) => OutboxImage::Unreadable { key, reason },
    }
}

/// An outbox item's events and key, read from the item.
fn outbox_item(item: crate::dynamo::Item) -> Result<OutboxItem, String> {
    let record: OutboxRecord = serde_dynamo::from_item(item).map_err(|e| e.to_string())?;
    let key = OutboxKey::of(&record.pk).ok_or_else(|| format!("{:?} is not an outbox item's key", record.pk))?;
    let events = record
        .into_entity()
        .events
        .into_iter()
        .map(|e| {
            let detail = serde_json::from_str(&e.detail).map_err(|err| err.to_string())?;
            Ok(DomainEvent { id: e.id, detail_type: e.detail_type, detail, time: e.time })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(OutboxItem { key, events })
}

/// An outbox item of the index of items not confirmed: its events, or why they cannot be read.
pub type Unconfirmed = Result<OutboxItem, (Option<OutboxKey>, String)>;

impl Store {
    /// Marks the outbox item `key` published at `now`: it leaves the index of items not confirmed.
    /// Nothing happens to an item that expired meanwhile.
    pub async fn confirm_outbox(&self, key: &OutboxKey, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.settle_outbox(key, PUBLISHED_AT, now, None).await
    }

    /// Marks the outbox item `key` parked at `now`, for `reason` (it can never be published as it is):
    /// it leaves the index of items not confirmed; a redrive publishes it again.
    pub async fn park_outbox(&self, key: &OutboxKey, now: DateTime<Utc>, reason: &str) -> Result<(), StoreError> {
        self.settle_outbox(key, "parkedAt", now, Some(reason)).await
    }

    async fn settle_outbox(
        &self,
        key: &OutboxKey,
        at_attribute: &str,
        now: DateTime<Utc>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let set = if reason.is_some() { "SET #at = :at, parkReason = :reason" } else { "SET #at = :at" };
        let mut request = self
            .update_request()
            .key(keys::PK, s(key.as_str()))
            .key(keys::SK, s(keys::OUTBOX_SK))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#at", at_attribute)
            .expression_attribute_values(":at", s(sortable(now)));
        if let Some(reason) = reason {
            request = request.expression_attribute_values(":reason", s(reason));
        }
        let expression = format!("{set} REMOVE {}, {}", keys::GSI4PK, keys::GSI4SK);
        match self.send_update(request.update_expression(expression)).await {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// The outbox item `key` as it is now (a redrive of a parked item): `None` once it expired or was
    /// confirmed meanwhile (nothing is left to send).
    pub async fn outbox_item(&self, key: &OutboxKey) -> Result<Option<Unconfirmed>, StoreError> {
        let item = self.get_item(key.as_str().to_owned(), keys::OUTBOX_SK, true).await?;
        Ok(item
            .filter(|item| !item.contains_key(PUBLISHED_AT))
            .map(|item| outbox_item(item).map_err(|reason| (Some(key.clone()), reason))))
    }

    /// Up to `limit` outbox items of index shard `shard` not confirmed, made at or after `from` and
    /// before `before`, oldest first (GSI4, eventually consistent: an item confirmed a moment ago
    /// may still be listed, and is then published once more), each with its index sort key.
    pub async fn unconfirmed_outbox(
        &self,
        shard: u8,
        from: DateTime<Utc>,
        before: DateTime<Utc>,
        limit: i32,
    ) -> Result<Vec<(String, Unconfirmed)>, StoreError> {
        let (items, _) = self
            .query_page(
                |q| {
                    q.index_name(keys::GSI4)
                        .key_condition_expression("GSI4PK = :pk AND GSI4SK BETWEEN :from AND :before")
                        .expression_attribute_values(":pk", s(keys::unconfirmed_shard_pk(shard)))
                        .expression_attribute_values(":from", s(sortable(from)))
                        // Every key made before `before` sorts below its time followed by `#`.
                        .expression_attribute_values(":before", s(sortable(before)))
                },
                None,
                Some(limit),
            )
            .await?;
        Ok(items
            .into_iter()
            .map(|item| {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                let (index_key, key) = (text(keys::GSI4SK), OutboxKey::of(&text(keys::PK)));
                (index_key, outbox_item(item).map_err(|reason| (key, reason)))
            })
            .collect())
    }
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
            gsi4pk: Some(keys::unconfirmed_pk(first)),
            gsi4sk: Some(unconfirmed_sort_key(first)),
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
        let key = OutboxKey::of(&keys::outbox_pk(&org, events[0].id)).unwrap();
        assert_eq!(outbox_image(&image), OutboxImage::Item(OutboxItem { key, events }));
    }

    #[test]
    fn an_item_expires_a_week_after_its_events_were_made_however_old_their_own_times() {
        let built = |id: Uuid| {
            let (secs, _) = id.get_timestamp().unwrap().to_unix();
            i64::try_from(secs).unwrap()
        };
        let old = event(1);
        let week = OUTBOX_KEEP_DAYS * 86_400;
        assert!((expires_at(std::slice::from_ref(&old)) - (built(old.id) + week)).abs() <= 1, "from the id's time");
        let mut ahead = event(2);
        ahead.time = "2999-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            expires_at(&[old, ahead.clone()]),
            (ahead.time + chrono::Duration::days(OUTBOX_KEEP_DAYS)).timestamp()
        );
    }

    #[test]
    fn other_items_are_not_outbox_items_and_a_broken_one_is_unreadable_with_its_key_when_it_has_one() {
        assert_eq!(outbox_image(&json!({"entity": {"S": "assignment"}, "PK": {"S": "x"}})), OutboxImage::Other);
        assert_eq!(outbox_image(&json!({})), OutboxImage::Other);
        let broken = json!({"entity": {"S": "outbox"}, "PK": {"S": "x"}, "SK": {"S": "EVENTS"}, "events": {"S": "?"}});
        assert!(matches!(outbox_image(&broken), OutboxImage::Unreadable { key: None, .. }));
        let pk = keys::outbox_pk(&OrgId::parse("acme").unwrap(), Uuid::now_v7());
        let keyed = json!({"entity": {"S": "outbox"}, "PK": {"S": pk}, "SK": {"S": "EVENTS"}, "events": {"S": "?"}});
        match outbox_image(&keyed) {
            OutboxImage::Unreadable { key: Some(key), reason } => {
                assert_eq!(key.as_str(), pk);
                assert!(!reason.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_an_outbox_items_key_is_an_outbox_key() {
        let id = Uuid::now_v7();
        assert!(OutboxKey::of(&format!("ORG#acme#OUTBOX#{id}")).is_some());
        for other in [
            format!("APIKEY#{id}"),
            format!("ORG#acme#ASG#{id}"),
            "ORG#acme#OUTBOX#x".into(),
            format!("ORG##OUTBOX#{id}"),
        ] {
            assert!(OutboxKey::of(&other).is_none(), "{other}");
        }
    }

    #[test]
    fn unconfirmed_items_sort_by_when_they_were_made_and_a_bound_takes_every_one_made_before_it() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let made_at = |t: &str| {
            let ms = u64::try_from(at(t).timestamp_millis()).unwrap();
            Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                ms / 1000,
                u32::try_from(ms % 1000).unwrap() * 1_000_000,
            ))
        };
        let early = unconfirmed_sort_key(made_at("2026-12-07T14:59:59.999Z"));
        let bound = sortable(at("2026-12-07T15:00:00Z"));
        let late = unconfirmed_sort_key(made_at("2026-12-07T15:00:00Z"));
        assert!(early.starts_with("2026-12-07T14:59:59.999Z#"), "{early}");
        assert!(early < bound && bound < late, "{early} < {bound} < {late}");
    }
}
