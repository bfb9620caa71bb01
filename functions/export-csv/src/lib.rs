//! CSV audit packs, off the request path (`service::export`). Scope `assignments:read`, admins.
//! - `POST /assignments/exports` `{"kind": "assignments" | "progress" | "compliance"}`: records the
//!   export and answers `202 {exportId, kind, status: "running"}` with its `Location` (under the API's
//!   base path, as a created assignment's); the export worker
//!   writes the file;
//! - `GET /assignments/exports/{exportId}`: where it stands, with a fresh 15-minute download link
//!   while it is ready and its file exists (another org's export is a 404);
//! - `GET /assignments/exports`: the org's exports, newest first, paged with a sealed cursor.

use ::http::{Method, StatusCode, header};
use api::http::{self, json_response};
use api::{ApiError, App, Call, auth, query};
use exports::{Bucket, ExportKind};
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::{Value, json};

pub const LISTING: &str = "exports";

/// What this function builds once per container: the API's context and the export bucket.
pub struct Exporter {
    pub app: App,
    pub bucket: Bucket,
}

impl api::entry::Context for Exporter {
    async fn from_env() -> Result<Self, api::entry::Error> {
        // One SDK configuration for both clients (loading it is most of a cold start's set-up).
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let app = App::from_config(&config)?;
        Ok(Self { app, bucket: Bucket::from_env(&config)? })
    }
}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<Exporter> =
    |exporter, req| Box::pin(api::serve(&exporter.app, req, async |call| exports(call, &exporter.bucket).await));

fn kind_of(body: &Value) -> Result<ExportKind, ApiError> {
    let obj = body.as_object().ok_or_else(|| ApiError::field("body", "must be a JSON object"))?;
    if let Some(unknown) = obj.keys().find(|k| k.as_str() != "kind") {
        return Err(ApiError::field(unknown, "is not a field of an export request"));
    }
    obj.get("kind")
        .and_then(|k| k.as_str())
        .and_then(ExportKind::parse)
        .ok_or_else(|| ApiError::field("kind", "must be one of: assignments, progress, compliance"))
}

/// The exports listing has no filters of its own.
#[derive(Deserialize)]
struct Unfiltered {}

async fn exports(call: Call<'_>, bucket: &Bucket) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_READ)?;
    let org = &call.principal.org;
    match (call.req.method().clone(), http::path_param(call.req, "exportId")) {
        (Method::POST, None) => {
            query::none(call.req)?;
            let kind = kind_of(&http::json_body(call.req)?)?;
            let job = service::export::request(&call.ctx(), org, kind, &call.actor()).await?;
            let mut response = json_response(
                StatusCode::ACCEPTED,
                &json!({"exportId": job.export_id, "kind": job.kind, "status": job.status.as_str()}),
            );
            if let Ok(location) = format!("{}/assignments/exports/{}", http::BASE_PATH, job.export_id).parse() {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        (Method::GET, Some(raw)) => {
            query::none(call.req)?;
            // A malformed id cannot exist: the same answer as a missing one.
            let export_id = uuid::Uuid::parse_str(&raw).map_err(|_| service::AppError::NotFound)?;
            let view = service::export::status(&call.ctx(), bucket, org, export_id, call.now).await?;
            Ok(json_response(StatusCode::OK, &export_view(&view)))
        }
        (Method::GET, None) => {
            let (page, Unfiltered {}) = query::parse_paged(call.req)?;
            let cursors = call.cursors().await?;
            let start = page.cursor.map(|c| cursors.open(org, LISTING, &c)).transpose()?;
            let page = service::export::recent(&call.ctx(), org, query::page_size(page.limit), start).await?;
            let items: Vec<Value> = page.items.iter().map(|job| job_view(job, job.status_at(call.now))).collect();
            let next = page.next.map(|key| cursors.seal(org, LISTING, &key));
            Ok(json_response(StatusCode::OK, &json!({"items": items, "nextCursor": next})))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn job_view(job: &domain::ExportJob, status: domain::ExportStatus) -> Value {
    json!({
        "exportId": job.export_id,
        "kind": job.kind,
        "status": status.as_str(),
        "rowCount": job.row_count,
        "bytes": job.bytes,
        "createdAt": job.created_at,
        "completedAt": job.completed_at,
        "failure": match status {
            domain::ExportStatus::Failed => Some(job.failure.clone().unwrap_or_else(|| service::export::TIMED_OUT.into())),
            _ => None,
        },
    })
}

fn export_view(view: &service::export::ExportView) -> Value {
    let mut body = job_view(&view.job, view.status);
    body["downloadUrl"] = json!(view.download.as_ref().map(|(url, _)| url));
    body["expiresAt"] = json!(view.download.as_ref().map(|(_, at)| at));
    body["key"] = json!(view.job.key);
    body
}
