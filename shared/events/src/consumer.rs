//! The EventBridge consumers' shared handler: parse, apply, then publish what the change caused.
//!
//! Delivery is at-least-once and unordered; every rule applied here is idempotent and order-safe.
//! Poison events (malformed, invalid ids) are logged with their id and dropped so they never block
//! the rest; storage failures are returned so EventBridge retries and then dead-letters.

use domain::{Completion, TeamChange, UserChange};
use serde_json::{Value, json};
use store::{Store, StoreError};

use crate::membership::reconcile_user;
use crate::outbound::DomainEvent;
use crate::platform::{EventKind, PlatformEvent, parse};
use crate::{Publisher, courses, progress};

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a consumer Lambda builds once: the table and the bus for domain events.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub store: Store,
    pub publisher: Publisher,
}

impl Consumer {
    /// Handles one EventBridge event; returns `{"applied": n}` or `{"dropped": reason}`.
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
        let (applied, events) = self.apply(&parsed).await?;
        // Published only now that the state they announce is committed.
        self.publisher.publish_logged(&events).await;
        tracing::info!(event_id, detail_type, org = %parsed.org, applied, published = events.len(), "event applied");
        Ok(json!({ "applied": applied }))
    }

    /// Applies a parsed event; returns how many rows changed and the domain events to publish.
    pub async fn apply(&self, event: &PlatformEvent) -> Result<(usize, Vec<DomainEvent>), StoreError> {
        let (store, org, at) = (&self.store, &event.org, event.occurred_at);
        // The user, what the event says about them, and the teams it names.
        let (user, change, teams) = match &event.kind {
            EventKind::Completed { user, item, score } => {
                let completion = Completion { item: item.clone(), score: *score, at };
                return progress::apply_completion(store, org, *user, &completion).await;
            }
            EventKind::CustomCourseUpdated { course, name, is_active, items } => {
                return courses::apply_course_update(store, org, *course, name.clone(), *is_active, items.clone(), at)
                    .await;
            }
            EventKind::TeamRenamed { team, name } => {
                store.change_team(org, *team, &TeamChange::Named(name.clone()), at).await?;
                return Ok((0, Vec::new()));
            }
            EventKind::TeamDeleted { team } => {
                store.change_team(org, *team, &TeamChange::Deleted, at).await?;
                return Ok((0, Vec::new()));
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
                    store.change_team(org, *team, &TeamChange::Named(name.clone()), at).await?;
                }
                (*user, UserChange::JoinedTeam(*team), vec![*team])
            }
            EventKind::MemberRemoved { team, team_name, user } => {
                if let Some(name) = team_name {
                    store.change_team(org, *team, &TeamChange::Named(name.clone()), at).await?;
                }
                (*user, UserChange::LeftTeam(*team), vec![*team])
            }
        };
        // The projection first; then the rosters follow the projection as stored (not the event), so
        // a stale event changes nothing and a retry after a partial failure finishes the job.
        let user = store.change_user(org, user, &change, at).await?;
        let reconciled = reconcile_user(store, org, &user, &teams).await?;
        Ok((reconciled.repairs, reconciled.events))
    }
}
