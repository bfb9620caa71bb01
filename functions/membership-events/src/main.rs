//! Lambda entry point: tracing and the AWS clients once, then the runtime loop.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    events::init_tracing();
    let consumer = Arc::new(events::Consumer::from_env().await?);
    run(service_fn(move |event: LambdaEvent<Value>| {
        let consumer = Arc::clone(&consumer);
        // Storage failures go back to Lambda as errors, so EventBridge retries and then dead-letters.
        async move { membership_events_fn::handle(&consumer, event.payload).await.map_err(Error::from) }
    }))
    .await
}
