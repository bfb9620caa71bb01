//! Progress changes against DynamoDB Local: rows and counters move together; replays and races do not
//! double-count.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use chrono::{Duration, Utc};
use domain::{AssigneeType, TrackedItem};
use store::StoreError;
use testkit::fixtures::*;
use testkit::shuffled;
use testkit::stack::{created_org_wide, store_and_org};

fn challenge(index: u16) -> TrackedItem {
    TrackedItem::parse_key(&format!("c:sql-injection:{index}")).unwrap()
}

#[tokio::test]
async fn completing_every_challenge_completes_the_user_once_however_often_events_repeat() {
    let (store, org) = store_and_org().await;
    let (a, rows) = created_org_wide(&store, &org, 3).await;
    let user = rows[0].user_id;
    let t0 = Utc::now();

    // Eleven challenges, each delivered twice, the second pass in reverse order.
    let order: Vec<u16> = (0..11).chain((0..11).rev()).collect();
    let mut changes = 0;
    for index in order {
        let at = t0 + Duration::seconds(i64::from(index));
        if store
            .record_completion(&org, &a, user, &challenge(index), Some(80.0), at, chrono::Utc::now().date_naive())
            .await
            .unwrap()
            .is_some()
        {
            changes += 1;
        }
    }
    assert_eq!(changes, 11, "duplicates change nothing");

    let stored = store.get_assignment(&org, a.id).await.unwrap().unwrap().aggregates;
    assert_eq!(
        (stored.total_users, stored.completed_users, stored.in_progress_users, stored.not_started_users),
        (3, 1, 0, 2)
    );
    assert_eq!(stored.completed_items_sum, 11);
    let row = store.progress_row(&org, a.id, user).await.unwrap().unwrap();
    assert_eq!(row.completed_at, Some(t0 + Duration::seconds(10)));
    assert_eq!(row.revision, 11);

    // Untracked items and users without a row are no-ops.
    let other = TrackedItem::parse_key("c:xxe:0").unwrap();
    assert!(
        store
            .record_completion(&org, &a, user, &other, None, t0, chrono::Utc::now().date_naive())
            .await
            .unwrap()
            .is_none()
    );
    let stranger = domain::UserId(uuid::Uuid::new_v4());
    assert!(
        store
            .record_completion(&org, &a, stranger, &challenge(0), None, t0, chrono::Utc::now().date_naive())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_stale_row_write_is_refused_and_concurrent_completions_all_count() {
    let (store, org) = store_and_org().await;
    let (a, rows) = created_org_wide(&store, &org, 1).await;
    let user = rows[0].user_id;

    let before = store.progress_row(&org, a.id, user).await.unwrap().unwrap();
    let mut first = before.clone();
    first.record_completion(&challenge(0), None, Utc::now(), &a.units, a.item_count);
    store
        .apply_progress(&org, &a, &before, &first, chrono::Utc::now().date_naive(), &store::announce_nothing)
        .await
        .unwrap();
    let mut stale = before.clone();
    stale.record_completion(&challenge(1), None, Utc::now(), &a.units, a.item_count);
    let err = store
        .apply_progress(&org, &a, &before, &stale, chrono::Utc::now().date_naive(), &store::announce_nothing)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict), "{err:?}");

    // Eight completions racing on one row: each retries until it lands; none is lost or double-counted.
    let tasks: Vec<_> = (1..9)
        .map(|index| {
            let (store, org, a) = (store.clone(), org.clone(), a.clone());
            tokio::spawn(async move {
                store
                    .record_completion(
                        &org,
                        &a,
                        user,
                        &challenge(index),
                        None,
                        Utc::now(),
                        chrono::Utc::now().date_naive(),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_some());
    }
    let row = store.progress_row(&org, a.id, user).await.unwrap().unwrap();
    assert_eq!(row.completed.len(), 9);
    let agg = store.get_assignment(&org, a.id).await.unwrap().unwrap().aggregates;
    assert_eq!((agg.in_progress_users, agg.not_started_users, agg.completed_items_sum), (1, 0, 9));
}

/// One membership or completion event of a generated stream.
#[derive(Clone, Debug)]
enum Event {
    Membership { user: usize, joined: bool, minute: i64 },
    Completion { user: usize, index: u16, score: f64, minute: i64 },
}

#[tokio::test]
async fn replaying_events_three_times_shuffled_equals_one_ordered_delivery() {
    let (store, org) = store_and_org().await;
    let t0 = Utc::now();
    let users: Vec<domain::UserId> = (0..4).map(|_| domain::UserId(uuid::Uuid::new_v4())).collect();
    // Users 0 and 1 start on the roster; 2 and 3 join (and leave, and return) through events.
    let mut events = Vec::new();
    let mut minute = 1;
    let mut next = || {
        minute += 1;
        minute
    };
    for (user, joined) in [(2, true), (0, false), (3, true), (2, false), (0, true), (3, false), (2, true), (1, false)] {
        events.push(Event::Membership { user, joined, minute: next() });
    }
    // Completions for the learners who have rows from the start: at this layer a completion for a learner
    // with no row changes nothing; catching a joiner up from their completion log is the membership
    // consumer's job (`service::membership`).
    for user in 0..2 {
        for index in 0..11u16 {
            if !(index + user as u16).is_multiple_of(3) || user == 1 {
                events.push(Event::Completion {
                    user,
                    index,
                    score: f64::from(60 + index * 3) + user as f64,
                    minute: next(),
                });
            }
        }
    }

    let deliver = |a: domain::Assignment, stream: Vec<Event>| {
        let (store, org, users) = (store.clone(), org.clone(), users.clone());
        async move {
            for event in stream {
                match event {
                    Event::Membership { user, joined, minute } => {
                        let at = t0 + Duration::minutes(minute);
                        store
                            .set_membership(
                                &org,
                                &a,
                                users[user],
                                domain::Source::Organization,
                                joined,
                                at,
                                at,
                                chrono::Utc::now().date_naive(),
                                &store::announce_nothing,
                            )
                            .await
                            .unwrap();
                    }
                    Event::Completion { user, index, score, minute } => {
                        let at = t0 + Duration::minutes(minute);
                        store
                            .record_completion(
                                &org,
                                &a,
                                users[user],
                                &challenge(index),
                                Some(score),
                                at,
                                chrono::Utc::now().date_naive(),
                            )
                            .await
                            .unwrap();
                    }
                }
            }
        }
    };
    // Same target, different assignees: the duplicate lock allows both.
    let make = |assignee_type: AssigneeType, assignee_id: String| {
        let mut a = assignment(assignee_type, &assignee_id, "sql-injection", in_days(10));
        a.created_at = t0;
        let rows: Vec<_> =
            users[..2].iter().map(|u| domain::ProgressRow::new(a.id, *u, domain::Source::Organization, t0)).collect();
        (a, rows)
    };

    let (ordered, rows) = make(AssigneeType::Org, org.as_str().to_owned());
    let ordered = store.create_assignment(&org, &ordered, &audit("assignment.created", "o"), &rows, &[]).await.unwrap();
    deliver(ordered.clone(), events.clone()).await;

    // A second assignment gets the same stream three times, each time in another order.
    let (replayed, _) = make(AssigneeType::Team, uuid::Uuid::new_v4().to_string());
    let rows: Vec<_> = users[..2]
        .iter()
        .map(|u| domain::ProgressRow::new(replayed.id, *u, domain::Source::Organization, t0))
        .collect();
    let replayed =
        store.create_assignment(&org, &replayed, &audit("assignment.created", "r"), &rows, &[]).await.unwrap();
    for seed in [7, 42, 2026] {
        deliver(replayed.clone(), shuffled(&events, seed)).await;
    }

    let snapshot = |id| {
        let store = store.clone();
        let org = org.clone();
        async move {
            let mut rows = store.progress_page(&org, id, 100, None).await.unwrap().items;
            rows.sort_by_key(|r| r.user_id);
            rows.into_iter()
                .map(|r| (r.user_id, r.completed, r.started_at, r.completed_at, r.removed_at, r.membership_at))
                .collect::<Vec<_>>()
        }
    };
    let want = snapshot(ordered.id).await;
    assert_eq!(want.len(), 4, "every user who ever joined has a row");
    assert_eq!(snapshot(replayed.id).await, want, "rows");
    let counters = |a: domain::Assignment| a.aggregates;
    let got_ordered = counters(store.get_assignment(&org, ordered.id).await.unwrap().unwrap());
    let got_replayed = counters(store.get_assignment(&org, replayed.id).await.unwrap().unwrap());
    assert_eq!(got_replayed, got_ordered, "counters");
    // In scope at the end: 0 (left, returned) and 2 (joined, left, returned); 1 and 3 left.
    assert_eq!(got_ordered.total_users, 2);
    assert_eq!(got_ordered.completed_users, 0, "user 0 skipped some challenges; user 1 finished but left");
    assert!(got_ordered.completed_items_sum > 0);
}
