//! PATCH /assignments/{id} (deadline, isMandatory, note, isActive) and DELETE /assignments/{id}
//! (deactivate; nothing is erased). Optional `If-Match`; every change is audit-logged.

use ::http::{Method, StatusCode};
use api::http::{self, json_response};
use api::{ApiError, App, Call, auth, views};
use domain::{Activation, AssignmentId, Patch, validation};
use events::{membership, outbound};
use lambda_http::{Body, Response};
use serde_json::json;
use store::StoreError;
use store::retry::Retry;

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, patch));

async fn patch(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_WRITE)?;
    let org = &call.principal.org;
    let store = &call.app.store;
    let id =
        http::path_param(call.req, "id").and_then(|raw| AssignmentId::parse(&raw).ok()).ok_or(ApiError::NotFound)?;
    let is_delete = match *call.req.method() {
        Method::DELETE => true,
        Method::PATCH => false,
        _ => return Err(ApiError::MethodNotAllowed),
    };
    let expected = http::if_match(call.req)?;
    let patch = if is_delete {
        Patch { is_active: Some(false), ..Default::default() }
    } else {
        validation::validate_patch(&http::json_body(call.req)?, call.now.date_naive())?
    };

    let mut attempts = Retry::CONFLICT.attempts();
    while attempts.next().await {
        let current = store.get_assignment(org, id).await?.ok_or(ApiError::NotFound)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(ApiError::PreconditionFailed { current_version: current.version });
        }
        let Some((next, activation)) = current.patched(&patch, call.now) else {
            return Ok(respond(is_delete, &current, &call));
        };
        let action = match activation {
            Activation::Deactivated => "assignment.deactivated",
            Activation::Reactivated => "assignment.reactivated",
            Activation::Unchanged => "assignment.updated",
        };
        let audit = call.audit(
            action,
            ("assignment", id.to_string(), current.target_title.clone()),
            json!({"before": current.editable_snapshot(), "after": next.editable_snapshot()}),
        );
        match store.update_assignment(org, &current, &next, activation, &audit).await {
            Ok(()) => {
                let mut events =
                    vec![outbound::assignment_changed(action, org, &next, &call.principal.actor_id, call.now)];
                if activation == Activation::Reactivated {
                    // Members who joined, left or completed items while it was inactive.
                    let reconciled = membership::reconcile_assignment(store, org, &next, true).await?;
                    tracing::info!(assignment_id = %id, repairs = reconciled.repairs, "roster reconciled on reactivation");
                    events.extend(reconciled.events);
                }
                call.app.publisher.publish_logged(&events).await;
                let next = if activation == Activation::Reactivated {
                    store.get_assignment(org, id).await?.unwrap_or(next)
                } else {
                    next
                };
                return Ok(respond(is_delete, &next, &call));
            }
            Err(StoreError::VersionConflict) if expected.is_none() => continue,
            Err(StoreError::VersionConflict) => {
                let version = store.get_assignment(org, id).await?.map_or(current.version, |a| a.version);
                return Err(ApiError::PreconditionFailed { current_version: version });
            }
            Err(other) => return Err(other.into()),
        }
    }
    // Without `If-Match`, concurrent edits were re-read and the patch applied again until the policy ran out.
    Err(ApiError::Unavailable)
}

fn respond(is_delete: bool, assignment: &domain::Assignment, call: &Call<'_>) -> Response<Body> {
    let mut response = if is_delete {
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::Empty)
            .unwrap_or_else(|_| Response::new(Body::Empty))
    } else {
        json_response(StatusCode::OK, &views::assignment(assignment, call.now))
    };
    if let Ok(etag) = http::etag(assignment.version).parse() {
        response.headers_mut().insert("etag", etag);
    }
    response
}
