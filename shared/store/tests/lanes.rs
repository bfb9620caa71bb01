//! An org's work lane on DynamoDB Local: one holder at a time, the others in line in the order they
//! came, handed on with the next request committed to the outbox in the same write, freed only when
//! nobody waits; another org's lane is its own.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time; the code under test takes its times as parameters"
)]

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use domain::{DomainEvent, Lane};
use serde_json::json;
use store::LaneState;
use testkit::stack::{outbox_item, raw_client, store_and_org};

fn request(org: &domain::OrgId) -> DomainEvent {
    DomainEvent {
        id: uuid::Uuid::now_v7(),
        detail_type: "export.requested".into(),
        detail: json!({"orgId": org.as_str(), "exportId": uuid::Uuid::now_v7()}),
        time: Utc::now(),
    }
}

#[tokio::test]
async fn a_lane_has_one_holder_and_hands_on_to_the_first_in_line() {
    let (store, org) = store_and_org().await;
    let (_, other) = store_and_org().await;
    let now = Utc::now();
    let until = now + Duration::hours(1);
    let (first, second, third) = (request(&org), request(&org), request(&org));

    assert!(store.take_lane(&org, Lane::Export, first.id, now, until).await.unwrap());
    assert!(store.take_lane(&org, Lane::Export, first.id, now, until).await.unwrap(), "its holder again");
    assert!(!store.take_lane(&org, Lane::Export, second.id, now, until).await.unwrap(), "held");
    // Another org's lane, and this org's other lane, are their own.
    assert!(store.take_lane(&other, Lane::Export, second.id, now, until).await.unwrap());
    assert!(store.take_lane(&org, Lane::Roster, second.id, now, until).await.unwrap());

    assert!(store.wait_in_lane(&org, Lane::Export, &second, now).await.unwrap());
    assert!(store.wait_in_lane(&org, Lane::Export, &second, now).await.unwrap(), "in line once");
    assert!(store.wait_in_lane(&org, Lane::Export, &third, now).await.unwrap());
    let lane = store.lane(&org, Lane::Export).await.unwrap();
    assert_eq!(lane, LaneState { holder: Some(first.id), until: lane.until, waiting: 2 });
    // Nobody frees a lane others wait for, and only its holder hands it on.
    assert!(!store.free_lane(&org, Lane::Export, first.id).await.unwrap());
    let next = store.first_in_lane(&org, Lane::Export).await.unwrap().expect("one in line").unwrap();
    assert_eq!(next, second, "first come, first in line");
    let reissued = next.reissued(uuid::Uuid::now_v7(), now);
    assert_eq!(reissued.detail["exportId"], second.detail["exportId"]);
    assert_eq!(reissued.detail["eventId"], json!(reissued.id));
    assert!(!store.hand_on_lane(&org, Lane::Export, third.id, second.id, &reissued, until).await.unwrap());
    assert!(store.hand_on_lane(&org, Lane::Export, first.id, second.id, &reissued, until).await.unwrap());
    assert!(!store.hand_on_lane(&org, Lane::Export, first.id, second.id, &reissued, until).await.unwrap(), "once");
    let lane = store.lane(&org, Lane::Export).await.unwrap();
    assert_eq!((lane.holder, lane.waiting), (Some(reissued.id), 1));
    // The handed-on request was committed to the outbox with the hand-over.
    assert_eq!(outbox_item(&org, reissued.id).await, Some(vec![reissued.clone()]));
    assert_eq!(store.first_in_lane(&org, Lane::Export).await.unwrap(), Some(Ok(third.clone())));

    // A holder whose time ran out is taken over; a request cannot wait behind it.
    let later = until + Duration::seconds(1);
    assert!(!store.wait_in_lane(&org, Lane::Export, &request(&org), later).await.unwrap(), "free to take");
    let taker = request(&org);
    assert!(store.take_lane(&org, Lane::Export, taker.id, later, later + Duration::hours(1)).await.unwrap());
    assert!(!store.keep_lane(&org, Lane::Export, reissued.id, later).await.unwrap(), "no longer its");
    assert!(store.keep_lane(&org, Lane::Export, taker.id, later + Duration::hours(2)).await.unwrap());
    let third_next = store.first_in_lane(&org, Lane::Export).await.unwrap().unwrap().unwrap();
    assert!(
        store
            .hand_on_lane(
                &org,
                Lane::Export,
                taker.id,
                third_next.id,
                &third_next.reissued(uuid::Uuid::now_v7(), later),
                later
            )
            .await
            .unwrap()
    );
    let holder = store.lane(&org, Lane::Export).await.unwrap().holder.unwrap();
    assert!(store.free_lane(&org, Lane::Export, holder).await.unwrap(), "nobody waits");
    assert_eq!(store.lane(&org, Lane::Export).await.unwrap(), LaneState::default());
}

/// A request in line that cannot be read back (a bad write, a format that changed) is reported by its
/// key and can be taken out of line with its count, so it stops nobody.
#[tokio::test]
async fn an_unreadable_request_in_line_is_reported_by_key_and_can_be_taken_out() {
    let (store, org) = store_and_org().await;
    let now = Utc::now();
    let (holder, waiting) = (request(&org), request(&org));
    assert!(store.take_lane(&org, Lane::Roster, holder.id, now, now + Duration::hours(1)).await.unwrap());
    assert!(store.wait_in_lane(&org, Lane::Roster, &waiting, now).await.unwrap());
    let pk = store::keys::lane_pk(&org, Lane::Roster);
    let sk = format!("{}{}", store::keys::LANE_WAIT_SK_PREFIX, waiting.id);
    raw_client()
        .await
        .update_item()
        .table_name(std::env::var("TABLE_NAME").unwrap())
        .key("PK", AttributeValue::S(pk.clone()))
        .key("SK", AttributeValue::S(sk.clone()))
        .update_expression("SET #request = :garbage")
        .expression_attribute_names("#request", "request")
        .expression_attribute_values(":garbage", AttributeValue::S("{not json".into()))
        .send()
        .await
        .unwrap();
    let unreadable = store.first_in_lane(&org, Lane::Roster).await.unwrap().unwrap().unwrap_err();
    assert_eq!((unreadable.pk.as_str(), unreadable.sk.as_str()), (pk.as_str(), sk.as_str()));
    assert!(store.drop_unreadable_from_lane(&org, Lane::Roster, &unreadable).await.unwrap());
    assert!(!store.drop_unreadable_from_lane(&org, Lane::Roster, &unreadable).await.unwrap(), "once");
    assert_eq!(store.first_in_lane(&org, Lane::Roster).await.unwrap(), None);
    assert!(store.free_lane(&org, Lane::Roster, holder.id).await.unwrap(), "nobody waits any more");
    // Only the lane's own line.
    let (_, other) = store_and_org().await;
    assert!(store.drop_unreadable_from_lane(&other, Lane::Roster, &unreadable).await.is_err());
}
