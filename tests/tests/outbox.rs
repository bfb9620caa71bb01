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
use store::retry::Retry;
use testkit::e2e::{SECRET, subscribe_queue};

/// One stream reader at a time: each test's reader would publish the other's records.
static ONE_READER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

    /// A fresh org subscribed to its `export.ready` events (the queue's URL), and a stream checkpoint
    /// at the end of the stream: earlier tests' records are not this test's.
    async fn fresh_org(&self, prefix: &str) -> (OrgId, String, std::path::PathBuf) {
        let org = OrgId::parse(&format!("{prefix}-{}", uuid::Uuid::new_v4().simple())).unwrap();
        let queue = subscribe_queue(&self.events, &self.sqs, org.as_str(), "export.ready").await;
        let checkpoint = std::env::temp_dir().join(format!("outbox-checkpoint-{}.json", uuid::Uuid::new_v4().simple()));
        gateway::stream::skip_to_end(&self.dynamodb, &self.table, checkpoint.clone()).await.unwrap();
        (org, queue, checkpoint)
    }

    /// The outbox publisher, sending to the bus through `bus` and confirming and parking in this
    /// stack's table and failed-events queue (as the gateway builds it).
    fn publisher(&self, bus: &aws_sdk_eventbridge::Client) -> events::Publisher {
        let ledger = events::Ledger {
            table: self.store.clone(),
            failed: events::queue::Queue::new(self.sqs.clone(), std::env::var("FAILED_EVENTS_QUEUE_URL").unwrap()),
        };
        events::Publisher::new(bus.clone(), std::env::var("EVENT_BUS_NAME").unwrap()).with_ledger(ledger)
    }

    /// The gateway, its outbox publisher sending to the bus through `bus` (a client that records the
    /// functions' permissions, as every gateway's does), each call tried as `patience` says.
    fn gateway(&self, bus: &aws_sdk_eventbridge::Client, patience: Option<Retry>) -> gateway::Gateway {
        let name = std::env::var("EVENT_BUS_NAME").unwrap();
        let mut publisher = events::Publisher::new(gateway::iam::eventbridge(bus), name);
        if let Some(patience) = patience {
            publisher = publisher.with_patience(patience);
        }
        let bucket = exports::Bucket::from_env(&self.config).unwrap();
        let template = gateway::Template::of_project().unwrap();
        let store = store::Store::new(gateway::iam::dynamodb(&self.dynamodb), self.table.clone());
        let app = api::App::new(store, SECRET);
        let jobs = gateway::bus::queues(&self.sqs).unwrap();
        gateway::Gateway::new(app, publisher, bucket, jobs, template.routes).unwrap()
    }

    /// The stream reader and publisher the gateway runs, as a task the test can kill.
    fn start_publisher(&self, checkpoint: &Path) -> tokio::task::JoinHandle<()> {
        // The template's retries until the record's age, shortened (local only) so that a record that
        // keeps failing is given up on in seconds.
        let settings = gateway::Template::of_project().unwrap().stream.with_retries(2);
        self.start_reader(self.gateway(&self.events, None), checkpoint, settings)
    }

    fn start_reader(
        &self,
        gw: gateway::Gateway,
        checkpoint: &Path,
        settings: gateway::stream::StreamSettings,
    ) -> tokio::task::JoinHandle<()> {
        let reader = gateway::stream::publish(
            gw,
            self.dynamodb.clone(),
            self.sqs.clone(),
            self.table.clone(),
            std::env::var("FAILED_EVENTS_QUEUE_URL").unwrap(),
            Some(checkpoint.to_path_buf()),
            settings,
        );
        tokio::spawn(async move {
            if let Err(e) = reader.await {
                panic!("stream reader stopped: {e}");
            }
        })
    }

    /// The attributes of the outbox item `pk` (a strongly consistent read).
    async fn outbox_attributes(
        &self,
        pk: &str,
    ) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(store::keys::OUTBOX_SK))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item.expect("the outbox item")
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
async fn events_committed_while_the_publisher_is_down_go_out_once_when_it_runs_and_a_poison_record_is_parked_at_once() {
    let _reader = ONE_READER.lock().await;
    let stack = Stack::new().await;
    let (org, queue, checkpoint) = stack.fresh_org("outbox").await;

    // Three committed changes, no publisher running: one with 12 events (more than a PutEvents call
    // takes), an unreadable outbox item, one with a single event.
    let first: Vec<DomainEvent> = (0..12).map(|n| export_ready(&org, n)).collect();
    stack.store.put_audit(&org, &audit_entry(1), &first).await.unwrap();
    // In the index of items not confirmed, as the outbox writer puts every item there.
    let poison_id = uuid::Uuid::now_v7();
    let poison_key = store::keys::outbox_pk(&org, poison_id);
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    let made = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    stack
        .dynamodb
        .put_item()
        .table_name(&stack.table)
        .item("PK", s(&poison_key))
        .item("SK", s(store::keys::OUTBOX_SK))
        .item("entity", s(store::OUTBOX_ENTITY))
        .item("events", s("not a list of events"))
        .item(store::keys::GSI4PK, s(&store::keys::unconfirmed_pk(poison_id)))
        .item(store::keys::GSI4SK, s(&format!("{made}#{poison_id}")))
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
    assert_eq!(parked["parkedBy"], "OutboxPublisherFunction");
    let reason = parked["reason"].as_str().unwrap();
    assert!(reason.starts_with("unreadable: "), "{reason}");
    assert!(!parked.to_string().contains("not a list of events"), "the item's content is not kept: {parked}");
    // In the table: the poison item parked, the others confirmed; none left for the sweep.
    let poison = stack.outbox_attributes(&poison_key).await;
    assert!(poison.contains_key("parkedAt") && !poison.contains_key("GSI4PK"), "{poison:?}");
    let first_key = store::keys::outbox_pk(&org, first[0].id);
    let confirmed = stack.outbox_attributes(&first_key).await;
    assert!(confirmed.contains_key("publishedAt") && !confirmed.contains_key("GSI4PK"), "{confirmed:?}");
    // A redrive reads the parked item again by its key: still unreadable, it is parked again (a new
    // time) and its message is left in the queue.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let redriven = stack
        .gateway(&stack.events, None)
        .invoke(gateway::stream::PUBLISHER, json!({"redrive": "failed-events"}))
        .await
        .unwrap();
    assert!(redriven["left"].as_u64().unwrap() >= 1, "{redriven}");
    let again = stack.outbox_attributes(&poison_key).await;
    assert!(again["parkedAt"] != poison["parkedAt"] && !again.contains_key("publishedAt"), "{again:?}");

    // Killed and started again: it goes on from its checkpoint, so nothing is sent twice. (Killed once
    // idle: a kill between a send and the checkpoint's write would send that batch again, which is the
    // at-least-once docs/events.md documents, not what this checks.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    publisher.abort();
    let _ = publisher.await;
    let again = stack.start_publisher(&checkpoint);
    let repeated = stack.receive(&queue, 1, Duration::from_secs(4)).await;
    assert!(repeated.is_empty(), "published again after a restart: {repeated:?}");
    again.abort();
    let _ = std::fs::remove_file(&checkpoint);
}

/// The failed-events queue's message about the outbox item `key`, parked by the publisher (the queue
/// is the stack's: other messages are left alone).
async fn poll_parked(stack: &Stack, queue: &str, key: &str) -> Value {
    let parked_record = |m: &aws_sdk_sqs::types::Message| {
        let body: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_default();
        body["outboxItem"].as_str() == Some(key)
    };
    let parked = testkit::e2e::peek_until(&stack.sqs, queue, Duration::from_secs(60), parked_record)
        .await
        .expect("the poison record parked in the failed-events queue");
    serde_json::from_str(parked.body().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_stream_gave_up_on_in_an_outage_reach_the_bus_after_it_by_the_redrive_and_the_sweep() {
    let _reader = ONE_READER.lock().await;
    let stack = Stack::new().await;
    let (org, queue, checkpoint) = stack.fresh_org("outage").await;
    let start = std::fs::read_to_string(&checkpoint).unwrap_or_default();

    // Two changes committed while PutEvents fails: the bus's endpoint is a closed port of this machine.
    let first: Vec<DomainEvent> = (0..12).map(|n| export_ready(&org, n)).collect();
    stack.store.put_audit(&org, &audit_entry(1), &first).await.unwrap();
    let second = vec![export_ready(&org, 12)];
    stack.store.put_audit(&org, &audit_entry(2), &second).await.unwrap();
    let written: Vec<String> = first.iter().chain(&second).map(|e| e.id.to_string()).collect();
    let down = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&stack.config).endpoint_url("http://127.0.0.1:1").build(),
    );
    let quick = Retry { attempts: 2, first_delay: Duration::from_millis(10), max_delay: Duration::from_millis(10) };
    // The mapping retries until a record is 2 s old (the template's hour, shortened), then gives up.
    let settings = gateway::Template::of_project().unwrap().stream.with_max_record_age(Duration::from_secs(2));
    let reader = stack.start_reader(stack.gateway(&down, Some(quick)), &checkpoint, settings);
    // The reader moves its checkpoint once it is done with a page: published or given up on.
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&checkpoint).unwrap_or_default() == start {
        assert!(std::time::Instant::now() < until, "the stream mapping never gave up on the records");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    reader.abort();
    let _ = reader.await;
    assert!(stack.receive(&queue, 1, Duration::from_secs(1)).await.is_empty(), "the bus was down");
    for key in [store::keys::outbox_pk(&org, first[0].id), store::keys::outbox_pk(&org, second[0].id)] {
        let item = stack.outbox_attributes(&key).await;
        assert!(item.contains_key("GSI4PK") && !item.contains_key("publishedAt"), "not confirmed: {item:?}");
    }

    // The bus is back. The operator's redrive of the failed-events queue publishes what the records
    // the mapping gave up on name.
    let gw = stack.gateway(&stack.events, None);
    let redriven = gw.invoke(gateway::stream::PUBLISHER, json!({"redrive": "failed-events"})).await.unwrap();
    assert_eq!(redriven.get("stopped"), None, "{redriven}");
    assert!(redriven["published"].as_u64().unwrap() >= 2, "{redriven}");
    let delivered = stack.receive(&queue, written.len(), Duration::from_secs(30)).await;
    let mut ids: Vec<String> = delivered.iter().map(|e| e["detail"]["eventId"].as_str().unwrap().to_owned()).collect();
    assert!(ids.len() >= written.len(), "at least once: {} of {}", ids.len(), written.len());
    ids.sort();
    ids.dedup();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(ids, expected, "every event committed in the outage, once by eventId");
    let confirmed = stack.outbox_attributes(&store::keys::outbox_pk(&org, first[0].id)).await;
    assert!(confirmed.contains_key("publishedAt") && !confirmed.contains_key("GSI4PK"), "{confirmed:?}");

    // A redrive again, and the schedule's sweep: nothing new by eventId.
    let again = gw.invoke(gateway::stream::PUBLISHER, json!({"redrive": "failed-events"})).await.unwrap();
    assert_eq!(again.get("stopped"), None, "{again}");
    let swept = gw.invoke(gateway::stream::PUBLISHER, json!({"sweep": "unconfirmed"})).await.unwrap();
    assert_eq!(swept.get("stopped"), None, "{swept}");
    let repeated = stack.receive(&queue, 1, Duration::from_secs(3)).await;
    assert!(
        repeated.iter().all(|e| written.iter().any(|id| e["detail"]["eventId"] == json!(id))),
        "only duplicates: {repeated:?}"
    );

    // A change whose stream record is lost altogether (the mapping never saw it): the sweep publishes
    // it once the stream would have given up on it — here its cutoff is now, not 75 minutes ago.
    let lost = vec![export_ready(&org, 13)];
    stack.store.put_audit(&org, &audit_entry(3), &lost).await.unwrap();
    gateway::stream::skip_to_end(&stack.dynamodb, &stack.table, checkpoint.clone()).await.unwrap();
    let publisher = stack.publisher(&stack.events);
    let made = lost[0].time - chrono::Duration::seconds(5);
    let swept =
        events::outbox::sweep(&publisher, made, Utc::now() + chrono::Duration::seconds(1), Duration::from_secs(60))
            .await;
    assert_eq!((swept.stopped.as_deref(), swept.published >= 1), (None, true), "{swept:?}");
    let delivered = stack.receive(&queue, 1, Duration::from_secs(30)).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["detail"]["eventId"], json!(lost[0].id));
    let _ = std::fs::remove_file(&checkpoint);
}
