//! PutEvents to the service's bus: at most 10 entries a call, failed entries resent with backoff; the
//! workers' requests to their queues instead (`work`).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use store::retry::Retry;

use domain::Lane;
use service::outbound::{DomainEvent, SOURCE};

use crate::work::WorkQueues;

/// PutEvents accepts at most 10 entries per call.
pub const BATCH: usize = 10;
/// Calls per batch before giving up on entries that keep failing: [`Retry::PARTIAL`]'s.
const POLICY: Retry = Retry::PARTIAL;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{failed} of {total} events not published after {} attempts: {reason}", POLICY.attempts)]
    Failed { failed: usize, total: usize, reason: String },
}

#[derive(Debug, Clone)]
pub struct Publisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    work: Option<WorkQueues>,
}

impl Publisher {
    /// A publisher to `bus` that refuses the workers' requests until it has their queues
    /// ([`Publisher::with_work`]).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into(), work: None }
    }

    /// Sends the workers' requests to `work`'s queues.
    pub fn with_work(mut self, work: WorkQueues) -> Self {
        self.work = Some(work);
        self
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Publishes the events in calls of at most [`BATCH`]; entries the service reports as failed
    /// (throttling, internal errors) and calls that fail outright are resent. Stops at the first call
    /// whose entries cannot be sent and returns an error: the caller sends the whole list again, so
    /// events after a failed one are not sent ahead of it, and only the sent ones are sent twice.
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
        let mut reason = String::new();
        for batch in events.chunks(BATCH) {
            let mut pending: Vec<PutEventsRequestEntry> = batch.iter().map(|e| self.entry(e)).collect();
            let mut attempts = POLICY.attempts();
            while !pending.is_empty() && attempts.next().await {
                match self.client.put_events().set_entries(Some(pending.clone())).send().await {
                    Ok(out) if out.failed_entry_count() == 0 => pending.clear(),
                    Ok(out) => {
                        // Results are in request order; an entry with an error code was not accepted.
                        let results = out.entries();
                        reason = results
                            .iter()
                            .find_map(|r| r.error_code().map(|c| format!("{c}: {}", r.error_message().unwrap_or(""))))
                            .unwrap_or_default();
                        pending = pending
                            .into_iter()
                            .zip(results.iter().map(|r| r.error_code().is_some()).chain(std::iter::repeat(true)))
                            .filter(|(_, failed)| *failed)
                            .map(|(entry, _)| entry)
                            .collect();
                    }
                    Err(err) => reason = aws_sdk_eventbridge::error::DisplayErrorContext(&err).to_string(),
                }
            }
            if !pending.is_empty() {
                for entry in &pending {
                    // Ids only: a detail holds names and emails.
                    let detail: serde_json::Value =
                        serde_json::from_str(entry.detail().unwrap_or_default()).unwrap_or_default();
                    let (event_id, org) = (detail["eventId"].as_str(), detail["orgId"].as_str());
                    tracing::warn!(detail_type = entry.detail_type(), event_id, org, "event not published");
                }
                return Err(PublishError::Failed { failed: pending.len(), total: events.len(), reason });
            }
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
