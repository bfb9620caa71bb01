//! POST /assignments (and `?dryRun=true`): validate, then `service::create` resolves the target and
//! roster and writes the assignment with its audit entry and roster rows; answer 201. `Idempotency-Key` retries within 24 h get the
//! first response again.

use ::http::StatusCode;
use api::http::{self, BASE_PATH, json_response};
use api::{ApiError, App, Call, auth, query, views};
use domain::{Assignment, validation};
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use store::{IdempotencyBegin, IdempotencyKey, StoredResponse};

const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, create));

/// `?dryRun=true`: answer what creating would do, write nothing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateQuery {
    #[serde(default, deserialize_with = "query::flag")]
    dry_run: Option<bool>,
}

async fn create(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_WRITE)?;
    let params: CreateQuery = query::parse(call.req)?;
    let dry_run = params.dry_run.unwrap_or(false);
    let body = http::json_body(call.req)?;

    let client_key = http::header(call.req, "idempotency-key");
    // Checked on a dry run too (which remembers nothing): a malformed key is the client's mistake either way.
    if client_key.is_some_and(|key| key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN) {
        return Err(ApiError::field("Idempotency-Key", format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters")));
    }
    let Some(client_key) = client_key.filter(|_| !dry_run) else {
        return run(&call, &body, dry_run, None).await;
    };
    let org = &call.principal.org;
    let key = IdempotencyKey::new(&call.principal.actor_id, "POST /assignments", client_key);
    let request_hash = hex::encode(Sha256::digest(http::body_bytes(call.req)));
    // The claim's lease and 24-hour expiry are real durations (DynamoDB expires it by the wall clock):
    // moving an org's clock does not expire a key a client is still retrying.
    match call.app.store.begin_idempotency(org, &key, &request_hash, call.app.clock.wall()).await? {
        IdempotencyBegin::Replay(stored) => return Ok(replay(stored)),
        IdempotencyBegin::Mismatch => return Err(ApiError::IdempotencyKeyReused),
        IdempotencyBegin::InProgress => return Err(ApiError::IdempotencyInProgress),
        IdempotencyBegin::Started => {}
    }
    // A create's answer commits with the assignment: if that answer is lost on its way, a retry replays
    // it (it is not made again, nor refused as a duplicate of itself).
    let respond = |created: &Assignment| remember(&created_response(created, &call));
    let response =
        run(&call, &body, false, Some((&key, &respond))).await.unwrap_or_else(|e| e.into_response(&call.request_id));
    if response.status() == StatusCode::CREATED {
        // Recorded by the create's own transaction.
    } else if response.status().is_server_error() {
        // Let the client retry a failure that was ours (a create that did commit is recorded as done,
        // and the release, for a claim still pending, leaves it so).
        call.app.store.release_idempotency(org, &key).await?;
    } else {
        call.app.store.complete_idempotency(org, &key, &remember(&response)).await?;
    }
    Ok(response)
}

fn remember(response: &Response<Body>) -> StoredResponse {
    let kept = ["content-type", "location", "etag"];
    StoredResponse {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .filter(|(name, _)| kept.contains(&name.as_str()))
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: match response.body() {
            Body::Text(text) => text.clone(),
            _ => String::new(),
        },
    }
}

fn replay(stored: StoredResponse) -> Response<Body> {
    let mut builder = Response::builder().status(stored.status).header("idempotent-replayed", "true");
    for (name, value) in &stored.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::Text(stored.body)).unwrap_or_else(|_| Response::new(Body::Empty))
}

/// The answer to a created assignment: `201` with the assignment, its `Location` and `ETag`.
fn created_response(created: &Assignment, call: &Call<'_>) -> Response<Body> {
    let mut response = json_response(StatusCode::CREATED, &views::assignment(created, call.now));
    let headers = response.headers_mut();
    if let Ok(location) = format!("{BASE_PATH}/assignments/{}", created.id).parse() {
        headers.insert("location", location);
    }
    if let Ok(etag) = http::etag(created.version).parse() {
        headers.insert("etag", etag);
    }
    response
}

/// What a create answers. The `Idempotency-Key`'s answer (`completes`) commits with the assignment.
async fn run(
    call: &Call<'_>,
    body: &serde_json::Value,
    dry_run: bool,
    completes: Option<store::CreateAnswer<'_>>,
) -> Result<Response<Body>, ApiError> {
    let org = &call.principal.org;
    let new = validation::validate_create(body, call.now.date_naive())?;
    if dry_run {
        let preview = service::create::preview(&call.ctx(), org, &new).await?;
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "itemCount": preview.items.total(),
                "learnerCount": preview.learners,
                "assigneeName": preview.assignee_name,
                "alreadyAssignedCount": preview.already_assigned,
                "summary": preview.summary(),
            }),
        ));
    }

    let view = |a: &Assignment| json!(views::assignment(a, call.now));
    let created = service::create::create(&call.ctx(), org, new, &call.actor(), view, completes).await?;
    Ok(created_response(&created, call))
}
