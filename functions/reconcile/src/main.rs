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
        // A failed run is reported to Lambda as an error (the scheduler retries); work already done is not redone.
        async move { reconcile_fn::handle(&consumer, event.payload).await.map_err(Error::from) }
    }))
    .await
}
