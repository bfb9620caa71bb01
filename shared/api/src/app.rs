//! What a route function builds once per Lambda instance: configuration, clients, authenticator.

use std::sync::Arc;

use service::{Clock, SystemClock};
use store::Store;

use crate::auth::Authenticator;
use crate::secret::SessionSecret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
}

/// The environment variable naming the session token secret in Secrets Manager (its ARN).
pub const SECRET_ARN_VAR: &str = "SESSION_TOKEN_SECRET_ARN";
/// The `iss` every session token must carry.
pub const ISSUER_VAR: &str = "SESSION_TOKEN_ISSUER";
/// The `aud` every session token must carry.
pub const AUDIENCE_VAR: &str = "SESSION_TOKEN_AUDIENCE";

/// Shared state of a route function.
#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub auth: Authenticator,
    /// What time it is: the system's in every deployed function (see [`service::clock`]).
    pub clock: Arc<dyn Clock>,
}

impl App {
    /// `session_secret` verifies session tokens, and keys the pagination cursors
    /// ([`crate::secret::Versions::cursors`]).
    pub fn new(store: Store, session_secret: &[u8]) -> Self {
        Self::with_secret(store, SessionSecret::fixed(session_secret))
    }

    /// An app whose session tokens `secret` verifies (Secrets Manager's, deployed).
    pub fn with_secret(store: Store, secret: SessionSecret) -> Self {
        Self { auth: Authenticator::with_secret(store.clone(), secret), store, clock: Arc::new(SystemClock) }
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

    /// Reads `TABLE_NAME`, `SESSION_TOKEN_SECRET_ARN` (the secret itself is read from Secrets
    /// Manager on the first request, [`crate::secret`]), `SESSION_TOKEN_ISSUER` and
    /// `SESSION_TOKEN_AUDIENCE` (both required: a token must carry them), and builds the AWS clients.
    /// Fails fast with a clear message, at start-up rather than on the first request.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Self::from_config(&config)
    }

    /// [`App::from_env`] with an SDK configuration the function already loaded (loading it is most
    /// of a cold start's set-up: once per container).
    pub fn from_config(config: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Self::from_env_with(aws_sdk_dynamodb::Client::new(config), aws_sdk_secretsmanager::Client::new(config))
    }

    /// [`App::from_env`] with clients built by the caller (the local gateway adds an interceptor that
    /// records each function's AWS calls).
    pub fn from_env_with(
        dynamodb: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<Self, ConfigError> {
        let var = |name: &'static str| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name))
        };
        let table = var("TABLE_NAME")?;
        let secret = SessionSecret::managed(secrets, var(SECRET_ARN_VAR)?);
        let (issuer, audience) = (var(ISSUER_VAR)?, var(AUDIENCE_VAR)?);
        Ok(Self::with_secret(Store::new(dynamodb, table), secret)
            .with_issuer_and_audience(Some(&issuer), Some(&audience)))
    }
}

/// JSON logs for CloudWatch; level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    events::init_tracing();
}
