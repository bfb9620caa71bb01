//! JSON shapes of the public API (camelCase, v1 field names).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{Assignment, AssignmentSummary, ProgressRow, ProgressSummary, Source, TeamId, User};
use serde::Serialize;
use serde_json::{Value, json};

/// The assignment resource: its summary (what events carry too), the note, who made it and when,
/// the version for `If-Match`, and the progress counters.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentView<'a> {
    #[serde(flatten)]
    summary: AssignmentSummary<'a>,
    note: &'a Option<String>,
    created_at: DateTime<Utc>,
    created_by: &'a str,
    updated_at: DateTime<Utc>,
    version: u64,
    progress: ProgressSummary,
}

pub fn assignment(a: &Assignment, now: DateTime<Utc>) -> Value {
    json!(AssignmentView {
        summary: a.summary(),
        note: &a.note,
        created_at: a.created_at,
        created_by: &a.created_by,
        updated_at: a.updated_at,
        version: a.version,
        progress: a.aggregates.summary(a.item_count, a.deadline, now),
    })
}

/// `source` and, for team assignments, the team's id and current name.
pub fn source(source: &Source, team_names: &HashMap<TeamId, String>) -> (Value, Option<Value>) {
    match source {
        Source::Individual => (json!("individual"), None),
        Source::Organization => (json!("organization"), None),
        Source::Team { team_id } => {
            (json!("team"), Some(json!({"teamId": team_id, "teamName": team_names.get(team_id)})))
        }
    }
}

/// One learner's row in the assignment detail.
pub fn user_progress(
    row: &ProgressRow,
    user: Option<&User>,
    a: &Assignment,
    team_names: &HashMap<TeamId, String>,
    now: DateTime<Utc>,
) -> Value {
    let (source, team) = source(&row.source, team_names);
    let mut view = json!({
        "userId": row.user_id,
        "name": user.map(|u| u.name.as_str()),
        "email": user.map(|u| u.email.as_str()),
        "status": row.status(&a.units, a.item_count, a.deadline, now),
        "completedItems": row.completed_tracked(&a.units),
        "totalItems": a.item_count,
        "progress": row.progress(&a.units, a.item_count),
        "averageScore": row.average_score(&a.units),
        "startedAt": row.started_at,
        "completedAt": row.completed_at,
        "source": source,
        "removedAt": row.removed_at,
    });
    if let (Some(team), Some(obj)) = (team, view.as_object_mut()) {
        obj.insert("teamId".into(), team["teamId"].clone());
        obj.insert("teamName".into(), team["teamName"].clone());
    }
    view
}

/// One item of the learner view: the assignment as the learner sees it, with their own progress.
pub fn learner_assignment(
    a: &Assignment,
    row: &ProgressRow,
    team_names: &HashMap<TeamId, String>,
    now: DateTime<Utc>,
) -> Value {
    let (source, team) = source(&row.source, team_names);
    let mut item = json!({
        "id": a.id,
        "contentArea": a.target.content_area,
        "targetType": a.target.target_type,
        "targetId": a.target.target_id,
        "targetTitle": a.target_title,
        "targetPath": a.target_path,
        "deadline": a.deadline,
        "isMandatory": a.is_mandatory,
        "note": a.note,
        "status": row.status(&a.units, a.item_count, a.deadline, now),
        "progress": row.progress(&a.units, a.item_count),
        "completedItems": row.completed_tracked(&a.units),
        "totalItems": a.item_count,
        "source": source,
    });
    if let Some(team) = team {
        item["teamId"] = team["teamId"].clone();
        item["teamName"] = team["teamName"].clone();
    }
    item
}

/// One audit-log entry.
pub fn audit_entry(e: &domain::AuditEntry) -> Value {
    json!({
        "id": e.id,
        "createdAt": e.created_at,
        "action": e.action,
        "actorId": e.actor_id,
        "actorEmail": e.actor_email,
        "actorRole": e.actor_role,
        "targetType": e.target_type,
        "targetId": e.target_id,
        "targetLabel": e.target_label,
        "metadata": e.metadata,
        "requestId": e.request_id,
    })
}
