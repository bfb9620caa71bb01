//! HTTP glue shared by the route functions: configuration, authentication and rate limits, request
//! helpers, the single error-to-problem mapping (the use cases' `service::AppError` included) and
//! resource views.

pub mod app;
pub mod auth;
pub mod entry;
pub mod http;
pub mod problem;
pub mod query;
pub mod secret;
pub mod views;

pub use app::{App, ConfigError, init_tracing};
pub use auth::{Authenticator, Principal};
pub use http::{Call, serve};
pub use problem::ApiError;
