//! Consumer of `platform.training` `challenge.completed` and `scenario.completed` (EventBridge).
//!
//! Marks the item done on every active assignment of the user that tracks it and was created at or
//! before the completion, moving each assignment's counters in the same transaction as the row.
//! Delivery is at-least-once and unordered: applying an event is idempotent and order-free (best score,
//! first completion time). Malformed events are logged with their id and dropped so they do not block
//! the rest; storage failures are returned as errors so EventBridge retries and then dead-letters.

use chrono::{DateTime, Utc};
use domain::{OrgId, Slug, TrackedItem, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChallengeCompleted {
    org_id: String,
    user_id: String,
    topic_id: String,
    challenge_index: u16,
    #[serde(default)]
    score: Option<f64>,
    completed_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScenarioCompleted {
    org_id: String,
    user_id: String,
    scenario_id: String,
    #[serde(default)]
    score: Option<f64>,
    completed_at: DateTime<Utc>,
}

/// A completion, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub org: OrgId,
    pub user: UserId,
    pub item: TrackedItem,
    pub score: Option<f64>,
    pub at: DateTime<Utc>,
}

/// Parses an EventBridge envelope; `Err` names what is wrong (a poison event).
pub fn parse(event: &Value) -> Result<Completion, String> {
    let detail = event.get("detail").cloned().ok_or("no detail")?;
    let (org, user, item, score, at) = match event.get("detail-type").and_then(Value::as_str) {
        Some("challenge.completed") => {
            let d: ChallengeCompleted = serde_json::from_value(detail).map_err(|e| e.to_string())?;
            let topic_id = Slug::parse(&d.topic_id).map_err(|e| format!("topicId {e}"))?;
            (
                d.org_id,
                d.user_id,
                TrackedItem::Challenge { topic_id, index: d.challenge_index },
                d.score,
                d.completed_at,
            )
        }
        Some("scenario.completed") => {
            let d: ScenarioCompleted = serde_json::from_value(detail).map_err(|e| e.to_string())?;
            let scenario_id = Slug::parse(&d.scenario_id).map_err(|e| format!("scenarioId {e}"))?;
            (d.org_id, d.user_id, TrackedItem::Scenario { scenario_id }, d.score, d.completed_at)
        }
        other => return Err(format!("unexpected detail-type {other:?}")),
    };
    if score.is_some_and(|s| !s.is_finite()) {
        return Err("score must be a finite number".into());
    }
    Ok(Completion {
        org: OrgId::parse(&org).map_err(|e| format!("orgId {e}"))?,
        user: UserId::parse(&user).map_err(|e| format!("userId {e}"))?,
        item,
        score,
        at,
    })
}

/// Handles one EventBridge event; returns `{"applied": n}` or `{"dropped": reason}`.
pub async fn handle(store: &Store, event: Value) -> Result<Value, ConsumerError> {
    let event_id = event.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
    let completion = match parse(&event) {
        Ok(c) => c,
        Err(reason) => {
            tracing::warn!(event_id, reason, "dropping malformed completion event");
            return Ok(json!({ "dropped": reason }));
        }
    };
    let applied = apply(store, &completion).await?;
    tracing::info!(event_id, org = %completion.org, user = %completion.user, item = %completion.item, applied, "completion applied");
    Ok(json!({ "applied": applied }))
}

/// Applies a completion to every active assignment of the user that tracks the item. Returns how many
/// rows changed (0 for a duplicate).
pub async fn apply(store: &Store, c: &Completion) -> Result<usize, StoreError> {
    let rows = store.user_progress_rows(&c.org, c.user).await?;
    // Removed rows included: their progress is kept (and counts again if the learner returns).
    let ids: Vec<_> = rows.iter().map(|r| r.assignment_id).collect();
    let assignments = store.get_assignments(&c.org, &ids).await?;
    let mut applied = 0;
    for assignment in
        assignments.iter().filter(|a| a.is_active && a.created_at <= c.at && domain::catalog::tracks(&a.units, &c.item))
    {
        if store.record_completion(&c.org, assignment, c.user, &c.item, c.score, c.at).await?.is_some() {
            applied += 1;
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(detail_type: &str, detail: Value) -> Value {
        json!({"id": "e1", "source": "platform.training", "detail-type": detail_type, "detail": detail})
    }

    #[test]
    fn parses_both_completion_kinds() {
        let user = uuid::Uuid::new_v4();
        let c = parse(&envelope(
            "challenge.completed",
            json!({"orgId": "acme", "userId": user, "topicId": "sql-injection", "challengeIndex": 3, "score": 92.5,
                   "completedAt": "2026-03-01T10:00:00Z"}),
        ))
        .unwrap();
        assert_eq!(c.item.key(), "c:sql-injection:3");
        assert_eq!(c.score, Some(92.5));
        let s = parse(&envelope(
            "scenario.completed",
            json!({"orgId": "acme", "userId": user, "scenarioId": "idor", "completedAt": "2026-03-01T10:00:00Z"}),
        ))
        .unwrap();
        assert_eq!((s.item.key(), s.score), ("s:idor".to_owned(), None));
    }

    #[test]
    fn poison_events_are_named_not_panicked_on() {
        let user = uuid::Uuid::new_v4();
        for bad in [
            json!({"detail-type": "challenge.completed"}),
            envelope("challenge.completed", json!({"orgId": "acme"})),
            envelope(
                "challenge.completed",
                json!({"orgId": "a#b", "userId": user, "topicId": "x", "challengeIndex": 1, "completedAt": "2026-03-01T10:00:00Z"}),
            ),
            envelope(
                "challenge.completed",
                json!({"orgId": "acme", "userId": "bob", "topicId": "x", "challengeIndex": 1, "completedAt": "2026-03-01T10:00:00Z"}),
            ),
            envelope(
                "scenario.completed",
                json!({"orgId": "acme", "userId": user, "scenarioId": "Bad Slug", "completedAt": "2026-03-01T10:00:00Z"}),
            ),
            envelope("user.created", json!({})),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
