//! Customer webhook endpoints (`service::webhooks::endpoints`). Scopes `webhooks:read` to read,
//! `webhooks:write` to change; learners are refused; another org's endpoint is not found.
//! - `POST /webhook-endpoints` `{url, description?, events[], isActive?}` → `201` with the endpoint
//!   and its `secret` (the only answer that ever carries it) and `Location`;
//! - `GET /webhook-endpoints` (array), `GET /webhook-endpoints/events` (the catalog: each public event
//!   type with the JSON Schema of its `data` and an example), `GET|PATCH|DELETE /webhook-endpoints/{id}`;
//! - `POST /webhook-endpoints/{id}/test` → `202`: a `webhook.test` delivery;
//! - `POST /webhook-endpoints/{id}/rotate-secret` → `200 {secret}` (the old one signs beside it for 24 h);
//! - `GET /webhook-endpoints/{id}/deliveries?status=&limit=&cursor=` (array, next page in `Link`),
//!   `POST …/deliveries/{deliveryId}/redeliver` → `202`, `POST …/recover {since}` → `202`.

use ::http::{Method, StatusCode};
use api::http::{self, BASE_PATH, json_response};
use api::{ApiError, App, Call, auth, query};
use chrono::{DateTime, Utc};
use domain::webhook::endpoint::{UrlRule, validate_new, validate_patch};
use domain::webhook::{Delivery, DeliveryStatus, Endpoint, EndpointUrl};
use events::webhooks::{DeliveryQueue, KmsVault};
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use store::DeliveryFilter;
use uuid::Uuid;

/// What this function builds once per container: the API's context, the vault that seals secrets (its
/// role may encrypt, not decrypt), the delivery queue (tests, redeliveries, recoveries) and the rule an
/// endpoint URL is held to.
pub struct Endpoints {
    pub app: App,
    pub vault: KmsVault,
    pub queue: DeliveryQueue,
    /// [`EndpointUrl::parse`] in every deployed function.
    pub urls: UrlRule,
}

impl api::entry::Context for Endpoints {
    async fn from_env() -> Result<Self, api::entry::Error> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Self {
            app: App::from_config(&config)?,
            vault: KmsVault::from_env(&config)?,
            queue: DeliveryQueue::from_env(&config)?,
            urls: EndpointUrl::parse,
        })
    }
}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<Endpoints> =
    |endpoints, req| Box::pin(api::serve(&endpoints.app, req, async |call| route(call, endpoints).await));

const LISTING: &str = "webhook-deliveries";

async fn route(call: Call<'_>, endpoints: &Endpoints) -> Result<Response<Body>, ApiError> {
    let path = call.req.uri().path().trim_end_matches('/').to_owned();
    let method = call.req.method().clone();
    let writes = method != Method::GET;
    call.principal.require_admin_scope(if writes { auth::WEBHOOKS_WRITE } else { auth::WEBHOOKS_READ })?;
    let Some(id) = http::path_param(call.req, "id") else {
        query::none(call.req)?;
        return match method {
            Method::GET if path.ends_with("/events") => {
                Ok(json_response(StatusCode::OK, &json!(domain::event::catalog())))
            }
            Method::GET => list(&call).await,
            Method::POST => create(&call, endpoints).await,
            _ => Err(ApiError::MethodNotAllowed),
        };
    };
    // A malformed id cannot name an endpoint: the same answer as a missing one.
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::from(service::AppError::NotFound))?;
    if path.ends_with("/deliveries") {
        return deliveries(&call, id).await;
    }
    query::none(call.req)?;
    let org = &call.principal.org;
    let ctx = call.ctx();
    let queue = &endpoints.queue;
    match (method, path.rsplit('/').next().unwrap_or_default()) {
        (Method::POST, "redeliver") => {
            let delivery = http::path_param(call.req, "deliveryId")
                .and_then(|d| Uuid::parse_str(&d).ok())
                .ok_or(ApiError::from(service::AppError::NotFound))?;
            let d = service::webhooks::endpoints::redeliver(&ctx, queue, org, id, delivery).await?;
            Ok(json_response(StatusCode::ACCEPTED, &delivery_view(&d)))
        }
        (Method::POST, "recover") => {
            let since = recover_since(&http::json_body(call.req)?)?;
            service::webhooks::endpoints::recover(&ctx, queue, org, id, since).await?;
            Ok(json_response(StatusCode::ACCEPTED, &json!({"endpointId": id, "since": since})))
        }
        (Method::POST, "test") => {
            let d = service::webhooks::endpoints::ping(&ctx, queue, org, id).await?;
            Ok(json_response(StatusCode::ACCEPTED, &delivery_view(&d)))
        }
        (Method::POST, "rotate-secret") => {
            let secret =
                service::webhooks::endpoints::rotate_secret(&ctx, &endpoints.vault, &call.actor(), org, id).await?;
            Ok(json_response(StatusCode::OK, &json!({"secret": secret.expose()})))
        }
        (Method::GET, _) => {
            Ok(json_response(StatusCode::OK, &view(&service::webhooks::endpoints::get(&ctx, org, id).await?)))
        }
        (Method::PATCH, _) => {
            let patch = validate_patch(&http::json_body(call.req)?, endpoints.urls, domain::event::public_types())?;
            let after = service::webhooks::endpoints::update(&ctx, &call.actor(), org, id, &patch).await?;
            Ok(json_response(StatusCode::OK, &view(&after)))
        }
        (Method::DELETE, _) => {
            service::webhooks::endpoints::delete(&ctx, &call.actor(), org, id).await?;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::Empty)
                .map_err(|e| ApiError::Internal(e.to_string()))?)
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn create(call: &Call<'_>, endpoints: &Endpoints) -> Result<Response<Body>, ApiError> {
    let new = validate_new(&http::json_body(call.req)?, endpoints.urls, domain::event::public_types())?;
    let org = &call.principal.org;
    let (endpoint, secret) =
        service::webhooks::endpoints::create(&call.ctx(), &endpoints.vault, &call.actor(), org, new).await?;
    let mut body = view(&endpoint);
    body["secret"] = json!(secret.expose());
    let mut response = json_response(StatusCode::CREATED, &body);
    let location = format!("{BASE_PATH}/webhook-endpoints/{}", endpoint.id);
    if let Ok(value) = ::http::HeaderValue::from_str(&location) {
        response.headers_mut().insert("location", value);
    }
    Ok(response)
}

async fn list(call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let all = service::webhooks::endpoints::list(&call.ctx(), &call.principal.org).await?;
    Ok(json_response(StatusCode::OK, &Value::Array(all.iter().map(view).collect())))
}

/// The delivery log's filter.
#[derive(Deserialize)]
struct DeliveryQuery {
    #[serde(default, deserialize_with = "query::text::<_, 16>")]
    status: Option<String>,
}

async fn deliveries(call: &Call<'_>, id: Uuid) -> Result<Response<Body>, ApiError> {
    if call.req.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed);
    }
    let org = &call.principal.org;
    let (page, params): (_, DeliveryQuery) = query::parse_paged(call.req)?;
    let status = match params.status.as_deref() {
        None => None,
        Some("pending") => Some(DeliveryStatus::Pending),
        Some("succeeded") => Some(DeliveryStatus::Succeeded),
        Some("failed") => Some(DeliveryStatus::Failed),
        Some(_) => return Err(ApiError::field("status", "must be one of: pending, succeeded, failed")),
    };
    let limit = query::page_size(page.limit);
    // A cursor continues the endpoint and filter it came from.
    let listing = format!("{LISTING}:{id}:{}", params.status.unwrap_or_default());
    let cursors = call.cursors().await?;
    let start = page.cursor.map(|c| cursors.open(org, &listing, &c)).transpose()?;
    let filter = DeliveryFilter { status, since: None };
    let page = service::webhooks::endpoints::deliveries(&call.ctx(), org, id, filter, start, limit).await?;
    let next = page.next.map(|key| cursors.seal(org, &listing, &key));
    Ok(http::list_response(call.req, page.items.iter().map(delivery_view).collect(), next))
}

fn recover_since(body: &Value) -> Result<DateTime<Utc>, ApiError> {
    let object = body.as_object().ok_or_else(|| ApiError::field("body", "must be a JSON object"))?;
    if let Some(other) = object.keys().find(|k| *k != "since") {
        return Err(ApiError::field(other, "unknown field; expected one of: since"));
    }
    object
        .get("since")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ApiError::field("since", "must be an RFC 3339 time within the last 14 days"))
}

/// An endpoint as the API shows it: never its secret.
fn view(e: &Endpoint) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "description": e.description,
        "events": e.events,
        "isActive": e.is_active,
        "health": e.health(),
        "disabledAt": e.disabled_at,
        "lastAttemptAt": e.last_attempt_at,
        "pendingDeliveries": e.pending,
        "createdAt": e.created_at,
        "updatedAt": e.updated_at,
    })
}

/// A delivery as its log shows it (the body is not repeated: it is the event's).
fn delivery_view(d: &Delivery) -> Value {
    json!({
        "deliveryId": d.delivery_id,
        "endpointId": d.endpoint_id,
        "eventId": d.event_id,
        "type": d.event_type,
        "status": d.status,
        "attempts": d.attempts,
        "lastAttemptAt": d.last_attempt_at,
        "lastStatusCode": d.last_status_code,
        "lastError": d.last_error,
        "nextAttemptAt": d.next_attempt_at,
        "createdAt": d.created_at,
    })
}
