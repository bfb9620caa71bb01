//! The at-least-once, unordered delivery property (design §9), end to end through the consumers'
//! handler on the real DynamoDB Local: a generated stream of membership and completion events,
//! replayed three times in shuffled order, leaves exactly the rows, statuses and counters of one
//! ordered delivery.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use chrono::{DateTime, Duration, Utc};
use domain::{
    AssigneeType, Assignment, AuditEntry, ContentArea, NewAssignment, OrgId, ResolvedTarget, Role, TargetType,
    TrackedUnit,
};
use events::Consumer;
use serde_json::{Value, json};
use store::Store;
use testkit::shuffled;

async fn consumer() -> Consumer {
    testkit::stack::consumer(None).await
}

fn new_org() -> OrgId {
    testkit::stack::new_org("replay")
}

/// The stream: (minute, detail-type, detail without orgId).
fn stream(users: &[uuid::Uuid], teams: &[uuid::Uuid]) -> Vec<(i64, &'static str, Value)> {
    let created = |m, u: usize, team: Option<usize>| {
        (
            m,
            "user.created",
            json!({"userId": users[u], "name": format!("User {u}"), "email": format!("u{u}@x.example"),
                                   "role": "learner", "teamId": team.map(|t| teams[t])}),
        )
    };
    let member = |m, added: bool, t: usize, u: usize| {
        let kind = if added { "team.member_added" } else { "team.member_removed" };
        (m, kind, json!({"teamId": teams[t], "teamName": format!("Team {t}"), "userId": users[u]}))
    };
    let mut events = vec![
        created(1, 0, Some(0)),
        created(2, 1, Some(0)),
        created(3, 2, Some(0)),
        created(4, 3, Some(1)),
        created(5, 4, None),
        created(6, 5, None),
        member(7, true, 0, 4),
        member(8, false, 0, 0),
        (
            9,
            "user.updated",
            json!({"userId": users[1], "name": "User 1 renamed", "email": "u1@x.example",
                                   "role": "learner", "teamId": teams[1], "previousTeamId": teams[0]}),
        ),
        member(10, true, 0, 0),
        (11, "user.deactivated", json!({"userId": users[2]})),
        member(12, true, 1, 5),
        (13, "team.renamed", json!({"teamId": teams[0], "name": "Team zero"})),
        member(14, false, 1, 3),
        member(15, true, 0, 3),
    ];
    // Completions, some before the learner is in any team's scope (kept for when they join), some
    // after they left, some repeated with another score, all after the assignments were created.
    let mut minute = 1;
    for (u, _) in users.iter().enumerate() {
        for index in 0..11u16 {
            if (index as usize + u).is_multiple_of(4) && u != 1 {
                continue; // everyone but user 1 skips some challenges
            }
            minute = minute % 16 + 1;
            events.push((
                minute,
                "challenge.completed",
                json!({"userId": users[u], "topicId": "sql-injection", "challengeIndex": index,
                       "score": 50 + (index as usize * 7 + u * 3) % 50}),
            ));
        }
        events.push((
            u as i64 + 3,
            "challenge.completed",
            json!({"userId": users[u], "topicId": "sql-injection", "challengeIndex": 0, "score": 99}),
        ));
    }
    // Forty days on, user 1 does everything again: a second cycle on the monthly recertification.
    for index in 0..11u16 {
        events.push((
            40 * 24 * 60 + i64::from(index),
            "challenge.completed",
            json!({"userId": users[1], "topicId": "sql-injection", "challengeIndex": index, "score": 90}),
        ));
    }
    events
}

fn envelope(org: &OrgId, t0: DateTime<Utc>, (minute, detail_type, detail): &(i64, &'static str, Value)) -> Value {
    let at = t0 + Duration::minutes(*minute) + Duration::milliseconds(i64::from(detail_type.len() as u32));
    let mut detail = detail.clone();
    detail["orgId"] = json!(org.as_str());
    let time_field = if detail_type.ends_with(".completed") { "completedAt" } else { "occurredAt" };
    detail[time_field] = json!(at);
    let source = match detail_type.split('.').next() {
        Some("user") => "platform.users",
        Some("team") => "platform.teams",
        _ => "platform.training",
    };
    json!({"id": uuid::Uuid::new_v4(), "source": source, "detail-type": detail_type, "detail": detail})
}

async fn assignments(store: &Store, org: &OrgId, teams: &[uuid::Uuid], t0: DateTime<Utc>) -> Vec<Assignment> {
    let mut out = Vec::new();
    // The fourth dates each learner from the day they joined (relative deadline); the fifth is a
    // monthly recertification.
    let monthly = Some(domain::Recurrence { every_months: 1, window_days: 0 });
    let assignees = [
        (AssigneeType::Team, teams[0].to_string(), None, None, "sql-injection"),
        (AssigneeType::Team, teams[1].to_string(), None, None, "sql-injection"),
        (AssigneeType::Org, org.as_str().to_owned(), None, None, "sql-injection"),
        (AssigneeType::Team, teams[0].to_string(), Some(5), None, "sql-injection-relative"),
        (AssigneeType::Org, org.as_str().to_owned(), None, monthly, "sql-injection-monthly"),
    ];
    for (assignee_type, assignee_id, due_in_days, recurrence, target_id) in assignees {
        let resolved = ResolvedTarget {
            title: "SQL Injection".into(),
            path: "Web / Injection / SQL Injection".into(),
            units: vec![TrackedUnit::Topic { topic_id: domain::Slug::parse("sql-injection").unwrap(), challenges: 11 }],
        };
        let new = NewAssignment {
            target: domain::Target {
                content_area: ContentArea::Practice,
                target_type: TargetType::Topic,
                // Each with its own target id, so none is a duplicate of another.
                target_id: target_id.into(),
            },
            assignee: domain::Assignee { assignee_type, assignee_id },
            deadline: (t0 + Duration::days(30)).date_naive(),
            due_in_days,
            new_starters_only: false,
            recurrence,
            is_mandatory: true,
            note: None,
        };
        let a = new.into_assignment(domain::AssignmentId::new_v7(), resolved, "x".into(), "test".into(), t0);
        let audit = AuditEntry {
            id: uuid::Uuid::now_v7(),
            created_at: t0,
            action: "assignment.created".into(),
            actor_id: "test".into(),
            actor_email: None,
            actor_role: Role::OrgAdmin,
            target_type: "assignment".into(),
            target_id: a.id.to_string(),
            target_label: "x".into(),
            metadata: json!({}),
            request_id: "r".into(),
        };
        out.push(store.create_assignment(org, &a, &audit, &[], &[]).await.unwrap());
    }
    out
}

type RowState = (
    uuid::Uuid,
    domain::RowClass,
    std::collections::BTreeMap<String, domain::CompletedItem>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    Option<chrono::NaiveDate>,
    Vec<domain::Cycle>,
    (Option<chrono::NaiveDate>, bool),
);

async fn state(store: &Store, org: &OrgId, assignments: &[Assignment]) -> Vec<(domain::Aggregates, Vec<RowState>)> {
    let mut out = Vec::new();
    for a in assignments {
        let a = store.get_assignment(org, a.id).await.unwrap().unwrap();
        let mut rows: Vec<RowState> = store
            .progress_page(org, a.id, 500, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|r| {
                let class = r.class(&a.units, a.item_count);
                let due = r.own_due_on();
                let admin = (r.extended_to, r.exemption.is_some());
                let (completed, cycles) = (r.completed, r.cycles);
                (
                    r.user_id.0,
                    class,
                    completed,
                    r.started_at,
                    r.completed_at,
                    r.removed_at,
                    r.membership_at,
                    due,
                    cycles,
                    admin,
                )
            })
            .collect();
        rows.sort_by_key(|r| r.0);
        out.push((a.aggregates, rows));
    }
    out
}

#[tokio::test]
async fn three_shuffled_replays_equal_one_ordered_delivery() {
    let consumer = consumer().await;
    let store = &consumer.store;
    // Its last events come forty days after the first: all of them in the past, as delivered events are.
    let t0 = Utc::now() - Duration::days(42);
    let users: Vec<_> = (0..6).map(|_| uuid::Uuid::new_v4()).collect();
    let teams: Vec<_> = (0..2).map(|_| uuid::Uuid::new_v4()).collect();
    let mut events = stream(&users, &teams);
    events.sort_by_key(|e| e.0);

    let ordered_org = new_org();
    let ordered = assignments(store, &ordered_org, &teams, t0).await;
    for event in &events {
        consumer.handle(envelope(&ordered_org, t0, event)).await.unwrap();
    }

    let replayed_org = new_org();
    let replayed = assignments(store, &replayed_org, &teams, t0).await;
    for seed in [7, 42, 2026] {
        for event in shuffled(&events, seed) {
            consumer.handle(envelope(&replayed_org, t0, &event)).await.unwrap();
        }
    }

    let want = state(store, &ordered_org, &ordered).await;
    let got = state(store, &replayed_org, &replayed).await;
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g.1, w.1, "rows of assignment {i}");
        assert_eq!(g.0, w.0, "counters of assignment {i}");
    }

    // An admin's extension and exemption survive any later replay of the same events.
    for (org, list) in [(&ordered_org, &ordered), (&replayed_org, &replayed)] {
        let org_wide = store.get_assignment(org, list[2].id).await.unwrap().unwrap();
        for (user, exempt) in [(users[3], true), (users[4], false)] {
            let before = store.progress_row(org, org_wide.id, domain::UserId(user)).await.unwrap().unwrap();
            let mut after = before.clone();
            match exempt {
                true => after.exemption = Some(domain::Exemption { reason: "r".into(), at: t0, by: "admin".into() }),
                false => after.extended_to = Some((t0 + Duration::days(60)).date_naive()),
            }
            store
                .apply_progress(
                    org,
                    &org_wide,
                    &before,
                    &after,
                    chrono::Utc::now().date_naive(),
                    &store::announce_nothing,
                )
                .await
                .unwrap();
        }
        for event in shuffled(&events, 99) {
            consumer.handle(envelope(org, t0, &event)).await.unwrap();
        }
    }
    let want = state(store, &ordered_org, &ordered).await;
    let got = state(store, &replayed_org, &replayed).await;
    assert_eq!(got, want, "after the admin's changes and another replay");
    let exempted = want[2].1.iter().find(|r| r.0 == users[3]).unwrap();
    assert_eq!((exempted.1, exempted.9.1), (domain::RowClass::Exempt, true));

    // And the ordered state is what the story says.
    let (team0, team1, org_wide) = (&want[0], &want[1], &want[2]);
    let class_of = |rows: &Vec<RowState>, u: usize| rows.iter().find(|r| r.0 == users[u]).map(|r| r.1);
    use domain::RowClass::{Completed, Exempt, InProgress, Removed};
    assert_eq!(class_of(&team0.1, 0), Some(InProgress), "user 0 left team 0 and came back, progress kept");
    assert_eq!(class_of(&team0.1, 1), Some(Removed), "user 1 moved to team 1");
    assert_eq!(class_of(&team1.1, 1), Some(Completed), "…and finished there");
    assert_eq!(class_of(&team0.1, 2), Some(Removed), "user 2 was deactivated");
    assert_eq!(class_of(&team0.1, 4), Some(InProgress), "user 4 joined with completions made before joining");
    assert_eq!(class_of(&team1.1, 3), Some(Removed));
    assert_eq!(class_of(&team0.1, 3), Some(InProgress), "user 3 moved from team 1 to team 0");
    assert_eq!(class_of(&org_wide.1, 3), Some(Exempt), "user 3 was exempted from the org-wide one");
    assert_eq!(org_wide.0.total_users, 4, "everyone but the deactivated and the exempted user");
    assert_eq!(team0.0.total_users, 3, "users 0, 3 and 4");
    assert_eq!(org_wide.0.completed_users, 1);
    let relative = &want[3];
    assert!(relative.1.iter().filter(|r| r.1 != Removed).all(|r| r.7.is_some()), "every learner has their own date");
    assert_eq!(relative.0.dated.total(), 3, "users 0, 3 and 4 are counted by their own dates");
    let recertified = &want[4].1.iter().find(|r| r.0 == users[1]).unwrap().8;
    assert_eq!(recertified.len(), 2, "user 1 completed the monthly assignment twice: {recertified:?}");
    assert_eq!(recertified[1].average_score, Some(90.0));
}
