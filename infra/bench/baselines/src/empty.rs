//! An empty API function: the runtime, the SDK configuration and the DynamoDB client built as
//! `api::App::from_env` builds them, and a handler that answers 204. The functions' cold starts are
//! measured against this one's.

use lambda_http::{Body, Error, Request, Response, service_fn};

fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        lambda_http::run(service_fn(move |_: Request| {
            // Held, as a function holds its store: the client is built before the first event.
            let _client = &client;
            async { Ok::<_, Error>(Response::builder().status(204).body(Body::Empty)?) }
        }))
        .await
    })
}
