//! An empty export function: `empty-function`'s set-up plus the S3 client, built as
//! `exports::Bucket::from_env` (and `sarif_intake::UploadBucket::from_env`) builds it from the same SDK
//! configuration. What `export-csv`, `export-worker`, `sarif` and `sarif-worker` are compared with.

use lambda_http::{Body, Error, Request, Response, service_fn};

fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(false).build());
        lambda_http::run(service_fn(move |_: Request| {
            let _clients = (&dynamodb, &s3);
            async { Ok::<_, Error>(Response::builder().status(204).body(Body::Empty)?) }
        }))
        .await
    })
}
