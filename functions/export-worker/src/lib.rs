//! `export.requested` (the service's own request, from the outbox through its queue, one per org at a
//! time: `events::work`) → the CSV audit pack
//! written to S3, the job marked ready with its audit entry and `export.ready` (see `service::export`).
//! Off the request path, so an export of any size has the function's whole timeout.

use domain::event::{ExportRequested, WorkRequest};
use exports::Bucket;
use serde_json::{Value, json};
use service::Ctx;
use store::Store;

/// What this function builds once per container: the table and the export bucket.
pub struct Worker {
    pub store: Store,
    pub bucket: Bucket,
    /// What time it is (the system\'s, deployed; see `service::clock`).
    pub clock: std::sync::Arc<dyn service::Clock>,
    /// The worker's own queue: a failed request is brought back sooner.
    pub queue: events::queue::Queue,
}

impl events::entry::Context for Worker {
    async fn from_env() -> Result<Self, events::entry::Error> {
        let table = std::env::var("TABLE_NAME").map_err(|_| "environment variable TABLE_NAME is not set")?;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Self {
            store: Store::new(aws_sdk_dynamodb::Client::new(&config), table),
            bucket: Bucket::from_env(&config)?,
            clock: std::sync::Arc::new(service::SystemClock),
            queue: events::queue::Queue::from_var(&config, events::work::EXPORT_QUEUE_URL_VAR)?,
        })
    }
}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler<Worker> = |worker, event| Box::pin(take(worker, event));

/// The requests of a batch from the queue, each in its org's lane (or one invoked directly).
async fn take(worker: &Worker, event: Value) -> Result<Value, events::ConsumerError> {
    let ctx = Ctx::new(&worker.store, worker.clock.as_ref());
    events::work::take(&ctx, domain::Lane::Export, &worker.queue, event, |request| handle(worker, request)).await
}

/// Runs the export the event names; a malformed event is logged and dropped, a storage failure is
/// returned so the queue brings it back (then parks it in its dead-letter queue).
pub async fn handle(worker: &Worker, event: Value) -> Result<Value, events::ConsumerError> {
    let (org, export_id) = match WorkRequest::<ExportRequested>::of(&event["detail"]) {
        Ok(WorkRequest { org_id, request }) => (org_id, request.export_id),
        Err(reason) => {
            let reason = reason.to_string();
            tracing::warn!(
                event_id = event["id"].as_str().unwrap_or_default(),
                reason,
                "dropping a malformed export request"
            );
            return Ok(json!({"dropped": reason}));
        }
    };
    let ctx = Ctx::new(&worker.store, worker.clock.as_ref());
    match events::consumer::outcome(service::export::run(&ctx, &worker.bucket, &org, export_id).await)? {
        Ok(job) => Ok(json!({"exportId": export_id, "status": job.status.as_str()})),
        Err(reason) => {
            tracing::warn!(%export_id, reason, "export request dropped");
            Ok(json!({"dropped": reason}))
        }
    }
}
