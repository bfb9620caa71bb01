//! GET /assignments/{id}: the assignment with its aggregates and a page of per-user progress; and
//! GET /assignments/{id}/users/{userId}: one learner's row.

use ::http::StatusCode;
use api::http;
use api::{ApiError, App, Call, auth, query, views};
use lambda_http::{Body, Response};

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, detail));

async fn detail(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_READ)?;
    let org = &call.principal.org;
    let id = http::assignment_id(call.req)?;
    if http::names_a_learner(call.req) {
        let user = http::learner_id(call.req)?;
        query::none(call.req)?;
        let learner = service::reads::assignment_learner(&call.ctx(), org, id, user).await?;
        return Ok(http::json_with_etag(
            StatusCode::OK,
            &views::assignment_learner(&learner, call.now),
            learner.row.revision,
        ));
    }
    let params: query::PageParams = query::parse(call.req)?;
    let limit = query::page_size(params.limit);
    let listing = format!("progress:{id}");
    let start = params.cursor.map(|c| call.app.cursors.open(org, &listing, &c)).transpose()?;

    let learners = service::reads::assignment_learners(&call.ctx(), org, id, limit, start).await?;
    let (a, team_names) = (&learners.assignment, &learners.team_names);
    let mut body = views::assignment(a, call.now);
    body["users"] = learners
        .rows
        .iter()
        .map(|row| views::user_progress(row, learners.users.get(&row.user_id), a, team_names, call.now))
        .collect();
    body["nextCursor"] = learners.next.map(|key| call.app.cursors.seal(org, &listing, &key)).into();
    Ok(http::json_with_etag(StatusCode::OK, &body, learners.assignment.version))
}
