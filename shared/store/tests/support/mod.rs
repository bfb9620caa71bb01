//! Shared set-up for tests against the real DynamoDB Local started by `infra/test.sh`.
//!
//! Each test works in its own random org, so tests run in parallel on one table without seeing
//! each other's data.
#![allow(dead_code)]

use aws_config::BehaviorVersion;
use chrono::{DateTime, Days, NaiveDate, Utc};
use domain::{
    AssigneeType, Assignment, AssignmentId, AuditEntry, ContentArea, NewAssignment, OrgId, ProgressRow, ResolvedTarget,
    Role, Source, TargetType, TrackedUnit, UserId,
};
use store::{Capacity, Store};

/// The table under test. Fails loudly (never skips) when the local stack is not running.
pub async fn store() -> Store {
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    assert!(
        !table.is_empty() && endpoint.starts_with("http://127.0.0.1"),
        "store tests need DynamoDB Local: run them through infra/test.sh (TABLE_NAME and AWS_ENDPOINT_URL_DYNAMODB unset)"
    );
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    Store::new(aws_sdk_dynamodb::Client::new(&config), table)
}

pub async fn store_with_capacity() -> (Store, Capacity) {
    let capacity = Capacity::default();
    (store().await.with_capacity_tracking(capacity.clone()), capacity)
}

pub fn new_org() -> OrgId {
    OrgId::parse(&format!("test-{}", uuid::Uuid::new_v4().simple())).unwrap()
}

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
        is_mandatory: true,
        note: None,
    }
    .into_assignment(AssignmentId::new_v7(), resolved, "Someone".into(), "user:admin".into(), Utc::now())
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
