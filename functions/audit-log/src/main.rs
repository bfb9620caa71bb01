//! Lambda entry point: tracing, configuration and clients once, then the runtime loop.

use std::sync::Arc;

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    api::init_tracing();
    let app = Arc::new(api::App::from_env().await?);
    run(service_fn(move |req: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(audit_log_fn::handle(&app, req).await) }
    }))
    .await
}
