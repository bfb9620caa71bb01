//! Customer webhooks: endpoints an org admin manages ([`endpoints`]), the delivery of each public
//! domain event to every endpoint that subscribes to it ([`dispatch`]), and each attempt on the
//! schedule ([`deliver`]).
//!
//! The design, in short: a delivery is recorded (idempotently, by event and endpoint) before its
//! first attempt; what holds its schedule is the delivery's item (`round`, `step`, `nextAttemptAt`)
//! and one message on the delivery queue per next attempt, delayed up to SQS's 15 minutes and sent on
//! again until the attempt is due — both durable, so a crash or a redeploy loses nothing. Endpoints
//! are isolated from each other by their own pacing in the table: a few send leases each (a slow
//! receiver holds at most those) and a per-second rate; a message that finds its endpoint busy waits
//! its turn on the queue ([`deliver::paced_wait`]), holding no function. The I/O this needs beyond the
//! table comes in through three traits the adapters implement: [`AttemptQueue`], [`Vault`] and [`Post`].

use std::future::Future;

use chrono::Duration;
use domain::OrgId;
use domain::webhook::Attempt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppError;

pub mod deliver;
pub mod dispatch;
pub mod endpoints;

/// One task on the delivery queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "camelCase")]
pub enum Task {
    /// Attempt `step` of `round` of a delivery (when due: early, it is sent on again).
    #[serde(rename_all = "camelCase")]
    Attempt { org_id: OrgId, endpoint_id: Uuid, delivery_id: Uuid, round: u32, step: u32 },
    /// Start a new round of an endpoint's failed deliveries since `since`, a page at a time from
    /// `resume` (a page key's resume point).
    #[serde(rename_all = "camelCase")]
    Recover {
        org_id: OrgId,
        endpoint_id: Uuid,
        since: chrono::DateTime<chrono::Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<serde_json::Value>,
    },
}

impl Task {
    pub fn org(&self) -> &OrgId {
        match self {
            Task::Attempt { org_id, .. } | Task::Recover { org_id, .. } => org_id,
        }
    }
}

/// A task and how long it waits on the queue first.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub task: Task,
    pub delay: Duration,
}

impl Queued {
    pub fn now(task: Task) -> Self {
        Self { task, delay: Duration::zero() }
    }
}

/// The delivery queue: what holds each next attempt until it is due (or its wait's first 15 minutes).
pub trait AttemptQueue: Send + Sync {
    fn send(&self, tasks: &[Queued]) -> impl Future<Output = Result<(), AppError>> + Send;
}

/// Seals and opens the endpoints' signing secrets (KMS, bound to the org and the endpoint). The API
/// function only seals; only the delivery function may open.
pub trait Vault: Send + Sync {
    fn seal(
        &self,
        org: &OrgId,
        endpoint: Uuid,
        secret: &webhooks::Secret,
    ) -> impl Future<Output = Result<String, AppError>> + Send;
    fn open(
        &self,
        org: &OrgId,
        endpoint: Uuid,
        sealed: &str,
    ) -> impl Future<Output = Result<webhooks::Secret, AppError>> + Send;
}

/// Sends one attempt: the signed POST, with its outcome (`webhooks::Sender`, which refuses addresses
/// a delivery may not reach before connecting).
pub trait Post: Send + Sync {
    fn post(&self, url: &str, headers: &[(&str, &str)], body: String) -> impl Future<Output = Attempt> + Send;
}

/// How long a queue message may wait (SQS's longest delay); a longer wait is sent on again.
pub const MAX_QUEUE_DELAY: Duration = Duration::minutes(15);

/// The wait before a task, capped at the queue's longest.
pub fn queue_delay(wait: Duration) -> Duration {
    wait.clamp(Duration::zero(), MAX_QUEUE_DELAY)
}
