//! EventBridge: the platform's events in, domain events out.
//!
//! - [`platform`]: the consumed events (design §4), parsed and validated;
//! - [`consumer`]: the handler every consumer Lambda runs: parse, then the `service` use case the
//!   event calls for (idempotent, order-safe), its errors mapped to retry or drop;
//! - [`jobs`]: the scheduled jobs' queue (one run per org) and input; [`queue`]: an SQS queue the
//!   service sends to;
//! - [`work`]: the roster and export workers' requests, one per org at a time on each worker's queue;
//! - [`outbox`]: domain events out: the table's stream of outbox items → [`Publisher`] (source
//!   `assignments`, PutEvents ≤ 10 per call with failed entries resent).

pub mod consumer;
pub mod entry;
mod error;
pub mod jobs;
pub mod outbox;
pub mod platform;
mod publisher;
pub mod queue;
#[cfg(feature = "webhooks")]
pub mod webhooks;
pub mod work;

pub use consumer::{Consumer, PlatformConsumer};
pub use error::{ConsumerError, MissingVariable};
pub use publisher::{BATCH, BATCH_BYTES, Ledger, PublishError, Publisher};
use store::Store;

impl Consumer {
    /// Reads `TABLE_NAME` and builds the DynamoDB client; fails fast at start-up.
    pub async fn from_env() -> Result<Self, MissingVariable> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Self::from_env_with(&config)
    }

    /// [`Consumer::from_env`] with an SDK configuration the function already loaded (loading it is
    /// most of a cold start's set-up: once per container).
    pub fn from_env_with(config: &aws_config::SdkConfig) -> Result<Self, MissingVariable> {
        let table = std::env::var("TABLE_NAME").map_err(|_| MissingVariable("TABLE_NAME"))?;
        Ok(Consumer::new(Store::new(aws_sdk_dynamodb::Client::new(config), table)))
    }
}

impl Publisher {
    /// The outbox publisher's context: reads `EVENT_BUS_NAME` and builds the EventBridge client (the
    /// only function that does), the workers' queues and lanes ([`work::WorkQueues`]), and its ledger
    /// (the table, and `FAILED_EVENTS_QUEUE_URL` for what it parks); fails fast at start-up.
    pub async fn from_env() -> Result<Self, MissingVariable> {
        let bus = std::env::var("EVENT_BUS_NAME").map_err(|_| MissingVariable("EVENT_BUS_NAME"))?;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let consumer = Consumer::from_env_with(&config)?;
        let ledger = Ledger {
            table: consumer.store.clone(),
            failed: queue::Queue::from_var(&config, outbox::FAILED_EVENTS_QUEUE_URL_VAR)?,
        };
        let work = work::WorkQueues::from_env_with(&config, consumer)?;
        Ok(Publisher::new(aws_sdk_eventbridge::Client::new(&config), bus).with_work(work).with_ledger(ledger))
    }
}

/// JSON logs for CloudWatch; levels from `RUST_LOG` (`info` when unset or unreadable), as a default
/// level and per-target levels (`warn,store=debug`). `Targets`, not `EnvFilter`: the same directives
/// without span and field filters, and without the regex engine `EnvFilter` links into every function
/// (~180 KB of each binary, measured with `nm`).
pub fn init_tracing() {
    init_tracing_to(std::io::stdout);
}

/// [`init_tracing`] writing to `writer` (a test collects the logs this way, as the functions write them).
pub fn init_tracing_to<W>(writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG").ok().and_then(|directives| directives.parse().ok()).unwrap_or_else(|| {
        tracing_subscriber::filter::Targets::new().with_default(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let logs = tracing_subscriber::fmt::layer().json().with_current_span(false).without_time().with_writer(writer);
    let _ = tracing_subscriber::registry().with(logs).with::<tracing_subscriber::filter::Targets>(filter).try_init();
}
