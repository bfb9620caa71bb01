//! GET /users/{userId}/assignments: a learner's active assignments, soonest deadline first, with
//! status, progress and where each came from — a JSON array as v1 returns it. Learners may read only
//! their own. One response reads at most [`http::MAX_UNPAGED`] of the learner's rows (active or not);
//! a learner with more gets the rest behind a `Link` next (each response sorted on its own).

use api::http;
use api::{ApiError, App, Call, auth, query, views};
use domain::{Role, UserId};
use lambda_http::{Body, Response};

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, learner_view));

async fn learner_view(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_scope(auth::PROGRESS_READ)?;
    let org = &call.principal.org;
    let raw = http::path_param(call.req, "userId").unwrap_or_default();
    let user = UserId::parse(&raw).ok();
    if call.principal.role == Role::Learner && user != call.principal.user_id {
        return Err(ApiError::Forbidden("learners can only read their own assignments"));
    }
    let user = user.ok_or(service::AppError::NotFound)?;
    let params: query::CursorOnly = query::parse(call.req)?;
    let listing = format!("learner:{user}");
    let cursors = call.cursors().await?;
    let start = params.cursor.map(|c| cursors.open(org, &listing, &c)).transpose()?;

    let (mine, team_names) =
        service::reads::learner_assignments(&call.ctx(), org, user, http::MAX_UNPAGED, start).await?;
    let next = mine.next.map(|key| cursors.seal(org, &listing, &key));
    let items: Vec<_> =
        mine.items.iter().map(|(a, row)| views::learner_assignment(a, row, &team_names, call.now)).collect();
    Ok(http::list_response(call.req, items, next))
}
