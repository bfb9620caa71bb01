//! The one place errors become HTTP responses: RFC 9457 problem+json that also carries the v1 `error`
//! code and context members. `Debug` output of internal errors never reaches a client.
//!
//! [`ApiError`] holds what only the HTTP layer refuses (credentials, scopes, the request's shape, rate
//! limits) and, as [`ApiError::App`], whatever a use case failed with: `app_problem` is the one
//! mapping of the use cases' [`AppError`] (the store's errors under it included) to problems.

use domain::validation::{FieldError, ValidationError};
use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use service::AppError;
use store::StoreError;

use crate::base::BASE_PATH;
use crate::rate::RateLimited;

/// Every way a request can fail, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// What a use case (or the store under it) refused or failed with; `app_problem` says how it reads.
    #[error(transparent)]
    App(#[from] AppError),
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("these fields cannot be changed: {}", .0.join(", "))]
    ImmutableField(Vec<String>),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("this API key lacks the scope {required}")]
    InsufficientScope { required: String, present: Vec<String> },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInProgress,
    /// `alternative`: the route that takes what this one cannot (its path under the API's base path).
    /// `what` is too large: the request body, or a log an upload announces.
    #[error("{what} exceeds {limit} bytes")]
    PayloadTooLarge { what: &'static str, limit: usize, alternative: Option<&'static str> },
    /// A body that is not a SARIF 2.1.0 log this service takes; `reason` says why.
    #[error("the body is not a SARIF 2.1.0 log this service takes: {0}")]
    InvalidSarif(String),
    #[error("rate limit exceeded")]
    RateLimited(#[from] RateLimited),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A fault of the route's own (not a use case's): logged, never shown.
    #[error("internal error")]
    Internal(String),
}

/// A problem response before it is written.
struct Problem {
    status: StatusCode,
    /// The stable v1 `error` code (its `type` is made of it).
    code: &'static str,
    detail: String,
    /// Members after RFC 9457's and v1's own, in order.
    members: Vec<(&'static str, Value)>,
    /// Headers after `content-type` and `x-request-id`, in order.
    headers: Vec<(&'static str, String)>,
    /// What is logged instead of shown (an internal error's cause).
    hidden: Option<String>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), members: Vec::new(), headers: Vec::new(), hidden: None }
    }

    fn member(mut self, name: &'static str, value: Value) -> Self {
        self.members.push((name, value));
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Fields that do not check out, each with its message.
    fn validation(errors: &[FieldError]) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "validation_failed", "the request has invalid fields")
            .member("errors", json!(errors))
    }

    fn field(field: &str, message: &str) -> Self {
        Problem::validation(&[FieldError { field: field.to_owned(), message: message.to_owned() }])
    }

    /// Worth sending again shortly (a 503 says when, as a 409 of a request still in progress does).
    fn unavailable() -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", "the service is busy; retry shortly")
            .header("retry-after", "1")
    }

    /// Never leak internals: `cause` is logged with the request id the client is asked to quote.
    fn internal(cause: String) -> Self {
        let mut problem = Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An unexpected error occurred; quote the request id when reporting it.",
        );
        problem.hidden = Some(cause);
        problem
    }
}

/// The one mapping of the use cases' errors, and the store's under them, to problems.
fn app_problem(err: &AppError) -> Problem {
    match err {
        AppError::NotFound | AppError::Store(StoreError::NotFound) => {
            Problem::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
        }
        AppError::Store(StoreError::DuplicateAssignment { existing_id }) => Problem::new(
            StatusCode::CONFLICT,
            "duplicate_assignment",
            "an active assignment with the same target and assignee exists",
        )
        .member("existingId", json!(existing_id.to_string())),
        AppError::Store(StoreError::InvalidCursor) => Problem::field("cursor", "is not a cursor this listing issued"),
        // Concurrent edits kept winning, or a dependency did not answer: the client may retry.
        AppError::Store(StoreError::Throttled(_) | StoreError::TransactionConflict(_) | StoreError::Unavailable(_))
        | AppError::Contended
        | AppError::Unavailable(_) => Problem::unavailable(),
        AppError::Store(other) => Problem::internal(other.to_string()),
        AppError::InvalidField { field, message } => Problem::field(field, message),
        AppError::UnknownTarget(_) => Problem::new(StatusCode::BAD_REQUEST, "unknown_target", err.to_string()),
        AppError::UnknownAssignee(_) => Problem::new(StatusCode::BAD_REQUEST, "unknown_assignee", err.to_string()),
        AppError::NoCustomCourses => Problem::new(StatusCode::BAD_REQUEST, "no_custom_courses", err.to_string()),
        AppError::VersionMismatch { current_version } => Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            format!("If-Match does not match the current version {current_version}"),
        )
        .member("currentVersion", json!(current_version)),
        AppError::TooManyRunningExports { running, limit } => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_running_exports",
            format!("{running} exports are running; at most {limit} run at a time: retry when one is ready"),
        )
        .member("limit", json!(limit))
        .header("retry-after", "30"),
        AppError::IngestionInProgress => Problem::new(
            StatusCode::CONFLICT,
            "ingestion_in_progress",
            "this commit's scanning results are being ingested; retry shortly",
        )
        .header("retry-after", "1"),
        AppError::TooManyEndpoints { limit } => {
            Problem::new(StatusCode::BAD_REQUEST, "too_many_endpoints", err.to_string()).member("limit", json!(limit))
        }
        AppError::EndpointNotTaking => Problem::new(StatusCode::CONFLICT, "endpoint_not_taking", err.to_string()),
    }
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }

    /// What the client reads of this error.
    fn problem(&self) -> Problem {
        use StatusCode as S;
        let detail = self.to_string();
        match self {
            ApiError::App(err) => app_problem(err),
            ApiError::InvalidJson(_) => Problem::new(S::BAD_REQUEST, "invalid_json", detail),
            ApiError::Validation(errors) => Problem::validation(errors),
            ApiError::ImmutableField(fields) => Problem::new(S::BAD_REQUEST, "immutable_field", detail).member(
                "errors",
                json!(fields.iter().map(|f| json!({"field": f, "message": "cannot be changed"})).collect::<Vec<_>>()),
            ),
            ApiError::Unauthorized(_) => {
                Problem::new(S::UNAUTHORIZED, "unauthorized", detail).header("www-authenticate", "Bearer")
            }
            ApiError::InsufficientScope { required, present } => {
                Problem::new(S::FORBIDDEN, "insufficient_scope", detail)
                    .member("present", json!(present))
                    .member("required", json!(required))
            }
            ApiError::Forbidden(_) => Problem::new(S::FORBIDDEN, "forbidden", detail),
            ApiError::IdempotencyKeyReused => Problem::new(S::CONFLICT, "idempotency_key_reused", detail),
            // A create whose key is still claimed (or whose claim outlives a crash, for at most its
            // lease) is worth sending again: say when, as for a 503.
            ApiError::IdempotencyInProgress => {
                Problem::new(S::CONFLICT, "idempotency_key_in_progress", detail).header("retry-after", "1")
            }
            ApiError::PayloadTooLarge { limit, alternative, .. } => {
                let problem = Problem::new(S::PAYLOAD_TOO_LARGE, "payload_too_large", detail);
                match alternative {
                    Some(path) => {
                        problem.member("alternative", json!({"method": "POST", "href": format!("{BASE_PATH}{path}")}))
                    }
                    None => problem,
                }
                .member("limit", json!(limit))
            }
            ApiError::InvalidSarif(reason) => {
                Problem::new(S::BAD_REQUEST, "invalid_sarif", detail).member("reason", json!(reason))
            }
            // v1's headers: which window ran out and its limit; and whose limit it was.
            ApiError::RateLimited(RateLimited { retry_after_secs, scope, window, limit }) => {
                Problem::new(S::TOO_MANY_REQUESTS, "rate_limited", detail)
                    .member("limit", json!(limit))
                    .member("window", json!(window.as_str()))
                    .member("scope", json!(scope.as_str()))
                    .member("retryAfter", json!(retry_after_secs))
                    .header("retry-after", retry_after_secs.to_string())
                    .header("x-ratelimit-window", window.as_str())
                    .header("x-ratelimit-limit", limit.to_string())
                    .header("x-ratelimit-remaining", "0")
                    .header("x-ratelimit-scope", scope.as_str())
            }
            ApiError::MethodNotAllowed => Problem::new(S::METHOD_NOT_ALLOWED, "method_not_allowed", detail),
            ApiError::Internal(cause) => Problem::internal(cause.clone()),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.problem().status
    }

    /// The stable v1 `error` code.
    pub fn code(&self) -> &'static str {
        self.problem().code
    }

    /// The problem+json response, with `X-Request-Id`.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let Problem { status, code, detail, members, headers, hidden } = self.problem();
        if let Some(cause) = &hidden {
            tracing::error!(request_id, detail = %cause, "internal error");
        }
        let mut body = json!({
            "type": format!("https://docs.scs.example/problems/{}", code.replace('_', "-")),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "error": code,
            "requestId": request_id,
        });
        for (name, value) in members {
            body[name] = value;
        }
        let mut builder = Response::builder()
            .status(status)
            .header("content-type", "application/problem+json")
            .header("x-request-id", request_id);
        for (name, value) in headers {
            builder = builder.header(name, value);
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

/// What a route reads from the store itself fails as a use case would.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::App(AppError::Store(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::{RateScope, RateWindow};

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
        for err in [ApiError::from(StoreError::Unavailable("timed out".into())), AppError::Contended.into()] {
            let resp = err.into_response("r");
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(resp.headers()["retry-after"], "1");
            assert_eq!(body(&resp)["error"], "service_unavailable");
        }
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
        assert_eq!(json["type"], "https://docs.scs.example/problems/insufficient-scope");
        assert_eq!(json["title"], "Forbidden");
        assert_eq!(json["required"], "assignments:write");
        assert_eq!(json["present"], json!(["assignments:read"]));
        assert_eq!(json["status"], 403);
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        for err in
            [ApiError::Internal("secret table name".into()), StoreError::Other("secret table name".into()).into()]
        {
            let resp = err.into_response("r");
            assert_eq!(resp.status(), 500);
            assert_eq!(body(&resp)["error"], "internal_error");
            assert!(!body(&resp).to_string().contains("secret"));
        }
    }

    /// The use cases' errors read as they did when each had an HTTP twin.
    #[test]
    fn use_case_errors_map_to_their_problems() {
        let cases: Vec<(ApiError, u16, &str, &str)> = vec![
            (AppError::NotFound.into(), 404, "not_found", "no such resource"),
            (StoreError::NotFound.into(), 404, "not_found", "no such resource"),
            (
                AppError::VersionMismatch { current_version: 3 }.into(),
                412,
                "precondition_failed",
                "If-Match does not match the current version 3",
            ),
            (AppError::UnknownTarget("no such course".into()).into(), 400, "unknown_target", "no such course"),
            (AppError::NoCustomCourses.into(), 400, "no_custom_courses", "the organization has no custom courses"),
            (
                AppError::InvalidField { field: "assignee", message: "is not a UUID" }.into(),
                400,
                "validation_failed",
                "the request has invalid fields",
            ),
            (StoreError::InvalidCursor.into(), 400, "validation_failed", "the request has invalid fields"),
        ];
        for (err, status, code, detail) in cases {
            let json = body(&err.into_response("r"));
            assert_eq!((json["status"].as_u64(), json["error"].as_str()), (Some(u64::from(status)), Some(code)));
            assert_eq!(json["detail"], detail);
        }
        let resp = ApiError::from(AppError::VersionMismatch { current_version: 3 }).into_response("r");
        assert_eq!(body(&resp)["currentVersion"], 3);
        let resp = ApiError::from(AppError::TooManyRunningExports { running: 2, limit: 2 }).into_response("r");
        assert_eq!((resp.status().as_u16(), &resp.headers()["retry-after"]), (429, &"30".parse().unwrap()));
        assert_eq!(body(&resp)["limit"], 2);
        let resp = ApiError::from(StoreError::InvalidCursor).into_response("r");
        assert_eq!(
            body(&resp)["errors"],
            json!([{"field": "cursor", "message": "is not a cursor this listing issued"}])
        );
    }

    #[test]
    fn rate_limits_say_when_to_retry() {
        let resp = ApiError::from(RateLimited {
            retry_after_secs: 17,
            scope: RateScope::Key,
            window: RateWindow::PerHour,
            limit: 1000,
        })
        .into_response("r");
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "17");
        assert_eq!(resp.headers()["x-ratelimit-window"], "per_hour");
        assert_eq!(resp.headers()["x-ratelimit-limit"], "1000");
        assert_eq!(resp.headers()["x-ratelimit-scope"], "key");
        let json = body(&resp);
        assert_eq!((json["error"].as_str(), json["retryAfter"].as_u64()), (Some("rate_limited"), Some(17)));
    }
}
