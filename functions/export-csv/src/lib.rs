//! POST /assignments/exports `{"kind": "assignments" | "progress" | "compliance"}`: `service::export` streams the org's
//! rows to S3 as a CSV audit pack, audit-logs the export, announces `export.ready`; the answer carries a
//! 15-minute download link. Scope `assignments:read`.

use ::http::StatusCode;
use api::http::{self, json_response};
use api::{ApiError, App, Call, auth, query};
use exports::{Bucket, ExportKind};
use lambda_http::{Body, Response};
use serde_json::json;

/// What this function builds once per container: the API's context and the export bucket.
pub struct Exporter {
    pub app: App,
    pub bucket: Bucket,
}

impl api::entry::Context for Exporter {
    async fn from_env() -> Result<Self, api::entry::Error> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Self { app: App::from_env().await?, bucket: Bucket::from_env(&config)? })
    }
}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: api::entry::Handler<Exporter> =
    |exporter, req| Box::pin(api::serve(&exporter.app, req, async |call| export(call, &exporter.bucket).await));

fn kind_of(body: &serde_json::Value) -> Result<ExportKind, ApiError> {
    let obj = body.as_object().ok_or_else(|| ApiError::field("body", "must be a JSON object"))?;
    if let Some(unknown) = obj.keys().find(|k| k.as_str() != "kind") {
        return Err(ApiError::field(unknown, "is not a field of an export request"));
    }
    obj.get("kind")
        .and_then(|k| k.as_str())
        .and_then(ExportKind::parse)
        .ok_or_else(|| ApiError::field("kind", "must be one of: assignments, progress, compliance"))
}

async fn export(call: Call<'_>, bucket: &Bucket) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_READ)?;
    query::none(call.req)?;
    let kind = kind_of(&http::json_body(call.req)?)?;
    let export = service::export::export(&call.ctx(), bucket, &call.principal.org, kind, &call.actor()).await?;
    let mut body = export.summary;
    body["downloadUrl"] = json!(export.download_url);
    body["expiresAt"] = json!(export.expires_at);
    Ok(json_response(StatusCode::CREATED, &body))
}
