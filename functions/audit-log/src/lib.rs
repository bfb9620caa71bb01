//! GET /audit-log: the org's audit log, newest first, filtered by action, actor email and a time
//! range, paged with a sealed cursor. Scope `audit-log:read`.

use ::http::StatusCode;
use api::http::{self, json_response};
use api::{ApiError, App, Call, auth, views};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use lambda_http::{Body, Response};
use serde_json::json;
use store::AuditFilter;

pub const LISTING: &str = "audit-log";
const PARAMS: &[&str] = &["limit", "cursor", "action", "actorEmail", "from", "to"];

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, audit_log));

/// An RFC 3339 instant, or a date: the start of that day (`from`) or its last millisecond (`to`).
fn instant(field: &str, raw: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiError::field(field, "must be an RFC 3339 date-time or a date (YYYY-MM-DD)"))?;
    let time = if end_of_day { NaiveTime::from_hms_milli_opt(23, 59, 59, 999) } else { Some(NaiveTime::MIN) };
    Ok(date.and_time(time.unwrap_or(NaiveTime::MIN)).and_utc())
}

fn text(field: &str, raw: Option<&String>, max: usize) -> Result<Option<String>, ApiError> {
    raw.map(|v| {
        if v.is_empty() || v.chars().count() > max {
            Err(ApiError::field(field, format!("must be 1 to {max} characters")))
        } else {
            Ok(v.clone())
        }
    })
    .transpose()
}

async fn audit_log(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::AUDIT_LOG_READ)?;
    let org = &call.principal.org;
    let params = http::query(call.req, PARAMS)?;
    let limit = http::limit_param(&params)?;
    let filter = AuditFilter {
        action: text("action", params.get("action"), 64)?,
        actor_email: text("actorEmail", params.get("actorEmail"), 254)?,
        from: params.get("from").map(|v| instant("from", v, false)).transpose()?,
        to: params.get("to").map(|v| instant("to", v, true)).transpose()?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(ApiError::field("from", "must not be after `to`"));
    }
    // A cursor continues the time range it came from: the key range is part of the query, so a cursor
    // of another range could point outside it.
    let stamp = |t: Option<DateTime<Utc>>| t.map_or_else(String::new, |t| t.to_rfc3339());
    let listing = format!("{LISTING}:{}:{}", stamp(filter.from), stamp(filter.to));
    let start = params.get("cursor").map(|c| call.app.cursors.open(org, &listing, c)).transpose()?;
    let page = call.app.store.audit_page(org, &filter, limit, start).await?;
    let items: Vec<_> = page.items.iter().map(views::audit_entry).collect();
    let next = page.next.map(|key| call.app.cursors.seal(org, &listing, &key));
    Ok(json_response(StatusCode::OK, &json!({ "items": items, "nextCursor": next })))
}
