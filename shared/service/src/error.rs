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
    /// The target is not in the catalog (or not an active custom course of the org).
    #[error("{0}")]
    UnknownTarget(String),
    /// The assignee is not an active user, an existing team or the caller's own org.
    #[error("{0}")]
    UnknownAssignee(String),
    /// A custom-course target in an org that has none.
    #[error("the organization has no custom courses")]
    NoCustomCourses,
    /// The resource does not exist in the caller's org (another org's is the same: not found).
    #[error("no such resource")]
    NotFound,
    /// The caller's expected version (`If-Match`) is not the current one.
    #[error("the current version is {current_version}")]
    VersionMismatch { current_version: u64 },
    /// A service the use case needs (S3) failed; nothing was left half done.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The org already runs as many exports as it may at once; one of them must finish first.
    #[error("{running} exports of the organization are running; at most {limit} run at a time")]
    TooManyRunningExports { running: usize, limit: usize },
    /// The same repository and commit is being ingested right now; its response comes when it ends.
    #[error("this commit's scanning results are being ingested; retry shortly")]
    IngestionInProgress,
    /// Concurrent changes kept winning until the retry policy ran out.
    #[error("the resource kept changing concurrently")]
    Contended,
    /// The org has as many webhook endpoints as it may.
    #[error("the organization has {limit} webhook endpoints, the most it may have")]
    TooManyEndpoints { limit: usize },
    /// A redelivery to an endpoint that is turned off, disabled, or has a full backlog.
    #[error("the endpoint takes no deliveries now: it is turned off, disabled, or its backlog is full")]
    EndpointNotTaking,
}
