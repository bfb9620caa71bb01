//! GET /assignments/{id}: the assignment with its aggregates and a page of per-user progress; and
//! GET /assignments/{id}/users/{userId}: one learner's row.

use ::http::StatusCode;
use api::http;
use api::{ApiError, App, Call, auth, query, views};
use domain::UserStatus;
use lambda_http::{Body, Response};
use serde::Deserialize;

/// The detail's filter of its learners (after the page's `limit` and `cursor`).
#[derive(Deserialize)]
struct DetailFilters {
    #[serde(default, deserialize_with = "query::user_status")]
    status: Option<UserStatus>,
}

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
    let (params, filters): (_, DetailFilters) = query::parse_paged(call.req)?;
    let limit = query::page_size(params.limit);
    let listing = format!("progress:{id}");
    let cursors = call.cursors().await?;
    let start = params.cursor.map(|c| cursors.open(org, &listing, &c)).transpose()?;

    let learners = service::reads::assignment_learners(&call.ctx(), org, id, limit, start).await?;
    let (a, team_names) = (&learners.assignment, &learners.team_names);
    let mut body = views::assignment(a, call.now);
    // A status filter applies to the page read, so a page may hold fewer than `limit` learners.
    body["users"] = learners
        .rows
        .iter()
        .filter(|row| {
            filters.status.is_none_or(|s| row.status(&a.units, a.item_count, a.deadline, call.now.date_naive()) == s)
        })
        .map(|row| views::user_progress(row, learners.users.get(&row.user_id), a, team_names, call.now))
        .collect();
    body["nextCursor"] = learners.next.map(|key| cursors.seal(org, &listing, &key)).into();
    Ok(http::json_with_etag(StatusCode::OK, &body, learners.assignment.version))
}
