//! The workers' requests: `assignment.roster_requested` and `assignment.compliance_sync_requested` for
//! the roster worker, `export.requested` for the export worker (their lanes: [`Lane::of`]). They are
//! the service's requests to itself, committed to the outbox like every event, but the publisher sends
//! them to their worker's queue (`RosterWorkQueue`, `ExportWorkQueue`), not the bus, and one per org
//! at a time ([`service::lanes`]): the others wait in line in the table until the one before ends.
//!
//! A message is the request in EventBridge's shape (`id`, `source`, `detail-type`, `time`, `detail`),
//! which is also what an operator's direct invocation of a worker gives it.

use domain::{DomainEvent, Lane};
use serde_json::{Value, json};
use service::lanes::Admission;
use service::outbound::SOURCE;

use crate::queue::Queue;
use crate::{Consumer, ConsumerError, MissingVariable};

/// The roster worker's queue's environment variable: its URL.
pub const ROSTER_QUEUE_URL_VAR: &str = "ROSTER_WORK_QUEUE_URL";
/// The export worker's queue's environment variable: its URL.
pub const EXPORT_QUEUE_URL_VAR: &str = "EXPORT_WORK_QUEUE_URL";

/// Where the publisher sends the workers' requests: each lane's queue, and the table that keeps the
/// lanes (with its clock: a lane is held until a time).
#[derive(Debug, Clone)]
pub struct WorkQueues {
    pub lanes: Consumer,
    pub roster: Queue,
    pub export: Queue,
}

impl WorkQueues {
    /// The queues the environment names, with clients from `config`, and the lanes of `lanes`' table.
    pub fn from_env_with(config: &aws_config::SdkConfig, lanes: Consumer) -> Result<Self, MissingVariable> {
        Ok(Self {
            lanes,
            roster: Queue::from_var(config, ROSTER_QUEUE_URL_VAR)?,
            export: Queue::from_var(config, EXPORT_QUEUE_URL_VAR)?,
        })
    }

    fn queue(&self, lane: Lane) -> &Queue {
        match lane {
            Lane::Roster => &self.roster,
            Lane::Export => &self.export,
        }
    }

    /// Admits each request to its org's lane and sends the ones that take it to their queue; the rest
    /// wait in line. A request without a readable org is logged and dropped (none is ever written so).
    /// An error leaves the caller to send them all again: admitting is idempotent.
    pub async fn send(&self, requests: &[(Lane, &DomainEvent)]) -> Result<(), ConsumerError> {
        let ctx = self.lanes.ctx();
        for (lane, request) in requests {
            let Some(org) = domain::event::org_of(&request.detail) else {
                tracing::error!(event_id = %request.id, "a work request without its org: dropped");
                continue;
            };
            let admitted = service::lanes::admit(&ctx, &org, *lane, request).await.map_err(retried)?;
            if admitted == Admission::Send {
                self.queue(*lane).send(&[message(request)]).await?;
            }
        }
        Ok(())
    }
}

/// Brings a failed record back after [`RETRY_AFTER`] rather than the queue's visibility timeout; if
/// that fails too, the timeout it is.
async fn retry_soon(queue: &Queue, record: &Value) {
    let Some(receipt) = record["receiptHandle"].as_str() else { return };
    if let Err(error) = queue.retry_in(receipt, RETRY_AFTER).await {
        tracing::warn!(%error, "a failed request's retry not brought forward");
    }
}

/// A lane step that failed is retried whatever failed (the table, or a race lost too often).
fn retried(error: service::AppError) -> ConsumerError {
    match error {
        service::AppError::Store(error) => error.into(),
        other => ConsumerError::Unavailable(other.to_string()),
    }
}

/// A request as its worker gets it: the shape of the EventBridge event it would have been.
pub fn message(request: &DomainEvent) -> Value {
    json!({
        "id": request.id,
        "source": SOURCE,
        "detail-type": request.detail_type,
        "time": request.time,
        "detail": request.detail,
    })
}

/// How soon a failed request comes again: well within the lane's hold of a running request
/// ([`service::lanes::running_hold`]), so it keeps its lane, and within an export's hour.
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// A worker's handler around its request runner `run`: an SQS batch from `queue` (each record one
/// request; the answer names the records that failed, each made visible again after [`RETRY_AFTER`] and
/// parked in the dead-letter queue after five receipts), or one request invoked directly (an operator's
/// run, out of line), whose answer is `run`'s. A request that held its lane hands it on when `run` is
/// done — also when `run` dropped it; a failed one keeps it for its next delivery.
pub async fn take<F, Fut>(
    ctx: &service::Ctx<'_>,
    lane: Lane,
    queue: &Queue,
    event: Value,
    run: F,
) -> Result<Value, ConsumerError>
where
    F: Fn(Value) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ConsumerError>>,
{
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return run(event).await;
    };
    let mut failures = Vec::new();
    for record in records {
        let message_id = record["messageId"].as_str().unwrap_or_default().to_owned();
        let request: Value = match serde_json::from_str(record["body"].as_str().unwrap_or_default()) {
            Ok(request) => request,
            Err(e) => {
                // Never the publisher's: parked for a person to look at after its receipts, not dropped.
                tracing::error!(message_id, error = %e, "not a work request: left to the dead-letter queue");
                retry_soon(queue, record).await;
                failures.push(json!({"itemIdentifier": message_id}));
                continue;
            }
        };
        let org = domain::event::org_of(&request["detail"]);
        let id = request["id"].as_str().and_then(|i| uuid::Uuid::parse_str(i).ok());
        let holder = match (&org, id) {
            (Some(org), Some(id)) => match service::lanes::begin(ctx, org, lane, id).await {
                Ok(holds) => holds.then_some((org, id)),
                Err(error) => {
                    tracing::warn!(message_id, %error, "lane not read: the request comes again");
                    retry_soon(queue, record).await;
                    failures.push(json!({"itemIdentifier": message_id}));
                    continue;
                }
            },
            _ => None,
        };
        let done = match run(request).await {
            Ok(_) => match holder {
                Some((org, id)) => service::lanes::finish(ctx, org, lane, id).await.map_err(retried),
                None => Ok(()),
            },
            Err(error) => Err(error),
        };
        if let Err(error) = done {
            tracing::warn!(message_id, %error, "work request failed: it comes again in a minute");
            retry_soon(queue, record).await;
            failures.push(json!({"itemIdentifier": message_id}));
        }
    }
    Ok(json!({"batchItemFailures": failures}))
}
