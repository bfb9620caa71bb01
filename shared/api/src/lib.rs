//! HTTP glue shared by the route functions: configuration, authentication and rate limits, request
//! helpers, the single error-to-problem mapping (the use cases' `service::AppError` included) and
//! resource views.
//!
//! Modules build on the ones below them, never in a circle: `base`, `rate` and `secret` name nothing
//! else of the crate; `problem` (every error's response) names `base` and `rate`; `auth` names
//! `problem`, `rate` and `secret`; `app` names `auth` and `secret`; `http` names `app`, `auth` and `problem`;
//! `query`, `views` and `entry` sit on top.

pub mod app;
pub mod auth;
pub mod base;
pub mod entry;
pub mod http;
pub mod problem;
pub mod query;
pub mod rate;
pub mod secret;
pub mod views;

pub use app::{App, ConfigError, init_tracing};
pub use auth::{Authenticator, Principal};
pub use http::{Call, serve};
pub use problem::ApiError;
