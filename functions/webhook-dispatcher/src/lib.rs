//! The webhook dispatcher, on the service's own bus (a rule for each public detail type): each event
//! becomes one delivery per endpoint of its org that subscribes to it, recorded before any attempt
//! and queued for the delivery function (`service::webhooks::dispatch`). Idempotent by event and
//! endpoint, so EventBridge may deliver an event again; a failure goes back to EventBridge, which
//! retries (then its dead-letter queue).

use domain::DomainEvent;
use events::webhooks::DeliveryQueue;
use serde_json::{Value, json};

/// What this function builds once per container: the table and clock, and the delivery queue.
pub struct Dispatcher {
    pub consumer: events::Consumer,
    pub queue: DeliveryQueue,
}

impl events::entry::Context for Dispatcher {
    async fn from_env() -> Result<Self, events::entry::Error> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Self { consumer: events::Consumer::from_env_with(&config)?, queue: DeliveryQueue::from_env(&config)? })
    }
}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler<Dispatcher> = |dispatcher, event| Box::pin(handle(dispatcher, event));

/// The domain event an EventBridge event carries: its stable id is the detail's `eventId`.
fn domain_event(event: &Value) -> Option<DomainEvent> {
    let detail = event.get("detail")?.clone();
    let id = detail.get("eventId").and_then(Value::as_str).and_then(|id| uuid::Uuid::parse_str(id).ok())?;
    let time = event.get("time").and_then(|t| serde_json::from_value(t.clone()).ok())?;
    Some(DomainEvent { id, detail_type: event.get("detail-type")?.as_str()?.to_owned(), detail, time })
}

async fn handle(dispatcher: &Dispatcher, event: Value) -> Result<Value, events::ConsumerError> {
    let Some(event) = domain_event(&event) else {
        tracing::warn!(event_id = event["id"].as_str().unwrap_or_default(), "dropping an event without an eventId");
        return Ok(json!({"dropped": "no eventId"}));
    };
    let ctx = dispatcher.consumer.ctx();
    let dispatched = service::webhooks::dispatch::dispatch(&ctx, &dispatcher.queue, &event).await;
    match events::consumer::outcome(dispatched)? {
        Ok(queued) => Ok(json!({"eventId": event.id, "deliveries": queued})),
        Err(reason) => {
            tracing::warn!(event_id = %event.id, reason, "event not dispatched");
            Ok(json!({"dropped": reason}))
        }
    }
}
