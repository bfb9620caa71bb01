//! The one place errors become HTTP responses: RFC 9457 problem+json that also carries the v1 `error`
//! code and context members. `Debug` output of internal errors never reaches a client.

use domain::validation::{FieldError, ValidationError};
use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use service::AppError;
use store::StoreError;

/// Every way a request can fail, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("these fields cannot be changed: {}", .0.join(", "))]
    ImmutableField(Vec<String>),
    /// A use case refused what the request names (an unknown target or assignee, no custom courses).
    #[error(transparent)]
    Refused(AppError),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("this API key lacks the scope {required}")]
    InsufficientScope { required: String, present: Vec<String> },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("no such resource")]
    NotFound,
    #[error("an active assignment with the same target and assignee exists")]
    DuplicateAssignment { existing_id: String },
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInProgress,
    #[error("If-Match does not match the current version {current_version}")]
    PreconditionFailed { current_version: u64 },
    /// `alternative`: the route that takes what this one cannot (its path under the API's base path).
    /// `what` is too large: the request body, or a log an upload announces.
    #[error("{what} exceeds {limit} bytes")]
    PayloadTooLarge { what: &'static str, limit: usize, alternative: Option<&'static str> },
    /// A body that is not a SARIF 2.1.0 log this service takes; `reason` says why.
    #[error("the body is not a SARIF 2.1.0 log this service takes: {0}")]
    InvalidSarif(String),
    /// The same repository and commit is being ingested by another request right now.
    #[error("this commit's scanning results are being ingested; retry shortly")]
    IngestionInProgress,
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64, scope: crate::auth::RateScope, window: crate::auth::RateWindow, limit: u32 },
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The org's exports running at once are at their limit.
    #[error("{running} exports are running; at most {limit} run at a time: retry when one is ready")]
    TooManyRunningExports { running: usize, limit: usize },
    #[error("the service is busy; retry shortly")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::Validation(_)
            | ApiError::ImmutableField(_)
            | ApiError::Refused(_)
            | ApiError::InvalidSarif(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientScope { .. } | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::DuplicateAssignment { .. }
            | ApiError::IdempotencyKeyReused
            | ApiError::IdempotencyInProgress
            | ApiError::IngestionInProgress => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } | ApiError::TooManyRunningExports { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable v1 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::Validation(_) => "validation_failed",
            ApiError::ImmutableField(_) => "immutable_field",
            ApiError::Refused(AppError::UnknownTarget(_)) => "unknown_target",
            ApiError::Refused(AppError::UnknownAssignee(_)) => "unknown_assignee",
            ApiError::Refused(AppError::NoCustomCourses) => "no_custom_courses",
            ApiError::Refused(_) => "validation_failed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InsufficientScope { .. } => "insufficient_scope",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::DuplicateAssignment { .. } => "duplicate_assignment",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::IdempotencyInProgress => "idempotency_key_in_progress",
            ApiError::PreconditionFailed { .. } => "precondition_failed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::InvalidSarif(_) => "invalid_sarif",
            ApiError::IngestionInProgress => "ingestion_in_progress",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyRunningExports { .. } => "too_many_running_exports",
            ApiError::Unavailable => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The problem+json response, with `X-Request-Id`.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let status = self.status();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(request_id, detail = %detail, "internal error");
        }
        let detail = match &self {
            // Never leak internals.
            ApiError::Internal(_) => "An unexpected error occurred; quote the request id when reporting it.".to_owned(),
            other => other.to_string(),
        };
        let mut body = json!({
            "type": format!("https://docs.scs.example/problems/{}", self.code().replace('_', "-")),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "error": self.code(),
            "requestId": request_id,
        });
        let extra: Option<(&str, Value)> = match &self {
            ApiError::Validation(errors) => Some(("errors", json!(errors))),
            ApiError::ImmutableField(fields) => Some((
                "errors",
                json!(fields.iter().map(|f| json!({"field": f, "message": "cannot be changed"})).collect::<Vec<_>>()),
            )),
            ApiError::InsufficientScope { required, present } => {
                body["present"] = json!(present);
                Some(("required", json!(required)))
            }
            ApiError::DuplicateAssignment { existing_id } => Some(("existingId", json!(existing_id))),
            ApiError::PreconditionFailed { current_version } => Some(("currentVersion", json!(current_version))),
            ApiError::PayloadTooLarge { limit, alternative, .. } => {
                if let Some(path) = alternative {
                    body["alternative"] =
                        json!({"method": "POST", "href": format!("{}{path}", crate::http::BASE_PATH)});
                }
                Some(("limit", json!(limit)))
            }
            ApiError::TooManyRunningExports { limit, .. } => Some(("limit", json!(limit))),
            ApiError::InvalidSarif(reason) => Some(("reason", json!(reason))),
            ApiError::RateLimited { retry_after_secs, scope, window, limit } => {
                body["limit"] = json!(limit);
                body["window"] = json!(window.as_str());
                body["scope"] = json!(scope.as_str());
                Some(("retryAfter", json!(retry_after_secs)))
            }
            _ => None,
        };
        if let Some((name, value)) = extra {
            body[name] = value;
        }
        let mut builder = Response::builder()
            .status(status)
            .header("content-type", "application/problem+json")
            .header("x-request-id", request_id);
        match &self {
            // v1's headers: which window ran out and its limit; and whose limit it was.
            ApiError::RateLimited { retry_after_secs, scope, window, limit } => {
                builder = builder
                    .header("retry-after", retry_after_secs.to_string())
                    .header("x-ratelimit-window", window.as_str())
                    .header("x-ratelimit-limit", limit.to_string())
                    .header("x-ratelimit-remaining", "0")
                    .header("x-ratelimit-scope", scope.as_str());
            }
            // A request still in progress (or whose claim outlives a crash, for at most its lease) is
            // worth sending again: say when, as for a 503.
            ApiError::Unavailable | ApiError::IngestionInProgress | ApiError::IdempotencyInProgress => {
                builder = builder.header("retry-after", "1")
            }
            ApiError::TooManyRunningExports { .. } => builder = builder.header("retry-after", "30"),
            ApiError::Unauthorized(_) => builder = builder.header("www-authenticate", "Bearer"),
            _ => {}
        }
        builder.body(Body::Text(body.to_string())).unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        match err {
            ValidationError::NotAnObject => ApiError::field("body", "must be a JSON object"),
            ValidationError::Fields(errors) => ApiError::Validation(errors),
            ValidationError::Immutable(fields) => ApiError::ImmutableField(fields),
        }
    }
}

/// The use cases' refusals, as the client sees them.
impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Store(err) => err.into(),
            AppError::InvalidField { field, message } => ApiError::field(field, message),
            refused @ (AppError::UnknownTarget(_) | AppError::UnknownAssignee(_) | AppError::NoCustomCourses) => {
                ApiError::Refused(refused)
            }
            AppError::NotFound => ApiError::NotFound,
            AppError::VersionMismatch { current_version } => ApiError::PreconditionFailed { current_version },
            AppError::TooManyRunningExports { running, limit } => ApiError::TooManyRunningExports { running, limit },
            AppError::IngestionInProgress => ApiError::IngestionInProgress,
            // Concurrent edits kept winning: the client may retry.
            AppError::Contended | AppError::Unavailable(_) => ApiError::Unavailable,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::DuplicateAssignment { existing_id } => {
                ApiError::DuplicateAssignment { existing_id: existing_id.to_string() }
            }
            StoreError::InvalidCursor => ApiError::field("cursor", "is not a cursor this listing issued"),
            StoreError::Throttled(_) | StoreError::TransactionConflict(_) | StoreError::Unavailable(_) => {
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(resp: &Response<Body>) -> Value {
        match resp.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    /// A create whose key is still claimed says when to send it again.
    #[test]
    fn an_idempotency_key_in_progress_says_when_to_send_again() {
        let resp = ApiError::IdempotencyInProgress.into_response("r");
        assert_eq!((resp.status(), &resp.headers()["retry-after"]), (StatusCode::CONFLICT, &"1".parse().unwrap()));
    }

    /// A store that did not answer is a 503 the client may retry, never a 500.
    #[test]
    fn an_unavailable_store_is_a_503_with_retry_after() {
        let resp = ApiError::from(StoreError::Unavailable("timed out".into())).into_response("r");
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
    }

    #[test]
    fn problems_carry_the_v1_code_and_context() {
        let resp = ApiError::InsufficientScope {
            required: "assignments:write".into(),
            present: vec!["assignments:read".into()],
        }
        .into_response("req-1");
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        assert_eq!(resp.headers()["x-request-id"], "req-1");
        let json = body(&resp);
        assert_eq!(json["error"], "insufficient_scope");
        assert_eq!(json["required"], "assignments:write");
        assert_eq!(json["present"], json!(["assignments:read"]));
        assert_eq!(json["status"], 403);
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let resp = ApiError::Internal("secret table name".into()).into_response("r");
        assert_eq!(resp.status(), 500);
        assert!(!body(&resp).to_string().contains("secret"));
    }

    #[test]
    fn rate_limits_say_when_to_retry() {
        let resp = ApiError::RateLimited {
            retry_after_secs: 17,
            scope: crate::auth::RateScope::Key,
            window: crate::auth::RateWindow::PerHour,
            limit: 1000,
        }
        .into_response("r");
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "17");
        assert_eq!(resp.headers()["x-ratelimit-window"], "per_hour");
        assert_eq!(resp.headers()["x-ratelimit-limit"], "1000");
        assert_eq!(resp.headers()["x-ratelimit-scope"], "key");
        assert_eq!(body(&resp)["error"], "rate_limited");
    }
}
