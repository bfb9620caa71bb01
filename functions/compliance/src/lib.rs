//! GET /compliance: who is compliant with mandatory training, for the org and each team (a page of up
//! to `limit` teams, 200 at most, with a `Link` to the next); and
//! GET /compliance/learners: each learner's figures, filtered by team and compliance — a JSON array
//! paged like the list (RFC 8288 `Link` with a sealed cursor). Scope `compliance:read`.

use ::http::StatusCode;
use api::{ApiError, App, Call, auth, http, query, views};
use domain::TeamId;
use lambda_http::{Body, Response};
use serde::Deserialize;
use store::LearnerFilter;

pub const LISTING: &str = "compliance-learners";
/// The summary's teams, paged.
const SUMMARY_LISTING: &str = "compliance-teams";

/// The summary takes no filter, only `limit` and `cursor`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFilters {}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<App> = |app, req| Box::pin(api::serve(app, req, compliance));

/// The learners listing's filters (after the page's `limit` and `cursor`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LearnerFilters {
    #[serde(default, deserialize_with = "query::team_id")]
    team_id: Option<TeamId>,
    #[serde(default, deserialize_with = "query::flag")]
    compliant: Option<bool>,
}

async fn compliance(call: Call<'_>) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::COMPLIANCE_READ)?;
    let org = &call.principal.org;
    if !call.req.uri().path().ends_with("/learners") {
        let (page, _): (_, NoFilters) = query::parse_paged(call.req)?;
        let limit = page.limit.unwrap_or(http::MAX_LIMIT);
        let cursors = call.cursors().await?;
        let start = page.cursor.map(|c| cursors.open(org, SUMMARY_LISTING, &c)).transpose()?;
        let summary = service::compliance::summary(&call.ctx(), org, limit, start, call.now).await?;
        let mut response = http::json_response(StatusCode::OK, &views::compliance_summary(&summary));
        if let Some(next) = &summary.next {
            let url = http::next_page_url(call.req, &cursors.seal(org, SUMMARY_LISTING, next));
            if let Ok(link) = ::http::HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")) {
                response.headers_mut().insert("link", link);
            }
        }
        return Ok(response);
    }
    let (page, params): (_, LearnerFilters) = query::parse_paged(call.req)?;
    let limit = query::v1_page_size(page.limit);
    // The team is part of the key condition: a cursor continues only the team it was made for.
    let listing = format!("{LISTING}:{}", params.team_id.map(|t| t.to_string()).unwrap_or_default());
    let cursors = call.cursors().await?;
    let start = page.cursor.map(|c| cursors.open(org, &listing, &c)).transpose()?;
    let filter =
        LearnerFilter { team: params.team_id, compliant_on: params.compliant.map(|c| (c, call.now.date_naive())) };
    let page = service::compliance::learners(&call.ctx(), org, &filter, limit, start, call.now).await?;
    let items = page.items.iter().map(views::compliance_learner).collect();
    let next = page.next.map(|key| cursors.seal(org, &listing, &key));
    Ok(http::list_response(call.req, items, next))
}
