//! GET /assignments: the org's assignments, newest first, filtered — a JSON array as v1 returns it. Without
//! `limit` every assignment up to [`http::MAX_UNPAGED`]; the next page is behind an RFC 8288 `Link`
//! header with a sealed cursor.

use api::{ApiError, App, Call, auth, http, query, views};
use domain::{AssigneeType, ContentArea};
use lambda_http::{Body, Response};
use serde::Deserialize;
use store::AssignmentFilter;

pub const LISTING: &str = "assignments";

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, list));

/// The list's filters (after the page's `limit` and `cursor`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListFilters {
    #[serde(default, deserialize_with = "query::flag")]
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "query::one_of")]
    assignee_type: Option<AssigneeType>,
    #[serde(default, deserialize_with = "query::id_text::<_, 64>")]
    assignee_id: Option<String>,
    #[serde(default, deserialize_with = "query::one_of")]
    content_area: Option<ContentArea>,
    #[serde(default, deserialize_with = "query::flag")]
    overdue: Option<bool>,
    #[serde(default, deserialize_with = "query::flag")]
    expired: Option<bool>,
}

async fn list(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_READ)?;
    let org = &call.principal.org;
    let (page, params): (_, ListFilters) = query::parse_paged(call.req)?;
    let limit = query::v1_page_size(page.limit);
    let cursors = call.cursors().await?;
    let start = page.cursor.map(|c| cursors.open(org, LISTING, &c)).transpose()?;
    let filter = AssignmentFilter {
        is_active: params.is_active,
        assignee_type: params.assignee_type,
        assignee_id: params.assignee_id.map(|id| domain::canonical_uuid(&id).unwrap_or(id)),
        content_area: params.content_area,
        overdue_on: params.overdue.filter(|o| *o).map(|_| call.now.date_naive()),
        expired_on: params.expired.filter(|e| *e).map(|_| call.now.date_naive()),
    };
    let page = service::reads::list_assignments(&call.ctx(), org, &filter, limit, start).await?;
    let items: Vec<_> = page.items.iter().map(|a| views::assignment(a, call.now)).collect();
    let next = page.next.map(|key| cursors.seal(org, LISTING, &key));
    Ok(http::list_response(call.req, items, next))
}
