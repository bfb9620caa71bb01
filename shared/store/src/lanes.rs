//! Work lanes: per org and worker, the request that holds the lane (running, or queued to run) until a
//! time, and the requests waiting in line behind it. The table's side only — who takes, waits and hands
//! on is `service::lanes`.

use aws_sdk_dynamodb::types::{Delete, Update};
use chrono::{DateTime, Utc};
use domain::{DomainEvent, Lane, OrgId};
use uuid::Uuid;

use crate::dynamo::{Item, n, s};
use crate::tx::TxFailure;
use crate::{CorruptItem, Store, StoreError, keys};

/// An org's lane as read: who holds it and until when, and how many requests wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaneState {
    pub holder: Option<Uuid>,
    pub until: Option<DateTime<Utc>>,
    pub waiting: u64,
}

fn seconds(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

fn lane_key(
    update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    org: &OrgId,
    lane: Lane,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    update.key(keys::PK, s(keys::lane_pk(org, lane))).key(keys::SK, s(keys::LANE_SK))
}

fn cancelled_at(failure: &TxFailure, index: usize) -> bool {
    matches!(failure, TxFailure::Cancelled(reasons) if reasons.get(index).is_some_and(|r| r.condition_failed()))
}

impl Store {
    /// Sends a conditional update: `false` when its condition did not hold (nothing written).
    async fn update_if(
        &self,
        request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> Result<bool, StoreError> {
        match self.send_update(request).await {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// The lane as it is now (a strongly consistent read).
    pub async fn lane(&self, org: &OrgId, lane: Lane) -> Result<LaneState, StoreError> {
        let Some(item) = self.get_item(keys::lane_pk(org, lane), keys::LANE_SK, true).await? else {
            return Ok(LaneState::default());
        };
        let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
        Ok(LaneState {
            holder: item.get("holder").and_then(|v| v.as_s().ok()).and_then(|v| Uuid::parse_str(v).ok()),
            until: number("until").and_then(|at| DateTime::from_timestamp(at, 0)),
            waiting: number("waiting").map_or(0, |w| u64::try_from(w).unwrap_or(0)),
        })
    }

    /// Makes `id` the lane's holder until `until` if nobody holds it, its holder's time ran out by
    /// `now`, or `id` holds it already; `false` (nothing written) while another holds it.
    pub async fn take_lane(
        &self,
        org: &OrgId,
        lane: Lane,
        id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let request = self
            .update_request()
            .key(keys::PK, s(keys::lane_pk(org, lane)))
            .key(keys::SK, s(keys::LANE_SK))
            .update_expression("SET holder = :id, #until = :until")
            .condition_expression("attribute_not_exists(holder) OR holder = :id OR #until < :now")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":id", s(id.to_string()))
            .expression_attribute_values(":until", n(seconds(until)))
            .expression_attribute_values(":now", n(seconds(now)));
        self.update_if(request).await
    }

    /// Keeps the lane `id`'s until `until`; `false` when another holds it (or nobody).
    pub async fn keep_lane(&self, org: &OrgId, lane: Lane, id: Uuid, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let request = self
            .update_request()
            .key(keys::PK, s(keys::lane_pk(org, lane)))
            .key(keys::SK, s(keys::LANE_SK))
            .update_expression("SET #until = :until")
            .condition_expression("holder = :id")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":id", s(id.to_string()))
            .expression_attribute_values(":until", n(seconds(until)));
        self.update_if(request).await
    }

    /// Puts `request` in line while another request holds the lane (and its time has not run out by
    /// `now`): `true` when it waits (or waited already: a request is in line once), `false` when the
    /// lane is free to take (nothing written).
    pub async fn wait_in_lane(
        &self,
        org: &OrgId,
        lane: Lane,
        request: &DomainEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let pk = keys::lane_pk(org, lane);
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(&pk));
        item.insert(keys::SK.into(), s(format!("{}{}", keys::LANE_WAIT_SK_PREFIX, request.id)));
        item.insert("request".into(), s(serde_json::to_string(request).map_err(|e| StoreError::Other(e.to_string()))?));
        let mut tx = self.transaction();
        let put = tx.put(item, Some("attribute_not_exists(PK)"))?;
        let held = tx.update(
            lane_key(Update::builder(), org, lane)
                .update_expression("ADD waiting :one")
                .condition_expression("attribute_exists(holder) AND holder <> :id AND #until >= :now")
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":id", s(request.id.to_string()))
                .expression_attribute_values(":now", n(seconds(now))),
        )?;
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(failure) if cancelled_at(&failure, put) => Ok(true),
            Err(failure) if cancelled_at(&failure, held) => Ok(false),
            Err(failure) => Err(failure.into()),
        }
    }

    /// The request first in line, if any (a strongly consistent read): `Err` with its key when the item
    /// cannot be read back (see [`Store::drop_unreadable_from_lane`]).
    pub async fn first_in_lane(
        &self,
        org: &OrgId,
        lane: Lane,
    ) -> Result<Option<Result<DomainEvent, CorruptItem>>, StoreError> {
        let pk = keys::lane_pk(org, lane);
        let (items, _) = self
            .query_page(
                |q| {
                    q.key_condition_expression("PK = :pk AND begins_with(SK, :wait)")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":wait", s(keys::LANE_WAIT_SK_PREFIX))
                        .consistent_read(true)
                },
                None,
                Some(1),
            )
            .await?;
        let Some(item) = items.into_iter().next() else { return Ok(None) };
        let request = item.get("request").and_then(|v| v.as_s().ok()).and_then(|r| serde_json::from_str(r).ok());
        Ok(Some(request.ok_or_else(|| CorruptItem {
            pk: pk.clone(),
            sk: item.get(keys::SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
        })))
    }

    /// Takes an item that cannot be read out of the line (`waiting` with it), so it does not stop the
    /// line for good; `false` when it is gone already.
    pub async fn drop_unreadable_from_lane(
        &self,
        org: &OrgId,
        lane: Lane,
        unreadable: &CorruptItem,
    ) -> Result<bool, StoreError> {
        if unreadable.pk != keys::lane_pk(org, lane) || !unreadable.sk.starts_with(keys::LANE_WAIT_SK_PREFIX) {
            return Err(StoreError::Other(format!("{unreadable} is not in the {} lane of {org}", lane.as_str())));
        }
        let mut tx = self.transaction();
        tx.delete(
            Delete::builder()
                .key(keys::PK, s(&unreadable.pk))
                .key(keys::SK, s(&unreadable.sk))
                .condition_expression("attribute_exists(PK)"),
        )?;
        tx.update(
            lane_key(Update::builder(), org, lane)
                .update_expression("ADD waiting :minus")
                .expression_attribute_values(":minus", n(-1)),
        )?;
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(failure) if cancelled_at(&failure, 0) => Ok(false),
            Err(failure) => Err(failure.into()),
        }
    }

    /// Frees the lane `id` holds when nobody waits; `false` (nothing written) when a request waits or
    /// another holds it.
    pub async fn free_lane(&self, org: &OrgId, lane: Lane, id: Uuid) -> Result<bool, StoreError> {
        let request = self
            .update_request()
            .key(keys::PK, s(keys::lane_pk(org, lane)))
            .key(keys::SK, s(keys::LANE_SK))
            .update_expression("REMOVE holder, #until")
            .condition_expression("holder = :id AND (attribute_not_exists(waiting) OR waiting <= :zero)")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":id", s(id.to_string()))
            .expression_attribute_values(":zero", n(0));
        self.update_if(request).await
    }

    /// Hands the lane from `from` to the request first in line, `waiting`: it leaves the line and its
    /// reissue `next` (a new id) holds the lane until `until` and is committed to the outbox — all in
    /// one transaction. `false` (nothing written) when `from` no longer holds the lane or `waiting` left
    /// the line already.
    pub async fn hand_on_lane(
        &self,
        org: &OrgId,
        lane: Lane,
        from: Uuid,
        waiting: Uuid,
        next: &DomainEvent,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.transaction();
        tx.delete(
            Delete::builder()
                .key(keys::PK, s(keys::lane_pk(org, lane)))
                .key(keys::SK, s(format!("{}{waiting}", keys::LANE_WAIT_SK_PREFIX)))
                .condition_expression("attribute_exists(PK)"),
        )?;
        tx.update(
            lane_key(Update::builder(), org, lane)
                .update_expression("SET holder = :next, #until = :until ADD waiting :minus")
                .condition_expression("holder = :from")
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(":next", s(next.id.to_string()))
                .expression_attribute_values(":from", s(from.to_string()))
                .expression_attribute_values(":until", n(seconds(until)))
                .expression_attribute_values(":minus", n(-1)),
        )?;
        tx.outbox(org, std::slice::from_ref(next))?;
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(reasons)) if reasons.iter().any(|r| r.lost_a_race()) => Ok(false),
            Err(failure) => Err(failure.into()),
        }
    }
}
