//! The table's stream (template: a `DynamoDB` event filtered to new outbox items) → PutEvents: every
//! domain event leaves through here, once the transaction that wrote it has committed. See
//! [`events::outbox`].

use serde_json::Value;

/// This function's handler, for its `main.rs` and the local gateway. It never fails the invocation:
/// a record it could not send is reported (partial batch response) and the stream retries from it.
pub const HANDLER: events::entry::Handler<events::Publisher> = |publisher, event| Box::pin(handle(publisher, event));

pub async fn handle(publisher: &events::Publisher, batch: Value) -> Result<Value, events::ConsumerError> {
    let outcome = events::outbox::publish_batch(publisher, &batch).await;
    Ok(outcome.response())
}
