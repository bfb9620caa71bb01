//! Consumer of `platform.content` `custom_course.updated`: re-resolves what assignments on the course track.
//!
//! The rules live in the shared `events` crate ([`events::Consumer`]); this crate is the Lambda
//! the template's rule invokes, and what the local gateway runs for that rule.

use serde_json::Value;

pub async fn handle(consumer: &events::Consumer, event: Value) -> Result<Value, events::ConsumerError> {
    consumer.handle(event).await
}
