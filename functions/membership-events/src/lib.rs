//! Consumer of `platform.users` (`user.created`, `user.updated`, `user.deactivated`) and `platform.teams` (`team.member_added`, `team.member_removed`, `team.renamed`, `team.deleted`): keeps the user and team projection current and moves learners into and out of assignments.
//!
//! The rules live in the shared `events` crate ([`events::Consumer`]); this crate is the Lambda
//! the template's rule invokes, and what the local gateway runs for that rule.

use serde_json::Value;

pub async fn handle(consumer: &events::Consumer, event: Value) -> Result<Value, events::ConsumerError> {
    consumer.handle(event).await
}
