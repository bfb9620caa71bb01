//! PutEvents to the service's bus: at most 10 entries and 256 KiB a call, failed entries resent with
//! backoff; the workers' requests to their queues instead (`work`).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use store::retry::Retry;

use domain::Lane;
use service::outbound::{DomainEvent, SOURCE};

use crate::queue::Queue;
use crate::work::WorkQueues;

/// PutEvents accepts at most 10 entries per call.
pub const BATCH: usize = 10;
/// … and at most 256 KiB of entries per call (each entry's size counted as EventBridge counts it).
pub const BATCH_BYTES: usize = 256 * 1024;
/// Calls per batch before a failure is left to the caller: about 20 s of backoff, so that while the
/// bus is down (throttling, 5xx) a stream shard is tried a few times a minute, not hammered.
const PATIENCE: Retry = Retry {
    attempts: 9,
    first_delay: std::time::Duration::from_millis(200),
    max_delay: std::time::Duration::from_secs(5),
};
/// An entry's error codes for events EventBridge will never take as they are: trying again cannot
/// help, so the item is parked. A whole call that fails (a misconfigured bus, a missing grant) is
/// tried again, never parked: the fix is the operator's, and nothing waits in the queue for it.
const REFUSALS: [&str; 3] = ["MalformedDetail", "InvalidArgument", "ValidationException"];

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Not sent for now (throttling, an internal error, the network, a queue or the table): try again.
    #[error("{failed} of {total} events not published after {} attempts: {reason}", PATIENCE.attempts)]
    Failed { failed: usize, total: usize, reason: String },
    /// EventBridge refused events as they are (malformed, too large); the others were sent.
    #[error("{refused} of {total} events refused: {reason}")]
    Refused { refused: usize, total: usize, reason: String },
}

/// Where the publisher records what it did with each outbox item: confirmed in the table, or parked
/// in the table and in the failed-events queue (with its key and the reason, never its events).
#[derive(Debug, Clone)]
pub struct Ledger {
    pub table: store::Store,
    pub failed: Queue,
}

#[derive(Debug, Clone)]
pub struct Publisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    work: Option<WorkQueues>,
    ledger: Option<Ledger>,
    patience: Retry,
}

impl Publisher {
    /// A publisher to `bus` that refuses the workers' requests until it has their queues
    /// ([`Publisher::with_work`]), and confirms nothing until it has its ledger ([`Publisher::with_ledger`]).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into(), work: None, ledger: None, patience: PATIENCE }
    }

    /// Sends the workers' requests to `work`'s queues.
    pub fn with_work(mut self, work: WorkQueues) -> Self {
        self.work = Some(work);
        self
    }

    /// Confirms and parks outbox items in `ledger`.
    pub fn with_ledger(mut self, ledger: Ledger) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Tries each call as `patience` says (local tests that need a failure within seconds).
    pub fn with_patience(mut self, patience: Retry) -> Self {
        self.patience = patience;
        self
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    /// Publishes the events in calls of at most [`BATCH`] entries and [`BATCH_BYTES`]; entries the
    /// service reports as failed (throttling, internal errors) and calls that fail outright are resent
    /// with backoff. Stops at the first call whose entries cannot be sent for now
    /// ([`PublishError::Failed`]): the caller sends the whole list again, so events after a failed one
    /// are not sent ahead of it, and only the sent ones are sent twice. Events EventBridge refuses as
    /// they are do not stop the others ([`PublishError::Refused`] once all were tried).
    /// The workers' requests among `events` go to their queues first ([`WorkQueues::send`]).
    pub async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        let requests: Vec<(Lane, &DomainEvent)> =
            events.iter().filter_map(|e| Lane::of(&e.detail_type).map(|lane| (lane, e))).collect();
        if !requests.is_empty() {
            let failed = |reason: String| PublishError::Failed { failed: requests.len(), total: events.len(), reason };
            let work = self.work.as_ref().ok_or_else(|| failed("no work queues configured".into()))?;
            work.send(&requests).await.map_err(|e| failed(e.to_string()))?;
        }
        let events: Vec<&DomainEvent> = events.iter().filter(|e| Lane::of(&e.detail_type).is_none()).collect();
        let total = events.len();
        let (mut refused, mut refusal) = (0, String::new());
        let entries: Vec<PutEventsRequestEntry> = events.iter().map(|e| self.entry(e)).collect();
        let (batches, too_large) = batches(entries);
        for entry in &too_large {
            refused += 1;
            refusal = format!("an event of {} bytes; at most {BATCH_BYTES}", entry_size(entry));
            not_published(entry, "event refused: too large");
        }
        for batch in batches {
            let mut pending = batch;
            let mut reason = String::new();
            let mut attempts = self.patience.attempts();
            while !pending.is_empty() && attempts.next().await {
                match self.client.put_events().set_entries(Some(pending.clone())).send().await {
                    Ok(out) if out.failed_entry_count() == 0 => pending.clear(),
                    Ok(out) => {
                        // Results are in request order; an entry with an error code was not accepted.
                        let results = out.entries();
                        let mut retried = Vec::new();
                        for (entry, result) in
                            pending.into_iter().zip(results.iter().map(Some).chain(std::iter::repeat(None)))
                        {
                            match result.and_then(|r| r.error_code().map(|c| (c, r.error_message().unwrap_or("")))) {
                                Some((code, message)) if REFUSALS.contains(&code) => {
                                    refused += 1;
                                    refusal = format!("{code}: {message}");
                                    not_published(&entry, "event refused");
                                }
                                Some((code, message)) => {
                                    reason = format!("{code}: {message}");
                                    retried.push(entry);
                                }
                                None if result.is_none() => retried.push(entry),
                                None => {}
                            }
                        }
                        pending = retried;
                    }
                    Err(err) => reason = aws_sdk_eventbridge::error::DisplayErrorContext(&err).to_string(),
                }
            }
            if !pending.is_empty() {
                pending.iter().for_each(|entry| not_published(entry, "event not published"));
                return Err(PublishError::Failed { failed: pending.len(), total, reason });
            }
        }
        if refused > 0 {
            return Err(PublishError::Refused { refused, total, reason: refusal });
        }
        Ok(())
    }

    fn entry(&self, event: &DomainEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(&event.detail_type)
            .detail(event.detail.to_string())
            .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(event.time.timestamp_millis()))
            .build()
    }
}

/// Logs an entry that was not published, by ids only: a detail holds names and emails.
fn not_published(entry: &PutEventsRequestEntry, what: &str) {
    let detail: serde_json::Value = serde_json::from_str(entry.detail().unwrap_or_default()).unwrap_or_default();
    let (event_id, org) = (detail["eventId"].as_str(), detail["orgId"].as_str());
    tracing::warn!(detail_type = entry.detail_type(), event_id, org, "{what}");
}

/// An entry's size as EventBridge counts it against a call's 256 KiB: its time (14 bytes), source,
/// detail type and detail.
fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    14 + entry.source().map_or(0, str::len)
        + entry.detail_type().map_or(0, str::len)
        + entry.detail().map_or(0, str::len)
}

/// `entries` in calls of at most [`BATCH`] entries and [`BATCH_BYTES`], in order; and the entries
/// too large for any call.
fn batches(entries: Vec<PutEventsRequestEntry>) -> (Vec<Vec<PutEventsRequestEntry>>, Vec<PutEventsRequestEntry>) {
    let (mut batches, mut too_large) = (Vec::new(), Vec::new());
    let (mut current, mut bytes): (Vec<PutEventsRequestEntry>, usize) = (Vec::new(), 0);
    for entry in entries {
        let size = entry_size(&entry);
        if size > BATCH_BYTES {
            too_large.push(entry);
            continue;
        }
        if current.len() == BATCH || bytes + size > BATCH_BYTES {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(entry);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail_bytes: usize) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder().source(SOURCE).detail_type("x").detail("a".repeat(detail_bytes)).build()
    }

    #[test]
    fn calls_hold_ten_entries_and_256_kib_at_most_in_order_and_a_larger_event_is_set_apart() {
        let sizes = [10, 10, 100_000, 100_000, 100_000, 10, 300_000, 5];
        let entries: Vec<_> = sizes.iter().map(|&n| entry(n)).collect();
        let (batches, too_large) = batches(entries);
        let lengths: Vec<Vec<usize>> =
            batches.iter().map(|b| b.iter().map(|e| e.detail().unwrap().len()).collect()).collect();
        assert_eq!(lengths, vec![vec![10, 10, 100_000, 100_000], vec![100_000, 10, 5]]);
        assert_eq!(too_large.len(), 1);
        assert!(batches.iter().all(|b| b.iter().map(entry_size).sum::<usize>() <= BATCH_BYTES));
        let (many, _) = super::batches((0..25).map(|_| entry(1)).collect());
        assert_eq!(many.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
    }
}
