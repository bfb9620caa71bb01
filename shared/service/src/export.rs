//! CSV audit packs, off the request path: a request records a running export job with
//! `export.requested`, which (through the outbox and the export worker's queue, one per org at a time:
//! `lanes`) starts the export worker; the worker
//! streams every row of the kind to S3 (see the `exports` crate), then marks the job ready with its
//! audit entry and `export.ready` in one transaction. Reading a ready job gives a download link that
//! works for [`LINK_TTL`], fresh on every read while the file exists.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::event::{ExportReady, ExportRequested};
use domain::{ExportJob, ExportStatus, OrgId};
use exports::{Bucket, ExportError, ExportKind};
use serde_json::json;
use store::{Page, PageKey};

use crate::{Actor, AppError, Ctx, outbound};

/// How long a download link works.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// Records a running export of `kind` and the event that starts the worker, unless the org already has
/// [`store::EXPORT_SLOTS`] running ([`AppError::TooManyRunningExports`]: each holds a worker for minutes,
/// and the worker's reserved concurrency is shared by every org).
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
        attempts: 0,
        actor_id: actor.id.clone(),
        actor_email: actor.email.clone(),
        actor_role: actor.role,
        request_id: actor.request_id.clone(),
    };
    let requested = outbound::event(org, actor.now, &ExportRequested { export_id, kind: job.kind.clone() });
    if !ctx.store.request_export(org, &job, &[requested]).await? {
        let limit = store::EXPORT_SLOTS;
        return Err(AppError::TooManyRunningExports { running: limit, limit });
    }
    tracing::info!(export_id = %export_id, kind = job.kind, "export requested");
    Ok(job)
}

/// The export worker: writes the file of a running job, then marks it ready with its audit entry and
/// `export.ready` in one transaction. A job no longer running is left alone, so a repeated request does
/// nothing twice; a request that reaches the worker after the job's time ([`ExportJob::running_at_most`])
/// fails the job rather than write a file nobody waits for. A run that cannot write the file is retried
/// (an error, so the queue brings the request back in a minute) until [`ExportJob::MAX_ATTEMPTS`], then the job is failed. Storage
/// errors are returned: the event is retried (the file is written again under the same key).
pub async fn run(ctx: &Ctx<'_>, bucket: &Bucket, org: &OrgId, export_id: uuid::Uuid) -> Result<ExportJob, AppError> {
    let store = ctx.store;
    let job = store.export_job(org, export_id).await?.ok_or(AppError::NotFound)?;
    if job.status != ExportStatus::Running {
        return Ok(job);
    }
    let now = ctx.now(org);
    if job.status_at(now) == ExportStatus::Failed {
        tracing::warn!(export_id = %export_id, "export request arrived after the job's time; failed");
        return finish(ctx, org, job.failed(TIMED_OUT, now), None, &[]).await;
    }
    let job = job.attempted();
    if !store.start_export_attempt(org, &job).await? {
        return current(ctx, org, export_id).await;
    }
    let kind = ExportKind::parse(&job.kind)
        .ok_or_else(|| AppError::Unavailable(format!("export {export_id} of unknown kind {}", job.kind)))?;
    match exports::export(store, &bucket.client, &bucket.name, org, kind, &job.key, job.created_at).await {
        Ok(exported) => {
            let now = ctx.now(org);
            let ready = ExportReady {
                export_id,
                kind: job.kind.clone(),
                row_count: exported.rows,
                bytes: exported.bytes,
                key: job.key.clone(),
            };
            let actor = Actor {
                id: job.actor_id.clone(),
                email: job.actor_email.clone(),
                role: job.actor_role,
                request_id: job.request_id.clone(),
                now,
            };
            let label = format!("{} export", job.kind);
            // The audit entry's metadata is the event's detail (without its id, org and time).
            let audit = actor.audit("assignment.exported", ("export", export_id.to_string(), label), json!(ready));
            let event = outbound::event(org, now, &ready);
            tracing::info!(export_id = %export_id, kind = job.kind, rows = exported.rows, bytes = exported.bytes, parts = exported.parts, "export written");
            finish(ctx, org, job.ready(exported.rows, exported.bytes, now), Some(&audit), &[event]).await
        }
        Err(ExportError::Store(e)) => Err(AppError::Store(e)),
        Err(other) => {
            // The detail is for operators; the client reads that the file could not be written.
            tracing::error!(export_id = %export_id, attempt = job.attempts, error = %other, key = job.key, "export run failed (its upload is aborted)");
            if job.attempts < ExportJob::MAX_ATTEMPTS {
                return Err(AppError::Unavailable(format!("export {export_id}: run {} failed", job.attempts)));
            }
            finish(ctx, org, job.failed(NOT_WRITTEN, ctx.now(org)), None, &[]).await
        }
    }
}

/// Why a failed export failed, as its reader sees it.
const NOT_WRITTEN: &str = "the file could not be written";
pub const TIMED_OUT: &str = "the export did not finish in time";

/// Stores a finished job with its audit entry and events; when another run finished it first, the job
/// as that run left it.
async fn finish(
    ctx: &Ctx<'_>,
    org: &OrgId,
    finished: ExportJob,
    audit: Option<&domain::AuditEntry>,
    events: &[domain::DomainEvent],
) -> Result<ExportJob, AppError> {
    if ctx.store.finish_export(org, &finished, audit, events).await? {
        // The org's next export may start. Not freeing the slot only delays that to the end of the
        // job's hour, so a failure here is logged, not the worker's to retry.
        if let Err(error) = ctx.store.release_export_slot(org, finished.export_id).await {
            tracing::warn!(export_id = %finished.export_id, %error, "export slot left to expire");
        }
        return Ok(finished);
    }
    current(ctx, org, finished.export_id).await
}

async fn current(ctx: &Ctx<'_>, org: &OrgId, export_id: uuid::Uuid) -> Result<ExportJob, AppError> {
    ctx.store.export_job(org, export_id).await?.ok_or(AppError::NotFound)
}

/// An export job as a client sees it: with a download link while its file can be downloaded.
#[derive(Debug, Clone)]
pub struct ExportView {
    pub job: ExportJob,
    /// The status as of now (a job running too long counts as failed).
    pub status: ExportStatus,
    /// A fresh presigned link (ready, and within the days the bucket keeps the file) and when it
    /// stops working.
    pub download: Option<(String, DateTime<Utc>)>,
}

/// One of the org's exports, with a fresh link while it is ready and its file is kept.
pub async fn status(
    ctx: &Ctx<'_>,
    bucket: &Bucket,
    org: &OrgId,
    export_id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<ExportView, AppError> {
    let job = current(ctx, org, export_id).await?;
    let status = job.status_at(now);
    let download = match job.downloadable_until() {
        Some(until) if until > now => {
            let url =
                bucket.download_url(&job.key, LINK_TTL).await.map_err(|e| AppError::Unavailable(e.to_string()))?;
            Some((url, now + chrono::Duration::from_std(LINK_TTL).unwrap_or_default()))
        }
        _ => None,
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
