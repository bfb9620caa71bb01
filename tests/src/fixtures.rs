//! Assignments, audit entries and rosters built without the API, for tests that write to the store
//! directly.

use chrono::{DateTime, Days, NaiveDate, Utc};
use domain::{
    AssigneeType, Assignment, AssignmentId, AuditEntry, ContentArea, NewAssignment, ProgressRow, ResolvedTarget, Role,
    Source, TargetType, TrackedUnit, UserId,
};

pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

pub fn in_days(days: u64) -> NaiveDate {
    today().checked_add_days(Days::new(days)).unwrap()
}

pub fn sql_injection() -> ResolvedTarget {
    ResolvedTarget {
        title: "SQL Injection".into(),
        path: "OWASP Web Top 10 / A03 Injection / SQL Injection".into(),
        units: vec![TrackedUnit::Topic { topic_id: domain::Slug::parse("sql-injection").unwrap(), challenges: 11 }],
    }
}

/// An assignment of topic `target_id` to the given assignee.
pub fn assignment(assignee_type: AssigneeType, assignee_id: &str, target_id: &str, deadline: NaiveDate) -> Assignment {
    let mut resolved = sql_injection();
    if let [TrackedUnit::Topic { topic_id, .. }] = resolved.units.as_mut_slice() {
        *topic_id = domain::Slug::parse(target_id).unwrap();
    }
    NewAssignment {
        target: domain::Target {
            content_area: ContentArea::Practice,
            target_type: TargetType::Topic,
            target_id: target_id.into(),
        },
        assignee: domain::Assignee { assignee_type, assignee_id: assignee_id.into() },
        deadline,
        due_in_days: None,
        new_starters_only: false,
        recurrence: None,
        is_mandatory: true,
        note: None,
    }
    .into_assignment(AssignmentId::new_v7(), resolved, "Someone".into(), "user:admin".into(), Utc::now())
}

/// An org-wide assignment of the SQL Injection topic.
pub fn org_wide(org: &domain::OrgId, deadline: NaiveDate) -> Assignment {
    assignment(AssigneeType::Org, org.as_str(), "sql-injection", deadline)
}

pub fn audit(action: &str, target_id: &str) -> AuditEntry {
    audit_at(action, target_id, Utc::now())
}

pub fn audit_at(action: &str, target_id: &str, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        id: uuid::Uuid::now_v7(),
        created_at: at,
        action: action.into(),
        actor_id: "user:admin".into(),
        actor_email: Some("admin@example.com".into()),
        actor_role: Role::OrgAdmin,
        target_type: "assignment".into(),
        target_id: target_id.into(),
        target_label: "SQL Injection".into(),
        metadata: serde_json::json!({"after": {"isActive": true}}),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

pub fn roster(assignment: &Assignment, users: usize) -> Vec<ProgressRow> {
    (0..users)
        .map(|_| ProgressRow::new(assignment.id, UserId(uuid::Uuid::new_v4()), Source::Organization, Utc::now()))
        .collect()
}

/// A running export job of `org` requested at `at` (a fresh id).
pub fn running_export(org: &domain::OrgId, at: DateTime<Utc>) -> domain::ExportJob {
    let export_id = uuid::Uuid::now_v7();
    domain::ExportJob {
        export_id,
        kind: "progress".into(),
        status: domain::ExportStatus::Running,
        key: format!("exports/{}/{export_id}-progress.csv", org.as_str()),
        created_at: at,
        completed_at: None,
        row_count: None,
        bytes: None,
        failure: None,
        attempts: 0,
        actor_id: "key-test".into(),
        actor_email: None,
        actor_role: domain::Role::ApiKey,
        request_id: "request-test".into(),
    }
}
