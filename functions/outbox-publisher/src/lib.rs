//! The table's stream (template: a `DynamoDB` event filtered to new outbox items) → PutEvents: every
//! domain event leaves through here, once the transaction that wrote it has committed; and the sweep
//! (its schedule) and the redrive (an operator's invocation) of what the stream gave up on. See
//! [`events::outbox`].

use serde_json::Value;

/// This function's handler, for its `main.rs` and the local gateway. A stream batch never fails the
/// invocation: a record it could not send is reported (partial batch response) and the stream retries
/// from it.
pub const HANDLER: events::entry::Handler<events::Publisher> = |publisher, event| Box::pin(handle(publisher, event));

pub async fn handle(publisher: &events::Publisher, input: Value) -> Result<Value, events::ConsumerError> {
    events::outbox::handle(publisher, &input).await
}
