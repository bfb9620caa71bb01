//! The webhook functions' adapters (feature `webhooks`, which only they turn on): the delivery queue
//! as the service's [`AttemptQueue`], KMS as its [`Vault`] and the SSRF-safe sender as its [`Post`].

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use domain::OrgId;
use domain::webhook::Attempt;
use service::AppError;
use service::webhooks::{AttemptQueue, Post, Queued, Vault};
use uuid::Uuid;

use crate::MissingVariable;
use crate::queue::Queue;

/// The delivery queue's environment variable: its URL.
pub const DELIVERY_QUEUE_URL_VAR: &str = "WEBHOOK_DELIVERY_QUEUE_URL";
/// The signing secrets' KMS key's environment variable: its ARN (or id).
pub const SECRETS_KEY_VAR: &str = "WEBHOOK_SECRETS_KEY_ARN";

/// The delivery queue, each task hidden for its own delay.
#[derive(Debug, Clone)]
pub struct DeliveryQueue(pub Queue);

impl DeliveryQueue {
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, MissingVariable> {
        Ok(Self(Queue::from_var(config, DELIVERY_QUEUE_URL_VAR)?))
    }
}

impl AttemptQueue for DeliveryQueue {
    async fn send(&self, tasks: &[Queued]) -> Result<(), AppError> {
        let messages: Vec<_> =
            tasks.iter().map(|q| (&q.task, i32::try_from(q.delay.num_seconds()).unwrap_or(i32::MAX))).collect();
        self.0.send_delayed(&messages).await.map_err(|e| AppError::Unavailable(e.to_string()))
    }
}

/// Opened secrets a container keeps, by ciphertext (at most this many: one per endpoint it serves,
/// and the rotated-out ones).
const OPENED_KEPT: usize = 256;

/// Endpoint secrets sealed with the service's KMS key, each bound to its org and endpoint (the
/// encryption context): a ciphertext moved onto another endpoint's item does not open. The API
/// function's role may only encrypt; only the delivery function's may decrypt.
pub struct KmsVault {
    client: aws_sdk_kms::Client,
    key: String,
    opened: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for KmsVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KmsVault(..)")
    }
}

impl KmsVault {
    pub fn new(client: aws_sdk_kms::Client, key: impl Into<String>) -> Self {
        Self { client, key: key.into(), opened: Mutex::default() }
    }

    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, MissingVariable> {
        let key = std::env::var(SECRETS_KEY_VAR).map_err(|_| MissingVariable(SECRETS_KEY_VAR))?;
        Ok(Self::new(aws_sdk_kms::Client::new(config), key))
    }
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> AppError {
    AppError::Unavailable(format!("{what}: {error}"))
}

impl Vault for KmsVault {
    async fn seal(&self, org: &OrgId, endpoint: Uuid, secret: &webhooks::Secret) -> Result<String, AppError> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key)
            .plaintext(Blob::new(secret.expose().into_bytes()))
            .encryption_context("orgId", org.as_str())
            .encryption_context("endpointId", endpoint.to_string())
            .send()
            .await
            .map_err(|e| unavailable("kms", aws_sdk_kms::error::DisplayErrorContext(e)))?;
        let blob = out.ciphertext_blob.ok_or_else(|| unavailable("kms", "no ciphertext"))?;
        Ok(BASE64.encode(blob.as_ref()))
    }

    async fn open(&self, org: &OrgId, endpoint: Uuid, sealed: &str) -> Result<webhooks::Secret, AppError> {
        let cached = self.opened.lock().ok().and_then(|opened| opened.get(sealed).cloned());
        let text = match cached {
            Some(text) => text,
            None => {
                let blob = BASE64.decode(sealed).map_err(|e| unavailable("a sealed secret", e))?;
                let out = self
                    .client
                    .decrypt()
                    .key_id(&self.key)
                    .ciphertext_blob(Blob::new(blob))
                    .encryption_context("orgId", org.as_str())
                    .encryption_context("endpointId", endpoint.to_string())
                    .send()
                    .await
                    .map_err(|e| unavailable("kms", aws_sdk_kms::error::DisplayErrorContext(e)))?;
                let plain = out.plaintext.ok_or_else(|| unavailable("kms", "no plaintext"))?;
                let text = String::from_utf8(plain.into_inner()).map_err(|e| unavailable("a sealed secret", e))?;
                if let Ok(mut opened) = self.opened.lock() {
                    if opened.len() >= OPENED_KEPT {
                        opened.clear();
                    }
                    opened.insert(sealed.to_owned(), text.clone());
                }
                text
            }
        };
        webhooks::Secret::parse(&text).map_err(|e| unavailable("a sealed secret", e))
    }
}

/// The sender as the service's [`Post`].
pub struct HttpPost(pub webhooks::Sender);

impl Post for HttpPost {
    async fn post(&self, url: &str, headers: &[(&str, &str)], body: String) -> Attempt {
        self.0.post(url, headers, body).await
    }
}
