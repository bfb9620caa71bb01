//! Exporting a CSV audit pack: every row of the kind streamed to S3 (see the `exports` crate), the
//! export audit-logged, `export.ready` announced, and a download link that works for [`LINK_TTL`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::OrgId;
use exports::{Bucket, ExportError, ExportKind};
use serde_json::{Value, json};

use crate::{Actor, AppError, Ctx, outbound};

/// How long the download link works.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// A written export.
#[derive(Debug, Clone)]
pub struct Export {
    /// `{exportId, kind, rowCount, bytes, key}`: the audit entry's metadata and `export.ready`'s detail.
    pub summary: Value,
    pub download_url: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn export(
    ctx: &Ctx<'_>,
    bucket: &Bucket,
    org: &OrgId,
    kind: ExportKind,
    actor: &Actor,
) -> Result<Export, AppError> {
    let export_id = uuid::Uuid::now_v7();
    let key = exports::object_key(org, actor.now, export_id, kind);
    let unavailable = |err: ExportError| match err {
        ExportError::Store(e) => AppError::Store(e),
        other => {
            tracing::error!(error = %other, key, "export failed (a started upload is aborted)");
            AppError::Unavailable(other.to_string())
        }
    };
    let exported = exports::export(ctx.store, &bucket.client, &bucket.name, org, kind, &key, actor.now)
        .await
        .map_err(unavailable)?;
    let download_url = bucket.download_url(&key, LINK_TTL).await.map_err(unavailable)?;
    let summary = json!({"exportId": export_id, "kind": kind.as_str(), "rowCount": exported.rows,
                         "bytes": exported.bytes, "key": key});
    let label = format!("{} export", kind.as_str());
    let audit = actor.audit("assignment.exported", ("export", export_id.to_string(), label), summary.clone());
    let ready = outbound::other("export.ready", org, actor.now, summary.clone());
    ctx.store.put_audit(org, &audit, &[ready]).await?;
    tracing::info!(export_id = %export_id, kind = kind.as_str(), rows = exported.rows, bytes = exported.bytes, parts = exported.parts, "export written");
    let expires_at = actor.now + chrono::Duration::from_std(LINK_TTL).unwrap_or_default();
    Ok(Export { summary, download_url, expires_at })
}
