//! The scheduled jobs' queue (SQS, `OrgJobsQueue` in the template).
//!
//! A schedule's function only dispatches: it pages the org registry and puts one [`OrgJob`] per org
//! on the queue ([`dispatch`]). The `org-jobs` function takes them through an SQS event source mapping
//! ([`run_batch`]): each message is one org's part, run side by side with the others of its batch, each
//! on its own budget; a part that stops puts its continuation back at the end of the queue, behind
//! every org already waiting. A part that fails is reported alone (`batchItemFailures`): the queue
//! makes it visible again after its visibility timeout, and after `maxReceiveCount` receipts it is
//! parked in the dead-letter queue (FailedEventsQueue, whose alarm says so) — no other org waits for it.

use std::time::Duration;

use chrono::NaiveDate;
use domain::OrgId;
use serde_json::{Value, json};
use service::jobs::{Budget, Job, OrgJob};
use store::Pages;

use crate::queue::Queue;
use crate::{Consumer, ConsumerError, MissingVariable};

/// How long a part may go on past its budget (the page it is in) before it is cut off: the budget
/// (240 s) plus this stays below the function's timeout (300 s).
const OVERRUN: Duration = Duration::from_secs(45);
/// Parts of one org's run at most: a run that would need more is stopped and logged, never looped.
pub const MAX_PARTS: u32 = 1_000;

/// The job queue's environment variable: its URL.
pub const QUEUE_URL_VAR: &str = "ORG_JOBS_QUEUE_URL";

/// A schedule's function: the table (the org registry), its clock and the job queue.
pub struct Dispatcher {
    pub consumer: Consumer,
    pub queue: Queue,
}

impl crate::entry::Context for Dispatcher {
    async fn from_env() -> Result<Self, crate::entry::Error> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Ok(Self { consumer: Consumer::from_env_with(&config)?, queue: Queue::from_var(&config, QUEUE_URL_VAR)? })
    }
}

/// Puts one run of `job` per org on the queue: every org of the registry; `{"orgIds": [...]}`'s (an
/// operator's rerun for some customers); or, with `{"orgIdPrefix": "…"}`, the registry's orgs whose id
/// starts with it (a rerun for a range of orgs; tests, whose orgs share a prefix). The daily job's day
/// is `{"date": "YYYY-MM-DD"}`'s, else each org's today. Malformed input is dropped (the answer says
/// why); a queue that keeps refusing fails the invocation, which the scheduler retries.
pub async fn dispatch(dispatcher: &Dispatcher, job: Job, input: &Value) -> Result<Value, ConsumerError> {
    let (date, only) = match (run_date(input), only_orgs(input)) {
        (Ok(date), Ok(only)) => (date, only),
        (Err(reason), _) => return Ok(json!({"dropped": reason})),
        (_, Err(reason)) => return Ok(json!({"dropped": reason})),
    };
    let prefix = match input.get("orgIdPrefix") {
        None => None,
        // An org id's own characters, so it can only narrow the registry's ids.
        Some(_) if only.is_some() => return Ok(json!({"dropped": "orgIds or orgIdPrefix, not both"})),
        Some(Value::String(prefix)) if OrgId::parse(prefix).is_ok() => Some(prefix.as_str()),
        Some(_) => return Ok(json!({"dropped": "orgIdPrefix must be the start of an org id"})),
    };
    let ctx = dispatcher.consumer.ctx();
    let run_of = |org: OrgId| {
        let date = (job == Job::Reminders).then(|| date.unwrap_or_else(|| ctx.today(&org)));
        OrgJob::first(job, org, date)
    };
    let mut dispatched = 0;
    if let Some(only) = only {
        dispatched = only.len();
        dispatcher.queue.send(&only.into_iter().map(run_of).collect::<Vec<_>>()).await?;
    } else {
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let orgs = pages.follow(ctx.store.orgs_page(prefix, start).await?);
            dispatched += orgs.len();
            dispatcher.queue.send(&orgs.into_iter().map(run_of).collect::<Vec<_>>()).await?;
        }
    }
    tracing::info!(?job, dispatched, "org runs dispatched");
    Ok(json!({"job": job, "dispatched": dispatched}))
}

/// What the `org-jobs` function builds once: the table, its clock, the queue (for continuations) and
/// the budget of a part.
pub struct Runner {
    pub consumer: Consumer,
    pub queue: Queue,
    /// How long a part works before it hands the rest on: below the function's timeout, with room for
    /// the page it is in (`JOB_BUDGET_SECONDS`).
    pub budget: Duration,
}

/// The budget's environment variable (seconds).
pub const BUDGET_VAR: &str = "JOB_BUDGET_SECONDS";

impl crate::entry::Context for Runner {
    async fn from_env() -> Result<Self, crate::entry::Error> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let budget = std::env::var(BUDGET_VAR)
            .map_err(|_| MissingVariable(BUDGET_VAR))?
            .parse::<f64>()
            .ok()
            .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
            .ok_or("JOB_BUDGET_SECONDS must be a positive number of seconds")?;
        Ok(Self {
            consumer: Consumer::from_env_with(&config)?,
            queue: Queue::from_var(&config, QUEUE_URL_VAR)?,
            budget: Duration::from_secs_f64(budget),
        })
    }
}

/// The `org-jobs` handler: an SQS batch (each record one org's part; the answer names the records
/// that failed), or one [`OrgJob`] invoked directly (an operator's run of one org; tests), whose report
/// is the answer.
pub async fn run_batch(runner: &Runner, event: Value) -> Result<Value, ConsumerError> {
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        let job: OrgJob = match serde_json::from_value(event) {
            Ok(job) => job,
            Err(e) => return Ok(json!({"dropped": format!("not a job: {e}")})),
        };
        return run_with(runner, &job, Budget::of(runner.budget)).await;
    };
    let budget = Budget::of(runner.budget);
    let parts = records.iter().map(|record| async move {
        let id = record["messageId"].as_str().unwrap_or_default().to_owned();
        let job = match serde_json::from_str::<OrgJob>(record["body"].as_str().unwrap_or_default()) {
            Ok(job) => job,
            Err(e) => {
                // Never a dispatcher's: parked for a person to look at, not dropped unseen.
                tracing::error!(message_id = id, error = %e, "not a job message: left to the dead-letter queue");
                return (id, false);
            }
        };
        // A part that overruns its budget by more than a page's worth ends here, failed, before the
        // invocation's timeout would fail the whole batch (and bring back parts that were done).
        match tokio::time::timeout(runner.budget + OVERRUN, run_with(runner, &job, budget)).await {
            Ok(Ok(_)) => (id, true),
            Ok(Err(error)) => {
                tracing::error!(message_id = id, org = %job.org_id, job = ?job.job, part = job.part, %error,
                                "org run failed: retried after the queue's visibility timeout");
                (id, false)
            }
            Err(_) => {
                tracing::error!(message_id = id, org = %job.org_id, job = ?job.job, part = job.part,
                                "org run overran its budget: retried after the queue's visibility timeout");
                (id, false)
            }
        }
    });
    // Only the parts that failed come again (the queue's visibility timeout, then its dead-letter queue).
    let failures: Vec<Value> = futures::future::join_all(parts)
        .await
        .into_iter()
        .filter_map(|(id, done)| (!done).then(|| json!({"itemIdentifier": id})))
        .collect();
    Ok(json!({"batchItemFailures": failures}))
}

/// Runs one part and puts its continuation on the queue; the part's report.
async fn run_with(runner: &Runner, job: &OrgJob, budget: Budget) -> Result<Value, ConsumerError> {
    let ctx = runner.consumer.ctx();
    let run = match crate::consumer::outcome(service::jobs::run(&ctx, job, budget).await)? {
        Ok(run) => run,
        // Never the dispatcher's: a message for a person to look at, parked, not dropped unseen.
        Err(reason) => return Err(ConsumerError::Unavailable(format!("org run refused: {reason}"))),
    };
    let continued = match run.next {
        Some(next) if next.part < MAX_PARTS => {
            runner.queue.send(std::slice::from_ref(&next)).await?;
            true
        }
        Some(next) => {
            tracing::error!(org = %next.org_id, job = ?next.job, parts = next.part, "org run stopped: too many parts");
            false
        }
        None => false,
    };
    Ok(json!({"orgId": job.org_id, "job": job.job, "part": job.part, "continued": continued, "report": run.report}))
}

// The scheduled jobs' input. The scheduler's event carries nothing the jobs need; a manual run (a
// re-run for one customer after an outage; tests) may narrow or move it.

/// `{"orgIds": [...]}` limits a run to those orgs; anything else in the input is ignored. Invalid ids
/// make the input poison.
pub fn only_orgs(input: &Value) -> Result<Option<Vec<OrgId>>, String> {
    let Some(ids) = input.get("orgIds") else { return Ok(None) };
    let ids = ids.as_array().ok_or("orgIds must be an array")?;
    ids.iter()
        .map(|id| {
            id.as_str()
                .ok_or("orgIds must be strings".to_owned())
                .and_then(|id| OrgId::parse(id).map_err(|e| e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `{"date": "YYYY-MM-DD"}` runs a daily job for that day instead of each org's today (`None`).
pub fn run_date(input: &Value) -> Result<Option<NaiveDate>, &'static str> {
    match input.get("date").and_then(Value::as_str) {
        Some(raw) => NaiveDate::parse_from_str(raw, "%Y-%m-%d").map(Some).map_err(|_| "date must be YYYY-MM-DD"),
        None => Ok(None),
    }
}
