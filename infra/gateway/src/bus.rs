//! Local EventBridge delivery through the template's own rules (and, on the same thread, the table's
//! stream and the SQS event source mappings: see `stream` and `queue`).
//!
//! Each `EventBridgeRule` event of a function in `template.yaml` becomes a rule on the moto server with
//! the template's pattern, targeting an SQS queue of that function; a poller hands each message to the
//! function as Lambda would and deletes it only when the function succeeded (a failure is retried
//! after the visibility timeout, like EventBridge's retry policy). A typo in a pattern therefore
//! stops delivery here exactly as it would on AWS.

use std::time::Duration;

use serde_json::Value;

use crate::{Gateway, GatewayError, Template};

/// Seconds a failed or in-flight message stays invisible before another delivery.
const VISIBILITY_SECONDS: i32 = 2;

/// One rule of the template: which function, the pattern, and the bus (`None` = the default bus).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub function: String,
    pub event: String,
    pub pattern: Value,
    pub bus: Option<String>,
}

impl Rule {
    /// Rule and queue name (≤ 64 characters; one local stack per moto server).
    pub fn name(&self) -> String {
        format!("{}-{}", self.function, self.event)
    }
}

/// Every `EventBridgeRule` event of the template's functions.
pub(crate) fn rules(resources: &serde_yaml_ng::Mapping) -> Result<Vec<Rule>, GatewayError> {
    let mut rules = Vec::new();
    for (logical_id, resource) in resources {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for (name, event) in events.iter().filter(|(_, e)| e["Type"].as_str() == Some("EventBridgeRule")) {
            let pattern = resolve_refs(&event["Properties"]["Pattern"])?;
            let pattern: Value = serde_json::to_value(&pattern).map_err(|e| GatewayError::Template(e.to_string()))?;
            if !pattern.is_object() {
                return Err(GatewayError::Template(format!(
                    "{logical_id:?}.{name:?}: EventBridgeRule without Pattern"
                )));
            }
            rules.push(Rule {
                function: logical_id.as_str().unwrap_or_default().to_owned(),
                event: name.as_str().unwrap_or_default().to_owned(),
                pattern,
                bus: bus_name(&event["Properties"]["EventBusName"])?,
            });
        }
    }
    Ok(rules)
}

/// A pattern as EventBridge gets it: `!Ref SarifUploadBucket` is the local stack's uploads bucket
/// (`SARIF_BUCKET`); any other intrinsic in a pattern is refused (the local bus could not match it).
fn resolve_refs(value: &serde_yaml_ng::Value) -> Result<serde_yaml_ng::Value, GatewayError> {
    use serde_yaml_ng::Value as Yaml;
    Ok(match value {
        Yaml::Tagged(tagged) if tagged.tag == "Ref" && tagged.value.as_str() == Some("SarifUploadBucket") => {
            Yaml::String(std::env::var("SARIF_BUCKET").map_err(|_| {
                GatewayError::Template("a rule on the uploads bucket needs SARIF_BUCKET (the local stack's)".into())
            })?)
        }
        Yaml::Tagged(tagged) => {
            return Err(GatewayError::Template(format!("a pattern with {} cannot be matched locally", tagged.tag)));
        }
        Yaml::Sequence(items) => Yaml::Sequence(items.iter().map(resolve_refs).collect::<Result<_, _>>()?),
        Yaml::Mapping(map) => Yaml::Mapping(
            map.iter().map(|(k, v)| Ok((k.clone(), resolve_refs(v)?))).collect::<Result<_, GatewayError>>()?,
        ),
        other => other.clone(),
    })
}

/// A rule's bus: a name as written, or the service's own bus (`!Ref AssignmentsEventBus`: the local
/// stack made it as `EVENT_BUS_NAME`); none is the default bus.
fn bus_name(value: &serde_yaml_ng::Value) -> Result<Option<String>, GatewayError> {
    match value {
        serde_yaml_ng::Value::Null => Ok(None),
        serde_yaml_ng::Value::String(name) => Ok(Some(name.clone())),
        serde_yaml_ng::Value::Tagged(tagged)
            if tagged.tag == "Ref" && tagged.value.as_str() == Some("AssignmentsEventBus") =>
        {
            std::env::var("EVENT_BUS_NAME").map(Some).map_err(|_| {
                GatewayError::Template("a rule on the service's bus needs EVENT_BUS_NAME (the local stack's)".into())
            })
        }
        other => Err(GatewayError::Template(format!("EventBusName {other:?}: a name or !Ref AssignmentsEventBus"))),
    }
}

/// Installs the rules on the local EventBridge (moto) with an SQS queue per rule; returns each rule's
/// queue URL. Idempotent: installing again updates the same rules and queues.
pub async fn install(
    rules: &[Rule],
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
) -> Result<Vec<(Rule, String)>, GatewayError> {
    let err = |e: &dyn std::fmt::Display| GatewayError::Bus(e.to_string());
    let mut installed = Vec::new();
    for rule in rules {
        let name = rule.name();
        let queue = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, VISIBILITY_SECONDS.to_string())
            .send()
            .await
            .map_err(|e| err(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let url = queue.queue_url().unwrap_or_default().to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| err(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| GatewayError::Bus(format!("queue {name} has no ARN")))?;
        events
            .put_rule()
            .name(&name)
            .set_event_bus_name(rule.bus.clone())
            .event_pattern(rule.pattern.to_string())
            .send()
            .await
            .map_err(|e| err(&aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
        events
            .put_targets()
            .rule(&name)
            .set_event_bus_name(rule.bus.clone())
            .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().map_err(|e| err(&e))?)
            .send()
            .await
            .map_err(|e| err(&aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
        installed.push((rule.clone(), url));
    }
    Ok(installed)
}

/// Polls each rule's queue and delivers its events to the rule's function, until the process ends.
pub async fn deliver(gateway: Gateway, sqs: aws_sdk_sqs::Client, installed: Vec<(Rule, String)>) {
    let pollers = installed.into_iter().map(|(rule, url)| {
        let (gateway, sqs) = (gateway.clone(), sqs.clone());
        async move {
            loop {
                let received =
                    sqs.receive_message().queue_url(&url).max_number_of_messages(10).wait_time_seconds(1).send().await;
                let messages = match received {
                    Ok(out) => out.messages.unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!(queue = url, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receive failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                for message in messages {
                    let event: Value = match serde_json::from_str(message.body().unwrap_or_default()) {
                        Ok(event) => event,
                        Err(e) => {
                            tracing::warn!(rule = rule.name(), error = %e, "not an event; dropped");
                            Value::Null
                        }
                    };
                    let ok = event.is_null()
                        || match gateway.invoke(&rule.function, event).await {
                            Ok(result) => result.get("errorType").is_none(),
                            Err(e) => {
                                tracing::warn!(rule = rule.name(), error = %e, "delivery failed");
                                false
                            }
                        };
                    if ok && let Some(handle) = message.receipt_handle() {
                        let _ = sqs.delete_message().queue_url(&url).receipt_handle(handle).send().await;
                    }
                }
            }
        }
    });
    futures::future::join_all(pollers).await;
}

/// The queues the local stack made (`ORG_JOBS_QUEUE_URL`, `ROSTER_WORK_QUEUE_URL`,
/// `EXPORT_WORK_QUEUE_URL`, `PARKED_EVENTS_QUEUE_URL`, `FAILED_EVENTS_QUEUE_URL`), on a client that records the functions' permissions.
pub fn queues(sqs: &aws_sdk_sqs::Client) -> Result<Queues, GatewayError> {
    let queue = |var: &str| {
        let url = std::env::var(var).map_err(|_| GatewayError::Bus(format!("{var} not set")))?;
        Ok::<_, GatewayError>(events::queue::Queue::new(crate::iam::sqs(sqs), url))
    };
    Ok(Queues {
        jobs: queue(events::jobs::QUEUE_URL_VAR)?,
        roster: queue(events::work::ROSTER_QUEUE_URL_VAR)?,
        export: queue(events::work::EXPORT_QUEUE_URL_VAR)?,
        parked: queue(events::consumer::PARKED_QUEUE_URL_VAR)?,
        failed: queue(events::outbox::FAILED_EVENTS_QUEUE_URL_VAR)?,
        webhooks: queue(events::webhooks::DELIVERY_QUEUE_URL_VAR)?,
    })
}

/// The queues the service's functions send to: the scheduled jobs', the workers' and the parked events'.
#[derive(Debug, Clone)]
pub struct Queues {
    pub jobs: events::queue::Queue,
    pub roster: events::queue::Queue,
    pub export: events::queue::Queue,
    /// Where the platform consumers park events dated ahead of the clock.
    pub parked: events::queue::Queue,
    /// Where the outbox publisher parks what it can never send, and what it redrives.
    pub failed: events::queue::Queue,
    /// The webhook delivery queue (the endpoints function, the dispatcher and the delivery send to it).
    pub webhooks: events::queue::Queue,
}

/// Installs the template's rules and delivers their events on a thread of its own, for the life of
/// the process (tests start many gateways on short-lived runtimes; delivery must outlive them).
/// Builds its own clients and gateway from the environment the local stack wrote.
pub fn start_in_background(template: Template, session_secret: Vec<u8>) -> Result<(), GatewayError> {
    let Template { routes, rules, reserved, stream, queues, job_budget, webhook_schedule, .. } = template;
    crate::concurrency::Concurrency::shared().reserve(&reserved);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("local-event-delivery".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(GatewayError::Bus(e.to_string())));
                    return;
                }
            };
            runtime.block_on(async move {
                let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
                let (events, sqs) = (aws_sdk_eventbridge::Client::new(&config), aws_sdk_sqs::Client::new(&config));
                let setup = async {
                    let table =
                        std::env::var("TABLE_NAME").map_err(|_| GatewayError::Bus("TABLE_NAME not set".into()))?;
                    let bus = std::env::var("EVENT_BUS_NAME")
                        .map_err(|_| GatewayError::Bus("EVENT_BUS_NAME not set".into()))?;
                    let store =
                        store::Store::new(crate::iam::dynamodb(&aws_sdk_dynamodb::Client::new(&config)), table.clone());
                    let publisher = events::Publisher::new(crate::iam::eventbridge(&events), bus);
                    let mut bucket = exports::Bucket::from_env(&config).map_err(GatewayError::Bus)?;
                    bucket.client = crate::iam::s3(&bucket.client);
                    let jobs = self::queues(&sqs)?;
                    let gateway = Gateway::new(api::App::new(store, &session_secret), publisher, bucket, jobs, routes)?
                        .with_job_budget(job_budget)
                        .with_webhook_schedule(webhook_schedule);
                    let installed = install(&rules, &events, &sqs).await?;
                    let failed_queue = std::env::var("FAILED_EVENTS_QUEUE_URL")
                        .map_err(|_| GatewayError::Bus("FAILED_EVENTS_QUEUE_URL not set".into()))?;
                    Ok::<_, GatewayError>((gateway, installed, table, failed_queue))
                };
                match setup.await {
                    Ok((gateway, installed, table, failed_queue)) => {
                        let _ = ready_tx.send(Ok(()));
                        let outbox = crate::stream::publish(
                            gateway.clone(),
                            aws_sdk_dynamodb::Client::new(&config),
                            sqs.clone(),
                            table,
                            failed_queue,
                            std::env::var_os("OUTBOX_CHECKPOINT_FILE").map(Into::into),
                            stream,
                        );
                        let queues = crate::queue::deliver(gateway.clone(), sqs.clone(), queues);
                        let (published, (), queued) = tokio::join!(outbox, deliver(gateway, sqs, installed), queues);
                        if let Err(e) = published {
                            tracing::error!(error = %e, "the outbox is not published");
                        }
                        if let Err(e) = queued {
                            tracing::error!(error = %e, "the queues are not delivered");
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| GatewayError::Bus(e.to_string()))?;
    ready_rx.recv().map_err(|e| GatewayError::Bus(e.to_string()))?
}
