//! EventBridge: the platform's events in, domain events out.
//!
//! - [`platform`]: the consumed events (design §4), parsed and validated;
//! - [`consumer`]: the handler every consumer Lambda runs: parse, then the `service` use case the
//!   event calls for (idempotent, order-safe), its errors mapped to retry or drop;
//! - [`schedule`]: the scheduled jobs' input;
//! - [`outbox`]: domain events out: the table's stream of outbox items → [`Publisher`] (source
//!   `assignments`, PutEvents ≤ 10 per call with failed entries resent).

pub mod consumer;
pub mod entry;
pub mod outbox;
pub mod platform;
mod publisher;
pub mod schedule;

pub use consumer::{Consumer, ConsumerError};
pub use publisher::{BATCH, PublishError, Publisher};
use store::Store;

/// Configuration a consumer Lambda reads once at start-up.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingVariable(pub &'static str);

impl Consumer {
    /// Reads `TABLE_NAME` and builds the DynamoDB client; fails fast at start-up.
    pub async fn from_env() -> Result<Self, MissingVariable> {
        let table = std::env::var("TABLE_NAME").map_err(|_| MissingVariable("TABLE_NAME"))?;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Consumer { store: Store::new(aws_sdk_dynamodb::Client::new(&config), table) })
    }
}

impl Publisher {
    /// The outbox publisher's context: reads `EVENT_BUS_NAME` and builds the EventBridge client (the
    /// only function that does); fails fast at start-up.
    pub async fn from_env() -> Result<Self, MissingVariable> {
        let bus = std::env::var("EVENT_BUS_NAME").map_err(|_| MissingVariable("EVENT_BUS_NAME"))?;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Publisher::new(aws_sdk_eventbridge::Client::new(&config), bus))
    }
}

/// JSON logs for CloudWatch; level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(false).without_time().try_init();
}
