//! From a committed domain event to its deliveries: one per endpoint of the event's org that takes
//! its type, recorded before any attempt (idempotent by event and endpoint, so the bus may deliver the
//! event as often as it likes), then queued for its first attempt.

use domain::webhook::endpoint::MAX_BACKLOG;
use domain::webhook::{Delivery, DeliveryStatus, Endpoint, delivery};
use domain::{DomainEvent, OrgId};
use store::Recorded;

use super::{AttemptQueue, Queued, Task};
use crate::{AppError, Ctx};

/// Records and queues `event`'s deliveries in its org; answers how many were queued. An event that
/// is not public, or names no org, has none.
pub async fn dispatch(ctx: &Ctx<'_>, queue: &impl AttemptQueue, event: &DomainEvent) -> Result<usize, AppError> {
    if !domain::event::public_types().contains(&event.detail_type.as_str()) {
        return Ok(0);
    }
    let Some(org) = domain::event::org_of(&event.detail) else { return Ok(0) };
    let happened = occurred_at(event);
    let mut queued = 0;
    for endpoint in ctx.store.endpoints(&org).await?.iter().filter(|e| e.takes(&event.detail_type, happened)) {
        if deliver_to(ctx, queue, &org, endpoint, event, true).await?.is_some() {
            queued += 1;
        }
    }
    Ok(queued)
}

/// When the event happened: its detail's `occurredAt` (every event carries it), else its time.
fn occurred_at(event: &DomainEvent) -> chrono::DateTime<chrono::Utc> {
    event.detail.get("occurredAt").and_then(|t| serde_json::from_value(t.clone()).ok()).unwrap_or(event.time)
}

/// The envelope the event's deliveries send: its type, its time, and its data as it committed.
fn body(event: &DomainEvent) -> Result<String, AppError> {
    let envelope = delivery::Envelope {
        event_type: event.detail_type.clone(),
        timestamp: occurred_at(event),
        data: domain::event::webhook_data(&event.detail),
    };
    serde_json::to_string(&envelope).map_err(|e| AppError::Unavailable(e.to_string()))
}

/// Records `event`'s delivery to `endpoint` (`active_only`: only while it takes events) and queues its
/// first attempt; the delivery as it stands, or `None` when the endpoint no longer takes it. A
/// delivery recorded by an earlier arrival of the event is queued again only if it never was
/// attempted (that arrival may have failed between recording and queueing: the attempt's step makes
/// a second message harmless).
pub(crate) async fn deliver_to(
    ctx: &Ctx<'_>,
    queue: &impl AttemptQueue,
    org: &OrgId,
    endpoint: &Endpoint,
    event: &DomainEvent,
    active_only: bool,
) -> Result<Option<Delivery>, AppError> {
    let now = ctx.now(org);
    let delivery = Delivery::new(event.id, &event.detail_type, endpoint.id, occurred_at(event), now, body(event)?);
    if delivery.body.len() > delivery::MAX_BODY_BYTES {
        return ended(ctx, org, delivery, "the event's body is larger than a delivery sends").await;
    }
    let queued = match ctx.store.record_delivery(org, &delivery, active_only, MAX_BACKLOG).await? {
        Recorded::New => delivery,
        Recorded::Already(stored) if stored.status == DeliveryStatus::Pending && stored.step == 0 => *stored,
        Recorded::Already(stored) => return Ok(Some(*stored)),
        Recorded::NotTaken => return Ok(None),
        Recorded::BacklogFull => {
            return ended(ctx, org, delivery, "the endpoint's backlog is full").await;
        }
    };
    let task = Task::Attempt {
        org_id: org.clone(),
        endpoint_id: queued.endpoint_id,
        delivery_id: queued.delivery_id,
        round: queued.round,
        step: 1,
    };
    queue.send(&[Queued::now(task)]).await?;
    Ok(Some(queued))
}

/// Records a delivery that fails before any attempt, with why (`recover` brings it back).
async fn ended(ctx: &Ctx<'_>, org: &OrgId, mut delivery: Delivery, why: &str) -> Result<Option<Delivery>, AppError> {
    tracing::warn!(org = %org, endpoint_id = %delivery.endpoint_id, event_id = %delivery.event_id, why, "a delivery failed before its first attempt");
    delivery.status = DeliveryStatus::Failed;
    delivery.next_attempt_at = None;
    delivery.last_error = Some(why.to_owned());
    ctx.store.record_failed_delivery(org, &delivery).await?;
    Ok(Some(delivery))
}
