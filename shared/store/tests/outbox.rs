//! The outbox item commits in the transaction of the change it announces, with exactly the events the
//! caller's announcer gives for what is committed — also where a transaction is full.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::sync::Mutex;

use chrono::Utc;
use domain::{DomainEvent, OrgId, User};
use serde_json::json;
use store::{Store, Written};
use testkit::fixtures::*;
use testkit::stack::{outbox_item, store_and_org};

fn event(org: &OrgId, detail_type: &str, n: usize) -> DomainEvent {
    let id = uuid::Uuid::now_v7();
    DomainEvent {
        id,
        detail_type: detail_type.into(),
        detail: json!({"eventId": id, "orgId": org.as_str(), "n": n}),
        time: Utc::now(),
    }
}

#[tokio::test]
async fn a_new_assignment_with_a_full_first_transaction_commits_its_event_with_it() {
    let (store, org) = store_and_org().await;
    let mut a = org_wide(&org, in_days(30));
    a.is_mandatory = false; // not obliging: the first transaction takes as many rows as it can
    let rows = roster(&a, store::ROSTER_ROWS_PER_TRANSACTION + 150);
    let created = event(&org, "assignment.created", 0);
    store
        .create_assignment(&org, &a, &audit("assignment.created", "full"), &rows, std::slice::from_ref(&created))
        .await
        .unwrap();
    assert_eq!(store.get_assignment(&org, a.id).await.unwrap().unwrap().aggregates.total_users, rows.len() as i64);
    assert_eq!(outbox_item(&org, created.id).await, Some(vec![created]));
}

/// Remembers what the announcer gave last (the store asks once without names, once with them).
struct Recording {
    org: OrgId,
    last: Mutex<Vec<DomainEvent>>,
    names: Mutex<Vec<Option<String>>>,
}

impl Recording {
    fn announce(&self, written: &Written<'_>, profile: Option<&User>) -> Vec<DomainEvent> {
        let events = match written {
            Written::Row(change) if change.completed_now() => vec![event(&self.org, "assignment.completed", 1)],
            Written::Added { row, .. } if row.removed_at.is_none() => {
                vec![event(&self.org, "assignment.user_added", 2)]
            }
            _ => Vec::new(),
        };
        *self.last.lock().unwrap() = events.clone();
        self.names.lock().unwrap().push(profile.map(|p| p.name.clone()));
        events
    }
}

async fn assignment_without_learners(store: &Store, org: &OrgId) -> domain::Assignment {
    let mut a = org_wide(org, in_days(30));
    a.is_mandatory = false;
    store.create_assignment(org, &a, &audit("assignment.created", "x"), &[], &[]).await.unwrap();
    a
}

fn challenge(topic: &str, index: u16) -> domain::TrackedItem {
    domain::TrackedItem::parse_key(&format!("c:{topic}:{index}")).unwrap()
}

#[tokio::test]
async fn a_join_and_a_completion_commit_their_events_with_the_row_and_nothing_else_does() {
    let (store, org) = store_and_org().await;
    let a = assignment_without_learners(&store, &org).await;
    let user = domain::UserId(uuid::Uuid::new_v4());
    let recording = Recording { org: org.clone(), last: Mutex::new(Vec::new()), names: Mutex::new(Vec::new()) };
    let announce = |w: &Written<'_>, p: Option<&User>| recording.announce(w, p);
    let at = Utc::now();

    let joined = store
        .set_membership(
            &org,
            &a,
            user,
            domain::Source::Organization,
            true,
            at,
            at,
            chrono::Utc::now().date_naive(),
            &announce,
        )
        .await
        .unwrap();
    assert!(joined.created());
    let added = recording.last.lock().unwrap().clone();
    assert_eq!(added.len(), 1);
    assert_eq!(outbox_item(&org, added[0].id).await, Some(added));

    // An item the assignment does not track changes no row: no transaction, no event.
    let untracked = [domain::Completion { item: challenge("xss", 0), score: None, at: Utc::now() }];
    assert!(
        store
            .record_completions(&org, &a, user, &untracked, chrono::Utc::now().date_naive(), &announce)
            .await
            .unwrap()
            .is_none()
    );

    // Every challenge but the last: rows change, nothing is announced (no outbox item is written).
    for index in 0..a.item_count as u16 - 1 {
        let done = [domain::Completion { item: challenge("sql-injection", index), score: Some(90.0), at: Utc::now() }];
        let change = store
            .record_completions(&org, &a, user, &done, chrono::Utc::now().date_naive(), &announce)
            .await
            .unwrap()
            .unwrap();
        assert!(change.after.completed_at.is_none());
        assert!(recording.last.lock().unwrap().is_empty());
    }
    let last = a.item_count as u16 - 1;
    let done = [domain::Completion { item: challenge("sql-injection", last), score: Some(90.0), at: Utc::now() }];
    let change = store
        .record_completions(&org, &a, user, &done, chrono::Utc::now().date_naive(), &announce)
        .await
        .unwrap()
        .unwrap();
    assert!(change.completed_now());
    let completed = recording.last.lock().unwrap().clone();
    assert_eq!(completed.iter().map(|e| e.detail_type.as_str()).collect::<Vec<_>>(), ["assignment.completed"]);
    assert_eq!(outbox_item(&org, completed[0].id).await, Some(completed));
    // Asked for names only for the writes that announce something (the learner is not projected here).
    assert!(recording.names.lock().unwrap().iter().all(Option::is_none));
}
