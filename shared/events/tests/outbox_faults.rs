//! The outbox publisher under faults moto cannot produce on demand (injected with the SDK's mocking
//! crate), driven the way Lambda's event source mapping drives it: a batch of stream records, the
//! partial batch response, redelivery from the first failed record.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::operation::put_events::{PutEventsError, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_sdk_eventbridge::types::error::InternalException;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use events::Publisher;
use events::outbox::publish_batch;
use serde_json::{Value, json};
use tokio::time::Instant;

/// A stream record of a new outbox item holding `ids` (as Lambda delivers it: DynamoDB JSON).
fn record(sequence: u64, ids: &[String]) -> Value {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            let detail = json!({"eventId": id, "orgId": "acme", "kind": "progress"});
            json!({"M": {"id": {"S": id}, "detailType": {"S": "export.ready"},
                         "detail": {"S": detail.to_string()}, "time": {"S": "2026-11-29T06:00:00Z"}}})
        })
        .collect();
    json!({
        "eventName": "INSERT",
        "dynamodb": {
            "SequenceNumber": format!("{sequence:021}"),
            "NewImage": {"PK": {"S": format!("ORG#acme#OUTBOX#{}", ids[0])}, "SK": {"S": "EVENTS"},
                         "entity": {"S": "outbox"}, "expiresAt": {"N": "1900000000"}, "events": {"L": events}},
        },
    })
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect()
}

/// PutEvents that fails outright until `recovers_at`, then accepts everything and records the
/// `eventId` of each entry it accepted.
fn bus_down_until(recovers_at: Instant) -> (Client, Arc<Mutex<Vec<String>>>) {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let down = mock!(Client::put_events)
        .match_requests(move |_| Instant::now() < recovers_at)
        .then_error(|| PutEventsError::InternalException(InternalException::builder().message("down").build()));
    let seen = accepted.clone();
    let up = mock!(Client::put_events)
        .match_requests(move |req| {
            let mut seen = seen.lock().unwrap();
            for entry in req.entries() {
                let detail: Value = serde_json::from_str(entry.detail().unwrap()).unwrap();
                seen.push(detail["eventId"].as_str().unwrap().to_owned());
            }
            true
        })
        .then_output(|| {
            // One result per entry, none failed (the count of entries is not known here: 10 at most).
            let entries = (0..10).map(|i| PutEventsResultEntry::builder().event_id(format!("e{i}")).build());
            PutEventsOutput::builder().failed_entry_count(0).set_entries(Some(entries.collect())).build()
        });
    (mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&down, &up]), accepted)
}

/// What the event source mapping does with a batch: invoke, then redeliver from the reported record
/// (after a pause) until the whole batch is through. Returns the invocations made.
async fn deliver_like_the_event_source(publisher: &Publisher, records: &[Value]) -> usize {
    let mut from = 0;
    let mut invocations = 0;
    loop {
        invocations += 1;
        let outcome = publish_batch(publisher, &json!({"Records": records[from..]})).await;
        let Some(failed) = outcome.failed_from else { return invocations };
        from = records.iter().position(|r| r["dynamodb"]["SequenceNumber"] == json!(failed)).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_bus_down_for_a_minute_delays_events_but_loses_none_and_sends_none_twice() {
    let started = Instant::now();
    let (client, accepted) = bus_down_until(started + Duration::from_secs(60));
    let publisher = Publisher::new(client, "bus");
    let written = [ids(12), ids(1), ids(25)];
    let records: Vec<Value> = written.iter().enumerate().map(|(i, ids)| record(i as u64 + 1, ids)).collect();

    let invocations = deliver_like_the_event_source(&publisher, &records).await;

    assert!(started.elapsed() >= Duration::from_secs(60), "nothing got through while the bus was down");
    assert!(invocations > 1, "the batch is redelivered while the bus is down ({invocations} invocations)");
    let expected: Vec<String> = written.concat();
    assert_eq!(*accepted.lock().unwrap(), expected, "every event once, in the order committed");
}

#[tokio::test(start_paused = true)]
async fn a_publisher_that_dies_mid_batch_sends_the_rest_later_with_the_same_event_ids() {
    let (client, accepted) = bus_down_until(Instant::now());
    let publisher = Publisher::new(client, "bus");
    let written = [ids(3), ids(4)];
    let records: Vec<Value> = written.iter().enumerate().map(|(i, ids)| record(i as u64 + 1, ids)).collect();

    // The first record goes out, then the function dies before it answers: Lambda invokes it again
    // with the whole batch, so the first record's events are sent twice.
    publish_batch(&publisher, &json!({"Records": records[..1]})).await;
    let outcome = publish_batch(&publisher, &json!({"Records": records})).await;
    assert_eq!((outcome.published_events, outcome.failed_from), (7, None));

    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 3 + 7, "at least once: the redelivered record is sent again");
    // … with the same ids, which is what a consumer drops duplicates by.
    let mut unique = accepted.clone();
    unique.sort();
    unique.dedup();
    let mut expected = written.concat();
    expected.sort();
    assert_eq!(unique, expected);
}

#[tokio::test(start_paused = true)]
async fn a_poison_record_is_reported_so_the_event_source_can_set_it_aside() {
    let (client, accepted) = bus_down_until(Instant::now());
    let publisher = Publisher::new(client, "bus");
    let good = ids(2);
    let mut poison = record(2, &ids(1));
    poison["dynamodb"]["NewImage"]["events"] = json!({"S": "not a list"});
    let records = [record(1, &good), poison, record(3, &ids(1))];

    let outcome = publish_batch(&publisher, &json!({"Records": records})).await;
    assert_eq!(outcome.published_events, 2, "the records before it are published");
    assert_eq!(outcome.response(), json!({"batchItemFailures": [{"itemIdentifier": format!("{:021}", 2)}]}));
    assert_eq!(*accepted.lock().unwrap(), good);
}
