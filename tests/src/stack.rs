//! The local stack `infra/test.sh` starts: DynamoDB Local and moto. Every helper fails loudly (never
//! skips) when it is not running.

use aws_config::BehaviorVersion;
use domain::{Assignment, OrgId, ProgressRow};
use events::Consumer;
use store::{Capacity, Store};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// The table under test, on DynamoDB Local.
pub async fn store() -> Store {
    let (table, endpoint) = (var("TABLE_NAME"), var("AWS_ENDPOINT_URL_DYNAMODB"));
    assert!(
        !table.is_empty() && endpoint.starts_with("http://127.0.0.1"),
        "these tests need DynamoDB Local: run them through infra/test.sh (TABLE_NAME and AWS_ENDPOINT_URL_DYNAMODB unset)"
    );
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    Store::new(aws_sdk_dynamodb::Client::new(&config), table)
}

/// The table's own client, for tests that look at or change raw items behind the store's back (the
/// store keeps its client to itself).
pub async fn raw_client() -> aws_sdk_dynamodb::Client {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    aws_sdk_dynamodb::Client::new(&config)
}

/// The table under test, counting the capacity every request consumes.
pub async fn store_with_capacity() -> (Store, Capacity) {
    let capacity = Capacity::default();
    (store().await.with_capacity_tracking(capacity.clone()), capacity)
}

/// What a consumer Lambda builds: the table (requests counted in `capacity`).
pub async fn consumer(capacity: Option<&Capacity>) -> Consumer {
    let store = match capacity {
        Some(capacity) => store().await.with_capacity_tracking(capacity.clone()),
        None => store().await,
    };
    Consumer::new(store)
}

/// A fresh org id (`{prefix}-{random}`): each test works in its own org, so tests run in parallel on
/// one table without seeing each other's data.
pub fn new_org(prefix: &str) -> OrgId {
    OrgId::parse(&format!("{prefix}-{}", uuid::Uuid::new_v4().simple())).expect("a valid org id")
}

/// The table under test and a fresh org to work in.
pub async fn store_and_org() -> (Store, OrgId) {
    (store().await, new_org("test"))
}

/// An org-wide assignment due in 10 days, created in the store with a roster of `learners` new users.
pub async fn created_org_wide(store: &Store, org: &OrgId, learners: usize) -> (Assignment, Vec<ProgressRow>) {
    use crate::fixtures::{audit, in_days, org_wide, roster};
    let a = org_wide(org, in_days(10));
    let rows = roster(&a, learners);
    let created = store.create_assignment(org, &a, &audit("assignment.created", "a"), &rows, &[]).await.unwrap();
    (created, rows)
}

/// The events of the outbox item named by its first event, read back as the stream would carry it.
pub async fn outbox_item(org: &OrgId, first: uuid::Uuid) -> Option<Vec<domain::DomainEvent>> {
    let table = std::env::var("TABLE_NAME").unwrap();
    let item = raw_client()
        .await
        .get_item()
        .table_name(table)
        .key(store::keys::PK, aws_sdk_dynamodb::types::AttributeValue::S(store::keys::outbox_pk(org, first)))
        .key(store::keys::SK, aws_sdk_dynamodb::types::AttributeValue::S(store::keys::OUTBOX_SK.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item?;
    let image: std::collections::HashMap<String, serde_dynamo::AttributeValue> =
        item.into_iter().map(|(k, v)| (k, v.into())).collect();
    match store::outbox_image(&serde_json::to_value(image).unwrap()) {
        store::OutboxImage::Item(item) => Some(item.events),
        other => panic!("not a readable outbox item: {other:?}"),
    }
}
