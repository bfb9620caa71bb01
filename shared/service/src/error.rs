//! The application layer's one error type. `api` maps it to problems, `events` to retry or drop.

use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The table failed or refused (conflicts, throttling, corrupt items): see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A field the caller sent names nothing usable (e.g. an assignee id that is not a UUID).
    #[error("{field} {message}")]
    InvalidField { field: &'static str, message: &'static str },
    #[error("{0}")]
    UnknownTarget(String),
    #[error("{0}")]
    UnknownAssignee(String),
    #[error("the organization has no custom courses")]
    NoCustomCourses,
    #[error("no such resource")]
    NotFound,
    /// The caller's expected version (`If-Match`) is not the current one.
    #[error("the current version is {current_version}")]
    VersionMismatch { current_version: u64 },
    /// Concurrent changes kept winning until the retry policy ran out.
    #[error("the resource kept changing concurrently")]
    Contended,
}
