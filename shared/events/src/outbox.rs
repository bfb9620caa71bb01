//! The outbox publisher: what `outbox-publisher` does with a batch of the table's stream (Lambda's
//! DynamoDB event source; the local gateway polls DynamoDB Local's stream the same way). Each new outbox
//! item's events go out with PutEvents; the first record that cannot be sent is reported with its
//! sequence number (`ReportBatchItemFailures`), so the event source retries from it and keeps the order.
//! A record is sent whole again on a retry: delivery is at least once, and `detail.eventId` is the id to
//! drop duplicates by.

use serde_json::{Value, json};

use crate::Publisher;

/// What one batch came to: the records sent, and the sequence number to resume from, if any.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub published_events: usize,
    pub failed_from: Option<String>,
}

impl BatchOutcome {
    /// Lambda's partial batch response.
    pub fn response(&self) -> Value {
        let failures: Vec<Value> = self.failed_from.iter().map(|seq| json!({"itemIdentifier": seq})).collect();
        json!({"batchItemFailures": failures})
    }
}

/// Publishes the events of every outbox item inserted in `batch` (`{"Records": [...]}`), in order, and
/// stops at the first record that fails: unreadable (a poison record, which the event source bisects to
/// and, once its retries are spent, sends to the dead-letter queue) or not accepted by PutEvents.
pub async fn publish_batch(publisher: &Publisher, batch: &Value) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let records = batch.get("Records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for record in records {
        let sequence = record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).unwrap_or_default();
        if record.get("eventName").and_then(Value::as_str) != Some("INSERT") {
            continue;
        }
        let image = record.pointer("/dynamodb/NewImage").unwrap_or(&Value::Null);
        let events = match store::outbox_events(image) {
            Ok(Some(events)) => events,
            Ok(None) => continue,
            Err(err) => {
                tracing::error!(sequence, error = %err, "unreadable outbox record");
                outcome.failed_from = Some(sequence.to_owned());
                return outcome;
            }
        };
        if let Err(err) = publisher.publish(&events).await {
            tracing::warn!(sequence, error = %err, "outbox record not published; the stream will redeliver it");
            outcome.failed_from = Some(sequence.to_owned());
            return outcome;
        }
        outcome.published_events += events.len();
    }
    outcome
}
