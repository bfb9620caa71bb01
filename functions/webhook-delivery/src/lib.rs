//! The webhook delivery function, on the delivery queue: each message is one task — an attempt of a
//! delivery, or a page of an endpoint's recovery (`service::webhooks::deliver`). The records of a
//! batch run at once, so one slow receiver does not hold the others back; a record whose task failed
//! (the table or the queue did not answer) is named in the answer and comes again (then the
//! dead-letter queue). A receiver's failure is not the function's: it is recorded and retried on the
//! delivery's schedule.

use domain::webhook::Schedule;
use events::webhooks::{DeliveryQueue, HttpPost, KmsVault};
use serde_json::{Value, json};
use service::webhooks::Task;
use service::webhooks::deliver::{Deliverer, Pacing};

/// What this function builds once per container.
pub struct Delivery {
    pub consumer: events::Consumer,
    pub queue: DeliveryQueue,
    /// Opens the endpoints' secrets (only this function's role may decrypt).
    pub vault: KmsVault,
    /// Public HTTPS receivers only (`webhooks::Sender::public`) in every deployed function.
    pub sender: HttpPost,
    /// The standard schedule in every deployed function.
    pub schedule: Schedule,
    pub pacing: Pacing,
}

impl events::entry::Context for Delivery {
    async fn from_env() -> Result<Self, events::entry::Error> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Self {
            consumer: events::Consumer::from_env_with(&config)?,
            queue: DeliveryQueue::from_env(&config)?,
            vault: KmsVault::from_env(&config)?,
            sender: HttpPost(webhooks::Sender::public()?),
            schedule: Schedule::default(),
            pacing: Pacing::DEFAULT,
        })
    }
}

/// This function's handler, for its `main.rs` and the local gateway.
pub const HANDLER: events::entry::Handler<Delivery> = |delivery, event| Box::pin(handle(delivery, event));

async fn handle(delivery: &Delivery, event: Value) -> Result<Value, events::ConsumerError> {
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        // One task invoked directly (an operator's).
        return run(delivery, &event).await.map(|outcome| json!({"outcome": outcome}));
    };
    let runs = records.iter().map(|record| async move {
        let body = record["body"].as_str().and_then(|b| serde_json::from_str::<Value>(b).ok()).unwrap_or_default();
        (record["messageId"].as_str().unwrap_or_default().to_owned(), run(delivery, &body).await)
    });
    let mut failures = Vec::new();
    for (message_id, result) in futures::future::join_all(runs).await {
        if let Err(error) = result {
            tracing::warn!(message_id, %error, "a webhook task failed; it comes again");
            failures.push(json!({"itemIdentifier": message_id}));
        }
    }
    Ok(json!({"batchItemFailures": failures}))
}

/// Runs one task; a malformed one is logged and dropped.
async fn run(delivery: &Delivery, task: &Value) -> Result<String, events::ConsumerError> {
    let task: Task = match serde_json::from_value(task.clone()) {
        Ok(task) => task,
        Err(_) => {
            tracing::warn!("dropping a malformed webhook task");
            return Ok("dropped".into());
        }
    };
    let deliverer = Deliverer {
        queue: &delivery.queue,
        vault: &delivery.vault,
        sender: &delivery.sender,
        schedule: &delivery.schedule,
        pacing: delivery.pacing,
    };
    let ctx = delivery.consumer.ctx();
    match events::consumer::outcome(deliverer.run(&ctx, task).await)? {
        Ok(outcome) => Ok(format!("{outcome:?}")),
        Err(reason) => {
            tracing::warn!(reason, "a webhook task dropped");
            Ok(format!("dropped: {reason}"))
        }
    }
}
