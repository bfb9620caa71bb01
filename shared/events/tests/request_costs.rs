//! How many DynamoDB requests one consumed event costs, counted by the store's request counter
//! (ReturnConsumedCapacity on every call) against DynamoDB Local. Printed for docs/events.md and pinned
//! here so a change that adds round trips shows up in review.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use chrono::{Duration, Utc};
use events::Consumer;
use serde_json::{Value, json};
use store::Capacity;

async fn consumer(capacity: &Capacity) -> Consumer {
    testkit::stack::consumer(Some(capacity)).await
}

fn event(org: &str, source: &str, detail_type: &str, mut detail: Value) -> Value {
    detail["orgId"] = json!(org);
    json!({"id": uuid::Uuid::new_v4(), "source": source, "detail-type": detail_type, "detail": detail})
}

#[tokio::test]
async fn requests_per_membership_and_completion_event() {
    let capacity = Capacity::default();
    let consumer = consumer(&capacity).await;
    let org = format!("costs-{}", uuid::Uuid::new_v4().simple());
    let (team, member, joiner) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let t = |m| Utc::now() - Duration::minutes(30) + Duration::minutes(m);
    let user = |id, m| {
        event(
            &org,
            "platform.users",
            "user.created",
            json!({"userId": id, "name": "N", "email": "n@x.example", "role": "learner", "occurredAt": t(m)}),
        )
    };
    let added = |id, m| {
        event(
            &org,
            "platform.teams",
            "team.member_added",
            json!({"teamId": team, "teamName": "Blue", "userId": id, "occurredAt": t(m)}),
        )
    };
    for e in [user(member, 1), added(member, 2), user(joiner, 3)] {
        consumer.handle(e).await.unwrap();
    }
    // A team assignment and an org-wide one, both tracking sql-injection.
    let org_id = domain::OrgId::parse(&org).unwrap();
    for (kind, id) in [(domain::AssigneeType::Team, team.to_string()), (domain::AssigneeType::Org, org.clone())] {
        let new = domain::NewAssignment {
            target: domain::Target {
                content_area: domain::ContentArea::Practice,
                target_type: domain::TargetType::Topic,
                target_id: "sql-injection".into(),
            },
            assignee: domain::Assignee { assignee_type: kind, assignee_id: id },
            deadline: (Utc::now() + Duration::days(30)).date_naive(),
            due_in_days: None,
            new_starters_only: false,
            recurrence: None,
            is_mandatory: true,
            note: None,
        };
        let resolved = domain::ResolvedTarget {
            title: "SQL Injection".into(),
            path: "p".into(),
            units: vec![domain::TrackedUnit::Topic {
                topic_id: domain::Slug::parse("sql-injection").unwrap(),
                challenges: 11,
            }],
        };
        let a = new.into_assignment(domain::AssignmentId::new_v7(), resolved, "x".into(), "t".into(), t(4));
        let audit = domain::AuditEntry {
            id: uuid::Uuid::now_v7(),
            created_at: t(4),
            action: "assignment.created".into(),
            actor_id: "t".into(),
            actor_email: None,
            actor_role: domain::Role::OrgAdmin,
            target_type: "assignment".into(),
            target_id: a.id.to_string(),
            target_label: "x".into(),
            metadata: json!({}),
            request_id: "r".into(),
        };
        consumer.store.create_assignment(&org_id, &a, &audit, &[], &[]).await.unwrap();
    }

    capacity.reset();
    consumer.handle(added(joiner, 5)).await.unwrap();
    let membership = capacity.requests();

    capacity.reset();
    let done = event(
        &org,
        "platform.training",
        "challenge.completed",
        json!({"userId": joiner, "topicId": "sql-injection", "challengeIndex": 0, "score": 90, "completedAt": t(6)}),
    );
    consumer.handle(done.clone()).await.unwrap();
    let completion = capacity.requests();

    capacity.reset();
    consumer.handle(done).await.unwrap();
    let duplicate = capacity.requests();

    eprintln!(
        "DynamoDB requests: team.member_added (joins the team and the org-wide assignment) = {membership}; \
         challenge.completed (2 tracking assignments) = {completion}; the same completion again = {duplicate}"
    );
    // member_added: team GetItem + PutItem; user GetItem + PutItem; the learner placed in the team
    // (profile GetItem, compliance item GetItem, TransactWriteItems); the user's rows Query (no rows, so no
    // BatchGet); 3 scope Queries (org, user, team); "is the team deleted" GetItem; per joined
    // assignment (2, the org-wide one too: the joiner had no row yet) row GetItem + the learner's
    // compliance BatchGetItem + the profile BatchGetItem for the names in `user_added` + the
    // TransactWriteItems that commits the row with its outbox item; one completion-log Query for the
    // catch-up.
    assert_eq!(membership, 2 + 2 + 3 + 1 + 3 + 1 + 2 * 4 + 1);
    // challenge.completed: log PutItem; rows Query; assignments BatchGet; per tracking assignment:
    // row GetItem + the learner's compliance BatchGetItem + TransactWriteItems.
    assert_eq!(completion, 1 + 1 + 1 + 2 * 3);
    // A duplicate reads the rows and writes nothing but the (idempotent) log entry.
    assert_eq!(duplicate, 1 + 1 + 1 + 2);
}

/// The daily job's requests: a fixed few per org (the index queries, the assignments' batch read)
/// and, per learner owed a notice, its claim (one conditional PutItem) plus a share of the paged index
/// reads and the users' batch reads (100 per request).
#[tokio::test]
async fn requests_per_daily_job_row() {
    let capacity = Capacity::default();
    let consumer = consumer(&capacity).await;
    let ctx = consumer.ctx();
    let today = Utc::now().date_naive();
    let mut requests = Vec::new();
    for learners in [20, 40] {
        let org = testkit::stack::new_org("daily");
        // A relative deadline of 7 days: every learner is due in a week, by their own date.
        let mut a = testkit::fixtures::org_wide(&org, today + Duration::days(7));
        a.due_in_days = Some(7);
        let rows: Vec<_> = (0..learners)
            .map(|_| a.new_row(domain::UserId(uuid::Uuid::new_v4()), domain::Source::Organization, a.created_at))
            .collect();
        consumer
            .store
            .create_assignment(&org, &a, &testkit::fixtures::audit("assignment.created", "a"), &rows, &[])
            .await
            .unwrap();
        capacity.reset();
        let job = service::jobs::OrgJob::first(service::jobs::Job::Reminders, org.clone(), Some(today));
        let budget = service::jobs::Budget::of(std::time::Duration::from_secs(3600));
        let run = service::jobs::run(&ctx, &job, budget).await.unwrap();
        assert_eq!((run.report.count, run.next.is_none()), (learners, true));
        requests.push(capacity.requests());
    }
    let per_row = (requests[1] - requests[0]) as f64 / 20.0;
    eprintln!(
        "daily job DynamoDB requests: 20 learners = {}, 40 learners = {}; per learner = {per_row}",
        requests[0], requests[1]
    );
    // Fixed: the deadline index, the rows' due index, the recertification and expiry indexes, the
    // learners' compliance flips index and the compliance rollups (to compact them; one Query each),
    // the assignments' BatchGetItem, the users' BatchGetItem; per learner: the claim.
    assert_eq!(requests[0], 6 + 1 + 1 + 20);
    assert_eq!(per_row, 1.0);
}
