//! What the benchmarks share: the local stack's table, and the learners and assignments they seed
//! through the store's own writes.
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    AssigneeType, Assignment, AuditEntry, ContentArea, NewAssignment, OrgId, ResolvedTarget, Role, TargetType, TeamId,
    TrackedUnit, User, UserId,
};
use store::Store;

/// This process's peak resident memory so far (VmHWM), in KiB; 0 where /proc is not there.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// The local stack's table (run with its environment: `source <stack>/stack.env`).
pub async fn store() -> Store {
    let table = std::env::var("TABLE_NAME").expect("run with the local stack's environment (TABLE_NAME)");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    Store::new(aws_sdk_dynamodb::Client::new(&config), table)
}

/// A fresh org id for one benchmark run.
pub fn new_org() -> OrgId {
    OrgId::parse(&format!("bench-{}", uuid::Uuid::new_v4().simple())).expect("a valid org id")
}

/// Learner number `i` of a seeded org.
pub fn learner(id: UserId, i: usize, team: Option<TeamId>, at: DateTime<Utc>) -> User {
    User {
        user_id: id,
        name: format!("Learner {i}"),
        email: format!("learner-{id}@bench.example"),
        role: Role::Learner,
        team_id: team,
        is_active: true,
        updated_at: at,
        facets: Default::default(),
    }
}

/// Mandatory org-wide assignment number `n` of a seeded org (it tracks the 11 SQL injection
/// challenges, whatever its `target_id`).
pub fn org_wide(org: &OrgId, n: usize, target_id: String, deadline: NaiveDate, note: Option<String>) -> Assignment {
    let new = NewAssignment {
        target: domain::Target { content_area: ContentArea::Practice, target_type: TargetType::Topic, target_id },
        assignee: domain::Assignee { assignee_type: AssigneeType::Org, assignee_id: format!("{org}-{n}") },
        deadline,
        due_in_days: None,
        new_starters_only: false,
        recurrence: None,
        is_mandatory: true,
        note,
    };
    let resolved = ResolvedTarget {
        title: format!("Topic {n}"),
        path: format!("Web / Topic {n}"),
        units: vec![TrackedUnit::Topic { topic_id: domain::Slug::parse("sql-injection").unwrap(), challenges: 11 }],
    };
    new.into_assignment(domain::AssignmentId::new_v7(), resolved, "Everyone".into(), "bench".into(), Utc::now())
}

/// The audit entry of a seeded assignment's creation.
pub fn created(a: &Assignment) -> AuditEntry {
    AuditEntry {
        id: uuid::Uuid::now_v7(),
        created_at: a.created_at,
        action: "assignment.created".into(),
        actor_id: "bench".into(),
        actor_email: None,
        actor_role: Role::OrgAdmin,
        target_type: "assignment".into(),
        target_id: a.id.to_string(),
        target_label: "bench".into(),
        metadata: serde_json::json!({}),
        request_id: "bench".into(),
    }
}
