//! GET /audit-log: the org's audit log, newest first, filtered by action, actor email and a time
//! range, paged with a sealed cursor. Scope `audit-log:read`.

use ::http::StatusCode;
use api::http::json_response;
use api::{ApiError, App, Call, auth, query, views};
use chrono::{DateTime, Utc};
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::json;
use store::AuditFilter;

pub const LISTING: &str = "audit-log";

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, audit_log));

/// The audit log's filters (after the page's `limit` and `cursor`): action, actor, and a time range
/// (`from`/`to`: an RFC 3339 instant, or a date meaning its first / last millisecond).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditFilters {
    #[serde(default, deserialize_with = "query::text::<_, 64>")]
    action: Option<String>,
    #[serde(default, deserialize_with = "query::text::<_, 254>")]
    actor_email: Option<String>,
    #[serde(default, deserialize_with = "query::from_instant")]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::to_instant")]
    to: Option<DateTime<Utc>>,
}

async fn audit_log(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::AUDIT_LOG_READ)?;
    let org = &call.principal.org;
    let (page, params): (_, AuditFilters) = query::parse_paged(call.req)?;
    let limit = query::page_size(page.limit);
    let filter =
        AuditFilter { action: params.action, actor_email: params.actor_email, from: params.from, to: params.to };
    // A cursor continues the time range it came from: the key range is part of the query, so a cursor
    // of another range could point outside it.
    let stamp = |t: Option<DateTime<Utc>>| t.map_or_else(String::new, |t| t.to_rfc3339());
    let listing = format!("{LISTING}:{}:{}", stamp(filter.from), stamp(filter.to));
    let cursors = call.cursors().await?;
    let start = page.cursor.map(|c| cursors.open(org, &listing, &c)).transpose()?;
    let page = service::reads::audit_log(&call.ctx(), org, &filter, limit, start).await?;
    let items: Vec<_> = page.items.iter().map(views::audit_entry).collect();
    let next = page.next.map(|key| cursors.seal(org, &listing, &key));
    Ok(json_response(StatusCode::OK, &json!({ "items": items, "nextCursor": next })))
}
