//! Nothing lost between the table and the bus: events committed while no publisher runs (the function
//! died between the commit and the publish) go out once it runs, once each; an
//! unreadable outbox record is parked in the failed-events queue without holding up the others; and a
//! publisher started again from its checkpoint sends nothing twice.
//!
//! Its own test process (not the end-to-end one, whose gateway reads the stream all along): here the
//! stream reader is started, killed and started again by the test.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use domain::{AuditEntry, DomainEvent, OrgId, Role};
use serde_json::{Value, json};
use testkit::e2e::{SECRET, subscribe_queue};

struct Stack {
    store: store::Store,
    dynamodb: aws_sdk_dynamodb::Client,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    table: String,
    config: aws_config::SdkConfig,
}

impl Stack {
    async fn new() -> Stack {
        let table = std::env::var("TABLE_NAME").expect("the local stack: run through infra/test.sh");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        Stack {
            store: store::Store::new(dynamodb.clone(), table.clone()),
            dynamodb,
            events: aws_sdk_eventbridge::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            table,
            config,
        }
    }

    /// The stream reader and publisher the gateway runs, as a task the test can kill.
    fn start_publisher(&self, checkpoint: &Path) -> tokio::task::JoinHandle<()> {
        let bus = std::env::var("EVENT_BUS_NAME").unwrap();
        let publisher = events::Publisher::new(self.events.clone(), bus);
        let bucket = exports::Bucket::from_env(&self.config).unwrap();
        let template = gateway::Template::of_project().unwrap();
        let app = api::App::new(self.store.clone(), SECRET);
        let jobs = gateway::bus::queues(&self.sqs).unwrap();
        let gw = gateway::Gateway::new(app, publisher, bucket, jobs, template.routes).unwrap();
        let reader = gateway::stream::publish(
            gw,
            self.dynamodb.clone(),
            self.sqs.clone(),
            self.table.clone(),
            std::env::var("FAILED_EVENTS_QUEUE_URL").unwrap(),
            Some(checkpoint.to_path_buf()),
            // The template's 10 retries, shortened (local only) so that a poison record is parked in
            // seconds.
            template.stream.with_retries(2),
        );
        tokio::spawn(async move {
            if let Err(e) = reader.await {
                panic!("stream reader stopped: {e}");
            }
        })
    }

    /// The messages on `queue` within `wait` (deleted as read), stopping early once `enough` arrived.
    async fn receive(&self, queue: &str, enough: usize, wait: Duration) -> Vec<Value> {
        let until = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        while out.len() < enough && tokio::time::Instant::now() < until {
            let got = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for m in got.messages.unwrap_or_default() {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        out
    }
}

fn export_ready(org: &OrgId, n: usize) -> DomainEvent {
    let id = uuid::Uuid::now_v7();
    let time = Utc::now();
    let detail = json!({"eventId": id, "orgId": org.as_str(), "occurredAt": time, "kind": "progress", "n": n});
    DomainEvent { id, detail_type: "export.ready".into(), detail, time }
}

fn audit_entry(n: usize) -> AuditEntry {
    AuditEntry {
        id: uuid::Uuid::now_v7(),
        created_at: Utc::now(),
        action: "assignment.exported".into(),
        actor_id: "key-outbox-test".into(),
        actor_email: None,
        actor_role: Role::OrgAdmin,
        target_type: "export".into(),
        target_id: format!("export-{n}"),
        target_label: "progress".into(),
        metadata: json!({"kind": "progress"}),
        request_id: format!("request-{n}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_while_the_publisher_is_down_go_out_once_when_it_runs_and_a_poison_record_is_parked() {
    let stack = Stack::new().await;
    let org = OrgId::parse(&format!("outbox-{}", uuid::Uuid::new_v4().simple())).unwrap();
    let queue = subscribe_queue(&stack.events, &stack.sqs, org.as_str(), "export.ready").await;
    // The publisher's checkpoint starts at the end of the stream: earlier tests' records are not ours.
    let checkpoint = std::env::temp_dir().join(format!("outbox-checkpoint-{}.json", uuid::Uuid::new_v4().simple()));
    gateway::stream::skip_to_end(&stack.dynamodb, &stack.table, checkpoint.clone()).await.unwrap();

    // Three committed changes, no publisher running: one with 12 events (more than a PutEvents call
    // takes), an unreadable outbox item, one with a single event.
    let first: Vec<DomainEvent> = (0..12).map(|n| export_ready(&org, n)).collect();
    stack.store.put_audit(&org, &audit_entry(1), &first).await.unwrap();
    let poison_key = format!("ORG#{}#OUTBOX#{}", org.as_str(), uuid::Uuid::now_v7());
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    stack
        .dynamodb
        .put_item()
        .table_name(&stack.table)
        .item("PK", s(&poison_key))
        .item("SK", s(store::keys::OUTBOX_SK))
        .item("entity", s(store::OUTBOX_ENTITY))
        .item("events", s("not a list of events"))
        .send()
        .await
        .unwrap();
    let last = vec![export_ready(&org, 12)];
    stack.store.put_audit(&org, &audit_entry(2), &last).await.unwrap();
    let written: Vec<String> = first.iter().chain(&last).map(|e| e.id.to_string()).collect();

    assert!(
        stack.receive(&queue, 1, Duration::from_secs(2)).await.is_empty(),
        "a write publishes nothing itself: its events wait in the table for the stream's publisher"
    );

    // The publisher starts: from its checkpoint, as the event source mapping would after a crash.
    let publisher = stack.start_publisher(&checkpoint);
    let delivered = stack.receive(&queue, written.len(), Duration::from_secs(60)).await;
    let mut ids: Vec<String> = delivered.iter().map(|e| e["detail"]["eventId"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(ids, expected, "every event once (EventBridge does not promise their order)");
    assert!(delivered.iter().all(|e| e["source"] == "assignments" && e["detail-type"] == "export.ready"));

    let failed_queue = std::env::var("FAILED_EVENTS_QUEUE_URL").unwrap();
    let parked = poll_parked(&stack, &failed_queue, &poison_key).await;
    assert_eq!(parked["requestContext"]["condition"], "RetryAttemptsExhausted");

    // Killed and started again: it goes on from its checkpoint, so nothing is sent twice. (Killed once
    // idle: a kill between a send and the checkpoint's write would send that batch again, which is the
    // at-least-once the README documents, not what this checks.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    publisher.abort();
    let _ = publisher.await;
    let again = stack.start_publisher(&checkpoint);
    let repeated = stack.receive(&queue, 1, Duration::from_secs(4)).await;
    assert!(repeated.is_empty(), "published again after a restart: {repeated:?}");
    again.abort();
    let _ = std::fs::remove_file(&checkpoint);
}

/// The failed-events queue's message about the outbox item `key` (the queue is the stack's: other
/// messages are left alone).
async fn poll_parked(stack: &Stack, queue: &str, key: &str) -> Value {
    let parked_record = |m: &aws_sdk_sqs::types::Message| {
        let body: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_default();
        body.pointer("/record/dynamodb/NewImage/PK/S").and_then(Value::as_str) == Some(key)
    };
    let parked = testkit::e2e::peek_until(&stack.sqs, queue, Duration::from_secs(60), parked_record)
        .await
        .expect("the poison record parked in the failed-events queue");
    serde_json::from_str(parked.body().unwrap()).unwrap()
}
