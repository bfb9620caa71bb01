//! The table's stream, read locally the way Lambda's DynamoDB event source mapping reads it for
//! `OutboxPublisherFunction` (template): DynamoDB Local implements the Streams API. Records pass the
//! template's filter (new outbox items) in batches of up to 100 per shard, in order; the function's
//! partial batch response resumes from the first failed record; a batch that keeps failing is halved
//! until the bad record is alone, which after its retries goes to the failed-events queue, and reading
//! goes on after it. Where reading stands is kept in a file (the local stack's
//! `OUTBOX_CHECKPOINT_FILE`), as the event source mapping keeps it: a gateway started again goes on from there, so what was
//! committed while none ran is published then, and what was published is not again.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Gateway, GatewayError};

/// The function the template maps the stream to.
pub const PUBLISHER: &str = "OutboxPublisherFunction";
const IDLE: Duration = Duration::from_millis(100);

/// The stream mapping's settings, as the template writes them on the publisher's `DynamoDB` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// `BatchSize`: records per invocation.
    pub batch_size: u32,
    /// `MaximumRetryAttempts`: retries of a failing batch before it is halved (`BisectBatchOnFunctionError`),
    /// and of a failing record alone before it goes to the on-failure destination; `None` (`-1`): until
    /// the record is too old.
    pub retries: Option<u32>,
    /// `MaximumRecordAgeInSeconds`: a record older than this is not delivered again but sent to the
    /// on-failure destination.
    pub max_record_age: Duration,
}

impl StreamSettings {
    /// Local only, for tests that need a failure to surface in seconds: fewer retries.
    pub fn with_retries(self, retries: u32) -> Self {
        Self { retries: Some(retries), ..self }
    }

    /// Local only, for tests that need the mapping to give up within seconds: a shorter record age.
    pub fn with_max_record_age(self, max_record_age: Duration) -> Self {
        Self { max_record_age, ..self }
    }
}

/// The settings of the `DynamoDB` event of the function the stream is mapped to.
pub(crate) fn settings(resources: &serde_yaml_ng::Mapping) -> Result<StreamSettings, GatewayError> {
    let events = resources
        .iter()
        .filter(|(id, _)| id.as_str() == Some(PUBLISHER))
        .flat_map(|(_, function)| function["Properties"]["Events"].as_mapping().into_iter().flatten())
        .map(|(_, event)| event)
        .find(|event| event["Type"].as_str() == Some("DynamoDB"))
        .ok_or_else(|| GatewayError::Template(format!("{PUBLISHER} has no DynamoDB event")))?;
    let number = |name: &str| {
        events["Properties"][name]
            .as_i64()
            .ok_or_else(|| GatewayError::Template(format!("{PUBLISHER}'s stream mapping has no {name}")))
    };
    // -1: no limit.
    let limit = |name: &str| number(name).map(|n| u64::try_from(n).ok());
    Ok(StreamSettings {
        batch_size: u32::try_from(number("BatchSize")?).unwrap_or(u32::MAX),
        retries: limit("MaximumRetryAttempts")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        max_record_age: Duration::from_secs(limit("MaximumRecordAgeInSeconds")?.unwrap_or(u64::MAX / 2)),
    })
}

/// DynamoDB Local's Streams API, spoken as JSON. Not through the SDK: DynamoDB Local's stream writes an
/// empty map attribute as `{}` where DynamoDB writes `{"M": {}}`, and the SDK refuses a whole page over
/// it; here the records are repaired, and they are already the JSON Lambda delivers.
struct Streams {
    http: reqwest::Client,
    endpoint: String,
}

impl Streams {
    async fn call(&self, operation: &str, body: Value) -> Result<Value, String> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("X-Amz-Target", format!("DynamoDBStreams_20120810.{operation}"))
            // DynamoDB Local checks that a request is signed, not the signature.
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{operation}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    /// An iterator on `shard` just after `read_to` (from its oldest record without one, or when that
    /// record has been trimmed); `Some(None)` for a shard with nothing left, `None` on a failure.
    async fn iterator(&self, arn: &str, shard: &str, read_to: Option<&String>) -> Option<Option<String>> {
        let oldest = json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"});
        let request = match read_to {
            Some(sequence) => json!({"StreamArn": arn, "ShardId": shard,
                                      "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": sequence}),
            None => oldest.clone(),
        };
        let out = match self.call("GetShardIterator", request).await {
            Ok(out) => out,
            Err(e) if read_to.is_some() => {
                tracing::warn!(
                    error = e,
                    shard,
                    "checkpoint not in the stream any more; reading from its oldest record"
                );
                self.call("GetShardIterator", oldest)
                    .await
                    .map_err(|e| tracing::warn!(error = e, "get shard iterator failed"))
                    .ok()?
            }
            Err(e) => {
                tracing::warn!(error = e, "get shard iterator failed");
                return None;
            }
        };
        Some(out.get("ShardIterator").and_then(Value::as_str).map(str::to_owned))
    }
}

/// The table's Streams API and its stream's ARN.
async fn open(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(Streams, String), GatewayError> {
    let err = |e: String| GatewayError::Bus(format!("stream of {table}: {e}"));
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL_DYNAMODB"))
        .map_err(|_| err("AWS_ENDPOINT_URL_DYNAMODB not set".into()))?;
    let described = dynamodb.describe_table().table_name(table).send().await.map_err(|e| err(e.to_string()))?;
    let arn = described
        .table()
        .and_then(|t| t.latest_stream_arn())
        .ok_or_else(|| err("no stream (StreamSpecification missing)".into()))?
        .to_owned();
    Ok((Streams { http: reqwest::Client::new(), endpoint }, arn))
}

/// Moves `checkpoint` to the end of the stream of `table` without publishing anything: a reader started
/// from it handles only what is written afterwards (tests that must not send earlier tests' events).
pub async fn skip_to_end(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    checkpoint: std::path::PathBuf,
) -> Result<(), GatewayError> {
    let (streams, arn) = open(dynamodb, table).await?;
    let failed = |e: String| GatewayError::Bus(format!("stream of {table}: {e}"));
    let mut checkpoint = Checkpoint::load(Some(checkpoint), &arn);
    let described = streams.call("DescribeStream", json!({"StreamArn": arn})).await.map_err(failed)?;
    let shards = described.pointer("/StreamDescription/Shards").and_then(Value::as_array).cloned().unwrap_or_default();
    for shard in shards {
        let Some(id) = shard.get("ShardId").and_then(Value::as_str) else { continue };
        let mut iterator = streams.iterator(&arn, id, checkpoint.read_to.get(id)).await.flatten();
        while let Some(current) = iterator {
            let out =
                streams.call("GetRecords", json!({"ShardIterator": current, "Limit": 1000})).await.map_err(failed)?;
            let page = out.get("Records").and_then(Value::as_array).cloned().unwrap_or_default();
            let Some(Value::String(last)) = page.last().and_then(|r| r.pointer("/dynamodb/SequenceNumber")).cloned()
            else {
                break;
            };
            checkpoint.advance(id, last);
            iterator = out.get("NextShardIterator").and_then(Value::as_str).map(str::to_owned);
        }
    }
    Ok(())
}

/// Reads the stream of `table` for the life of the process and hands its new outbox items to the
/// publisher function through `gateway`, as the template's mapping `settings` say; what cannot be
/// published goes to `failed_queue_url`. Where reading stands is kept in `checkpoint` (none: from the
/// oldest record, every time).
pub async fn publish(
    gateway: Gateway,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    table: String,
    failed_queue_url: String,
    checkpoint: Option<std::path::PathBuf>,
    settings: StreamSettings,
) -> Result<(), GatewayError> {
    let (streams, arn) = open(&dynamodb, &table).await?;
    let mapping = Mapping { gateway, sqs, arn: arn.clone(), failed_queue_url, settings };
    let mut checkpoint = Checkpoint::load(checkpoint, &arn);
    // Each shard's next iterator; a closed shard is read to its end, then dropped.
    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    loop {
        let shards = match streams.call("DescribeStream", json!({"StreamArn": arn})).await {
            Ok(out) => out.pointer("/StreamDescription/Shards").and_then(Value::as_array).cloned().unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = e, "describe stream failed");
                tokio::time::sleep(IDLE * 5).await;
                continue;
            }
        };
        for shard in shards {
            let Some(id) = shard.get("ShardId").and_then(Value::as_str) else { continue };
            if iterators.contains_key(id) {
                continue;
            }
            if let Some(iterator) = streams.iterator(&arn, id, checkpoint.read_to.get(id)).await {
                iterators.insert(id.to_owned(), iterator);
            }
        }
        let mut read_any = false;
        let mut lost = Vec::new();
        for (shard, iterator) in iterators.iter_mut() {
            let Some(current) = iterator.clone() else { continue };
            let limit = mapping.settings.batch_size;
            match streams.call("GetRecords", json!({"ShardIterator": current, "Limit": limit})).await {
                Ok(mut out) => {
                    *iterator = out.get("NextShardIterator").and_then(Value::as_str).map(str::to_owned);
                    let Some(Value::Array(page)) = out.get_mut("Records") else { continue };
                    let last = page.last().and_then(|r| r.pointer("/dynamodb/SequenceNumber")).cloned();
                    let records: Vec<Value> = page.iter_mut().filter_map(|r| mapping.lambda_record(r)).collect();
                    if !records.is_empty() {
                        mapping.deliver(records).await;
                    }
                    if let Some(Value::String(last)) = last {
                        read_any = true;
                        checkpoint.advance(shard, last);
                    }
                }
                Err(e) => {
                    // An expired iterator, say: opened again from the checkpoint on the next round.
                    tracing::warn!(error = e, "get records failed");
                    lost.push(shard.clone());
                }
            }
        }
        for shard in lost {
            iterators.remove(&shard);
        }
        if !read_any {
            tokio::time::sleep(IDLE).await;
        }
    }
}

/// The last stream record handled, per shard, kept in a file across gateway runs (none: every run
/// starts at the oldest record the stream keeps, as a new event source mapping does).
struct Checkpoint {
    path: Option<std::path::PathBuf>,
    arn: String,
    read_to: HashMap<String, String>,
}

impl Checkpoint {
    fn load(path: Option<std::path::PathBuf>, arn: &str) -> Self {
        let stored: Value = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        // A checkpoint of another stream (a table made again) does not apply.
        let read_to = match (stored.get("streamArn").and_then(Value::as_str), stored.get("shards")) {
            (Some(stream), Some(shards)) if stream == arn => serde_json::from_value(shards.clone()).unwrap_or_default(),
            _ => HashMap::new(),
        };
        Self { path, arn: arn.to_owned(), read_to }
    }

    fn advance(&mut self, shard: &str, sequence: String) {
        self.read_to.insert(shard.to_owned(), sequence);
        let Some(path) = &self.path else { return };
        let body = json!({"streamArn": self.arn, "shards": self.read_to});
        // Written whole then renamed, so a gateway killed mid-write leaves the previous checkpoint.
        let partial = path.with_extension("partial");
        if let Err(e) = std::fs::write(&partial, body.to_string()).and_then(|()| std::fs::rename(&partial, path)) {
            tracing::warn!(error = %e, "outbox checkpoint not saved");
        }
    }
}

/// `{}` as an attribute value (DynamoDB Local's empty map) becomes `{"M": {}}`, in nested maps and
/// lists too.
fn repair(value: &mut Value) {
    match value {
        Value::Object(av) if av.is_empty() => *value = json!({"M": {}}),
        Value::Object(av) => {
            if let Some(Value::Object(map)) = av.get_mut("M") {
                map.values_mut().for_each(repair);
            }
            if let Some(Value::Array(list)) = av.get_mut("L") {
                list.iter_mut().for_each(repair);
            }
        }
        _ => {}
    }
}

struct Mapping {
    gateway: Gateway,
    sqs: aws_sdk_sqs::Client,
    arn: String,
    failed_queue_url: String,
    settings: StreamSettings,
}

impl Mapping {
    /// The record as Lambda delivers it, if it passes the template's filter (a new outbox item).
    fn lambda_record(&self, record: &mut Value) -> Option<Value> {
        if record.get("eventName").and_then(Value::as_str) != Some("INSERT") {
            return None;
        }
        let change = record.get_mut("dynamodb")?;
        let Some(Value::Object(image)) = change.get_mut("NewImage") else { return None };
        image.values_mut().for_each(repair);
        if change.pointer("/NewImage/entity/S").and_then(Value::as_str) != Some(store::OUTBOX_ENTITY) {
            return None;
        }
        let mut lambda = record.clone();
        lambda["eventSourceARN"] = json!(self.arn);
        Some(lambda)
    }

    /// Delivers `records` until every one is published or parked in the failed-events queue (after
    /// the mapping's retries, or once it is older than the mapping's record age).
    async fn deliver(&self, records: Vec<Value>) {
        let mut pending = vec![records];
        while let Some(mut batch) = pending.pop() {
            let mut tries = 0;
            while !batch.is_empty() {
                let (expired, fresh): (Vec<Value>, Vec<Value>) =
                    batch.into_iter().partition(|record| self.too_old(record));
                for record in &expired {
                    self.park(record, "RecordAgeExceeded").await;
                }
                batch = fresh;
                if batch.is_empty() {
                    break;
                }
                let Some(failed_at) = self.invoke(&batch).await else { break };
                batch.drain(..failed_at);
                tries += 1;
                if self.settings.retries.is_none_or(|retries| tries <= retries) {
                    tokio::time::sleep(IDLE * tries.min(20)).await;
                    continue;
                }
                if batch.len() > 1 {
                    // Bisect: the second half waits for the first (order is kept).
                    let second = batch.split_off(batch.len() / 2);
                    pending.push(second);
                    pending.push(std::mem::take(&mut batch));
                } else {
                    self.park(&batch[0], "RetryAttemptsExhausted").await;
                    batch.clear();
                }
            }
        }
    }

    /// Whether `record` is older than the mapping's `MaximumRecordAgeInSeconds` (its
    /// `ApproximateCreationDateTime`, seconds since the epoch, by the wall clock).
    fn too_old(&self, record: &Value) -> bool {
        let now = service::Clock::wall(&service::SystemClock).timestamp();
        older_than(record, self.settings.max_record_age, now)
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

    /// What Lambda's on-failure destination receives for a stream record it gave up on: where it is
    /// in the stream and when it was written — not the record itself.
    async fn park(&self, record: &Value, condition: &str) {
        let sequence = record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).unwrap_or_default();
        let arrival = record
            .pointer("/dynamodb/ApproximateCreationDateTime")
            .and_then(Value::as_f64)
            .and_then(|seconds| chrono::DateTime::from_timestamp_millis((seconds * 1000.0) as i64))
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let message = json!({
            "requestContext": {"condition": condition, "functionArn": PUBLISHER},
            "DDBStreamBatchInfo": {
                "streamArn": self.arn,
                "startSequenceNumber": sequence,
                "endSequenceNumber": sequence,
                "approximateArrivalOfFirstRecord": arrival,
                "approximateArrivalOfLastRecord": arrival,
                "batchSize": 1,
            },
        });
        tracing::error!(%sequence, "outbox record parked in the failed-events queue");
        if let Err(e) =
            self.sqs.send_message().queue_url(&self.failed_queue_url).message_body(message.to_string()).send().await
        {
            tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not park an outbox record");
        }
    }
}

/// Whether a stream `record` was written more than `age` before `now` (seconds since the epoch).
fn older_than(record: &Value, age: Duration, now: i64) -> bool {
    record
        .pointer("/dynamodb/ApproximateCreationDateTime")
        .and_then(Value::as_f64)
        .is_some_and(|created| now as f64 - created > age.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_follows_the_templates_mapping() {
        let settings = crate::Template::of_project().unwrap().stream;
        // Retried until the record is an hour old (the sweep takes over after: events::outbox).
        assert_eq!(
            settings,
            StreamSettings { batch_size: 100, retries: None, max_record_age: events::outbox::STREAM_RECORD_AGE }
        );
        assert_eq!(settings.with_retries(2).retries, Some(2));
        let written_at = |secs: i64| json!({"dynamodb": {"ApproximateCreationDateTime": secs, "SequenceNumber": "1"}});
        let hour = settings.max_record_age;
        assert!(!older_than(&written_at(1_000_000), hour, 1_000_000 + 3_600), "an hour old: still delivered");
        assert!(older_than(&written_at(1_000_000), hour, 1_000_000 + 3_601), "older: to the on-failure destination");
        assert!(!older_than(&json!({"dynamodb": {}}), hour, i64::MAX), "no time on the record: delivered");
    }
}
