//! How an HTTP function runs on Lambda: JSON logs, its context built once per container (fail fast on a
//! missing setting), then the runtime loop calling its handler. Each function's `main.rs` is one call
//! to [`run`]; the local gateway calls the same handlers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use lambda_http::Error;
use lambda_http::{Body, Request, Response, service_fn};

use crate::App;

/// A handler's response, boxed so every handler has one type the gateway's registry can hold.
pub type Handled<'a> = Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// An HTTP function's handler over its context `C` (the [`App`], or more for a function that needs it).
pub type Handler<C> = for<'a> fn(&'a C, Request) -> Handled<'a>;

/// What an HTTP function builds once per container, from its environment.
pub trait Context: Sized + Send + Sync + 'static {
    fn from_env() -> impl Future<Output = Result<Self, Error>> + Send;
}

impl Context for App {
    async fn from_env() -> Result<Self, Error> {
        Ok(App::from_env().await?)
    }
}

/// The whole life of an HTTP function's process.
pub fn run<C: Context>(handler: Handler<C>) -> Result<(), Error> {
    crate::init_tracing();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        let context = Arc::new(C::from_env().await?);
        lambda_http::run(service_fn(move |req: Request| {
            let context = Arc::clone(&context);
            async move { Ok::<_, Infallible>(handler(&context, req).await) }
        }))
        .await
    })
}
