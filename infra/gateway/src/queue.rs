//! SQS event source mappings, as Lambda runs them, from the template's `SQS` events.
//!
//! For each mapping a poller receives up to `BatchSize` messages (10 at most per receive, as SQS
//! allows) and invokes the function with Lambda's SQS event. Then, as Lambda does:
//! - the function failed (an error, or throttled at its reserved concurrency): nothing is deleted; the
//!   batch comes again after the queue's visibility timeout;
//! - with `ReportBatchItemFailures`, the records the answer's `batchItemFailures` names stay, the
//!   others are deleted (an answer naming a record the batch did not have fails the whole batch);
//! - otherwise the whole batch is deleted.
//!
//! The queue itself (moto) applies what its template attributes say: `DelaySeconds`, a message's own
//! delay, the visibility timeout, and `RedrivePolicy`'s `maxReceiveCount` → its dead-letter queue. The
//! local stack creates the queues with the template's attributes but a visibility timeout of a few
//! seconds (`infra/local/resources.py`), so a retry comes in seconds; while a batch runs, the poller
//! keeps its messages invisible, standing in for the template's rule that the visibility timeout
//! outlasts the function's timeout (a local function has none).
//!
//! Each delivery is recorded per message ([`Deliveries`]), for tests to see what came again.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName};
use serde_json::{Value, json};

use crate::{Gateway, GatewayError};

/// One `SQS` event of a function in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub function: String,
    /// The queue's logical id.
    pub queue: String,
    pub batch_size: i32,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`: batches in flight at once (Lambda's default: as many as the
    /// function's concurrency allows; here 2).
    pub max_concurrency: usize,
}

impl Mapping {
    /// The environment variable that holds the queue's URL: the logical id in upper snake case, then
    /// `_URL` (`OrgJobsQueue` → `ORG_JOBS_QUEUE_URL`), as the template passes it to its functions and
    /// the local stack exports it.
    pub fn url_variable(&self) -> String {
        url_variable(&self.queue)
    }
}

/// `OrgJobsQueue` → `ORG_JOBS_QUEUE_URL`.
pub fn url_variable(logical_id: &str) -> String {
    let mut name = String::new();
    for (i, c) in logical_id.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name + "_URL"
}

/// Every `SQS` event of the template's functions.
pub(crate) fn mappings(
    resources: &serde_yaml_ng::Mapping,
    parameters: &serde_yaml_ng::Value,
) -> Result<Vec<Mapping>, GatewayError> {
    let mut mappings = Vec::new();
    for (logical_id, resource) in resources {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        let function = logical_id.as_str().unwrap_or_default();
        for event in events.values().filter(|e| e["Type"].as_str() == Some("SQS")) {
            let props = &event["Properties"];
            let queue = match &props["Queue"] {
                serde_yaml_ng::Value::Tagged(tagged) if tagged.tag == "GetAtt" => {
                    tagged.value.as_str().and_then(|v| v.strip_suffix(".Arn")).map(str::to_owned)
                }
                _ => None,
            }
            .ok_or_else(|| {
                GatewayError::Template(format!("{function}: an SQS event's Queue must be !GetAtt <Queue>.Arn"))
            })?;
            let types = props["FunctionResponseTypes"].as_sequence();
            let max_concurrency = match &props["ScalingConfig"]["MaximumConcurrency"] {
                serde_yaml_ng::Value::Tagged(tagged) if tagged.tag == "Ref" => {
                    parameters[tagged.value.as_str().unwrap_or_default()]["Default"].as_u64()
                }
                other => other.as_u64(),
            };
            mappings.push(Mapping {
                function: function.to_owned(),
                queue,
                // Lambda's default for a standard queue.
                batch_size: props["BatchSize"].as_i64().unwrap_or(10).clamp(1, 10) as i32,
                report_failures: types.is_some_and(|t| t.iter().any(|t| t.as_str() == Some("ReportBatchItemFailures"))),
                max_concurrency: max_concurrency.unwrap_or(2).clamp(1, 10) as usize,
            });
        }
    }
    Ok(mappings)
}

/// Each message delivered to a function: its body, how often it was delivered, and whether the last
/// delivery succeeded.
#[derive(Debug, Default)]
pub struct Deliveries {
    by_message: Mutex<HashMap<String, Delivery>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub body: Value,
    pub times: u32,
    pub succeeded: bool,
    /// When the function first got it, and when its last delivery ended.
    pub first_at: std::time::Instant,
    pub done_at: std::time::Instant,
    /// When the queue took it (its `SentTimestamp`, milliseconds since the epoch).
    pub sent_ms: Option<i64>,
}

static DELIVERIES: LazyLock<Arc<Deliveries>> = LazyLock::new(Arc::default);

impl Deliveries {
    /// The process's record (every poller of the process writes to it).
    pub fn shared() -> Arc<Deliveries> {
        Arc::clone(&DELIVERIES)
    }

    fn record(&self, message: &aws_sdk_sqs::types::Message, started: std::time::Instant, succeeded: bool) {
        let body = serde_json::from_str(message.body().unwrap_or_default()).unwrap_or(Value::Null);
        let sent_ms = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|ms| ms.parse().ok());
        let now = std::time::Instant::now();
        if let Ok(mut by_message) = self.by_message.lock() {
            let entry = by_message.entry(message.message_id().unwrap_or_default().to_owned()).or_insert(Delivery {
                body,
                times: 0,
                succeeded,
                first_at: started,
                done_at: now,
                sent_ms,
            });
            entry.times += 1;
            entry.succeeded = succeeded;
            entry.done_at = now;
        }
    }

    /// A message's deliveries, by its id.
    pub fn of(&self, message_id: &str) -> Option<Delivery> {
        self.by_message.lock().ok()?.get(message_id).cloned()
    }

    /// The deliveries of the messages whose body `matches`.
    pub fn matching(&self, matches: impl Fn(&Value) -> bool) -> Vec<Delivery> {
        let Ok(by_message) = self.by_message.lock() else { return Vec::new() };
        by_message.values().filter(|d| matches(&d.body)).cloned().collect()
    }
}

/// Polls every mapping's queue and delivers its batches until the process ends.
pub async fn deliver(gateway: Gateway, sqs: aws_sdk_sqs::Client, mappings: Vec<Mapping>) -> Result<(), GatewayError> {
    let mut pollers = Vec::new();
    for mapping in mappings {
        let variable = mapping.url_variable();
        let url = std::env::var(&variable).map_err(|_| {
            GatewayError::Bus(format!("{variable} not set: the local stack makes the template's queues"))
        })?;
        let arn = queue_attribute(&sqs, &url, aws_sdk_sqs::types::QueueAttributeName::QueueArn).await?;
        let visibility: i32 = queue_attribute(&sqs, &url, aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
            .await?
            .parse()
            .unwrap_or(30);
        let mapping = Arc::new(mapping);
        for _ in 0..mapping.max_concurrency {
            let poller = Poller {
                gateway: gateway.clone(),
                sqs: sqs.clone(),
                mapping: Arc::clone(&mapping),
                url: url.clone(),
                arn: arn.clone(),
                visibility,
            };
            pollers.push(poller.run());
        }
    }
    futures::future::join_all(pollers).await;
    Ok(())
}

async fn queue_attribute(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: aws_sdk_sqs::types::QueueAttributeName,
) -> Result<String, GatewayError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .map_err(|e| GatewayError::Bus(format!("{url}: {}", aws_sdk_sqs::error::DisplayErrorContext(e))))?;
    out.attributes().and_then(|a| a.get(&name)).cloned().ok_or_else(|| GatewayError::Bus(format!("{url}: no {name}")))
}

struct Poller {
    gateway: Gateway,
    sqs: aws_sdk_sqs::Client,
    mapping: Arc<Mapping>,
    url: String,
    arn: String,
    visibility: i32,
}

impl Poller {
    async fn run(self) {
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(self.mapping.batch_size)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await;
            match received {
                Ok(out) if !out.messages().is_empty() => self.deliver(out.messages.unwrap_or_default()).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(queue = self.url, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receive failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// One batch: the invocation, with the messages kept invisible while it runs, then the deletes.
    async fn deliver(&self, messages: Vec<aws_sdk_sqs::types::Message>) {
        let started = std::time::Instant::now();
        let records: Vec<Value> = messages.iter().map(|m| self.record(m)).collect();
        let event = json!({"Records": records});
        let invocation = self.gateway.invoke(&self.mapping.function, event);
        tokio::pin!(invocation);
        let mut heartbeat = tokio::time::interval(Duration::from_secs((self.visibility.max(2) / 2) as u64));
        heartbeat.tick().await;
        let result = loop {
            tokio::select! {
                result = &mut invocation => break result,
                _ = heartbeat.tick() => self.keep_invisible(&messages).await,
            }
        };
        let failed: Option<Vec<String>> = match result {
            Ok(answer) if answer.get("errorType").is_none() => self.failures(&answer, &messages),
            Ok(answer) => {
                tracing::warn!(function = self.mapping.function, %answer, "batch failed: it comes again");
                None
            }
            Err(error) => {
                tracing::warn!(function = self.mapping.function, %error, "batch not delivered: it comes again");
                None
            }
        };
        let deliveries = Deliveries::shared();
        for message in &messages {
            let id = message.message_id().unwrap_or_default();
            let succeeded = failed.as_ref().is_some_and(|failed| !failed.iter().any(|f| f == id));
            deliveries.record(message, started, succeeded);
            if succeeded && let Some(handle) = message.receipt_handle() {
                let _ = self.sqs.delete_message().queue_url(&self.url).receipt_handle(handle).send().await;
            }
        }
    }

    /// The ids of the records the function reported failed (`None`: the whole batch failed).
    fn failures(&self, answer: &Value, messages: &[aws_sdk_sqs::types::Message]) -> Option<Vec<String>> {
        if !self.mapping.report_failures {
            return Some(Vec::new());
        }
        let Some(failures) = answer.get("batchItemFailures").filter(|f| !f.is_null()) else {
            return Some(Vec::new());
        };
        let ids: Option<Vec<String>> = failures
            .as_array()?
            .iter()
            .map(|f| f["itemIdentifier"].as_str().filter(|id| !id.is_empty()).map(str::to_owned))
            .collect();
        // An identifier that is not one of the batch's: Lambda takes the whole batch as failed.
        let ids = ids?;
        ids.iter().all(|id| messages.iter().any(|m| m.message_id() == Some(id))).then_some(ids)
    }

    async fn keep_invisible(&self, messages: &[aws_sdk_sqs::types::Message]) {
        let entries: Vec<_> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .visibility_timeout(self.visibility)
                    .build()
                    .ok()
            })
            .collect();
        let _ = self.sqs.change_message_visibility_batch().queue_url(&self.url).set_entries(Some(entries)).send().await;
    }

    /// Lambda's record of one message.
    fn record(&self, message: &aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> = message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
            .collect();
        json!({
            "messageId": message.message_id(),
            "receiptHandle": message.receipt_handle(),
            "body": message.body(),
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": message.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_job_queue_mapping_is_read_as_written() {
        let template = crate::Template::of_project().unwrap();
        let jobs = template.queues.iter().find(|m| m.function == "OrgJobsFunction").expect("the job queue's mapping");
        assert_eq!(jobs.queue, "OrgJobsQueue");
        assert_eq!((jobs.batch_size, jobs.report_failures, jobs.max_concurrency), (10, true, 4));
        assert_eq!(jobs.url_variable(), "ORG_JOBS_QUEUE_URL");
        assert_eq!(url_variable("FailedEventsQueue"), "FAILED_EVENTS_QUEUE_URL");
    }
}
