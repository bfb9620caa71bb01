//! An uploaded SARIF log (the uploads bucket's `Object Created` event, through EventBridge) → the same ingestion as
//! `POST /sarif` (`service::sarif`), recorded on its upload for `GET /sarif/uploads/{uploadId}`.
//!
//! The org comes from the object's key, which the service chose when it presigned the upload for the
//! caller's org; the upload item in that org says which commit, who asked and the log's declared size.
//! The log is ingested as its uploader, so only while they still may (`service::sarif::uploader_may_ingest`)
//! and only at the size they declared. A redelivered notification finds the upload no longer pending
//! and does nothing.

use domain::{SarifUpload, UploadStatus};
use sarif_intake::{IntakeError, UploadBucket};
use serde_json::{Value, json};
use service::{Actor, AppError, Ctx};
use store::Store;

/// What this function builds once per container: the table and the uploads bucket.
pub struct Worker {
    pub store: Store,
    pub bucket: UploadBucket,
    /// What time it is (the system\'s, deployed; see `service::clock`).
    pub clock: std::sync::Arc<dyn service::Clock>,
}

impl events::entry::Context for Worker {
    async fn from_env() -> Result<Self, events::entry::Error> {
        let table = std::env::var("TABLE_NAME").map_err(|_| "environment variable TABLE_NAME is not set")?;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Self {
            store: Store::new(aws_sdk_dynamodb::Client::new(&config), table),
            bucket: UploadBucket::from_env(&config)?,
            clock: std::sync::Arc::new(service::SystemClock),
        })
    }
}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler<Worker> = |worker, event| Box::pin(handle(worker, event));

/// Ingests the object an `Object Created` event names. A storage failure (or the same commit being
/// ingested right now) is returned so that the rule retries the event; a log that cannot be ingested
/// fails its upload with the reason, and nothing is created. Another bucket's object is ignored (the
/// rule names the bucket; an event sent by hand may not).
pub async fn handle(worker: &Worker, event: Value) -> Result<Value, events::ConsumerError> {
    let detail = &event["detail"];
    let (bucket, key) = (detail["bucket"]["name"].as_str(), detail["object"]["key"].as_str());
    match (bucket, key) {
        (Some(bucket), Some(key)) if bucket == worker.bucket.name() => ingest_object(worker, key).await,
        _ => Ok(json!({"skipped": "not an object of the uploads bucket"})),
    }
}

async fn ingest_object(worker: &Worker, key: &str) -> Result<Value, events::ConsumerError> {
    // Our keys need no URL-encoding, so a key that is ours reads the same either way.
    let Some((org, upload_id)) = sarif_intake::parse_upload_key(key) else {
        tracing::warn!(key, "ignoring an object that is not a SARIF upload");
        return Ok(json!({"key": key, "skipped": "not an upload's key"}));
    };
    let Some(mut upload) = worker.store.sarif_upload(&org, upload_id).await? else {
        tracing::warn!(key, "ignoring an object whose upload is unknown or expired");
        return Ok(json!({"key": key, "skipped": "unknown upload"}));
    };
    if upload.status != UploadStatus::Pending {
        return Ok(json!({"key": key, "skipped": "already ingested"}));
    }
    let findings = match worker.bucket.read(key, upload.bytes).await.and_then(|bytes| sarif_intake::read_upload(&bytes))
    {
        Ok(findings) => findings,
        Err(IntakeError::Storage(e)) => return Err(events::ConsumerError::Unavailable(e)),
        Err(refused) => return fail(worker, &org, upload, refused.to_string()).await,
    };
    let actor = Actor {
        id: upload.actor_id.clone(),
        email: upload.actor_email.clone(),
        role: upload.actor_role,
        request_id: format!("sarif-upload:{upload_id}"),
        now: worker.clock.now(&org),
    };
    let ctx = Ctx::new(&worker.store, worker.clock.as_ref());
    // Right before the ingestion, after the log was read (which may take minutes): a revocation or
    // demotion meanwhile counts.
    match service::sarif::uploader_may_ingest(&ctx, &org, &upload, actor.now).await {
        Ok(Ok(())) => {}
        Ok(Err(refused)) => return fail(worker, &org, upload, refused).await,
        Err(AppError::Store(error)) => return Err(error.into()),
        Err(other) => return Err(events::ConsumerError::Unavailable(other.to_string())),
    }
    // Audit entries show a new assignment as the API does.
    let view = |a: &domain::Assignment| json!(api::views::assignment(a, actor.now));
    match service::sarif::ingest(&ctx, &org, &upload.scan, &findings, &actor, &view).await {
        Ok(ingested) => {
            let ingestion = service::sarif::to_json(&ingested.ingestion)
                .map_err(|e| events::ConsumerError::Unavailable(format!("the ingestion could not be recorded: {e}")))?;
            upload.status = UploadStatus::Ingested;
            upload.outcome = Some(ingestion.to_string());
            worker.store.finish_sarif_upload(&org, &upload).await?;
            Ok(json!({"key": key, "ingestionId": ingested.ingestion.ingestion_id, "replayed": ingested.replayed}))
        }
        Err(AppError::IngestionInProgress) => {
            Err(events::ConsumerError::Unavailable("the same commit is being ingested".into()))
        }
        Err(err) => match events::consumer::outcome::<()>(Err(err))? {
            Ok(()) => Ok(json!({"key": key})),
            Err(refused) => fail(worker, &org, upload, refused).await,
        },
    }
}

async fn fail(
    worker: &Worker,
    org: &domain::OrgId,
    mut upload: SarifUpload,
    reason: String,
) -> Result<Value, events::ConsumerError> {
    tracing::warn!(upload_id = %upload.upload_id, reason, "SARIF upload refused");
    upload.status = UploadStatus::Failed;
    upload.failure = Some(reason.clone());
    worker.store.finish_sarif_upload(org, &upload).await?;
    Ok(json!({"uploadId": upload.upload_id, "failed": reason}))
}
