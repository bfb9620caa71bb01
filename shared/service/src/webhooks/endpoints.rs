//! An org admin's endpoints: create (the secret is shown once, sealed before it is stored), read,
//! change, delete, rotate the secret, ping, read the delivery log, redeliver and recover. Every change
//! is audit-logged (never the secret) in the transaction that makes it.

use chrono::{DateTime, Duration, Utc};
use domain::OrgId;
use domain::webhook::endpoint::MAX_BACKLOG;
use domain::webhook::{Delivery, DeliveryStatus, Endpoint, EndpointPatch, MAX_ENDPOINTS_PER_ORG, NewEndpoint};
use serde_json::json;
use store::retry::Retry;
use store::{DeliveryFilter, Page, PageKey, Restarted, SealedSecret, StoreError};
use uuid::Uuid;

use super::{AttemptQueue, Queued, Task, Vault};
use crate::{Actor, AppError, Ctx};

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// How far back `recover` reaches.
pub const MAX_RECOVER_DAYS: i64 = 14;

/// The audit entry's target: the endpoint by id, labelled by its host (a URL's path and query may
/// carry the customer's own tokens).
fn target(endpoint: &Endpoint) -> (&'static str, String, String) {
    let host = url::Url::parse(&endpoint.url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    ("webhook_endpoint", endpoint.id.to_string(), host)
}

/// Creates an endpoint: its secret is generated here, sealed, stored sealed and returned once.
pub async fn create(
    ctx: &Ctx<'_>,
    vault: &impl Vault,
    actor: &Actor,
    org: &OrgId,
    new: NewEndpoint,
) -> Result<(Endpoint, webhooks::Secret), AppError> {
    let now = actor.now;
    let endpoint = Endpoint::new(Uuid::now_v7(), new, now);
    let secret = webhooks::Secret::generate().map_err(|e| AppError::Unavailable(e.to_string()))?;
    let sealed =
        SealedSecret { current: vault.seal(org, endpoint.id, &secret).await?, previous: None, previous_until: None };
    let audit = actor.audit(
        "webhook_endpoint.created",
        target(&endpoint),
        json!({"events": endpoint.events, "isActive": endpoint.is_active}),
    );
    if !ctx.store.create_endpoint(org, &endpoint, &sealed, MAX_ENDPOINTS_PER_ORG, &audit).await? {
        return Err(AppError::TooManyEndpoints { limit: MAX_ENDPOINTS_PER_ORG });
    }
    Ok((endpoint, secret))
}

pub async fn list(ctx: &Ctx<'_>, org: &OrgId) -> Result<Vec<Endpoint>, AppError> {
    Ok(ctx.store.endpoints(org).await?)
}

pub async fn get(ctx: &Ctx<'_>, org: &OrgId, id: Uuid) -> Result<Endpoint, AppError> {
    ctx.store.endpoint(org, id).await?.ok_or(AppError::NotFound)
}

/// Applies `patch` (re-read and redone if a delivery or another admin changed it meanwhile).
pub async fn update(
    ctx: &Ctx<'_>,
    actor: &Actor,
    org: &OrgId,
    id: Uuid,
    patch: &EndpointPatch,
) -> Result<Endpoint, AppError> {
    let mut attempts = Retry::CONFLICT.attempts();
    while attempts.next().await {
        let before = get(ctx, org, id).await?;
        let mut after = patch.apply(&before, actor.now);
        after.version = before.version + 1;
        let audit = actor.audit("webhook_endpoint.updated", target(&after), changes(&before, &after));
        match ctx.store.update_endpoint(org, &before, &after, None, &audit).await {
            Ok(()) => return Ok(after),
            Err(StoreError::VersionConflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Contended)
}

/// What a change changed, for its audit entry: each field's before and after (the URL by host).
fn changes(before: &Endpoint, after: &Endpoint) -> serde_json::Value {
    let mut changed = serde_json::Map::new();
    if before.url != after.url {
        changed.insert("url".into(), json!({"before": target(before).2, "after": target(after).2}));
    }
    if before.description != after.description {
        changed.insert("description".into(), json!({"before": before.description, "after": after.description}));
    }
    if before.events != after.events {
        changed.insert("events".into(), json!({"before": before.events, "after": after.events}));
    }
    if before.is_active != after.is_active {
        changed.insert("isActive".into(), json!({"before": before.is_active, "after": after.is_active}));
    }
    if before.disabled_at.is_some() && after.disabled_at.is_none() {
        changed.insert("disabled".into(), json!({"before": true, "after": false}));
    }
    serde_json::Value::Object(changed)
}

pub async fn delete(ctx: &Ctx<'_>, actor: &Actor, org: &OrgId, id: Uuid) -> Result<(), AppError> {
    let mut attempts = Retry::CONFLICT.attempts();
    while attempts.next().await {
        let before = get(ctx, org, id).await?;
        let audit = actor.audit("webhook_endpoint.deleted", target(&before), json!({}));
        match ctx.store.delete_endpoint(org, &before, &audit).await {
            Ok(()) => return Ok(()),
            Err(StoreError::VersionConflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Contended)
}

/// A new secret for the endpoint; the one it replaces keeps signing beside it for
/// [`ROTATION_OVERLAP`] of the org's clock (a secret rotated out earlier stops at once).
pub async fn rotate_secret(
    ctx: &Ctx<'_>,
    vault: &impl Vault,
    actor: &Actor,
    org: &OrgId,
    id: Uuid,
) -> Result<webhooks::Secret, AppError> {
    let secret = webhooks::Secret::generate().map_err(|e| AppError::Unavailable(e.to_string()))?;
    let mut attempts = Retry::CONFLICT.attempts();
    while attempts.next().await {
        let (before, sealed) = ctx.store.endpoint_and_secret(org, id).await?.ok_or(AppError::NotFound)?;
        let rotated = SealedSecret {
            current: vault.seal(org, id, &secret).await?,
            previous: Some(sealed.current),
            previous_until: Some(ctx.now(org) + ROTATION_OVERLAP),
        };
        let mut after = before.clone();
        after.version = before.version + 1;
        after.updated_at = actor.now;
        let audit = actor.audit("webhook_endpoint.secret_rotated", target(&after), json!({}));
        match ctx.store.update_endpoint(org, &before, &after, Some(&rotated), &audit).await {
            Ok(()) => return Ok(secret),
            Err(StoreError::VersionConflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Contended)
}

/// Queues a `webhook.test` delivery to the endpoint, whatever it subscribes to (sent while the endpoint
/// is on and not disabled; otherwise the delivery ends `failed` with why, as any other would).
pub async fn ping(ctx: &Ctx<'_>, queue: &impl AttemptQueue, org: &OrgId, id: Uuid) -> Result<Delivery, AppError> {
    let endpoint = get(ctx, org, id).await?;
    let at = ctx.now(org);
    let event = domain::DomainEvent::new(
        Uuid::now_v7(),
        org,
        at,
        &domain::event::WebhookTest {
            endpoint_id: endpoint.id,
            message: "A test delivery from the training assignments service.".into(),
        },
    );
    super::dispatch::deliver_to(ctx, queue, org, &endpoint, &event, false).await?.ok_or(AppError::NotFound)
}

/// A page of the endpoint's delivery log, newest first.
pub async fn deliveries(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: Uuid,
    filter: DeliveryFilter,
    start: Option<PageKey>,
    limit: usize,
) -> Result<Page<Delivery>, AppError> {
    get(ctx, org, id).await?;
    Ok(ctx.store.deliveries_page(org, id, filter, start, limit).await?)
}

/// Attempts an ended delivery again: a new round of the schedule, from now. A delivery still pending
/// has its next attempt queued again instead (harmless if its task is waiting: each step is made once;
/// the way back for one whose task was lost).
pub async fn redeliver(
    ctx: &Ctx<'_>,
    queue: &impl AttemptQueue,
    org: &OrgId,
    endpoint: Uuid,
    delivery: Uuid,
) -> Result<Delivery, AppError> {
    get(ctx, org, endpoint).await?;
    let before = ctx.store.delivery(org, endpoint, delivery).await?.ok_or(AppError::NotFound)?;
    if before.status == DeliveryStatus::Pending {
        queue.send(&[Queued::now(next_task(org, &before))]).await?;
        return Ok(before);
    }
    match restart(ctx, queue, org, &before).await? {
        Restart::Started(after) => Ok(after),
        Restart::Changed => Err(AppError::Contended),
        Restart::EndpointNotTaking => Err(AppError::EndpointNotTaking),
    }
}

/// The task of `delivery`'s next attempt.
fn next_task(org: &OrgId, delivery: &Delivery) -> Task {
    Task::Attempt {
        org_id: org.clone(),
        endpoint_id: delivery.endpoint_id,
        delivery_id: delivery.delivery_id,
        round: delivery.round,
        step: delivery.step + 1,
    }
}

/// What restarting an ended delivery came to.
pub(crate) enum Restart {
    Started(Delivery),
    /// It changed since it was read.
    Changed,
    /// Its endpoint is off, disabled or has a full backlog.
    EndpointNotTaking,
}

/// A new round of `before` (ended), queued.
pub(crate) async fn restart(
    ctx: &Ctx<'_>,
    queue: &impl AttemptQueue,
    org: &OrgId,
    before: &Delivery,
) -> Result<Restart, AppError> {
    let mut after = before.clone();
    after.status = DeliveryStatus::Pending;
    after.round = before.round + 1;
    after.step = 0;
    after.next_attempt_at = Some(ctx.now(org));
    match ctx.store.restart_delivery(org, before, &after, MAX_BACKLOG).await? {
        Restarted::Yes => {}
        Restarted::Changed => return Ok(Restart::Changed),
        Restarted::EndpointNotTaking => return Ok(Restart::EndpointNotTaking),
    }
    queue.send(&[Queued::now(next_task(org, &after))]).await?;
    Ok(Restart::Started(after))
}

/// Queues the recovery of every failed delivery of the endpoint since `since` (at most
/// [`MAX_RECOVER_DAYS`] ago; the deliveries are brought back a page at a time by the delivery function).
pub async fn recover(
    ctx: &Ctx<'_>,
    queue: &impl AttemptQueue,
    org: &OrgId,
    endpoint: Uuid,
    since: DateTime<Utc>,
) -> Result<(), AppError> {
    get(ctx, org, endpoint).await?;
    let now = ctx.now(org);
    if since < now - Duration::days(MAX_RECOVER_DAYS) || since > now {
        return Err(AppError::InvalidField { field: "since", message: "must be within the last 14 days" });
    }
    let task = Task::Recover { org_id: org.clone(), endpoint_id: endpoint, since, resume: None };
    queue.send(&[Queued::now(task)]).await
}
