//! The outbox publisher: what `outbox-publisher` does with
//! - a batch of the table's stream (Lambda's DynamoDB event source; the local gateway polls DynamoDB
//!   Local's stream the same way): each new outbox item's events go out with PutEvents, then the item is
//!   *confirmed*. An item that can never be sent as it is (unreadable, or refused by EventBridge:
//!   malformed, too large) is *parked* at once — in the table and in the failed-events queue, by key
//!   and reason — and the batch goes on: it never holds its shard up. The first record that cannot be
//!   sent *for now* (throttling, 5xx, the network) is reported with its sequence number
//!   (`ReportBatchItemFailures`) after about 20 s of backoff, so the event source retries from it and
//!   keeps the order until the record's age limit;
//! - its schedule (`{"sweep": "unconfirmed"}`): items not confirmed [`SWEEP_AFTER`] after they were
//!   made — older than the stream mapping's record age limit, so the stream gave up on them — are
//!   published and confirmed;
//! - an operator's redrive (`{"redrive": "failed-events"}`): the failed-events queue's records of the
//!   stream mapping (which name only stream positions and times) have the items not confirmed of their
//!   time published now; the items it parked itself are published again by key.
//!
//! Delivery is at least once: a record sent again, a sweep or a redrive may publish an item twice, and
//! `detail.eventId` is the id to drop duplicates by.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use service::Clock;
use store::{OutboxImage, OutboxItem, OutboxKey, Unconfirmed};

use crate::{ConsumerError, PublishError, Publisher};

/// The failed-events queue's environment variable: its URL.
pub const FAILED_EVENTS_QUEUE_URL_VAR: &str = "FAILED_EVENTS_QUEUE_URL";
/// The stream mapping's `MaximumRecordAgeInSeconds` (template): the stream retries a record until
/// then, and gives up on it after.
pub const STREAM_RECORD_AGE: Duration = Duration::from_secs(3600);
/// When the sweep takes an item not confirmed: once the stream has given up on it, with a margin for
/// a mapping that reads late.
pub const SWEEP_AFTER: Duration = Duration::from_secs(STREAM_RECORD_AGE.as_secs() + 15 * 60);
/// How far back the sweep looks: every item the table still keeps (they expire after 7 days).
const SWEEP_BACK: Duration = Duration::from_secs(8 * 86_400);
/// What one sweep or redrive runs for at most; the function's timeout (120 s) leaves room for the
/// publish under way when it ends.
pub const RUN_BUDGET: Duration = Duration::from_secs(60);
/// How long a message a redrive received stays hidden: longer than a run and its function's timeout.
const REDRIVE_VISIBILITY: Duration = Duration::from_secs(180);
/// Items read from one index shard at a time.
const SWEEP_PAGE: i32 = 25;
/// How far around a stream record's time a redrive looks for its items: they were made a little
/// before the record (events are made before their transaction, which may retry), and the record's
/// time is approximate (rounded down; to the minute by DynamoDB Local).
const RECORD_TIME_MARGIN: Duration = Duration::from_secs(15 * 60);

/// What one batch came to: the records sent, and the sequence number to resume from, if any.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub published_events: usize,
    pub parked_items: usize,
    pub failed_from: Option<String>,
}

impl BatchOutcome {
    /// Lambda's partial batch response.
    pub fn response(&self) -> Value {
        let failures: Vec<Value> = self.failed_from.iter().map(|seq| json!({"itemIdentifier": seq})).collect();
        json!({"batchItemFailures": failures})
    }
}

/// What the publisher does with one invocation's input: a stream batch, its schedule's sweep, or an
/// operator's redrive.
pub async fn handle(publisher: &Publisher, input: &Value) -> Result<Value, ConsumerError> {
    if input.get("Records").is_some() {
        return Ok(publish_batch(publisher, input).await.response());
    }
    let now = service::SystemClock.wall();
    let report = match (input["sweep"].as_str(), input["redrive"].as_str()) {
        (Some("unconfirmed"), _) => {
            sweep(publisher, now - chrono_duration(SWEEP_BACK), now - chrono_duration(SWEEP_AFTER), RUN_BUDGET).await
        }
        (_, Some("failed-events")) => redrive(publisher, RUN_BUDGET).await?,
        _ => {
            return Err(ConsumerError::Unavailable(
                "expected a stream batch, {\"sweep\": \"unconfirmed\"} or {\"redrive\": \"failed-events\"}".into(),
            ));
        }
    };
    tracing::info!(
        published = report.published,
        parked = report.parked,
        left = report.left,
        stopped = report.stopped.as_deref(),
        "outbox run"
    );
    Ok(serde_json::to_value(report).unwrap_or_default())
}

/// Publishes the events of every outbox item inserted in `batch` (`{"Records": [...]}`), in order;
/// parks the items that can never be sent, and stops at the first record that cannot be sent for
/// now (reported: the event source retries from it).
pub async fn publish_batch(publisher: &Publisher, batch: &Value) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let records = batch.get("Records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for record in records {
        let sequence = record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).unwrap_or_default();
        if record.get("eventName").and_then(Value::as_str) != Some("INSERT") {
            continue;
        }
        let image = record.pointer("/dynamodb/NewImage").unwrap_or(&Value::Null);
        let item = match store::outbox_image(image) {
            OutboxImage::Other => continue,
            OutboxImage::Item(item) => Ok(item),
            OutboxImage::Unreadable { key, reason } => Err((key, reason)),
        };
        let events = item.as_ref().map_or(0, |item| item.events.len());
        match settle(publisher, item, Parking::Queue { sequence: Some(sequence) }).await {
            Settled::Published => outcome.published_events += events,
            Settled::Parked => outcome.parked_items += 1,
            Settled::Retry(reason) => {
                tracing::warn!(sequence, reason, "outbox record not published; the stream will redeliver it");
                outcome.failed_from = Some(sequence.to_owned());
                return outcome;
            }
        }
    }
    outcome
}

/// What became of an item.
#[derive(Debug, PartialEq, Eq)]
enum Settled {
    Published,
    Parked,
    /// Not sent for now, or not recorded: to be tried again (its events may go out twice).
    Retry(String),
}

/// Where an item that can never be sent is parked: the failed-events queue gets a message (from the
/// stream: with the record's position), or — when a redrive of that message meets it again — the
/// message stays where it is.
#[derive(Debug, Clone, Copy)]
enum Parking<'a> {
    Queue { sequence: Option<&'a str> },
    Kept,
}

/// Publishes `item` and confirms it, or parks it when it can never be sent as it is. Without a ledger
/// (tests of the publisher alone) nothing is confirmed, and what would be parked is tried again.
async fn settle(publisher: &Publisher, item: Unconfirmed, parking: Parking<'_>) -> Settled {
    let (key, reason) = match item {
        Ok(OutboxItem { key, events }) => match publisher.publish(&events).await {
            Ok(()) => {
                let Some(ledger) = publisher.ledger() else { return Settled::Published };
                return match ledger.table.confirm_outbox(&key, service::SystemClock.wall()).await {
                    Ok(()) => Settled::Published,
                    Err(error) => Settled::Retry(format!("published, not confirmed: {error}")),
                };
            }
            Err(PublishError::Failed { reason, .. }) => return Settled::Retry(reason),
            Err(refused @ PublishError::Refused { .. }) => (Some(key), refused.to_string()),
        },
        Err((key, reason)) => (key, format!("unreadable: {reason}")),
    };
    // Never an event's content: a reason from a parser can quote the text it could not read.
    let reason = without_quotes(&reason);
    let Some(ledger) = publisher.ledger() else { return Settled::Retry(reason) };
    let now = service::SystemClock.wall();
    if let Parking::Queue { sequence } = parking {
        let message = json!({
            "parkedBy": "OutboxPublisherFunction",
            "outboxItem": key.as_ref().map(OutboxKey::as_str),
            "sequenceNumber": sequence,
            "reason": reason,
            "parkedAt": now,
        });
        if let Err(error) = ledger.failed.send(&[message]).await {
            return Settled::Retry(format!("not parked: {error}"));
        }
    }
    tracing::error!(outbox_item = key.as_ref().map(OutboxKey::as_str), reason, "outbox item parked");
    if let Some(key) = &key
        && let Err(error) = ledger.table.park_outbox(key, now, &reason).await
    {
        return Settled::Retry(format!("parked, not recorded: {error}"));
    }
    Settled::Parked
}

/// `reason` without what it quotes.
fn without_quotes(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut quoted = false;
    for c in reason.chars() {
        match (c, quoted) {
            ('"' | '`', false) => {
                quoted = true;
                out.push_str("\"…");
            }
            ('"' | '`', true) => {
                quoted = false;
                out.push('"');
            }
            (c, false) => out.push(c),
            (_, true) => {}
        }
    }
    out
}

/// What a sweep or a redrive did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Items published (and confirmed).
    pub published: usize,
    /// Items parked (they can never be sent as they are).
    pub parked: usize,
    /// Failed-events messages a redrive left in the queue: not the publisher's, or not done.
    pub left: usize,
    /// Why the run stopped before it was done, if it did: the next run goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// Publishes the outbox items not confirmed that were made from `from` to before `before`, oldest
/// first in each index shard, a page of each shard in turn, until none is left or `budget` is spent.
/// Stops at the first item that cannot be sent for now: the bus is still down, the next run goes on.
pub async fn sweep(publisher: &Publisher, from: DateTime<Utc>, before: DateTime<Utc>, budget: Duration) -> RunReport {
    let mut report = RunReport::default();
    let Some(ledger) = publisher.ledger() else {
        report.stopped = Some("no ledger".into());
        return report;
    };
    let until = tokio::time::Instant::now() + budget;
    // The index is read eventually consistently: an item settled a moment ago may be listed again.
    let mut settled: HashSet<String> = HashSet::new();
    loop {
        let mut found = false;
        for shard in 0..store::keys::UNCONFIRMED_SHARDS {
            if tokio::time::Instant::now() >= until {
                report.stopped = Some("its time is spent".into());
                return report;
            }
            let page = match ledger.table.unconfirmed_outbox(shard, from, before, SWEEP_PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    report.stopped = Some(error.to_string());
                    return report;
                }
            };
            for (index_key, item) in page {
                if !settled.insert(index_key.clone()) {
                    continue;
                }
                found = true;
                if tokio::time::Instant::now() >= until {
                    report.stopped = Some("its time is spent".into());
                    return report;
                }
                if let Err((None, _)) = &item {
                    // Not an outbox item's key: nothing the publisher could park or confirm. Only the
                    // outbox writer indexes items here, so this is logged, not parked every run.
                    tracing::error!(index_key, "an item without an outbox item's key in the outbox index");
                    continue;
                }
                match settle(publisher, item, Parking::Queue { sequence: None }).await {
                    Settled::Published => report.published += 1,
                    Settled::Parked => report.parked += 1,
                    Settled::Retry(reason) => {
                        report.stopped = Some(reason);
                        return report;
                    }
                }
            }
        }
        if !found {
            return report;
        }
    }
}

/// Redrives the failed-events queue's messages about the outbox: a record the stream mapping gave up
/// on (Lambda's on-failure record: stream positions and times) has the items not confirmed of its
/// time published; an item the publisher parked is published again by key. Each message is deleted
/// once done; a message about anything else is left (it is visible again after the queue's visibility
/// timeout), as is one whose item is refused again.
pub async fn redrive(publisher: &Publisher, budget: Duration) -> Result<RunReport, ConsumerError> {
    let mut report = RunReport::default();
    let Some(ledger) = publisher.ledger() else {
        return Err(ConsumerError::Unavailable("the publisher has no ledger".into()));
    };
    let until = tokio::time::Instant::now() + budget;
    // Each message once a run, even if it came back (a redelivery, a short visibility timeout).
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        // Hidden from other readers for longer than a run: a message left is not met again in it.
        let messages = ledger.failed.receive(REDRIVE_VISIBILITY).await?;
        let new: Vec<_> =
            messages.into_iter().filter(|m| seen.insert(m.message_id().unwrap_or_default().to_owned())).collect();
        if new.is_empty() {
            return Ok(report);
        }
        for message in new {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                report.stopped = Some("its time is spent".into());
                return Ok(report);
            }
            let body: Value = serde_json::from_str(message.body().unwrap_or_default()).unwrap_or_default();
            let done = if let Some(window) = stream_window(&body) {
                let (from, to) = window;
                let swept = sweep(publisher, from, to, left).await;
                report.published += swept.published;
                report.parked += swept.parked;
                report.stopped = swept.stopped.clone();
                swept.stopped.is_none()
            } else if let Some(key) = body["outboxItem"].as_str().and_then(OutboxKey::of) {
                match ledger.table.outbox_item(&key).await.map_err(ConsumerError::from)? {
                    // Expired, or published meanwhile: nothing is left to send.
                    None => true,
                    Some(item) => match settle(publisher, item, Parking::Kept).await {
                        Settled::Published => {
                            report.published += 1;
                            true
                        }
                        Settled::Parked => false,
                        Settled::Retry(reason) => {
                            report.stopped = Some(reason);
                            false
                        }
                    },
                }
            } else {
                false
            };
            match (done, message.receipt_handle()) {
                (true, Some(receipt)) => ledger.failed.delete(receipt).await?,
                _ => report.left += 1,
            }
            if report.stopped.is_some() {
                return Ok(report);
            }
        }
    }
}

/// The time a stream mapping's on-failure record covers, from a while before its first record to a
/// while after its last (`DDBStreamBatchInfo`'s approximate arrival times).
fn stream_window(body: &Value) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let info = body.get("DDBStreamBatchInfo")?;
    let at = |name: &str| info.get(name).and_then(Value::as_str).and_then(|t| t.parse::<DateTime<Utc>>().ok());
    let (first, last) = (at("approximateArrivalOfFirstRecord")?, at("approximateArrivalOfLastRecord")?);
    Some((first - chrono_duration(RECORD_TIME_MARGIN), last + chrono_duration(RECORD_TIME_MARGIN)))
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parking_reason_keeps_no_quoted_text() {
        let reason = r#"invalid type: string "ada@example.com", expected a sequence at `x`"#;
        assert_eq!(without_quotes(reason), r#"invalid type: string "…", expected a sequence at "…""#);
    }

    #[test]
    fn a_stream_failure_record_covers_from_a_while_before_its_first_record_to_a_while_after_its_last() {
        let body = json!({"requestContext": {"condition": "RetryAttemptsExhausted"}, "DDBStreamBatchInfo": {
            "shardId": "shardId-1", "startSequenceNumber": "1", "endSequenceNumber": "9",
            "approximateArrivalOfFirstRecord": "2026-12-07T10:00:00.000Z",
            "approximateArrivalOfLastRecord": "2026-12-07T10:05:00.000Z", "batchSize": 9}});
        let (from, to) = stream_window(&body).unwrap();
        assert_eq!(from, "2026-12-07T09:45:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(to, "2026-12-07T10:20:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(stream_window(&json!({"outboxItem": "x"})), None);
    }

    #[test]
    fn the_sweep_takes_only_what_the_stream_gave_up_on() {
        assert!(SWEEP_AFTER > STREAM_RECORD_AGE);
    }
}
