//! End-to-end: the local gateway on loopback, driven over HTTP as a client would, against DynamoDB
//! Local and moto (set-up and the request builder: `testkit::e2e`). Each test seeds its own orgs, so
//! tests run in parallel without seeing each other. One test binary, split by area.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

mod access;
mod assignments;
mod audit_and_exports;
mod compliance;
mod deadlines;
mod jobs;
mod platform_events;
mod queues;
mod sarif;
mod v1_contract;
mod webhooks;

use chrono::Utc;
use gateway::seed::SeededOrg;
use serde_json::{Value, json};
use testkit::e2e::{Env, Reply};

pub(crate) fn deadline(days: i64) -> String {
    (Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

pub(crate) fn team_topic(org: &SeededOrg, topic: &str) -> Value {
    json!({"contentArea": "practice", "targetType": "topic", "targetId": topic,
           "assigneeType": "team", "assigneeId": org.teams[0].team_id, "deadline": deadline(30),
           "note": "PCI DSS 6.2.2"})
}

/// The org's admin assigns `topic` to the org's first team (as [`team_topic`]).
pub(crate) async fn assign_team_topic(env: &Env, org: &SeededOrg, topic: &str) -> Reply {
    env.post("/assignments").token(org.api_keys.admin.as_str()).json(team_topic(org, topic)).await
}

/// The path of the assignment a create answered with (relative to the API's base).
pub(crate) fn path_of(created: &Reply) -> String {
    format!("/assignments/{}", created.body["id"].as_str().unwrap())
}

/// The detail's `users[]` entry of `user`.
pub(crate) fn user_of(detail: &Value, user: domain::UserId) -> Option<Value> {
    detail["users"].as_array()?.iter().find(|u| u["userId"] == json!(user)).cloned()
}

/// Updates one attribute of an assignment behind the API's back with an update `expression` that names
/// the attribute `#a` and its value `:v`: how a test leaves what a crash would (an interrupted patch's
/// marker). Time is never moved this way: tests move an org's clock (`Env::advance_clock`).
pub(crate) async fn update_behind_the_api(
    env: &Env,
    org: &SeededOrg,
    id: &str,
    expression: &str,
    attribute: &str,
    value: String,
) {
    use aws_sdk_dynamodb::types::AttributeValue;
    testkit::stack::raw_client()
        .await
        .update_item()
        .table_name(env.store.table_name())
        .key("PK", AttributeValue::S(format!("ORG#{}#ASG#{id}", org.org_id)))
        .key("SK", AttributeValue::S("A".into()))
        .update_expression(expression)
        .expression_attribute_names("#a", attribute)
        .expression_attribute_values(":v", AttributeValue::S(value))
        .send()
        .await
        .unwrap();
}

/// Marks the org's head counts as checked against their indexes (as the reconcile job's first recount
/// does once they have been still for a minute), so a dry run reads them as the user writes moved them
/// instead of counting the index.
pub(crate) async fn head_counts_checked(env: &Env, org: &SeededOrg) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let changed =
        change_head_counts(env, org, None, "SET recounted = :yes", &[(":yes", AttributeValue::Bool(true))]).await;
    assert!(changed > 0, "the seed's users moved the counts");
}

/// Applies `update` (with `values`) to each stored shard of the org's head counts whose sort key starts
/// with `prefix` (all of them without one), behind the service's back; returns how many.
pub(crate) async fn change_head_counts(
    env: &Env,
    org: &SeededOrg,
    prefix: Option<&str>,
    update: &str,
    values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue;
    let client = testkit::stack::raw_client().await;
    let pk = AttributeValue::S(format!("ORG#{}#HEADCOUNT", org.org_id));
    let query = client.query().table_name(env.store.table_name()).expression_attribute_values(":pk", pk.clone());
    let query = match prefix {
        Some(prefix) => query
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned())),
        None => query.key_condition_expression("PK = :pk"),
    };
    let shards = query.send().await.unwrap().items.unwrap();
    for shard in &shards {
        let mut request = client
            .update_item()
            .table_name(env.store.table_name())
            .key("PK", pk.clone())
            .key("SK", shard["SK"].clone())
            .update_expression(update);
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        request.send().await.unwrap();
    }
    shards.len()
}
