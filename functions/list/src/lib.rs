//! GET /assignments: the org's assignments, newest first, filtered — a JSON array as v1 returns it. Without
//! `limit` every assignment up to [`http::MAX_UNPAGED`]; the next page is behind an RFC 8288 `Link`
//! header with a sealed cursor.

use api::http;
use api::{ApiError, App, Call, auth, views};
use domain::{AssigneeType, ContentArea};
use lambda_http::{Body, Response};
use store::AssignmentFilter;

pub const LISTING: &str = "assignments";
const PARAMS: &[&str] = &["limit", "cursor", "isActive", "assigneeType", "assigneeId", "contentArea", "overdue"];

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, list));

async fn list(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_READ)?;
    let org = &call.principal.org;
    let params = http::query(call.req, PARAMS)?;
    let limit = http::v1_limit_param(&params)?;
    let start = params.get("cursor").map(|c| call.app.cursors.open(org, LISTING, c)).transpose()?;
    let filter = AssignmentFilter {
        is_active: http::bool_param(&params, "isActive")?,
        assignee_type: params
            .get("assigneeType")
            .map(|v| {
                v.parse::<AssigneeType>().map_err(|_| {
                    ApiError::field("assigneeType", format!("must be one of: {}", AssigneeType::expected()))
                })
            })
            .transpose()?,
        assignee_id: params
            .get("assigneeId")
            .map(|v| {
                if v.is_empty() || v.len() > 64 {
                    Err(ApiError::field("assigneeId", "must be 1 to 64 characters"))
                } else {
                    Ok(domain::canonical_uuid(v).unwrap_or_else(|| v.clone()))
                }
            })
            .transpose()?,
        content_area: params
            .get("contentArea")
            .map(|v| {
                v.parse::<ContentArea>()
                    .map_err(|_| ApiError::field("contentArea", format!("must be one of: {}", ContentArea::expected())))
            })
            .transpose()?,
        overdue_on: http::bool_param(&params, "overdue")?.filter(|o| *o).map(|_| call.now.date_naive()),
    };
    let page = call.app.store.list_assignments(org, &filter, limit, start).await?;
    let items: Vec<_> = page.items.iter().map(|a| views::assignment(a, call.now)).collect();
    let next = page.next.map(|key| call.app.cursors.seal(org, LISTING, &key));
    Ok(http::list_response(call.req, items, next))
}
