//! Lambda entry point: tracing and the DynamoDB client once, then the runtime loop.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().json().with_env_filter(filter).without_time().init();
    let table = std::env::var("TABLE_NAME").map_err(|_| "environment variable TABLE_NAME is not set")?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let store = Arc::new(store::Store::new(aws_sdk_dynamodb::Client::new(&config), table));
    run(service_fn(move |event: LambdaEvent<Value>| {
        let store = Arc::clone(&store);
        // Storage failures go back to Lambda as errors, so EventBridge retries and then dead-letters.
        async move { progress_events_fn::handle(&store, event.payload).await.map_err(Error::from) }
    }))
    .await
}
