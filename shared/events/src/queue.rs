//! An SQS queue the service sends to: the scheduled jobs' org runs (`jobs`) and the workers' requests
//! (`work`).

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::Serialize;

use crate::{ConsumerError, MissingVariable};

/// Entries per `SendMessageBatch` (SQS's limit).
const SEND_BATCH: usize = 10;
/// Sends of a batch's failed entries before the send fails (and its caller is retried: a message sent
/// twice is run twice, which every consumer makes harmless).
const SEND_ATTEMPTS: usize = 3;

/// A queue, by URL.
#[derive(Debug, Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    /// The queue the environment variable `var` names, with a client from `config`.
    pub fn from_var(config: &aws_config::SdkConfig, var: &'static str) -> Result<Self, MissingVariable> {
        let url = std::env::var(var).map_err(|_| MissingVariable(var))?;
        Ok(Self::new(aws_sdk_sqs::Client::new(config), url))
    }

    /// Puts `messages` (as JSON) on the queue, ten to a call; entries SQS refused are sent again (a
    /// bounded number of times).
    pub async fn send<T: Serialize>(&self, messages: &[T]) -> Result<(), ConsumerError> {
        let undelayed: Vec<(&T, i32)> = messages.iter().map(|m| (m, 0)).collect();
        self.send_delayed(&undelayed).await
    }

    /// [`Queue::send`], each message hidden for its own delay first (in seconds, at most 900).
    pub async fn send_delayed<T: Serialize>(&self, messages: &[(T, i32)]) -> Result<(), ConsumerError> {
        for chunk in messages.chunks(SEND_BATCH) {
            let mut waiting: Vec<(String, String, i32)> = chunk
                .iter()
                .enumerate()
                .map(|(i, (message, delay))| {
                    Ok((i.to_string(), serde_json::to_string(message)?, (*delay).clamp(0, 900)))
                })
                .collect::<Result<_, serde_json::Error>>()
                .map_err(|e| ConsumerError::Unavailable(format!("a queue message: {e}")))?;
            for attempt in 1..=SEND_ATTEMPTS {
                let entries = waiting
                    .iter()
                    .map(|(id, body, delay)| {
                        let entry = SendMessageBatchRequestEntry::builder().id(id).message_body(body);
                        if *delay > 0 { entry.delay_seconds(*delay) } else { entry }.build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ConsumerError::Unavailable(e.to_string()))?;
                let failed = match self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => out.failed().iter().map(|f| f.id().to_owned()).collect::<Vec<_>>(),
                    Err(e) if attempt < SEND_ATTEMPTS => {
                        tracing::warn!(attempt, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "messages not sent; again");
                        waiting.iter().map(|(id, _, _)| id.clone()).collect()
                    }
                    Err(e) => {
                        return Err(ConsumerError::Unavailable(format!(
                            "queue: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(e)
                        )));
                    }
                };
                waiting.retain(|(id, _, _)| failed.contains(id));
                if waiting.is_empty() {
                    break;
                }
            }
            if !waiting.is_empty() {
                return Err(ConsumerError::Unavailable(format!("queue refused {} messages", waiting.len())));
            }
        }
        Ok(())
    }

    /// Makes the message of `receipt` visible again in `after` (a retry sooner than the queue's
    /// visibility timeout, which is sized for a run's longest time).
    pub async fn retry_in(&self, receipt: &str, after: std::time::Duration) -> Result<(), ConsumerError> {
        let seconds = i32::try_from(after.as_secs()).unwrap_or(i32::MAX);
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ConsumerError::Unavailable(format!("queue: {}", aws_sdk_sqs::error::DisplayErrorContext(e))))
    }

    /// Up to 10 messages of the queue (waiting a second for them), each with its receipt handle,
    /// hidden from other readers for `hidden`.
    pub async fn receive(
        &self,
        hidden: std::time::Duration,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, ConsumerError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(i32::try_from(hidden.as_secs()).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| {
                ConsumerError::Unavailable(format!("queue: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))
            })?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Deletes the message of `receipt`: it was handled.
    pub async fn delete(&self, receipt: &str) -> Result<(), ConsumerError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| ConsumerError::Unavailable(format!("queue: {}", aws_sdk_sqs::error::DisplayErrorContext(e))))
    }
}
