//! The table's stream, read locally the way Lambda's DynamoDB event source mapping reads it for
//! `OutboxPublisherFunction` (template): DynamoDB Local implements the Streams API. Records pass the
//! template's filter (new outbox items) in batches of up to 100 per shard, in order; the function's
//! partial batch response resumes from the first failed record; a batch that keeps failing is halved
//! until the bad record is alone, which after its retries goes to the failed-events queue, and reading
//! goes on after it.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{OperationType, Record, ShardIteratorType};
use serde_json::{Value, json};

use crate::{Gateway, GatewayError};

/// The function the template maps the stream to.
pub const PUBLISHER: &str = "OutboxPublisherFunction";
/// Tries of one batch before it is halved (the template's `MaximumRetryAttempts` is 10; locally a
/// failure should surface in seconds, not minutes).
const RETRIES: u32 = 3;
const BATCH: i32 = 100;
const IDLE: Duration = Duration::from_millis(100);

/// Reads the stream of `table` for the life of the process and hands its new outbox items to the
/// publisher function through `gateway`; what cannot be published goes to `failed_queue_url`.
pub async fn publish(
    gateway: Gateway,
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    table: String,
    failed_queue_url: String,
) -> Result<(), GatewayError> {
    let err = |e: String| GatewayError::Bus(format!("stream of {table}: {e}"));
    let described = dynamodb.describe_table().table_name(&table).send().await.map_err(|e| err(e.to_string()))?;
    let arn = described
        .table()
        .and_then(|t| t.latest_stream_arn())
        .ok_or_else(|| err("no stream (StreamSpecification missing)".into()))?
        .to_owned();
    let mapping = Mapping { gateway, sqs, arn: arn.clone(), failed_queue_url };
    // Each shard's next iterator; a closed shard is read to its end, then dropped.
    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    loop {
        let shards = match streams.describe_stream().stream_arn(&arn).send().await {
            Ok(out) => out.stream_description.and_then(|d| d.shards).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "describe stream failed");
                tokio::time::sleep(IDLE * 5).await;
                continue;
            }
        };
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            if iterators.contains_key(id) {
                continue;
            }
            let iterator = streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .ok()
                .and_then(|o| o.shard_iterator);
            iterators.insert(id.to_owned(), iterator);
        }
        let mut read_any = false;
        for iterator in iterators.values_mut() {
            let Some(current) = iterator.clone() else { continue };
            match streams.get_records().shard_iterator(current).limit(BATCH).send().await {
                Ok(out) => {
                    *iterator = out.next_shard_iterator;
                    let records: Vec<Value> =
                        out.records.unwrap_or_default().iter().filter_map(|r| mapping.lambda_record(r)).collect();
                    read_any |= !records.is_empty();
                    if !records.is_empty() {
                        mapping.deliver(records).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "get records failed");
                }
            }
        }
        if !read_any {
            tokio::time::sleep(IDLE).await;
        }
    }
}

struct Mapping {
    gateway: Gateway,
    sqs: aws_sdk_sqs::Client,
    arn: String,
    failed_queue_url: String,
}

impl Mapping {
    /// The record as Lambda delivers it, if it passes the template's filter (a new outbox item).
    fn lambda_record(&self, record: &Record) -> Option<Value> {
        if record.event_name() != Some(&OperationType::Insert) {
            return None;
        }
        let change = record.dynamodb()?;
        let image: serde_dynamo::Item = change.new_image()?.clone().into();
        let image = serde_json::to_value(image).ok()?;
        if image.pointer("/entity/S").and_then(Value::as_str) != Some(store::OUTBOX_ENTITY) {
            return None;
        }
        Some(json!({
            "eventID": record.event_id(),
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "eventSourceARN": self.arn,
            "dynamodb": {
                "NewImage": image,
                "SequenceNumber": change.sequence_number(),
                "StreamViewType": "NEW_IMAGE",
            },
        }))
    }

    /// Delivers `records` until every one is published or parked in the failed-events queue.
    async fn deliver(&self, records: Vec<Value>) {
        let mut pending = vec![records];
        while let Some(mut batch) = pending.pop() {
            let mut tries = 0;
            while !batch.is_empty() {
                let Some(failed_at) = self.invoke(&batch).await else { break };
                batch.drain(..failed_at);
                tries += 1;
                if tries < RETRIES {
                    tokio::time::sleep(IDLE * tries).await;
                    continue;
                }
                if batch.len() > 1 {
                    // Bisect: the second half waits for the first (order is kept).
                    let second = batch.split_off(batch.len() / 2);
                    pending.push(second);
                    pending.push(std::mem::take(&mut batch));
                } else {
                    self.park(&batch[0]).await;
                    batch.clear();
                }
            }
        }
    }

    /// Runs the publisher on `batch`: `None` when all of it was published, else the index of the
    /// first record to deliver again (0 when the invocation itself failed).
    async fn invoke(&self, batch: &[Value]) -> Option<usize> {
        let result = match self.gateway.invoke(PUBLISHER, json!({"Records": batch})).await {
            Ok(result) if result.get("errorType").is_none() => result,
            Ok(error) => {
                tracing::warn!(%error, "outbox publisher failed");
                return Some(0);
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox publisher failed");
                return Some(0);
            }
        };
        let failed = result.pointer("/batchItemFailures/0/itemIdentifier").and_then(Value::as_str)?;
        let index =
            batch.iter().position(|r| r.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str) == Some(failed));
        // An identifier that names no record of the batch fails the whole batch, as on Lambda.
        Some(index.unwrap_or(0))
    }

    /// What Lambda's on-failure destination receives for a stream record it gave up on: where it is.
    async fn park(&self, record: &Value) {
        let sequence = record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).unwrap_or_default();
        let message = json!({
            "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": PUBLISHER},
            "DDBStreamBatchInfo": {
                "streamArn": self.arn,
                "startSequenceNumber": sequence,
                "endSequenceNumber": sequence,
                "batchSize": 1,
            },
            "record": record,
        });
        tracing::error!(%sequence, "outbox record parked in the failed-events queue");
        if let Err(e) =
            self.sqs.send_message().queue_url(&self.failed_queue_url).message_body(message.to_string()).send().await
        {
            tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not park an outbox record");
        }
    }
}
