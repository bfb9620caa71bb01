//! POST /assignments (and `?dryRun=true`): validate, resolve target and roster, write the assignment
//! with its audit entry and roster rows, answer 201. `Idempotency-Key` retries within 24 h get the
//! first response again.

use std::collections::HashSet;

use ::http::StatusCode;
use api::http::{self, BASE_PATH, json_response};
use api::{ApiError, App, Call, auth, roster, views};
use domain::{AssignmentId, ItemCounts, ProgressRow, preview, validation};
use events::outbound;
use lambda_http::{Body, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use store::{AssignmentFilter, IdempotencyBegin, IdempotencyKey, StoredResponse};

const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, create));

async fn create(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_WRITE)?;
    let params = http::query(call.req, &["dryRun"])?;
    let dry_run = http::bool_param(&params, "dryRun")?.unwrap_or(false);
    let body = http::json_body(call.req)?;

    let Some(client_key) = http::header(call.req, "idempotency-key").filter(|_| !dry_run) else {
        return run(&call, &body, dry_run).await;
    };
    if client_key.is_empty() || client_key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::field("Idempotency-Key", format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters")));
    }
    let org = &call.principal.org;
    let key = IdempotencyKey::new(&call.principal.actor_id, "POST /assignments", client_key);
    let request_hash = hex::encode(Sha256::digest(http::body_bytes(call.req)));
    match call.app.store.begin_idempotency(org, &key, &request_hash, call.now).await? {
        IdempotencyBegin::Replay(stored) => return Ok(replay(stored)),
        IdempotencyBegin::Mismatch => return Err(ApiError::IdempotencyKeyReused),
        IdempotencyBegin::InProgress => return Err(ApiError::IdempotencyInProgress),
        IdempotencyBegin::Started => {}
    }
    let response = run(&call, &body, false).await.unwrap_or_else(|e| e.into_response(&call.request_id));
    if response.status().is_server_error() {
        // Let the client retry a failure that was ours.
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

async fn run(call: &Call<'_>, body: &serde_json::Value, dry_run: bool) -> Result<Response<Body>, ApiError> {
    let org = &call.principal.org;
    let store = &call.app.store;
    let new = validation::validate_create(body, call.now.date_naive())?;
    let resolved = roster::resolve_target(store, org, &new.target).await?;
    let roster = roster::resolve_assignee(store, org, &new.assignee).await?;

    if dry_run {
        let learners: HashSet<_> = roster.members.iter().map(|m| m.user_id).collect();
        let already = already_assigned(call, &new.target, &learners).await?;
        let counts = ItemCounts::of(&resolved.units);
        let learner_count = u32::try_from(learners.len()).unwrap_or(u32::MAX);
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "itemCount": counts.total(),
                "learnerCount": learner_count,
                "assigneeName": roster.assignee_name,
                "alreadyAssignedCount": already,
                "summary": preview::summary(counts, learner_count),
            }),
        ));
    }

    let id = AssignmentId::new_v7();
    let assignment = new.into_assignment(id, resolved, roster.assignee_name, call.principal.actor_id.clone(), call.now);
    let rows: Vec<ProgressRow> = roster
        .members
        .into_iter()
        .map(|m| {
            let mut row = ProgressRow::new(id, m.user_id, m.source, call.now);
            row.membership_at = m.since;
            row
        })
        .collect();
    let audit = call.audit(
        "assignment.created",
        ("assignment", id.to_string(), assignment.target_title.clone()),
        json!({"before": null, "after": views::assignment(&assignment, call.now), "learnerCount": rows.len()}),
    );
    let created = store.create_assignment(org, &assignment, &audit, &rows).await?;
    tracing::info!(assignment_id = %id, learners = rows.len(), "assignment created");
    let event = outbound::assignment_changed("assignment.created", org, &created, &call.principal.actor_id, call.now);
    call.app.publisher.publish_logged(&[event]).await;

    let mut response = json_response(StatusCode::CREATED, &views::assignment(&created, call.now));
    let headers = response.headers_mut();
    if let Ok(location) = format!("{BASE_PATH}/assignments/{id}").parse() {
        headers.insert("location", location);
    }
    if let Ok(etag) = http::etag(created.version).parse() {
        headers.insert("etag", etag);
    }
    Ok(response)
}

/// Learners of `learners` who already have an active assignment of the same target, through any
/// assignee. Reads only the org's active assignments of this target and their rosters.
async fn already_assigned(
    call: &Call<'_>,
    target: &domain::Target,
    learners: &HashSet<domain::UserId>,
) -> Result<usize, ApiError> {
    let org = &call.principal.org;
    let store = &call.app.store;
    let mut covered = HashSet::new();
    let mut next = None;
    let filter = AssignmentFilter { is_active: Some(true), ..Default::default() };
    loop {
        let page = store.list_assignments(org, &filter, 200, next).await?;
        for a in page
            .items
            .iter()
            .filter(|a| a.target.target_type == target.target_type && a.target.target_id == target.target_id)
        {
            let mut rows_next = None;
            loop {
                let rows = store.progress_page(org, a.id, 200, rows_next).await?;
                covered.extend(rows.items.iter().filter(|r| r.removed_at.is_none()).map(|r| r.user_id));
                match rows.next {
                    Some(key) => rows_next = Some(key),
                    None => break,
                }
            }
        }
        match page.next {
            Some(key) => next = Some(key),
            None => break,
        }
    }
    Ok(learners.intersection(&covered).count())
}
