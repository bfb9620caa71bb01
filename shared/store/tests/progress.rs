//! Progress changes against DynamoDB Local: rows and counters move together; replays and races do not
//! double-count.

mod support;

use chrono::{Duration, Utc};
use domain::{AssigneeType, TrackedItem};
use store::StoreError;
use support::*;

fn challenge(index: u16) -> TrackedItem {
    TrackedItem::parse_key(&format!("c:sql-injection:{index}")).unwrap()
}

#[tokio::test]
async fn completing_every_challenge_completes_the_user_once_however_often_events_repeat() {
    let store = store().await;
    let org = new_org();
    let a = assignment(AssigneeType::Org, org.as_str(), "sql-injection", in_days(10));
    let rows = roster(&a, 3);
    let a = store.create_assignment(&org, &a, &audit("assignment.created", "a"), &rows).await.unwrap();
    let user = rows[0].user_id;
    let t0 = Utc::now();

    // Eleven challenges, each delivered twice, the second pass in reverse order.
    let order: Vec<u16> = (0..11).chain((0..11).rev()).collect();
    let mut changes = 0;
    for index in order {
        let at = t0 + Duration::seconds(i64::from(index));
        if store.record_completion(&org, &a, user, &challenge(index), Some(80.0), at).await.unwrap().is_some() {
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
    assert!(store.record_completion(&org, &a, user, &other, None, t0).await.unwrap().is_none());
    let stranger = domain::UserId(uuid::Uuid::new_v4());
    assert!(store.record_completion(&org, &a, stranger, &challenge(0), None, t0).await.unwrap().is_none());
}

#[tokio::test]
async fn a_stale_row_write_is_refused_and_concurrent_completions_all_count() {
    let store = store().await;
    let org = new_org();
    let a = assignment(AssigneeType::Org, org.as_str(), "sql-injection", in_days(10));
    let rows = roster(&a, 1);
    let a = store.create_assignment(&org, &a, &audit("assignment.created", "a"), &rows).await.unwrap();
    let user = rows[0].user_id;

    let before = store.progress_row(&org, a.id, user).await.unwrap().unwrap();
    let mut first = before.clone();
    first.record_completion(&challenge(0), None, Utc::now(), &a.units, a.item_count);
    store.apply_progress(&org, &a, &before, &first).await.unwrap();
    let mut stale = before.clone();
    stale.record_completion(&challenge(1), None, Utc::now(), &a.units, a.item_count);
    let err = store.apply_progress(&org, &a, &before, &stale).await.unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict), "{err:?}");

    // Eight completions racing on one row: each retries until it lands; none is lost or double-counted.
    let tasks: Vec<_> = (1..9)
        .map(|index| {
            let (store, org, a) = (store.clone(), org.clone(), a.clone());
            tokio::spawn(
                async move { store.record_completion(&org, &a, user, &challenge(index), None, Utc::now()).await },
            )
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
