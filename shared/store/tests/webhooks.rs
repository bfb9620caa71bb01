//! Webhook endpoints and deliveries against DynamoDB Local: the per-org endpoint limit holds under
//! concurrent creates, a delivery is recorded once per event and endpoint, and each endpoint's backlog
//! counter always equals a recount of its pending deliveries.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use chrono::Utc;
use domain::webhook::endpoint::MAX_BACKLOG;
use domain::webhook::{Delivery, DeliveryStatus, Endpoint, EndpointUrl, MAX_ENDPOINTS_PER_ORG, NewEndpoint};
use store::{DeliveryFilter, Recorded, Restarted, SealedSecret, Store};
use testkit::fixtures::audit;
use testkit::stack::store_and_org;

fn endpoint(n: usize) -> Endpoint {
    let new = NewEndpoint {
        url: EndpointUrl::parse(&format!("https://hooks.example.com/{n}")).unwrap(),
        description: String::new(),
        events: vec!["assignment.created".into()],
        is_active: true,
    };
    Endpoint::new(uuid::Uuid::now_v7(), new, Utc::now())
}

fn sealed() -> SealedSecret {
    SealedSecret { current: "c2VhbGVk".into(), previous: None, previous_until: None }
}

fn pending(endpoint: &Endpoint, event: uuid::Uuid) -> Delivery {
    Delivery::new(event, "assignment.created", endpoint.id, Utc::now(), Utc::now(), "{}".into())
}

async fn recount(store: &Store, org: &domain::OrgId, endpoint: uuid::Uuid) -> u64 {
    let filter = DeliveryFilter { status: Some(DeliveryStatus::Pending), since: None };
    let mut pages = store::Pages::default();
    let mut count = 0;
    while let Some(start) = pages.next_start() {
        count += pages.follow(store.deliveries_page(org, endpoint, filter, start, 200).await.unwrap()).len() as u64;
    }
    count
}

#[tokio::test]
async fn concurrent_creates_never_pass_the_limit_and_deletes_uncount() {
    let (store, org) = store_and_org().await;
    let tries = MAX_ENDPOINTS_PER_ORG + 5;
    let creates = (0..tries).map(|n| {
        let store = store.clone();
        let org = org.clone();
        async move {
            let e = endpoint(n);
            let entry = audit("webhook_endpoint.created", &e.id.to_string());
            loop {
                match store.create_endpoint(&org, &e, &sealed(), MAX_ENDPOINTS_PER_ORG, &entry).await {
                    Err(error) if error.is_transient() => continue,
                    other => return other.unwrap(),
                }
            }
        }
    });
    let made = futures::future::join_all(creates).await;
    assert_eq!(made.iter().filter(|m| **m).count(), MAX_ENDPOINTS_PER_ORG);
    let endpoints = store.endpoints(&org).await.unwrap();
    assert_eq!(endpoints.len(), MAX_ENDPOINTS_PER_ORG);
    assert_eq!(store.endpoint_count(&org).await.unwrap(), MAX_ENDPOINTS_PER_ORG as u64);
    let gone = &endpoints[0];
    store.delete_endpoint(&org, gone, &audit("webhook_endpoint.deleted", &gone.id.to_string())).await.unwrap();
    assert_eq!(store.endpoint_count(&org).await.unwrap(), MAX_ENDPOINTS_PER_ORG as u64 - 1);
    assert!(
        store.create_endpoint(&org, &endpoint(99), &sealed(), MAX_ENDPOINTS_PER_ORG, &audit("c", "x")).await.unwrap()
    );
}

#[tokio::test]
async fn a_delivery_is_recorded_once_and_the_backlog_equals_a_recount() {
    let (store, org) = store_and_org().await;
    let e = endpoint(0);
    store.create_endpoint(&org, &e, &sealed(), MAX_ENDPOINTS_PER_ORG, &audit("c", &e.id.to_string())).await.unwrap();
    let events: Vec<uuid::Uuid> = (0..6).map(|_| uuid::Uuid::now_v7()).collect();
    let mut recorded = Vec::new();
    for event in &events {
        let d = pending(&e, *event);
        assert_eq!(store.record_delivery(&org, &d, true, MAX_BACKLOG).await.unwrap(), Recorded::New);
        // The bus brings the event again: the same delivery, not a second one.
        assert!(matches!(store.record_delivery(&org, &d, true, MAX_BACKLOG).await.unwrap(), Recorded::Already(_)));
        recorded.push(d);
    }
    let backlog =
        |store: Store, org: domain::OrgId| async move { store.endpoint(&org, e.id).await.unwrap().unwrap().pending };
    assert_eq!(backlog(store.clone(), org.clone()).await, 6);
    assert_eq!(recount(&store, &org, e.id).await, 6);

    // Attempts: one delivered, one failed for good (the endpoint disabled), one still pending.
    let made = |before: &Delivery, status: DeliveryStatus| {
        let mut after = before.clone();
        after.attempts += 1;
        after.step += 1;
        after.status = status;
        after.last_attempt_at = Some(Utc::now());
        after
    };
    let delivered = made(&recorded[0], DeliveryStatus::Succeeded);
    assert!(store.record_attempt(&org, &recorded[0], &delivered, None).await.unwrap());
    assert!(!store.record_attempt(&org, &recorded[0], &delivered, None).await.unwrap(), "one outcome per step");
    let failed = made(&recorded[1], DeliveryStatus::Failed);
    assert!(store.record_attempt(&org, &recorded[1], &failed, Some(Utc::now())).await.unwrap());
    let retried = made(&recorded[2], DeliveryStatus::Pending);
    assert!(store.record_attempt(&org, &recorded[2], &retried, None).await.unwrap());
    assert_eq!(backlog(store.clone(), org.clone()).await, 4);
    assert_eq!(recount(&store, &org, e.id).await, 4);
    let now = store.endpoint(&org, e.id).await.unwrap().unwrap();
    assert!(now.disabled_at.is_some() && now.last_delivered == Some(false));

    // A disabled endpoint takes no new delivery, and no redelivery.
    let late = pending(&e, uuid::Uuid::now_v7());
    assert_eq!(store.record_delivery(&org, &late, true, MAX_BACKLOG).await.unwrap(), Recorded::NotTaken);
    let mut again = failed.clone();
    again.status = DeliveryStatus::Pending;
    again.round += 1;
    again.step = 0;
    assert_eq!(store.restart_delivery(&org, &failed, &again, MAX_BACKLOG).await.unwrap(), Restarted::EndpointNotTaking);

    // Turned on again: the redelivery is pending again, counted again; a second restart of the same
    // round loses; a full backlog takes none.
    let mut on = now.clone();
    on.disabled_at = None;
    on.version += 1;
    store.update_endpoint(&org, &now, &on, None, &audit("webhook_endpoint.updated", &e.id.to_string())).await.unwrap();
    assert_eq!(store.restart_delivery(&org, &failed, &again, MAX_BACKLOG).await.unwrap(), Restarted::Yes);
    assert_eq!(store.restart_delivery(&org, &failed, &again, MAX_BACKLOG).await.unwrap(), Restarted::Changed);
    assert_eq!(backlog(store.clone(), org.clone()).await, 5);
    assert_eq!(recount(&store, &org, e.id).await, 5);
    let full = pending(&e, uuid::Uuid::now_v7());
    assert_eq!(store.record_delivery(&org, &full, true, 5).await.unwrap(), Recorded::BacklogFull);
    // Another org sees none of it.
    let (_, other) = store_and_org().await;
    assert!(store.endpoint(&other, e.id).await.unwrap().is_none());
    assert!(store.delivery(&other, e.id, recorded[0].delivery_id).await.unwrap().is_none());
}
