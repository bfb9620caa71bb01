//! The local stack `infra/test.sh` starts: DynamoDB Local and moto. Every helper fails loudly (never
//! skips) when it is not running.

use aws_config::BehaviorVersion;
use domain::OrgId;
use events::{Consumer, Publisher};
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

/// The table under test, counting the capacity every request consumes.
pub async fn store_with_capacity() -> (Store, Capacity) {
    let capacity = Capacity::default();
    (store().await.with_capacity_tracking(capacity.clone()), capacity)
}

/// What a consumer Lambda builds: the table (requests counted in `capacity`) and the bus on moto.
pub async fn consumer(capacity: Option<&Capacity>) -> Consumer {
    let bus = var("EVENT_BUS_NAME");
    assert!(!bus.is_empty(), "these tests need moto's event bus: run them through infra/test.sh");
    let store = match capacity {
        Some(capacity) => store().await.with_capacity_tracking(capacity.clone()),
        None => store().await,
    };
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    Consumer { store, publisher: Publisher::new(aws_sdk_eventbridge::Client::new(&config), bus) }
}

/// A fresh org id (`{prefix}-{random}`): each test works in its own org, so tests run in parallel on
/// one table without seeing each other's data.
pub fn new_org(prefix: &str) -> OrgId {
    OrgId::parse(&format!("{prefix}-{}", uuid::Uuid::new_v4().simple())).expect("a valid org id")
}
