//! The events layer's errors: what a consumer retries, and a function's missing configuration.

use store::StoreError;

/// A failure worth retrying: the event source redelivers it (then dead-letters).
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unavailable(String),
}

/// Configuration a function reads once at start-up is missing: a variable is not set.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingVariable(pub &'static str);
