//! How an event-driven function (an EventBridge rule's target or the scheduler's) runs on Lambda:
//! JSON logs, the [`Consumer`] built once per container, then the runtime loop. Each function's
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

/// An event-driven function's handler. An `Err` goes back to Lambda as the invocation's error, so the
/// event source retries (EventBridge, then its dead-letter queue; the scheduler); work already done is
/// not redone, as every handler is idempotent.
pub type Handler = for<'a> fn(&'a Consumer, Value) -> Handled<'a>;

/// The platform-event consumers' handler: parse, then apply idempotently ([`Consumer::handle`]).
pub const CONSUME: Handler = |consumer, event| Box::pin(consumer.handle(event));

/// The whole life of an event-driven function's process.
pub fn run(handler: Handler) -> Result<(), Error> {
    crate::init_tracing();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        let consumer = Arc::new(Consumer::from_env().await?);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            let consumer = Arc::clone(&consumer);
            async move { handler(&consumer, event.payload).await.map_err(Error::from) }
        }))
        .await
    })
}
