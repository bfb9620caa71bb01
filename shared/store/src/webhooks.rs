//! Customer webhook endpoints (`ORG#o#WEBHOOKS`): each endpoint with its sealed signing secret, and
//! the org's endpoint count, which the create and delete transactions move so the per-org limit holds
//! under concurrent requests. Deliveries and pacing: [`deliveries`], [`pacing`].

use aws_sdk_dynamodb::types::{Delete, Update};
use chrono::{DateTime, Utc};
use domain::webhook::Endpoint;
use domain::{AuditEntry, OrgId};
use serde::{Deserialize, Serialize};

use crate::dynamo::{n, s, to_item};
use crate::partition::Partition;
use crate::records::{Record, record};
use crate::tx::{CancelReason, TxFailure};
use crate::{Store, StoreError, keys};

pub mod deliveries;
pub mod pacing;

pub use deliveries::{DeliveryFilter, Recorded, Restarted};

/// An endpoint's signing secret as stored: sealed by the service's key (its ciphertext, base64), and
/// the one it replaced while that still signs beside it. Only the delivery function can open them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecret {
    #[serde(rename = "secret")]
    pub current: String,
    #[serde(default, rename = "previousSecret", skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default, rename = "previousSecretUntil", skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret(..)")
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Stored {
    #[serde(flatten)]
    endpoint: Endpoint,
    #[serde(flatten)]
    secret: SealedSecret,
}

record!(EndpointRecord {} flatten stored: Stored);

fn endpoint_item(org: &OrgId, endpoint: &Endpoint, secret: &SealedSecret) -> Result<crate::dynamo::Item, StoreError> {
    to_item(&EndpointRecord {
        pk: keys::webhooks_pk(org),
        sk: keys::endpoint_sk(endpoint.id),
        entity: "webhook-endpoint".into(),
        stored: Stored { endpoint: endpoint.clone(), secret: secret.clone() },
    })
}

impl Store {
    /// Records a new endpoint with its audit entry, counted against `limit` in the same transaction:
    /// `false` (nothing written) when the org already has `limit`.
    pub async fn create_endpoint(
        &self,
        org: &OrgId,
        endpoint: &Endpoint,
        secret: &SealedSecret,
        limit: usize,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.transaction();
        let counted = tx.update(
            Update::builder()
                .key(keys::PK, s(keys::webhooks_pk(org)))
                .key(keys::SK, s(keys::ENDPOINT_COUNT_SK))
                .update_expression("ADD #count :one")
                .condition_expression("attribute_not_exists(#count) OR #count < :limit")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(limit)),
        )?;
        tx.put(endpoint_item(org, endpoint, secret)?, Some("attribute_not_exists(PK)"))?;
        tx.audit(org, audit)?;
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(counted).is_some_and(CancelReason::condition_failed) => {
                Ok(false)
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// The org's endpoints, oldest first (strongly consistent: a change is seen at once).
    pub async fn endpoints(&self, org: &OrgId) -> Result<Vec<Endpoint>, StoreError> {
        let partition = Partition::table(keys::webhooks_pk(org)).prefixed(keys::ENDPOINT_SK_PREFIX).consistent();
        let stored = self.all_of::<EndpointRecord>(&partition).await?;
        let mut endpoints: Vec<Endpoint> = stored.into_iter().map(|s| s.endpoint).collect();
        endpoints.sort_by_key(|e| e.created_at);
        Ok(endpoints)
    }

    pub async fn endpoint(&self, org: &OrgId, id: uuid::Uuid) -> Result<Option<Endpoint>, StoreError> {
        Ok(self.endpoint_and_secret(org, id).await?.map(|(endpoint, _)| endpoint))
    }

    /// The endpoint and its sealed secret (for the delivery, the only reader that can open it).
    pub async fn endpoint_and_secret(
        &self,
        org: &OrgId,
        id: uuid::Uuid,
    ) -> Result<Option<(Endpoint, SealedSecret)>, StoreError> {
        let item = self.get_item(keys::webhooks_pk(org), &keys::endpoint_sk(id), true).await?;
        Ok(item.map(EndpointRecord::entity_of).transpose()?.map(|s| (s.endpoint, s.secret)))
    }

    /// Writes `after` (an admin's change, or a new secret) over `before` if it is still the stored
    /// version, with the audit entry. `secret`: the new sealed secret, if it changes. Delivery
    /// figures (`pending`, health) are not written: deliveries move those concurrently.
    pub async fn update_endpoint(
        &self,
        org: &OrgId,
        before: &Endpoint,
        after: &Endpoint,
        secret: Option<&SealedSecret>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut update = Update::builder()
            .key(keys::PK, s(keys::webhooks_pk(org)))
            .key(keys::SK, s(keys::endpoint_sk(before.id)))
            .condition_expression("version = :before")
            .expression_attribute_values(":before", n(before.version))
            .expression_attribute_values(":version", n(after.version))
            .expression_attribute_values(":url", s(after.url.as_str()))
            .expression_attribute_values(":description", s(after.description.as_str()))
            .expression_attribute_values(":events", to_list(&after.events))
            .expression_attribute_values(":active", aws_sdk_dynamodb::types::AttributeValue::Bool(after.is_active))
            .expression_attribute_values(":updated", s(after.updated_at.to_rfc3339()));
        let mut set = String::from(
            "SET version = :version, #url = :url, description = :description, events = :events, isActive = :active, \
             updatedAt = :updated",
        );
        update = update.expression_attribute_names("#url", "url");
        if let Some(secret) = secret {
            set.push_str(", secret = :secret");
            update = update.expression_attribute_values(":secret", s(secret.current.as_str()));
            if let (Some(previous), Some(until)) = (&secret.previous, secret.previous_until) {
                set.push_str(", previousSecret = :previous, previousSecretUntil = :until");
                update = update
                    .expression_attribute_values(":previous", s(previous.as_str()))
                    .expression_attribute_values(":until", s(until.to_rfc3339()));
            }
        }
        if let Some(since) = after.active_since.filter(|since| Some(*since) != before.active_since) {
            set.push_str(", activeSince = :since");
            update = update.expression_attribute_values(":since", s(since.to_rfc3339()));
        }
        let expression = if after.disabled_at.is_none() && before.disabled_at.is_some() {
            format!("{set} REMOVE disabledAt")
        } else {
            set
        };
        let mut tx = self.transaction();
        let written = tx.update(update.update_expression(expression))?;
        tx.audit(org, audit)?;
        match tx.commit().await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(written).is_some_and(CancelReason::condition_failed) => {
                Err(StoreError::VersionConflict)
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// Deletes the endpoint (if still at `before`'s version) and uncounts it, with the audit entry.
    /// Its deliveries stay until they expire; one still pending fails at its next attempt.
    pub async fn delete_endpoint(&self, org: &OrgId, before: &Endpoint, audit: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.transaction();
        let deleted = tx.delete(
            Delete::builder()
                .key(keys::PK, s(keys::webhooks_pk(org)))
                .key(keys::SK, s(keys::endpoint_sk(before.id)))
                .condition_expression("version = :before")
                .expression_attribute_values(":before", n(before.version)),
        )?;
        tx.update(
            Update::builder()
                .key(keys::PK, s(keys::webhooks_pk(org)))
                .key(keys::SK, s(keys::ENDPOINT_COUNT_SK))
                .update_expression("ADD #count :minus")
                .condition_expression("#count > :zero")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":minus", n(-1))
                .expression_attribute_values(":zero", n(0)),
        )?;
        tx.audit(org, audit)?;
        match tx.commit().await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(deleted).is_some_and(CancelReason::condition_failed) => {
                Err(StoreError::VersionConflict)
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// The org's endpoint count as stored (the limit's counter; a test holds it to the endpoints).
    pub async fn endpoint_count(&self, org: &OrgId) -> Result<u64, StoreError> {
        let item = self.get_item(keys::webhooks_pk(org), keys::ENDPOINT_COUNT_SK, true).await?;
        Ok(item
            .and_then(|item| item.get("count").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()))
            .unwrap_or(0))
    }
}

fn to_list(values: &[String]) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::L(values.iter().map(|v| s(v.as_str())).collect())
}
