//! The secret that signs the platform's session tokens (HS256), and the pagination cursors' key derived
//! from it. Deployed, it lives in AWS Secrets Manager — the platform's own secret, named by the
//! template's `SessionTokenSecretArn` — never in an environment variable, where anyone allowed
//! `lambda:GetFunctionConfiguration` could read it and mint an org admin's token for any org.
//!
//! Read on a container's first request that needs it (not at start-up: a cold start does not wait
//! for it) and cached: both the current version (`AWSCURRENT`) and the one before it (`AWSPREVIOUS`)
//! verify, so tokens signed on either side of a rotation are accepted. A token whose signature neither
//! verifies makes the container read the secret again once its copy is older than [`REREAD_AFTER`]
//! (a stream of forged tokens costs at most one read per container per [`REREAD_AFTER`]), and any
//! copy older than [`REFRESH_AFTER`] is read again on its next use (a container that only serves API
//! keys still learns of a rotation, for the cursors). A read that failed is not tried again for
//! [`RETRY_READ_AFTER`].

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use store::CursorCodec;

/// How old the cached copy must be before a signature that fails makes the container read it again.
pub const REREAD_AFTER: Duration = Duration::from_secs(5 * 60);
/// How old a copy may get before its next use reads the secret again, whatever happened.
pub const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);
/// How long after a failed read the secret is not read again (each request meanwhile gets 503).
pub const RETRY_READ_AFTER: Duration = Duration::from_secs(5);
/// A signing secret shorter than this is refused (HS256 wants at least the hash's 32 bytes).
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the session token secret could not be read: {0}")]
    Unreadable(String),
    #[error("the session token secret is shorter than {MIN_SECRET_BYTES} bytes")]
    Weak,
}

/// The versions of the secret a container holds, and when it read them.
#[derive(Clone)]
pub struct Versions {
    /// `AWSCURRENT`, then `AWSPREVIOUS` when there is one.
    pub secrets: Vec<Vec<u8>>,
    read_at: Instant,
}

impl std::fmt::Debug for Versions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Versions({} secrets, read {:?} ago)", self.secrets.len(), self.read_at.elapsed())
    }
}

impl Versions {
    /// The cursors' codec: sealed with the key derived from the current secret, opened with any
    /// version's (a cursor handed out before a rotation still works after it).
    pub fn cursors(&self) -> CursorCodec {
        let mut keys = self.secrets.iter().map(|secret| cursor_key(secret));
        let current = keys.next().unwrap_or_default();
        keys.fold(CursorCodec::new(current), CursorCodec::also_opening_with)
    }
}

/// The cursor-signing key of `secret`: derived from it, so one secret is configured, and a cursor is
/// not a token.
fn cursor_key(secret: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(b"assignments/pagination-cursor/v1");
    mac.finalize().into_bytes().to_vec()
}

enum Source {
    /// Tests and the local gateway's own tokens.
    Fixed,
    Managed {
        client: aws_sdk_secretsmanager::Client,
        arn: String,
    },
}

/// The session tokens' secret, where it comes from, and the container's copy of it.
pub struct SessionSecret {
    source: Source,
    cached: RwLock<Option<Arc<Versions>>>,
    /// When a read last failed, and why.
    failed: RwLock<Option<(Instant, String)>>,
    reread_after: Duration,
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Fixed => f.write_str("SessionSecret(fixed)"),
            Source::Managed { arn, .. } => write!(f, "SessionSecret({arn})"),
        }
    }
}

impl SessionSecret {
    /// A secret given as it is (tests, the local gateway).
    pub fn fixed(secret: &[u8]) -> Self {
        let versions = Versions { secrets: vec![secret.to_vec()], read_at: Instant::now() };
        let cached = RwLock::new(Some(Arc::new(versions)));
        Self { source: Source::Fixed, cached, failed: RwLock::new(None), reread_after: REREAD_AFTER }
    }

    /// The Secrets Manager secret `arn`, read with `client` on first use.
    pub fn managed(client: aws_sdk_secretsmanager::Client, arn: impl Into<String>) -> Self {
        Self {
            source: Source::Managed { client, arn: arn.into() },
            cached: RwLock::new(None),
            failed: RwLock::new(None),
            reread_after: REREAD_AFTER,
        }
    }

    /// Reads again after `reread_after` instead of [`REREAD_AFTER`] (tests of a rotation).
    pub fn reread_after(mut self, reread_after: Duration) -> Self {
        self.reread_after = reread_after;
        self
    }

    /// The container's copy, if it has one.
    pub fn cached(&self) -> Option<Arc<Versions>> {
        self.cached.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The container's copy, read first if it has none (or it is older than [`REFRESH_AFTER`]: then
    /// the old copy serves while the secret cannot be read).
    pub async fn versions(&self) -> Result<Arc<Versions>, SecretError> {
        match self.cached() {
            Some(versions) if matches!(self.source, Source::Fixed) || versions.read_at.elapsed() < REFRESH_AFTER => {
                Ok(versions)
            }
            Some(stale) => Ok(self.read().await.unwrap_or(stale)),
            None => self.read().await,
        }
    }

    /// A fresh copy when `seen` (the copy a signature just failed with) is older than the re-read
    /// interval and the secret can be read again; `None` otherwise.
    pub async fn reread(&self, seen: &Versions) -> Result<Option<Arc<Versions>>, SecretError> {
        if matches!(self.source, Source::Fixed) || seen.read_at.elapsed() < self.reread_after {
            return Ok(None);
        }
        // Another request may have read it meanwhile.
        if let Some(cached) = self.cached().filter(|c| c.read_at > seen.read_at) {
            return Ok(Some(cached));
        }
        self.read().await.map(Some)
    }

    async fn read(&self) -> Result<Arc<Versions>, SecretError> {
        let Source::Managed { client, arn } = &self.source else {
            return self.cached().ok_or_else(|| SecretError::Unreadable("no secret".into()));
        };
        if let Some((at, reason)) = self.failed.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
            && at.elapsed() < RETRY_READ_AFTER
        {
            return Err(SecretError::Unreadable(format!("the last read failed: {reason}")));
        }
        let read = self.read_versions(client, arn).await;
        *self.failed.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            read.as_ref().err().map(|e| (Instant::now(), e.to_string()));
        let versions = Arc::new(read?);
        *self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(versions.clone());
        tracing::info!(versions = versions.secrets.len(), "session token secret read");
        Ok(versions)
    }

    async fn read_versions(&self, client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<Versions, SecretError> {
        let stage = |stage: &'static str| client.get_secret_value().secret_id(arn).version_stage(stage).send();
        let (current, previous) = tokio::join!(stage("AWSCURRENT"), stage("AWSPREVIOUS"));
        let unreadable = |e: &dyn std::fmt::Display| SecretError::Unreadable(e.to_string());
        let current = current.map_err(|e| unreadable(&aws_sdk_secretsmanager::error::DisplayErrorContext(e)))?;
        let mut secrets = vec![value(&current.secret_string, &current.secret_binary)?];
        match previous {
            Ok(previous) => secrets.push(value(&previous.secret_string, &previous.secret_binary)?),
            // No previous version before the first rotation.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => return Err(unreadable(&aws_sdk_secretsmanager::error::DisplayErrorContext(e))),
        }
        Ok(Versions { secrets, read_at: Instant::now() })
    }
}

/// A version's secret: its `SecretString` as it is (or its `SecretBinary`).
fn value(
    string: &Option<String>,
    binary: &Option<aws_sdk_secretsmanager::primitives::Blob>,
) -> Result<Vec<u8>, SecretError> {
    let bytes = match (string, binary) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(blob)) => blob.as_ref().to_vec(),
        (None, None) => return Err(SecretError::Unreadable("a version without a value".into())),
    };
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(SecretError::Weak);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_sealed_before_a_rotation_opens_after_it_and_the_new_secret_seals() {
        let org = domain::OrgId::parse("acme").unwrap();
        let key = store::PageKey::resume_at(&org, &serde_json::json!({"PK": "ORG#acme#ASG#1", "SK": "A"})).unwrap();
        let before = Versions { secrets: vec![b"old".repeat(11)], read_at: Instant::now() };
        let after = Versions { secrets: vec![b"new".repeat(11), b"old".repeat(11)], read_at: Instant::now() };
        let sealed = before.cursors().seal(&org, "assignments", &key);
        assert!(after.cursors().open(&org, "assignments", &sealed).is_ok());
        let resealed = after.cursors().seal(&org, "assignments", &key);
        assert_ne!(resealed, sealed, "sealed with the current secret");
        assert!(before.cursors().open(&org, "assignments", &resealed).is_err());
        let unrelated = Versions { secrets: vec![b"xyz".repeat(11)], read_at: Instant::now() };
        assert!(unrelated.cursors().open(&org, "assignments", &sealed).is_err());
    }
}
