//! Request plumbing shared by the route handlers.
use chrono::{DateTime, Utc};
use http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;
use service::{Actor, AppError};

use crate::app::App;
use crate::auth::Principal;
pub use crate::base::BASE_PATH;
use crate::problem::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// Most items a v1 list (assignments, a learner's assignments) answers without `limit`: v1 returns
/// "everything"; past this many, the rest is behind `Link: <…>; rel="next"`.
pub const MAX_UNPAGED: usize = 1_000;

/// One authenticated call.
pub struct Call<'a> {
    pub app: &'a App,
    pub req: &'a Request,
    pub principal: Principal,
    pub request_id: String,
    pub now: DateTime<Utc>,
}

impl Call<'_> {
    /// The pagination cursors' codec: keyed by the session token secret's versions (read first if
    /// this container has not yet).
    pub async fn cursors(&self) -> Result<store::CursorCodec, ApiError> {
        let versions = self.app.auth.secret().versions().await.map_err(|error| {
            tracing::error!(%error, "cursors cannot be sealed or opened");
            AppError::Unavailable(error.to_string())
        })?;
        Ok(versions.cursors())
    }

    /// The principal making this call, as the use cases' audit entries name it, with the request's
    /// id and time.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.principal.actor_id.clone(),
            email: self.principal.actor_email.clone(),
            role: self.principal.role,
            request_id: self.request_id.clone(),
            now: self.now,
        }
    }

    /// The use cases' context.
    pub fn ctx(&self) -> service::Ctx<'_> {
        self.app.ctx()
    }
}

fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The route a request matched, as API Gateway names it (`GET /api/public/v1/users/{userId}/assignments`):
/// what the request log says instead of the path, whose parameters a client fills (an email where a
/// user id goes would be personal data in the logs).
fn route_of(req: &Request) -> &str {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref(),
        _ => None,
    }
    .unwrap_or("unknown")
}

pub fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Authenticates, runs `handler`, and turns any error into a problem response. Every response
/// carries `X-Request-Id`.
pub async fn serve<F>(app: &App, req: Request, handler: F) -> Response<Body>
where
    F: AsyncFnOnce(Call<'_>) -> Result<Response<Body>, ApiError>,
{
    let req = &req;
    let request_id = request_id(req);
    let mut rate = None;
    let outcome = async {
        // Tokens and rate windows by the wall clock; the call itself at its org's time.
        let authenticated = app.auth.authenticate(header(req, "authorization"), app.clock.wall()).await?;
        rate = Some(authenticated.rate);
        let now = app.clock.now(&authenticated.principal.org);
        handler(Call { app, req, principal: authenticated.principal, request_id: request_id.clone(), now }).await
    }
    .await;
    let mut response = outcome.unwrap_or_else(|err| err.into_response(&request_id));
    if let Some(rate) = rate {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert("x-ratelimit-window", HeaderValue::from_static(rate.window.as_str()));
        headers.insert("x-ratelimit-scope", HeaderValue::from_static(rate.scope.as_str()));
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    tracing::info!(request_id, route = route_of(req), status = response.status().as_u16(), "request");
    response
}

/// The body as JSON: at most [`MAX_BODY_BYTES`], well-formed.
pub fn json_body(req: &Request) -> Result<Value, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { what: "the request body", limit: MAX_BODY_BYTES, alternative: None });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson("the body is empty".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// Raw body bytes, unchecked: a route that takes them enforces its own size limit (`json_body`'s, or
/// `POST /sarif`'s).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    }
}

/// A v1 list: a JSON array, with the next page (if any) in an RFC 8288 `Link` header whose URL is this
/// request's with `cursor` set — filters and `limit` carry over.
pub fn list_response(req: &Request, items: Vec<Value>, next_cursor: Option<String>) -> Response<Body> {
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    if let Some(cursor) = next_cursor
        && let Ok(link) = HeaderValue::from_str(&format!("<{}>; rel=\"next\"", next_page_url(req, &cursor)))
    {
        response.headers_mut().insert("link", link);
    }
    response
}

/// This request's path and query with `cursor` replaced, as a relative reference (RFC 8288 resolves it
/// against the request's URL). Never an absolute URL: `Host` and `X-Forwarded-Proto` are the client's to
/// set, and a link built from them could send the next request, bearer token and all, elsewhere.
pub fn next_page_url(req: &Request, cursor: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in req.query_string_parameters().iter().filter(|(name, _)| *name != "cursor") {
        query.append_pair(name, value);
    }
    query.append_pair("cursor", cursor);
    format!("{}?{}", req.uri().path(), query.finish())
}

pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref().and_then(|p| p.first(name)).map(str::to_owned)
}

/// The `{id}` of an assignment's path. A malformed id cannot exist: the same answer as a missing one.
pub fn assignment_id(req: &Request) -> Result<domain::AssignmentId, ApiError> {
    path_param(req, "id")
        .and_then(|raw| domain::AssignmentId::parse(&raw).ok())
        .ok_or(ApiError::App(AppError::NotFound))
}

/// The `{userId}` of a learner's path under an assignment; malformed is not found, as above.
pub fn learner_id(req: &Request) -> Result<domain::UserId, ApiError> {
    path_param(req, "userId").and_then(|raw| domain::UserId::parse(&raw).ok()).ok_or(ApiError::App(AppError::NotFound))
}

/// Whether the route is one learner's under an assignment (`/assignments/{id}/users/{userId}`).
pub fn names_a_learner(req: &Request) -> bool {
    path_param(req, "userId").is_some()
}

/// A JSON response with the `ETag` of `version`.
pub fn json_with_etag(status: StatusCode, body: &Value, version: u64) -> Response<Body> {
    let mut response = json_response(status, body);
    if let Ok(etag) = etag(version).parse() {
        response.headers_mut().insert("etag", etag);
    }
    response
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// `If-Match` as a version: `"3"`, `W/"3"` or `*` (any).
pub fn if_match(req: &Request) -> Result<Option<u64>, ApiError> {
    let Some(raw) = header(req, "if-match") else { return Ok(None) };
    let raw = raw.trim();
    if raw == "*" {
        return Ok(None);
    }
    let tag = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    tag.parse().map(Some).map_err(|_| ApiError::field("If-Match", "must be an ETag such as \"3\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(name: &str, value: &str) -> Request {
        let mut req = Request::new(Body::Empty);
        req.headers_mut()
            .insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        req
    }

    #[test]
    fn if_match_accepts_strong_weak_and_any() {
        assert_eq!(if_match(&with_header("if-match", "\"3\"")).unwrap(), Some(3));
        assert_eq!(if_match(&with_header("if-match", "W/\"4\"")).unwrap(), Some(4));
        assert_eq!(if_match(&with_header("if-match", "*")).unwrap(), None);
        assert!(if_match(&with_header("if-match", "\"v3\"")).is_err());
        assert_eq!(if_match(&Request::new(Body::Empty)).unwrap(), None);
    }

    #[test]
    fn next_links_keep_the_filters_and_replace_the_cursor() {
        let req: Request = http::Request::builder()
            .uri("https://attacker.example/api/public/v1/assignments?isActive=true&cursor=old&limit=5")
            .body(Body::Empty)
            .unwrap();
        let req = lambda_http::RequestExt::with_query_string_parameters(
            req,
            std::collections::HashMap::from([
                ("isActive".to_owned(), "true".to_owned()),
                ("cursor".to_owned(), "old".to_owned()),
                ("limit".to_owned(), "5".to_owned()),
            ]),
        );
        let url = next_page_url(&req, "a.b");
        assert!(url.starts_with("/api/public/v1/assignments?"), "relative, whatever Host says: {url}");
        let query: std::collections::HashMap<_, _> =
            form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes()).into_owned().collect();
        assert_eq!(query.len(), 3, "{url}");
        assert_eq!(
            (query["isActive"].as_str(), query["limit"].as_str(), query["cursor"].as_str()),
            ("true", "5", "a.b")
        );
        let response = list_response(&req, vec![serde_json::json!({"id": 1})], Some("a.b".into()));
        assert_eq!(response.headers()["link"].to_str().unwrap(), format!("<{url}>; rel=\"next\""));
        assert!(matches!(response.body(), Body::Text(t) if t.starts_with('[')));
    }

    #[test]
    fn bodies_are_bounded_and_must_be_json() {
        assert!(json_body(&Request::new(Body::Text("{\"a\":1}".into()))).is_ok());
        assert!(matches!(json_body(&Request::new(Body::Text("{nope".into()))), Err(ApiError::InvalidJson(_))));
        assert!(matches!(json_body(&Request::new(Body::Empty)), Err(ApiError::InvalidJson(_))));
        let big = format!("\"{}\"", "x".repeat(MAX_BODY_BYTES));
        assert!(matches!(json_body(&Request::new(Body::Text(big))), Err(ApiError::PayloadTooLarge { .. })));
    }
}
