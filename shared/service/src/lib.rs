//! The application layer: one module per use case, each a plain `async fn(&Ctx, …) -> Result<_, AppError>`
//! that the HTTP routes (`api`), the platform-event consumers and the scheduled jobs (`events`) call.
//!
//! - [`create`]: preview (`dryRun`) and create, roster rows in the same transactions;
//! - [`patch`]: change, deactivate, reactivate (the roster catches up on reactivation);
//! - [`reach`]: what a target is and whom an assignee reaches now; [`roster`]: roster runs (the
//!   roster worker's), which write large rosters off the request path;
//! - [`membership`]: rosters follow the directory (joins, leaves, reconcile);
//! - [`progress`], [`courses`]: completions and custom-course changes reach every row that tracks them;
//! - [`reads`]: what the detail and the learner view show, with the names they display;
//! - [`compliance`]: who is compliant with mandatory training (org, teams, learners), `compliance.changed`;
//! - `export` (feature `export`, the export function's only): CSV audit packs to S3, audit-logged and
//!   announced;
//! - [`sarif`]: code-scanning results become individual assignments for the commit's author;
//! - [`webhooks`]: customers' endpoints, and each public event delivered to them, signed, on a
//!   durable retry schedule;
//! - [`jobs`]: the scheduled jobs: the daily reminders and the hourly reconcile;
//! - [`lanes`]: the roster and export workers fair across orgs (one request of an org at a time);
//! - [`outbound`]: the domain events the use cases announce; each commits in the transaction of the
//!   change it announces (the store's outbox item), and the `outbox-publisher` sends it from the
//!   table's stream.
//!
//! Rules without I/O live in `domain`; the table in `store`. [`AppError`] is mapped to HTTP problems
//! once (in `api`) and to retry-or-drop once (in `events`).

use chrono::{DateTime, NaiveDate, Utc};
use domain::{AuditEntry, OrgId, Role};
use store::Store;

pub mod clock;
pub mod compliance;
pub mod courses;
pub mod create;
mod error;
#[cfg(feature = "export")]
pub mod export;
pub mod jobs;
pub mod lanes;
pub mod learners;
pub mod membership;
pub mod outbound;
pub mod patch;
pub mod progress;
pub mod reach;
pub mod reads;
pub mod roster;
pub mod sarif;
pub mod webhooks;

pub use clock::{Clock, SystemClock};
pub use error::AppError;
pub use outbound::DomainEvent;

/// What a use case runs against: the table (its events go out through the table's outbox) and the
/// clock it reads the time from.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub clock: &'a dyn Clock,
}

impl<'a> Ctx<'a> {
    pub fn new(store: &'a Store, clock: &'a dyn Clock) -> Self {
        Self { store, clock }
    }

    /// The time now in `org`.
    pub fn now(&self, org: &OrgId) -> DateTime<Utc> {
        self.clock.now(org)
    }

    /// The date today in `org` (UTC).
    pub fn today(&self, org: &OrgId) -> NaiveDate {
        self.now(org).date_naive()
    }
}

/// Who makes a change, for its audit entry: the verified principal of the request, its id and time.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub email: Option<String>,
    pub role: Role,
    pub request_id: String,
    pub now: DateTime<Utc>,
}

impl Actor {
    /// The audit entry of a change this actor makes. `target` is (type, id, label), e.g.
    /// `("assignment", id, title)`.
    pub fn audit(&self, action: &str, target: (&str, String, String), metadata: serde_json::Value) -> AuditEntry {
        let (target_type, target_id, target_label) = target;
        AuditEntry {
            id: uuid::Uuid::now_v7(),
            created_at: self.now,
            action: action.to_owned(),
            actor_id: self.id.clone(),
            actor_email: self.email.clone(),
            actor_role: self.role,
            target_type: target_type.to_owned(),
            target_id,
            target_label,
            metadata,
            request_id: self.request_id.clone(),
        }
    }
}

/// What an event-driven use case changed: rows written (their events committed with them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub rows: usize,
}
