//! Consumer of `platform.training` `challenge.completed` and `scenario.completed`: marks the item done on every active assignment of the learner that tracks it, with the counters in the same transaction.
//!
//! The rules live in the shared `events` crate ([`events::Consumer`]); this crate is the Lambda
//! the template's rule invokes, and what the local gateway runs for that rule.

use serde_json::Value;

pub async fn handle(consumer: &events::Consumer, event: Value) -> Result<Value, events::ConsumerError> {
    consumer.handle(event).await
}
