//! PATCH /assignments/{id} (deadline, isMandatory, note, isActive, recurrence), DELETE /assignments/{id}
//! (deactivate; nothing is erased) and PATCH /assignments/{id}/users/{userId} (one learner's
//! extension or exemption). Optional `If-Match`; every change is audit-logged.

use ::http::{Method, StatusCode};
use api::http;
use api::{ApiError, App, Call, auth, views};
use domain::{Patch, validation};
use lambda_http::{Body, Response};

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, patch));

async fn patch(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_WRITE)?;
    let org = &call.principal.org;
    let id = http::assignment_id(call.req)?;
    let is_delete = match *call.req.method() {
        Method::DELETE => true,
        Method::PATCH => false,
        _ => return Err(ApiError::MethodNotAllowed),
    };
    let expected = http::if_match(call.req)?;
    if http::names_a_learner(call.req) && !is_delete {
        let user = http::learner_id(call.req)?;
        let patch = validation::validate_learner_patch(&http::json_body(call.req)?, call.now.date_naive())?;
        let learner = service::learners::change(&call.ctx(), org, id, user, &patch, expected, &call.actor()).await?;
        let view = views::assignment_learner(&learner, call.now);
        return Ok(http::json_with_etag(StatusCode::OK, &view, learner.row.revision));
    }
    let patch = if is_delete {
        Patch { is_active: Some(false), ..Default::default() }
    } else {
        validation::validate_patch(&http::json_body(call.req)?, call.now.date_naive())?
    };

    let assignment = service::patch::change(&call.ctx(), org, id, &patch, expected, &call.actor()).await?;
    Ok(respond(is_delete, &assignment, &call))
}

fn respond(is_delete: bool, assignment: &domain::Assignment, call: &Call<'_>) -> Response<Body> {
    if !is_delete {
        return http::json_with_etag(StatusCode::OK, &views::assignment(assignment, call.now), assignment.version);
    }
    let mut response = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty));
    if let Ok(etag) = http::etag(assignment.version).parse() {
        response.headers_mut().insert("etag", etag);
    }
    response
}
