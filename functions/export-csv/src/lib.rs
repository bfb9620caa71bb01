//! POST /assignments/exports `{"kind": "assignments" | "progress"}`: streams the org's rows to S3 as a
//! CSV audit pack, audit-logs the export, announces `export.ready`, and returns a 15-minute download
//! link. Scope `assignments:read`.

use std::time::Duration;

use ::http::StatusCode;
use api::http::{self, json_response};
use api::{ApiError, App, Call, auth};
use aws_sdk_s3::presigning::PresigningConfig;
use exports::{Bucket, ExportError, ExportKind};
use lambda_http::{Body, Response};
use serde_json::json;
use service::outbound;

/// How long the download link works.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

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
        .ok_or_else(|| ApiError::field("kind", "must be one of: assignments, progress"))
}

async fn export(call: Call<'_>, bucket: &Bucket) -> Result<Response<Body>, ApiError> {
    call.principal.require_admin_scope(auth::ASSIGNMENTS_READ)?;
    http::query(call.req, &[])?;
    let kind = kind_of(&http::json_body(call.req)?)?;
    let org = &call.principal.org;
    let export_id = uuid::Uuid::now_v7();
    let key = exports::object_key(org, call.now, export_id, kind);

    let exported = exports::export(&call.app.store, &bucket.client, &bucket.name, org, kind, &key, call.now)
        .await
        .map_err(|err| match err {
            ExportError::Store(e) => ApiError::from(e),
            other => {
                tracing::error!(error = %other, key, "export failed; upload aborted");
                ApiError::Unavailable
            }
        })?;
    let presigned = bucket
        .client
        .get_object()
        .bucket(&bucket.name)
        .key(&key)
        .presigned(PresigningConfig::expires_in(LINK_TTL).map_err(|_| ApiError::Unavailable)?)
        .await
        .map_err(|e| {
            tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(e), "presigning failed");
            ApiError::Unavailable
        })?;
    let expires_at = call.now + chrono::Duration::from_std(LINK_TTL).unwrap_or_default();
    let summary = json!({"exportId": export_id, "kind": kind.as_str(), "rowCount": exported.rows,
                         "bytes": exported.bytes, "key": key});
    call.app
        .store
        .put_audit(
            org,
            &call.audit(
                "assignment.exported",
                ("export", export_id.to_string(), format!("{} export", kind.as_str())),
                summary.clone(),
            ),
        )
        .await?;
    call.app.publisher.publish_logged(&[outbound::other("export.ready", org, call.now, summary.clone())]).await;
    tracing::info!(export_id = %export_id, kind = kind.as_str(), rows = exported.rows, bytes = exported.bytes, parts = exported.parts, "export written");

    let mut body = summary;
    body["downloadUrl"] = json!(presigned.uri());
    body["expiresAt"] = json!(expires_at);
    Ok(json_response(StatusCode::CREATED, &body))
}
