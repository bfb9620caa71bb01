//! Lambda entry point: tracing, configuration and clients once, then the runtime loop.

use std::sync::Arc;

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    api::init_tracing();
    let app = Arc::new(api::App::from_env().await?);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let bucket = Arc::new(exports::Bucket::from_env(&config)?);
    run(service_fn(move |req: Request| {
        let (app, bucket) = (Arc::clone(&app), Arc::clone(&bucket));
        async move { Ok::<_, std::convert::Infallible>(export_csv_fn::handle(&app, &bucket, req).await) }
    }))
    .await
}
