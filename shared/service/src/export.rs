//! CSV audit packs, off the request path: a request records a running export job with
//! `export.requested`, which (through the outbox and the bus) starts the export worker; the worker
//! streams every row of the kind to S3 (see the `exports` crate), then marks the job ready with its
//! audit entry and `export.ready` in one transaction. Reading a ready job gives a download link that
//! works for [`LINK_TTL`], fresh on every read while the file exists.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{ExportJob, ExportStatus, OrgId};
use exports::{Bucket, ExportError, ExportKind};
use serde_json::json;
use store::{Page, PageKey};

use crate::{Actor, AppError, Ctx, outbound};

/// How long a download link works.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// Records a running export of `kind` and the event that starts the worker.
pub async fn request(ctx: &Ctx<'_>, org: &OrgId, kind: ExportKind, actor: &Actor) -> Result<ExportJob, AppError> {
    let export_id = uuid::Uuid::now_v7();
    let job = ExportJob {
        export_id,
        kind: kind.as_str().to_owned(),
        status: ExportStatus::Running,
        key: exports::object_key(org, actor.now, export_id, kind),
        created_at: actor.now,
        completed_at: None,
        row_count: None,
        bytes: None,
        failure: None,
        actor_id: actor.id.clone(),
        actor_email: actor.email.clone(),
        actor_role: actor.role,
        request_id: actor.request_id.clone(),
    };
    let requested =
        outbound::other("export.requested", org, actor.now, json!({"exportId": export_id, "kind": job.kind}));
    ctx.store.request_export(org, &job, &[requested]).await?;
    tracing::info!(export_id = %export_id, kind = job.kind, "export requested");
    Ok(job)
}

/// The export worker: writes the file of a running job, then marks it ready (with its audit entry
/// and `export.ready`) or, when S3 or the data refuse, failed. A job that is no longer running is
/// left alone, so a repeated request does nothing twice. Storage errors are returned: the worker's
/// event is retried (the file is written again under the same key).
pub async fn run(ctx: &Ctx<'_>, bucket: &Bucket, org: &OrgId, export_id: uuid::Uuid) -> Result<ExportJob, AppError> {
    let store = ctx.store;
    let job = store.export_job(org, export_id).await?.ok_or(AppError::NotFound)?;
    if job.status != ExportStatus::Running {
        return Ok(job);
    }
    let kind = ExportKind::parse(&job.kind)
        .ok_or_else(|| AppError::Unavailable(format!("export {export_id} of unknown kind {}", job.kind)))?;
    let now = Utc::now();
    let finished = match exports::export(store, &bucket.client, &bucket.name, org, kind, &job.key, job.created_at).await
    {
        Ok(exported) => {
            let ready = job.ready(exported.rows, exported.bytes, now);
            let summary = json!({"exportId": export_id, "kind": job.kind, "rowCount": exported.rows,
                                 "bytes": exported.bytes, "key": job.key});
            let actor = Actor {
                id: job.actor_id.clone(),
                email: job.actor_email.clone(),
                role: job.actor_role,
                request_id: job.request_id.clone(),
                now,
            };
            let label = format!("{} export", job.kind);
            let audit = actor.audit("assignment.exported", ("export", export_id.to_string(), label), summary.clone());
            let event = outbound::other("export.ready", org, now, summary);
            store.finish_export(org, &ready, Some(&audit), &[event]).await?;
            tracing::info!(export_id = %export_id, kind = job.kind, rows = exported.rows, bytes = exported.bytes, parts = exported.parts, "export written");
            ready
        }
        Err(ExportError::Store(e)) => return Err(AppError::Store(e)),
        Err(other) => {
            tracing::error!(export_id = %export_id, error = %other, key = job.key, "export failed (a started upload is aborted)");
            let failed = job.failed(&other.to_string(), now);
            store.finish_export(org, &failed, None, &[]).await?;
            failed
        }
    };
    Ok(finished)
}

/// An export job as a client sees it: with a download link while its file can be downloaded.
#[derive(Debug, Clone)]
pub struct ExportView {
    pub job: ExportJob,
    /// The status as of now (a job running too long counts as failed).
    pub status: ExportStatus,
    /// A fresh presigned link (ready and the file still in the bucket) and when it stops working.
    pub download: Option<(String, DateTime<Utc>)>,
}

/// One of the org's exports, with a fresh link if it is ready and its file is still there.
pub async fn status(
    ctx: &Ctx<'_>,
    bucket: &Bucket,
    org: &OrgId,
    export_id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<ExportView, AppError> {
    let job = ctx.store.export_job(org, export_id).await?.ok_or(AppError::NotFound)?;
    let status = job.status_at(now);
    let unavailable = |e: ExportError| AppError::Unavailable(e.to_string());
    let download = if status == ExportStatus::Ready && bucket.holds(&job.key).await.map_err(unavailable)? {
        let url = bucket.download_url(&job.key, LINK_TTL).await.map_err(unavailable)?;
        Some((url, now + chrono::Duration::from_std(LINK_TTL).unwrap_or_default()))
    } else {
        None
    };
    Ok(ExportView { job, status, download })
}

/// A page of the org's exports, newest first (no links: a client reads the one it wants).
pub async fn recent(
    ctx: &Ctx<'_>,
    org: &OrgId,
    limit: usize,
    start: Option<PageKey>,
) -> Result<Page<ExportJob>, AppError> {
    Ok(ctx.store.export_jobs_page(org, limit, start).await?)
}
