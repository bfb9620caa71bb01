//! A function that builds nothing: the runtime and a handler that answers 204. How far below the SDK
//! set-up a function's start can go.

use lambda_http::{Body, Error, Request, Response, service_fn};

fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(lambda_http::run(service_fn(
        |_: Request| async { Ok::<_, Error>(Response::builder().status(204).body(Body::Empty)?) },
    )))
}
