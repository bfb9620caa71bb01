//! What a route function builds once per Lambda instance: configuration, clients, authenticator.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use service::{Clock, SystemClock};
use sha2::Sha256;
use store::{CursorCodec, Store};

use crate::auth::Authenticator;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("SESSION_TOKEN_SECRET must be at least 32 bytes")]
    WeakSecret,
}

/// Shared state of a route function.
#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub auth: Authenticator,
    pub cursors: CursorCodec,
    /// What time it is: the system's in every deployed function (see [`service::clock`]).
    pub clock: Arc<dyn Clock>,
}

impl App {
    /// `session_secret` verifies session tokens; the cursor-signing key is derived from it so one
    /// secret is configured, and a cursor is not a token.
    pub fn new(store: Store, session_secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(session_secret).expect("HMAC accepts keys of any length");
        mac.update(b"assignments/pagination-cursor/v1");
        let cursor_key = mac.finalize().into_bytes().to_vec();
        Self {
            auth: Authenticator::new(store.clone(), session_secret),
            cursors: CursorCodec::new(cursor_key),
            store,
            clock: Arc::new(SystemClock),
        }
    }

    /// The use cases' context: this function's table (events leave through its outbox) and clock.
    pub fn ctx(&self) -> service::Ctx<'_> {
        service::Ctx::new(&self.store, self.clock.as_ref())
    }

    /// Session tokens must also carry this `iss` and/or `aud` (empty or `None`: not checked).
    pub fn with_issuer_and_audience(mut self, issuer: Option<&str>, audience: Option<&str>) -> Self {
        fn set(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        self.auth = self.auth.with_issuer_and_audience(set(issuer), set(audience));
        self
    }

    /// Reads `TABLE_NAME`, `SESSION_TOKEN_SECRET` (and the optional
    /// `SESSION_TOKEN_ISSUER` / `SESSION_TOKEN_AUDIENCE`) and builds the AWS clients. Fails fast with
    /// a clear message, at start-up rather than on the first request.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Self::from_env_with(aws_sdk_dynamodb::Client::new(&config))
    }

    /// [`App::from_env`] with clients built by the caller (the local gateway adds an interceptor that
    /// records each function's AWS calls).
    pub fn from_env_with(dynamodb: aws_sdk_dynamodb::Client) -> Result<Self, ConfigError> {
        let table = std::env::var("TABLE_NAME").map_err(|_| ConfigError::Missing("TABLE_NAME"))?;
        let secret = std::env::var("SESSION_TOKEN_SECRET").map_err(|_| ConfigError::Missing("SESSION_TOKEN_SECRET"))?;
        if secret.len() < 32 {
            return Err(ConfigError::WeakSecret);
        }
        let issuer = std::env::var("SESSION_TOKEN_ISSUER").ok();
        let audience = std::env::var("SESSION_TOKEN_AUDIENCE").ok();
        let store = Store::new(dynamodb, table);
        Ok(Self::new(store, secret.as_bytes()).with_issuer_and_audience(issuer.as_deref(), audience.as_deref()))
    }
}

/// JSON logs for CloudWatch; level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    events::init_tracing();
}
