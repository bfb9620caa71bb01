//! How fast and how many at once one endpoint is sent to, held in the table so every container of
//! the delivery function shares it: a per-second counter (`RATE#<second>`) and a few send leases
//! (`LEASE#<n>`), each taken with a conditional write. A lease names its holder and lapses on its
//! own, so a container that dies mid-send frees its lease by time.

use chrono::{DateTime, Utc};
use domain::OrgId;

use crate::dynamo::{n, s};
use crate::{Store, StoreError, keys};

/// How long a rate counter item stays (TTL): past its second, with room for DynamoDB's lazy expiry.
const RATE_ITEM_SECONDS: i64 = 120;

impl Store {
    /// Counts one send to `endpoint` in the second of `now`: `false` (nothing counted) if `per_second`
    /// were already counted in it.
    pub async fn take_send_rate(
        &self,
        org: &OrgId,
        endpoint: uuid::Uuid,
        now: DateTime<Utc>,
        per_second: u32,
    ) -> Result<bool, StoreError> {
        let second = now.timestamp();
        let update = self
            .update_request()
            .key(keys::PK, s(keys::webhook_pk(org, endpoint)))
            .key(keys::SK, s(keys::send_rate_sk(second)))
            .update_expression("ADD sent :one SET expiresAt = :expires")
            .condition_expression("attribute_not_exists(sent) OR sent < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(per_second))
            .expression_attribute_values(":expires", n(second + RATE_ITEM_SECONDS));
        match self.send_update(update).await {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes one of `endpoint`'s `slots` send leases for `holder` until `until`: the slot taken, or
    /// `None` when every one is held (by a holder whose lease has not lapsed at `now`).
    pub async fn take_send_lease(
        &self,
        org: &OrgId,
        endpoint: uuid::Uuid,
        holder: &str,
        slots: usize,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        for slot in 0..slots {
            let update = self
                .update_request()
                .key(keys::PK, s(keys::webhook_pk(org, endpoint)))
                .key(keys::SK, s(keys::send_lease_sk(slot)))
                .update_expression("SET holder = :holder, heldUntil = :until, expiresAt = :expires")
                .condition_expression("attribute_not_exists(heldUntil) OR heldUntil < :now")
                .expression_attribute_values(":holder", s(holder))
                .expression_attribute_values(":until", n(until.timestamp_millis()))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .expression_attribute_values(":expires", n(until.timestamp() + RATE_ITEM_SECONDS));
            match self.send_update(update).await {
                Ok(_) => return Ok(Some(slot)),
                Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Gives a lease back (if `holder` still holds it; a lapsed one taken by another stays theirs).
    pub async fn release_send_lease(
        &self,
        org: &OrgId,
        endpoint: uuid::Uuid,
        holder: &str,
        slot: usize,
    ) -> Result<(), StoreError> {
        let update = self
            .update_request()
            .key(keys::PK, s(keys::webhook_pk(org, endpoint)))
            .key(keys::SK, s(keys::send_lease_sk(slot)))
            .update_expression("REMOVE heldUntil, holder")
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(holder));
        match self.send_update(update).await {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
