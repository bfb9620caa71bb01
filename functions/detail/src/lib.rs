//! GET /assignments/{id}: the assignment with its aggregates and a page of per-user progress.

use std::collections::HashMap;

use ::http::StatusCode;
use api::http::{self, json_response};
use api::{ApiError, App, Call, auth, query, views};
use domain::{AssignmentId, Source};
use lambda_http::{Body, Response};

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, detail));

async fn detail(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_READ)?;
    let org = &call.principal.org;
    let store = &call.app.store;
    // A malformed id cannot exist: same answer as a missing one.
    let id =
        http::path_param(call.req, "id").and_then(|raw| AssignmentId::parse(&raw).ok()).ok_or(ApiError::NotFound)?;
    let params: query::PageParams = query::parse(call.req)?;
    let limit = query::page_size(params.limit);
    let listing = format!("progress:{id}");
    let start = params.cursor.map(|c| call.app.cursors.open(org, &listing, &c)).transpose()?;

    let assignment = store.get_assignment(org, id).await?.ok_or(ApiError::NotFound)?;
    let page = store.progress_page(org, id, limit, start).await?;
    let user_ids: Vec<_> = page.items.iter().map(|r| r.user_id).collect();
    let users: HashMap<_, _> = store.get_users(org, &user_ids).await?.into_iter().map(|u| (u.user_id, u)).collect();
    let mut team_names = HashMap::new();
    if let Some(Source::Team { team_id }) =
        page.items.iter().map(|r| &r.source).find(|s| matches!(s, Source::Team { .. }))
    {
        // One assignment aims at one team, so its team rows share one team.
        if let Some(team) = store.get_team(org, *team_id).await? {
            team_names.insert(team.team_id, team.name);
        }
    }

    let mut body = views::assignment(&assignment, call.now);
    body["users"] = page
        .items
        .iter()
        .map(|row| views::user_progress(row, users.get(&row.user_id), &assignment, &team_names, call.now))
        .collect();
    body["nextCursor"] = page.next.map(|key| call.app.cursors.seal(org, &listing, &key)).into();
    let mut response = json_response(StatusCode::OK, &body);
    if let Ok(etag) = http::etag(assignment.version).parse() {
        response.headers_mut().insert("etag", etag);
    }
    Ok(response)
}
