//! Webhook deliveries (`ORG#o#WEBHOOK#e` / `D#<deliveryId>`): recorded once per event and endpoint
//! before any attempt, counted in the endpoint's backlog while pending, and each attempt's outcome
//! written with the endpoint's health in one transaction. Kept [`KEEP_DAYS`] (TTL).

use aws_sdk_dynamodb::types::{AttributeValue, Put, Update};
use chrono::{DateTime, Duration, Utc};
use domain::OrgId;
use domain::webhook::{Delivery, DeliveryStatus};

use crate::dynamo::{n, s, to_item};
use crate::records::{Record, record};
use crate::tx::{CancelReason, TxFailure};
use crate::{Page, PageKey, Store, StoreError, keys};
use serde::{Deserialize, Serialize};

/// How long a delivery stays in the log.
pub const KEEP_DAYS: i64 = 30;

record!(
    DeliveryRecord {
        expires_at: Option<i64> = "expiresAt",
    } flatten delivery: Delivery
);

fn delivery_item(org: &OrgId, delivery: &Delivery) -> Result<crate::dynamo::Item, StoreError> {
    to_item(&DeliveryRecord {
        pk: keys::webhook_pk(org, delivery.endpoint_id),
        sk: keys::delivery_sk(delivery.delivery_id),
        entity: "webhook-delivery".into(),
        expires_at: Some((last_activity(delivery) + Duration::days(KEEP_DAYS)).timestamp()),
        delivery: delivery.clone(),
    })
}

/// When a delivery was last made, attempted or due: it stays [`KEEP_DAYS`] after that, so a round
/// started on an old delivery (a redelivery, `recover`) outlives its schedule.
fn last_activity(delivery: &Delivery) -> DateTime<Utc> {
    [Some(delivery.created_at), delivery.last_attempt_at, delivery.next_attempt_at]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(delivery.created_at)
}

/// What recording a delivery came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Recorded now, pending, counted in the endpoint's backlog.
    New,
    /// Recorded before (the event came again): as it stands.
    Already(Box<Delivery>),
    /// The endpoint no longer takes events (deleted, turned off or disabled since it was read).
    NotTaken,
    /// The endpoint's backlog is full: nothing written.
    BacklogFull,
}

/// Which deliveries a listing shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    /// Only those of events after this time (a UUIDv7 bound on the id).
    pub since: Option<DateTime<Utc>>,
}

fn endpoint_key(
    update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    org: &OrgId,
    endpoint: uuid::Uuid,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    update.key(keys::PK, s(keys::webhooks_pk(org))).key(keys::SK, s(keys::endpoint_sk(endpoint)))
}

impl Store {
    /// Records a pending delivery and counts it in its endpoint's backlog, in one transaction; the
    /// endpoint must still take events (`active_only`: turned on and not disabled; a test ping needs
    /// only that it exists) and have room in its backlog (fewer than `max_backlog` pending).
    pub async fn record_delivery(
        &self,
        org: &OrgId,
        delivery: &Delivery,
        active_only: bool,
        max_backlog: u64,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.transaction();
        let put = tx.put(delivery_item(org, delivery)?, Some("attribute_not_exists(PK)"))?;
        let taking = if active_only {
            "attribute_exists(PK) AND isActive = :true AND attribute_not_exists(disabledAt) AND (attribute_not_exists(pending) OR pending < :max)"
        } else {
            "attribute_exists(PK) AND (attribute_not_exists(pending) OR pending < :max)"
        };
        let mut counted = endpoint_key(Update::builder(), org, delivery.endpoint_id)
            .update_expression("ADD pending :one")
            .condition_expression(taking)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max_backlog));
        if active_only {
            counted = counted.expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        let counted = tx.update(counted)?;
        match tx.commit().await {
            Ok(()) => Ok(Recorded::New),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(put).is_some_and(CancelReason::condition_failed) => {
                let stored = self.delivery(org, delivery.endpoint_id, delivery.delivery_id).await?;
                Ok(stored.map_or(Recorded::NotTaken, |d| Recorded::Already(Box::new(d))))
            }
            Err(TxFailure::Cancelled(reasons)) if reasons.get(counted).is_some_and(CancelReason::condition_failed) => {
                let endpoint = self.endpoint(org, delivery.endpoint_id).await?;
                Ok(match endpoint {
                    Some(e)
                        if e.pending >= max_backlog && (!active_only || (e.is_active && e.disabled_at.is_none())) =>
                    {
                        Recorded::BacklogFull
                    }
                    _ => Recorded::NotTaken,
                })
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// Records a delivery that ends before any attempt (a full backlog, a body over the cap): failed,
    /// with why, so `recover` can bring it back. Idempotent: an existing one stays.
    pub async fn record_failed_delivery(&self, org: &OrgId, delivery: &Delivery) -> Result<(), StoreError> {
        let put = self
            .put_request()
            .set_item(Some(delivery_item(org, delivery)?))
            .condition_expression("attribute_not_exists(PK)");
        match self.send_put(put).await {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One delivery, as last written (strongly consistent).
    pub async fn delivery(
        &self,
        org: &OrgId,
        endpoint: uuid::Uuid,
        id: uuid::Uuid,
    ) -> Result<Option<Delivery>, StoreError> {
        let item = self.get_item(keys::webhook_pk(org, endpoint), &keys::delivery_sk(id), true).await?;
        item.map(DeliveryRecord::entity_of).transpose()
    }

    /// A page of an endpoint's deliveries, newest first (bounded reads: a status filter may give
    /// fewer than `limit` and a key to go on).
    pub async fn deliveries_page(
        &self,
        org: &OrgId,
        endpoint: uuid::Uuid,
        filter: DeliveryFilter,
        start: Option<PageKey>,
        limit: usize,
    ) -> Result<Page<Delivery>, StoreError> {
        let pk = keys::webhook_pk(org, endpoint);
        let since = filter.since.map(|t| {
            let millis = u64::try_from(t.timestamp_millis()).unwrap_or_default();
            keys::delivery_sk(uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid())
        });
        let build = |q: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder| {
            let q = q.expression_attribute_values(":pk", s(pk.as_str())).scan_index_forward(false);
            let q = match &since {
                Some(from) => q
                    .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .expression_attribute_values(":from", s(from.as_str()))
                    .expression_attribute_values(":to", s(format!("{}~", keys::DELIVERY_SK_PREFIX))),
                None => q
                    .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                    .expression_attribute_values(":prefix", s(keys::DELIVERY_SK_PREFIX)),
            };
            match filter.status {
                Some(status) => q
                    .filter_expression("#status = :status")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(status_name(status))),
                None => q,
            }
        };
        let (items, next) = self.query_bounded(build, None, filter.status.is_some(), start, limit).await?;
        Ok(Page { items: items.into_iter().map(DeliveryRecord::entity_of).collect::<Result<_, _>>()?, next })
    }

    /// Writes an attempt's outcome `after` over `before` (the same round and step, still pending),
    /// with the endpoint's health: whether it delivered and when; out of the backlog if the delivery
    /// ended; disabled at `disable` if it spent its schedule. `false` if another attempt was recorded
    /// first (the queue delivered the same step twice): nothing is written.
    pub async fn record_attempt(
        &self,
        org: &OrgId,
        before: &Delivery,
        after: &Delivery,
        disable: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let health = endpoint_health(org, before, after, disable);
        match self.write_step(org, before, after, health.clone()).await {
            // The endpoint was deleted meanwhile: the delivery's outcome is still recorded.
            Err(StoreError::NotFound) if health.is_some() => self.write_step(org, before, after, None).await,
            other => other,
        }
    }

    /// `after` over `before` at the same step, with the endpoint's `health` update if any: `false` if
    /// the step was written before, [`StoreError::NotFound`] if the endpoint is gone.
    async fn write_step(
        &self,
        org: &OrgId,
        before: &Delivery,
        after: &Delivery,
        health: Option<aws_sdk_dynamodb::types::builders::UpdateBuilder>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.transaction();
        let written = tx.put_with(same_step(org, before, after)?)?;
        if let Some(health) = health {
            tx.update(health)?;
        }
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(written).is_some_and(CancelReason::condition_failed) => {
                Ok(false)
            }
            Err(TxFailure::Cancelled(reasons)) if reasons.iter().any(CancelReason::condition_failed) => {
                Err(StoreError::NotFound)
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// Claims the next attempt of `delivery` (its round and step, still pending) until `until`: `false`
    /// if another container claimed it and its claim has not lapsed at `now` (the queue delivered the
    /// same task twice), so one attempt is made per step. Writing the attempt's outcome drops the claim.
    pub async fn claim_attempt(
        &self,
        org: &OrgId,
        delivery: &Delivery,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let update = self
            .update_request()
            .key(keys::PK, s(keys::webhook_pk(org, delivery.endpoint_id)))
            .key(keys::SK, s(keys::delivery_sk(delivery.delivery_id)))
            .update_expression("SET claimedUntil = :until")
            .condition_expression(
                "#round = :round AND step = :step AND #status = :pending AND \
                 (attribute_not_exists(claimedUntil) OR claimedUntil < :now)",
            )
            .expression_attribute_names("#round", "round")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":round", n(delivery.round))
            .expression_attribute_values(":step", n(delivery.step))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":until", n(until.timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()));
        match self.send_update(update).await {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Starts a new round of a delivery that had ended (a redelivery, `recover`): `after` is pending
    /// again and counted in the backlog, if its endpoint still takes deliveries (on, not disabled, fewer
    /// than `max_backlog` pending). [`Restarted::Changed`] if the delivery changed since it was read.
    pub async fn restart_delivery(
        &self,
        org: &OrgId,
        before: &Delivery,
        after: &Delivery,
        max_backlog: u64,
    ) -> Result<Restarted, StoreError> {
        let mut tx = self.transaction();
        let written = tx.put_with(
            Put::builder()
                .set_item(Some(delivery_item(org, after)?))
                .condition_expression("#round = :round AND #status = :status")
                .expression_attribute_names("#round", "round")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":round", n(before.round))
                .expression_attribute_values(":status", s(status_name(before.status))),
        )?;
        tx.update(
            endpoint_key(Update::builder(), org, before.endpoint_id)
                .update_expression("ADD pending :one")
                .condition_expression(
                    "attribute_exists(PK) AND isActive = :true AND attribute_not_exists(disabledAt) AND \
                     (attribute_not_exists(pending) OR pending < :max)",
                )
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .expression_attribute_values(":max", n(max_backlog)),
        )?;
        match tx.commit().await {
            Ok(()) => Ok(Restarted::Yes),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(written).is_some_and(CancelReason::condition_failed) => {
                Ok(Restarted::Changed)
            }
            Err(TxFailure::Cancelled(reasons)) if reasons.iter().any(CancelReason::condition_failed) => {
                Ok(Restarted::EndpointNotTaking)
            }
            Err(failure) => Err(failure.into()),
        }
    }
}

/// What restarting a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restarted {
    Yes,
    /// The delivery changed since it was read (another restart, or it was never ended).
    Changed,
    /// Its endpoint is gone, turned off, disabled, or its backlog is full: nothing written.
    EndpointNotTaking,
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Succeeded => "succeeded",
        DeliveryStatus::Failed => "failed",
    }
}

/// `after` put over `before` only if the stored delivery is still at `before`'s round and step, pending.
fn same_step(
    org: &OrgId,
    before: &Delivery,
    after: &Delivery,
) -> Result<aws_sdk_dynamodb::types::builders::PutBuilder, StoreError> {
    Ok(Put::builder()
        .set_item(Some(delivery_item(org, after)?))
        .condition_expression("#round = :round AND step = :step AND #status = :pending")
        .expression_attribute_names("#round", "round")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":round", n(before.round))
        .expression_attribute_values(":step", n(before.step))
        .expression_attribute_values(":pending", s("pending")))
}

/// The endpoint's side of an attempt: its health, and its backlog if the delivery left it. `None`
/// when the delivery made no attempt (it ended because the endpoint stopped taking events) and stays
/// counted nowhere.
fn endpoint_health(
    org: &OrgId,
    before: &Delivery,
    after: &Delivery,
    disable: Option<DateTime<Utc>>,
) -> Option<aws_sdk_dynamodb::types::builders::UpdateBuilder> {
    let attempted = after.attempts > before.attempts;
    let left = before.status == DeliveryStatus::Pending && after.status != DeliveryStatus::Pending;
    let mut set = Vec::new();
    let mut update =
        endpoint_key(Update::builder(), org, before.endpoint_id).condition_expression("attribute_exists(PK)");
    if attempted {
        set.push("lastDelivered = :delivered, lastAttemptAt = :at");
        update = update
            .expression_attribute_values(":delivered", AttributeValue::Bool(after.status == DeliveryStatus::Succeeded))
            .expression_attribute_values(":at", s(after.last_attempt_at.unwrap_or(after.created_at).to_rfc3339()));
    }
    if let Some(at) = disable {
        set.push("disabledAt = :disabled");
        update = update.expression_attribute_values(":disabled", s(at.to_rfc3339()));
    }
    let mut expression = if set.is_empty() { String::new() } else { format!("SET {}", set.join(", ")) };
    if left {
        expression.push_str(" ADD pending :minus");
        update = update.expression_attribute_values(":minus", n(-1));
    }
    (!expression.trim().is_empty()).then(|| update.update_expression(expression.trim().to_owned()))
}
