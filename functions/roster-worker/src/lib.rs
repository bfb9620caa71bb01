//! The roster worker, on the service's own requests (from the outbox through its queue, one per org at a
//! time: `events::work`):
//! - `assignment.roster_requested` → a roster run: the rows of a large team or org assignment written
//!   (create) or brought in line with the directory (reactivation, the reconcile job), page by page,
//!   then `rosterStatus: complete` (see `service::roster`);
//! - `assignment.compliance_sync_requested` → the next share of a rule change's compliance sync, page by
//!   page, then `complianceSync: synced` (see `service::compliance::sync_share`).

use domain::OrgId;
use domain::event::{ComplianceSyncRequested, Event, ParseError, RosterRequested, WorkRequest};
use serde_json::{Value, json};
use service::compliance::ShareSize;
use service::roster::PAGES_PER_RUN;

/// What this function builds once per container: the table and clock ([`events::Consumer`]) and its
/// own queue (a failed request is brought back sooner).
pub struct Worker {
    pub consumer: events::Consumer,
    pub queue: events::queue::Queue,
}

impl events::entry::Context for Worker {
    async fn from_env() -> Result<Self, events::entry::Error> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Self {
            consumer: events::Consumer::from_env_with(&config)?,
            queue: events::queue::Queue::from_var(&config, events::work::ROSTER_QUEUE_URL_VAR)?,
        })
    }
}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler<Worker> = |worker, event| Box::pin(take(worker, event));

/// The requests of a batch from the queue, each in its org's lane (or one invoked directly).
async fn take(worker: &Worker, event: Value) -> Result<Value, events::ConsumerError> {
    let consumer = &worker.consumer;
    let ctx = consumer.ctx();
    events::work::take(&ctx, domain::Lane::Roster, &worker.queue, event, |request| handle(consumer, request)).await
}

/// Runs the request the event carries; a malformed one is logged and dropped, a storage failure is
/// returned so the queue brings it back (then parks it in its dead-letter queue).
pub async fn handle(consumer: &events::Consumer, event: Value) -> Result<Value, events::ConsumerError> {
    let detail = &event["detail"];
    if event["detail-type"] == ComplianceSyncRequested::DETAIL_TYPE {
        return match WorkRequest::<ComplianceSyncRequested>::of(detail) {
            Ok(WorkRequest { org_id, request }) => sync(consumer, &org_id, request).await,
            Err(reason) => Ok(malformed(&event, "compliance sync", reason)),
        };
    }
    // Any other request is a roster run's (as an operator's, which may name no detail type).
    let (org, request) = match WorkRequest::<RosterRequested>::of(detail) {
        Ok(WorkRequest { org_id, request }) => (org_id, request),
        Err(reason) => return Ok(malformed(&event, "roster", reason)),
    };
    let id = request.assignment_id;
    let from = match service::roster::Position::of(&org, &request.from) {
        Ok(from) => from,
        Err(reason) => {
            tracing::warn!(assignment_id = %id, reason, "dropping a malformed roster request");
            return Ok(json!({"dropped": reason}));
        }
    };
    let ctx = consumer.ctx();
    let built = service::roster::build(&ctx, &org, id, from, PAGES_PER_RUN, Some(request.run));
    match events::consumer::outcome(built.await)? {
        Ok(run) => Ok(json!({"assignmentId": id, "rows": run.rows, "complete": run.complete})),
        Err(reason) => {
            tracing::warn!(assignment_id = %id, reason, "roster request dropped");
            Ok(json!({"dropped": reason}))
        }
    }
}

/// The answer to a request whose detail is not its type's (logged without quoting it).
fn malformed(event: &Value, what: &str, reason: ParseError) -> Value {
    let reason = reason.to_string();
    tracing::warn!(event_id = event["id"].as_str().unwrap_or_default(), what, reason, "dropping a malformed request");
    json!({"dropped": reason})
}

/// The next share of a compliance sync, from where the last one stopped.
async fn sync(
    consumer: &events::Consumer,
    org: &OrgId,
    request: ComplianceSyncRequested,
) -> Result<Value, events::ConsumerError> {
    let id = request.assignment_id;
    let from = match &request.resume {
        None => None,
        Some(point) => match store::PageKey::resume_at(org, point) {
            Ok(key) => Some(key),
            Err(_) => {
                tracing::warn!(assignment_id = %id, "dropping a compliance sync request whose resume point is not the org's");
                return Ok(json!({"dropped": "resume point outside the org"}));
            }
        },
    };
    let ctx = consumer.ctx();
    let now = ctx.now(org);
    let share = service::compliance::sync_share(&ctx, org, id, Some(request.rev), from, ShareSize::WORKER, now);
    match events::consumer::outcome(share.await)? {
        Ok(share) => Ok(json!({"assignmentId": id, "changed": share.changed, "synced": share.done})),
        Err(reason) => {
            tracing::warn!(assignment_id = %id, reason, "compliance sync request dropped");
            Ok(json!({"dropped": reason}))
        }
    }
}
