//! Pattern 7: API keys by token hash, idempotency records and rate-limit counters (with TTL).

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, Update};
use chrono::{DateTime, Duration, Timelike, Utc};
use domain::{ApiKey, OrgId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dynamo::{Item, classify, from_item, n, s, to_item};
use crate::records::{ApiKeyRecord, Record};
use crate::{Store, StoreError, keys};

/// How long a stored response answers retries.
pub const IDEMPOTENCY_TTL: Duration = Duration::hours(24);
/// How long a request in flight holds its key before a retry may take over (a crashed attempt).
pub const IDEMPOTENCY_LEASE: Duration = Duration::seconds(60);

/// SHA-256 of a token, lowercase hex: the only form in which API keys are stored.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An `Idempotency-Key` scoped to the caller and the route, hashed so any client string is a safe key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    digest: String,
}

/// Records `response` on a key claimed by [`Store::begin_idempotency`], on its own or within the
/// transaction of the change it answers.
pub(crate) fn idempotency_completion(
    org: &OrgId,
    key: &IdempotencyKey,
    response: &StoredResponse,
) -> Result<UpdateBuilder, StoreError> {
    let response = to_item(&serde_json::json!({ "r": response }))?.remove("r").unwrap_or(AttributeValue::Null(true));
    Ok(Update::builder()
        .key(keys::PK, s(keys::idempotency_pk(org, &key.digest)))
        .key(keys::SK, s(keys::IDEMPOTENCY_SK))
        .update_expression("SET #state = :complete, #response = :response")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_names("#state", "state")
        .expression_attribute_names("#response", "response")
        .expression_attribute_values(":complete", s("complete"))
        .expression_attribute_values(":response", response))
}

impl IdempotencyKey {
    pub fn new(actor: &str, route: &str, client_key: &str) -> Self {
        let mut hasher = Sha256::new();
        for part in [actor, route, client_key] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        Self { digest: hex::encode(hasher.finalize()) }
    }
}

/// A response remembered for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// How a create answers its request's retries: the request's idempotency key, and the answer to the
/// assignment as it commits (see [`Store::create_assignment_answering`]).
pub type CreateAnswer<'a> = (&'a IdempotencyKey, &'a (dyn Fn(&domain::Assignment) -> StoredResponse + Sync));

/// What to do with a request carrying an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First time: process it, then [`Store::complete_idempotency`] (or release on a 5xx).
    Started,
    /// Seen before with the same body: send this response again.
    Replay(StoredResponse),
    /// The same key is being processed right now.
    InProgress,
    /// The key was used with a different body.
    Mismatch,
}

#[derive(Debug, Serialize, Deserialize)]
struct IdempotencyRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    entity: String,
    #[serde(rename = "requestHash")]
    request_hash: String,
    state: String,
    #[serde(rename = "leaseUntil")]
    lease_until: i64,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<StoredResponse>,
}

impl Store {
    /// Stores a new API key under the hash of its token.
    pub async fn put_api_key(&self, key: &ApiKey, token: &str) -> Result<(), StoreError> {
        let hash = token_sha256(token);
        let record = ApiKeyRecord {
            pk: keys::api_key_pk(&hash),
            sk: keys::API_KEY_SK.into(),
            entity: "api-key".into(),
            gsi1pk: Some(keys::org_api_keys(&key.org_id)),
            gsi1sk: Some(key.key_id.to_string()),
            token_sha256: Some(hash),
            key: key.clone(),
        };
        self.send_put(
            self.put_request().set_item(Some(to_item(&record)?)).condition_expression("attribute_not_exists(PK)"),
        )
        .await?;
        Ok(())
    }

    /// The key a bearer token belongs to, read strongly consistent so a revocation applies to the
    /// very next request.
    pub async fn api_key_by_token(&self, token: &str) -> Result<Option<ApiKey>, StoreError> {
        // Strongly consistent: a revocation applies to the very next request.
        let item = self.get_item(keys::api_key_pk(&token_sha256(token)), keys::API_KEY_SK, true).await?;
        item.map(ApiKeyRecord::entity_of).transpose()
    }

    /// One of the org's keys by its id (a key another org holds is not found), read strongly consistent
    /// once the org's index has named its item, so a revocation is seen at once.
    pub async fn api_key_by_id(&self, org: &OrgId, key_id: uuid::Uuid) -> Result<Option<ApiKey>, StoreError> {
        let Some(listed) = self.api_key_record(org, key_id).await? else { return Ok(None) };
        let listed: ApiKeyRecord = from_item(listed)?;
        let item = self.get_item(listed.pk, keys::API_KEY_SK, true).await?;
        item.map(ApiKeyRecord::entity_of).transpose()
    }

    async fn api_key_record(&self, org: &OrgId, key_id: uuid::Uuid) -> Result<Option<Item>, StoreError> {
        let pk = keys::org_api_keys(org);
        let (found, _) = self
            .query_page(
                |q| {
                    q.index_name(keys::GSI1)
                        .key_condition_expression("GSI1PK = :pk AND GSI1SK = :id")
                        .expression_attribute_values(":pk", s(pk.as_str()))
                        .expression_attribute_values(":id", s(key_id.to_string()))
                },
                None,
                Some(1),
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// Revokes one of the org's keys, effective immediately.
    pub async fn revoke_api_key(&self, org: &OrgId, key_id: uuid::Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        let record: ApiKeyRecord = from_item(self.api_key_record(org, key_id).await?.ok_or(StoreError::NotFound)?)?;
        self.send_update(
            self.update_request()
                .key(keys::PK, s(record.pk))
                .key(keys::SK, s(record.sk))
                .update_expression("SET revokedAt = :at")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":at", s(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
        )
        .await?;
        Ok(())
    }

    /// Claims an idempotency key for a request whose body hashes to `request_hash`.
    pub async fn begin_idempotency(
        &self,
        org: &OrgId,
        key: &IdempotencyKey,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyBegin, StoreError> {
        let record = IdempotencyRecord {
            pk: keys::idempotency_pk(org, &key.digest),
            sk: keys::IDEMPOTENCY_SK.into(),
            entity: "idempotency".into(),
            request_hash: request_hash.to_owned(),
            state: "pending".into(),
            lease_until: (now + IDEMPOTENCY_LEASE).timestamp(),
            expires_at: (now + IDEMPOTENCY_TTL).timestamp(),
            response: None,
        };
        // Sent directly, not through `send_put`: a refusal's error carries the stored claim.
        let result = self
            .put_request()
            .set_item(Some(to_item(&record)?))
            // Free, expired (TTL deletes lazily), or a crashed attempt whose lease ran out.
            .condition_expression(
                "attribute_not_exists(PK) OR expiresAt < :now OR (#state = :pending AND leaseUntil < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":pending", s("pending"))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.note_write(out.consumed_capacity());
                Ok(IdempotencyBegin::Started)
            }
            Err(err) => {
                let existing = err.as_service_error().and_then(|e| match e {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                        c.item.clone()
                    }
                    _ => None,
                });
                let existing = match existing {
                    Some(item) => Some(item),
                    None if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                        self.get(record.pk.clone(), keys::IDEMPOTENCY_SK).await?
                    }
                    None => return Err(classify(err)),
                };
                let Some(existing) = existing else { return Ok(IdempotencyBegin::InProgress) };
                let existing: IdempotencyRecord = from_item(existing)?;
                Ok(if existing.request_hash != request_hash {
                    IdempotencyBegin::Mismatch
                } else if let Some(response) = existing.response.filter(|_| existing.state == "complete") {
                    IdempotencyBegin::Replay(response)
                } else {
                    IdempotencyBegin::InProgress
                })
            }
        }
    }

    /// Records the response of a request that claimed `key`, for replays within 24 hours.
    pub async fn complete_idempotency(
        &self,
        org: &OrgId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let update = idempotency_completion(org, key, response)?;
        self.send_update(
            self.update_request()
                .set_key(update.get_key().clone())
                .set_update_expression(update.get_update_expression().clone())
                .set_condition_expression(update.get_condition_expression().clone())
                .set_expression_attribute_names(update.get_expression_attribute_names().clone())
                .set_expression_attribute_values(update.get_expression_attribute_values().clone()),
        )
        .await?;
        Ok(())
    }

    /// Gives a key back after a failure that the client should be able to retry (a 5xx): the lease
    /// ends now, so the next attempt claims it. An update, not a delete: the function that claims
    /// keys needs no `dynamodb:DeleteItem` for it.
    pub async fn release_idempotency(&self, org: &OrgId, key: &IdempotencyKey) -> Result<(), StoreError> {
        let result = self
            .send_update(
                self.update_request()
                    .key(keys::PK, s(keys::idempotency_pk(org, &key.digest)))
                    .key(keys::SK, s(keys::IDEMPOTENCY_SK))
                    .update_expression("SET leaseUntil = :ended")
                    .condition_expression("#state = :pending")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":pending", s("pending"))
                    .expression_attribute_values(":ended", n(0)),
            )
            .await;
        match result {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

mod rates;
pub use rates::{RateCounts, RateLimits, RateSubject};
