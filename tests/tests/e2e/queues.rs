//! The local stack's SQS event source mapping, end to end: the template's job queue (`OrgJobsQueue`)
//! and its function (`OrgJobsFunction`), as Lambda runs them.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use gateway::queue::Deliveries;
use gateway::seed::SeededOrg;
use serde_json::{Value, json};
use testkit::e2e::{Env, eventually, peek_until};

fn daily_job(org: &SeededOrg) -> String {
    json!({"job": "reminders", "orgId": org.org_id, "date": chrono::Utc::now().date_naive()}).to_string()
}

fn queue_url() -> String {
    std::env::var("ORG_JOBS_QUEUE_URL").expect("the local stack's job queue")
}

/// A batch whose middle message fails every time (not a job the function can read): only that message
/// comes again — the other two ran once — and after the queue's `maxReceiveCount` (5) deliveries the
/// queue parks it in its dead-letter queue (FailedEventsQueue).
#[tokio::test]
async fn only_the_failing_message_of_a_batch_is_retried_and_it_is_dead_lettered_after_max_receives() {
    let env = Env::start().await;
    let ((first, first_due), (second, second_due)) =
        (env.org_owed_reminders("e2e").await, env.org_owed_reminders("e2e").await);
    let marker = uuid::Uuid::new_v4().to_string();
    let poison = json!({"job": "no such job", "orgId": first.org_id, "poison": marker}).to_string();
    let entries = [daily_job(&first), poison, daily_job(&second)]
        .into_iter()
        .enumerate()
        .map(|(i, body)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().unwrap())
        .collect();
    let sent = env.sqs.send_message_batch().queue_url(queue_url()).set_entries(Some(entries)).send().await.unwrap();
    let id_of = |entry: &str| sent.successful().iter().find(|s| s.id() == entry).unwrap().message_id().to_owned();
    let (first_id, poison_id, second_id) = (id_of("0"), id_of("1"), id_of("2"));

    for (org, due) in [(&first, &first_due), (&second, &second_due)] {
        let events = env.drain_at_least(due, 5).await;
        assert_eq!(events.len(), 5, "{}: each learner once: {events:?}", org.org_id);
    }
    // Five deliveries a visibility timeout (the local stack's 5 s) apart, then the move.
    let dead_letters = std::env::var("FAILED_EVENTS_QUEUE_URL").unwrap();
    let parked = peek_until(&env.sqs, &dead_letters, Duration::from_secs(120), |m| {
        m.body().is_some_and(|b| b.contains(&marker))
    })
    .await
    .expect("the failing message in the dead-letter queue");
    assert_eq!(parked.message_id(), Some(poison_id.as_str()), "the same message, moved by its redrive policy");

    let deliveries = Deliveries::shared();
    let poisoned = deliveries.of(&poison_id).unwrap();
    assert_eq!((poisoned.times, poisoned.succeeded), (5, false), "maxReceiveCount deliveries, each failed");
    for id in [first_id, second_id] {
        let ran = deliveries.of(&id).unwrap();
        assert_eq!((ran.times, ran.succeeded), (1, true), "a message that ran is not delivered again: {ran:?}");
    }
}

/// A message sent with a delay reaches the function only once the delay is over, and then runs.
#[tokio::test]
async fn a_delayed_message_is_delivered_after_its_delay() {
    let env = Env::start().await;
    let (org, due_soon) = env.org_owed_reminders("e2e").await;
    let delay = Duration::from_secs(8);
    let sent_at = Instant::now();
    let sent = env
        .sqs
        .send_message()
        .queue_url(queue_url())
        .message_body(daily_job(&org))
        .delay_seconds(delay.as_secs() as i32)
        .send()
        .await
        .unwrap();
    let id = sent.message_id().unwrap().to_owned();
    let delivered = eventually("the delayed message's delivery", || async { Deliveries::shared().of(&id) }).await;
    let waited = delivered.first_at - sent_at;
    // moto counts the delay in whole seconds from its own receipt of the message.
    assert!(waited >= delay - Duration::from_millis(500), "delivered {waited:?} after it was sent");
    let events = env.drain_at_least(&due_soon, 5).await;
    assert_eq!(events.len(), 5, "then it runs: {events:?}");
    let done: Value = json!(Deliveries::shared().of(&id).map(|d| (d.times, d.succeeded)));
    assert_eq!(done, json!([1, true]));
}
