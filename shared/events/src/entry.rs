//! How an event-driven function (an EventBridge rule's target, the scheduler's, the stream's) runs on
//! Lambda: JSON logs, its context (the [`Consumer`], or more for a function that needs it) built once
//! per container, then the runtime loop. Each function's
//! `main.rs` is one call to [`run`]; the local gateway calls the same handlers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use lambda_runtime::Error;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::{Consumer, ConsumerError};

/// A handler's outcome, boxed so every handler has one type the gateway's registry can hold.
pub type Handled<'a> = Pin<Box<dyn Future<Output = Result<Value, ConsumerError>> + Send + 'a>>;

/// An event-driven function's handler over its context `C`. An `Err` goes back to Lambda as the
/// invocation's error, so the event source retries (EventBridge, then its dead-letter queue; the
/// scheduler); work already done is not redone, as every handler is idempotent.
pub type Handler<C = Consumer> = for<'a> fn(&'a C, Value) -> Handled<'a>;

/// What an event-driven function builds once per container, from its environment.
pub trait Context: Sized + Send + Sync + 'static {
    fn from_env() -> impl Future<Output = Result<Self, Error>> + Send;
}

impl Context for Consumer {
    async fn from_env() -> Result<Self, Error> {
        Ok(Consumer::from_env().await?)
    }
}

impl Context for crate::Publisher {
    async fn from_env() -> Result<Self, Error> {
        Ok(crate::Publisher::from_env().await?)
    }
}

/// The platform-event consumers' handler: parse, then apply idempotently ([`Consumer::handle`]), or
/// park an event dated ahead of the clock ([`crate::PlatformConsumer`]).
pub const CONSUME: Handler<crate::PlatformConsumer> = |consumer, event| Box::pin(consumer.handle(event));

/// The whole life of an event-driven function's process.
pub fn run<C: Context>(handler: Handler<C>) -> Result<(), Error> {
    crate::init_tracing();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        let context = Arc::new(C::from_env().await?);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            let context = Arc::clone(&context);
            async move { handler(&context, event.payload).await.map_err(Error::from) }
        }))
        .await
    })
}

impl Context for crate::PlatformConsumer {
    async fn from_env() -> Result<Self, Error> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Self {
            consumer: crate::Consumer::from_env_with(&config)?,
            parked: crate::queue::Queue::from_var(&config, crate::consumer::PARKED_QUEUE_URL_VAR)?,
        })
    }
}
