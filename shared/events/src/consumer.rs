//! The EventBridge consumers' shared handler: parse, then run the use case the event calls for
//! (whose own events commit with its changes, in the table's outbox).
//!
//! Delivery is at-least-once and unordered; every use case applied here is idempotent and order-safe.
//! Poison events (malformed, invalid ids, or refused by the use case) are logged with their id and
//! dropped so they never block the rest; events dated more than five minutes ahead of the clock change
//! nothing and are parked (`ParkedEventsQueue`); storage failures are returned so EventBridge retries
//! and then dead-letters.

use domain::{Completion, TeamChange, UserChange};
use serde_json::{Value, json};
use std::sync::Arc;

use service::{AppError, Applied, Clock, Ctx, SystemClock, courses, membership, progress};
use store::Store;

use crate::error::ConsumerError;
use crate::platform::{EventKind, PlatformEvent, ahead_of, parse};
use crate::queue::Queue;

/// The one mapping of a use case's outcome to a consumer's: storage failures are retried, anything
/// else the use case refuses is poison (`Ok(Err(reason))`: logged and dropped).
pub fn outcome<T>(result: Result<T, AppError>) -> Result<Result<T, String>, ConsumerError> {
    match result {
        Ok(done) => Ok(Ok(done)),
        Err(AppError::Store(err)) => Err(err.into()),
        Err(AppError::Unavailable(reason)) => Err(ConsumerError::Unavailable(reason)),
        Err(refused) => Ok(Err(refused.to_string())),
    }
}

/// What an event-driven Lambda builds once: the table, and the clock its use cases read. (Domain
/// events leave through the outbox: only the outbox publisher builds a client for the bus, see
/// [`crate::Publisher::from_env`].)
#[derive(Debug, Clone)]
pub struct Consumer {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

impl Consumer {
    /// A consumer of `store` on the system's clock (what a deployed function runs).
    pub fn new(store: Store) -> Self {
        Self { store, clock: Arc::new(SystemClock) }
    }

    /// The use cases' context: this consumer's table and clock.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::new(&self.store, self.clock.as_ref())
    }

    /// Handles one EventBridge event; returns `{"applied": n}`, `{"dropped": reason}`, or `{"parked":
    /// reason}` for an event dated ahead of the clock, which changed nothing.
    pub async fn handle(&self, event: Value) -> Result<Value, ConsumerError> {
        // Envelope fields only, bounded: a poison event is logged without anything from its detail.
        let field = |name: &str| {
            event.get(name).and_then(Value::as_str).unwrap_or_default().chars().take(64).collect::<String>()
        };
        let (event_id, detail_type) = (field("id"), field("detail-type"));
        let parsed = match parse(&event) {
            Ok(parsed) => parsed,
            Err(reason) => {
                tracing::warn!(event_id, detail_type, reason, "dropping malformed event");
                return Ok(json!({ "dropped": reason }));
            }
        };
        // Dated ahead of this consumer's clock: applied, it would make every real change after it look
        // older. Nothing changes; the platform consumers park it (`PlatformConsumer`).
        if let Some(reason) = ahead_of(&parsed, self.ctx().now(&parsed.org)) {
            tracing::warn!(event_id, detail_type, org = %parsed.org, reason, "holding back an event dated ahead of the clock");
            return Ok(json!({ "parked": reason }));
        }
        let applied = match outcome(self.apply(&parsed).await)? {
            Ok(applied) => applied,
            Err(reason) => {
                tracing::warn!(event_id, detail_type, org = %parsed.org, reason, "dropping refused event");
                return Ok(json!({ "dropped": reason }));
            }
        };
        tracing::info!(event_id, detail_type, org = %parsed.org, applied = applied.rows, "event applied");
        Ok(json!({ "applied": applied.rows }))
    }

    /// Runs the use case a parsed event calls for.
    pub async fn apply(&self, event: &PlatformEvent) -> Result<Applied, AppError> {
        let (ctx, org, at) = (&self.ctx(), &event.org, event.occurred_at);
        // The user, what the event says about them, and the teams it names.
        let (user, change, teams) = match &event.kind {
            EventKind::Completed { user, item, score } => {
                let completion = Completion { item: item.clone(), score: *score, at };
                return progress::apply_completion(ctx, org, *user, &completion).await;
            }
            EventKind::CustomCourseUpdated { course, name, is_active, items } => {
                return courses::apply_course_update(ctx, org, *course, name.clone(), *is_active, items.clone(), at)
                    .await;
            }
            EventKind::TeamRenamed { team, name } => {
                return membership::team_changed(ctx, org, *team, &TeamChange::Named(name.clone()), at).await;
            }
            EventKind::TeamDeleted { team } => {
                return membership::team_changed(ctx, org, *team, &TeamChange::Deleted, at).await;
            }
            EventKind::UserCreated { user, name, email, role, team } => {
                let snapshot = UserChange::Snapshot {
                    name: name.clone(),
                    email: email.clone(),
                    role: *role,
                    team_id: *team,
                    active: Some(true),
                };
                (*user, snapshot, team.iter().copied().collect())
            }
            EventKind::UserUpdated { user, name, email, role, team, previous_team } => {
                let snapshot = UserChange::Snapshot {
                    name: name.clone(),
                    email: email.clone(),
                    role: *role,
                    team_id: *team,
                    active: None,
                };
                (*user, snapshot, team.iter().chain(previous_team).copied().collect())
            }
            EventKind::UserDeactivated { user } => (*user, UserChange::Deactivated, Vec::new()),
            EventKind::MemberAdded { team, team_name, user } => {
                if let Some(name) = team_name {
                    membership::team_changed(ctx, org, *team, &TeamChange::Named(name.clone()), at).await?;
                }
                (*user, UserChange::JoinedTeam(*team), vec![*team])
            }
            EventKind::MemberRemoved { team, team_name, user } => {
                if let Some(name) = team_name {
                    membership::team_changed(ctx, org, *team, &TeamChange::Named(name.clone()), at).await?;
                }
                (*user, UserChange::LeftTeam(*team), vec![*team])
            }
        };
        membership::user_changed(ctx, org, user, &change, &teams, at).await
    }
}

/// The queue's environment variable where the platform consumers park events they cannot apply yet.
pub const PARKED_QUEUE_URL_VAR: &str = "PARKED_EVENTS_QUEUE_URL";

/// The platform-event consumers' context: the [`Consumer`], and the queue (`ParkedEventsQueue`) an
/// event is parked in, whole and with its reason, when it changed nothing because it is dated ahead of
/// the clock — kept, not dropped: an event from a producer whose clock was off can be sent again
/// (docs/events.md, "Parked events").
#[derive(Debug, Clone)]
pub struct PlatformConsumer {
    pub consumer: Consumer,
    pub parked: Queue,
}

impl PlatformConsumer {
    /// [`Consumer::handle`], then an event held back goes to the parked queue (a queue that refuses
    /// fails the invocation, which is retried: nothing was applied).
    pub async fn handle(&self, event: Value) -> Result<Value, ConsumerError> {
        let outcome = self.consumer.handle(event.clone()).await?;
        if let Some(reason) = outcome.get("parked") {
            self.parked.send(&[json!({"reason": reason, "event": event})]).await?;
        }
        Ok(outcome)
    }
}
