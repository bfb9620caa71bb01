//! Faults injected into the functions' AWS calls, and functions killed mid-run: how the load-and-fault
//! run (`infra/bench`, and its short version among the tests) makes AWS fail the ways it does in
//! production. Off until [`inject`] is called; only calls a function makes (inside
//! [`crate::iam::as_function`]) are touched, never the harness's own.
//!
//! Each DynamoDB, S3, EventBridge and SQS call attempt of a function fails with the plan's probability,
//! in one of four ways:
//! - [`Fault::Throttled`] and [`Fault::ServerError`]: the attempt never reaches the service; it is sent
//!   to a loopback stub that answers as AWS does (`ThrottlingException` / S3's `SlowDown`; a 500
//!   `InternalServerError` / `InternalError`), so the SDK parses, classifies and retries it as it would
//!   a real one;
//! - [`Fault::TimedOutBefore`]: the attempt fails before it is sent (the SDK reports a dispatch failure
//!   and does not retry it), as a call that timed out before it reached the service;
//! - [`Fault::AnswerLost`]: the attempt reaches the service and does what it asks (a write commits), then
//!   its answer is lost (a response error, not retried): the caller cannot tell whether it happened.
//!
//! And an invocation of a function in [`KILLABLE`] is killed, with the plan's probability, a random
//! moment into its run ([`Fault::Killed`]): its future is dropped where it stands, as a process killed
//! mid-run, and Lambda's mapping delivers its batch again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde::Serialize;

/// The functions a plan may kill mid-run: the outbox publisher and the queue workers.
pub const KILLABLE: [&str; 4] =
    ["OutboxPublisherFunction", "RosterWorkerFunction", "ExportWorkerFunction", "OrgJobsFunction"];

/// How long into its run a killed invocation is killed, at most.
const KILL_WITHIN: Duration = Duration::from_millis(300);

/// The header that tells the stub which fault to answer with.
const FAULT_HEADER: &str = "x-local-fault";

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    Throttled,
    ServerError,
    TimedOutBefore,
    AnswerLost,
    Killed,
}

impl Fault {
    /// The faults of a call attempt.
    pub const OF_CALLS: [Fault; 4] = [Fault::Throttled, Fault::ServerError, Fault::TimedOutBefore, Fault::AnswerLost];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttled => "throttled",
            Fault::ServerError => "server-error",
            Fault::TimedOutBefore => "timed-out-before",
            Fault::AnswerLost => "answer-lost",
            Fault::Killed => "killed",
        }
    }
}

/// What to inject.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The probability that a call attempt of a function fails (one of [`Fault::OF_CALLS`], evenly).
    pub call_rate: f64,
    /// The probability that an invocation of a [`KILLABLE`] function is killed.
    pub kill_rate: f64,
    /// The seed of the choices (a run is repeatable as far as its timing allows).
    pub seed: u64,
}

struct State {
    plan: Option<Plan>,
    rng: fastrand::Rng,
    /// Faults injected, by kind and service (`dynamodb`, `s3`, `eventbridge`, `sqs`; `lambda` for kills).
    injected: BTreeMap<(Fault, String), u64>,
}

/// Whether a plan is on: checked before anything else, so a gateway without one (the run command, the
/// other tests) pays one atomic load per call.
static ON: AtomicBool = AtomicBool::new(false);

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| Mutex::new(State { plan: None, rng: fastrand::Rng::with_seed(0), injected: BTreeMap::new() }))
}

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut state = state().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&mut state)
}

/// Starts injecting by `plan` (the counts start again from zero). Starts the stub the first time.
pub fn inject(plan: Plan) {
    stub_port();
    with_state(|state| {
        state.plan = Some(plan);
        state.rng = fastrand::Rng::with_seed(plan.seed);
        state.injected.clear();
    });
    ON.store(true, Ordering::SeqCst);
}

/// Stops injecting; the counts are kept until the next [`inject`].
pub fn stop() {
    ON.store(false, Ordering::SeqCst);
    with_state(|state| state.plan = None);
}

/// The faults injected since [`inject`], by kind and service.
pub fn injected() -> BTreeMap<(Fault, String), u64> {
    with_state(|state| state.injected.clone())
}

/// Rolls for a fault among `choices` by `rate`; counts what it picked when `injected` (a call's fault
/// is injected as it is picked; a kill, only if the invocation was still running).
fn roll(rate: impl Fn(&Plan) -> f64, choices: &[Fault], service: &str, injected: bool) -> Option<Fault> {
    if !ON.load(Ordering::Relaxed) {
        return None;
    }
    with_state(|state| {
        let plan = state.plan?;
        if choices.is_empty() || state.rng.f64() >= rate(&plan) {
            return None;
        }
        let fault = choices[state.rng.usize(..choices.len())];
        if injected {
            *state.injected.entry((fault, service.to_owned())).or_default() += 1;
        }
        Some(fault)
    })
}

/// When to kill an invocation of `function`, if the plan says so: a random moment into its run. An
/// invocation still running then is killed, and counted ([`killed`]).
pub fn kill_after(function: &str) -> Option<Duration> {
    if !KILLABLE.contains(&function) {
        return None;
    }
    roll(|plan| plan.kill_rate, &[Fault::Killed], "lambda", false)?;
    let millis = with_state(|state| state.rng.u64(..KILL_WITHIN.as_millis() as u64));
    Some(Duration::from_millis(millis))
}

/// Counts an invocation killed mid-run.
pub fn killed() {
    with_state(|state| *state.injected.entry((Fault::Killed, "lambda".to_owned())).or_default() += 1);
}

/// The fault an attempt was given, kept in its config bag from before transmission to after.
#[derive(Debug, Clone, Copy)]
struct Injected(Fault);

impl Storable for Injected {
    type Storer = StoreReplace<Self>;
}

/// The interceptor: on every function client ([`crate::iam`] adds it with the recorder).
#[derive(Debug, Clone, Copy, Default)]
pub struct Injector;

impl Intercept for Injector {
    fn name(&self) -> &'static str {
        "LocalFaultInjector"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().unset::<Injected>();
        if crate::running::current_function().is_none() {
            return Ok(());
        }
        let Some(service) = cfg.load::<Metadata>().map(|m| m.service().to_ascii_lowercase()) else { return Ok(()) };
        if !["dynamodb", "s3", "eventbridge", "sqs"].contains(&service.as_str()) {
            return Ok(());
        }
        // A presigned URL is made without a call (the SDK stops before sending it): nothing to fail.
        if context.request().uri().contains("X-Amz-Signature=") {
            return Ok(());
        }
        let Some(fault) = roll(|plan| plan.call_rate, &Fault::OF_CALLS, &service, true) else { return Ok(()) };
        match fault {
            Fault::Throttled | Fault::ServerError => {
                let request = context.request_mut();
                let path = request
                    .uri()
                    .split_once("://")
                    .map_or("/", |(_, rest)| rest.find('/').map_or("/", |slash| &rest[slash..]));
                let stub = format!("http://127.0.0.1:{}{path}", stub_port());
                request.set_uri(stub.as_str()).map_err(|e| BoxError::from(e.to_string()))?;
                let answer = format!("{}:{}", fault.name(), if service == "s3" { "xml" } else { "json" });
                request.headers_mut().insert(FAULT_HEADER, answer);
            }
            Fault::TimedOutBefore => {
                return Err("injected fault: the call timed out before it reached the service".into());
            }
            Fault::AnswerLost | Fault::Killed => {
                cfg.interceptor_state().store_put(Injected(fault));
            }
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<Injected>() {
            Some(Injected(Fault::AnswerLost)) => {
                Err("injected fault: the call reached the service, and its answer was lost".into())
            }
            _ => Ok(()),
        }
    }
}

/// The stub's port: it answers each request with the fault its header names, as AWS would.
fn stub_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port for the fault stub");
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let Ok(runtime) = runtime else { return };
            runtime.block_on(async move {
                let _ = listener.set_nonblocking(true);
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let _ = axum::serve(listener, axum::Router::new().fallback(stub_answer)).await;
            });
        });
        port
    })
}

async fn stub_answer(request: axum::extract::Request) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let fault = request.headers().get(FAULT_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (status, code) = match fault.as_str() {
        "throttled:json" => (StatusCode::BAD_REQUEST, "ThrottlingException"),
        "throttled:xml" => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
        "server-error:json" => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
    };
    let message = "injected by the local fault plan";
    if fault.ends_with(":xml") {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>local-fault</RequestId></Error>"
        );
        (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
    } else {
        let body = serde_json::json!({"__type": code, "message": message}).to_string();
        let error_type = header::HeaderName::from_static("x-amzn-errortype");
        (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.0"), (error_type, code)], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_injected_without_a_plan_and_every_kind_with_one() {
        stop();
        assert_eq!(roll(|plan| plan.call_rate, &Fault::OF_CALLS, "dynamodb", true), None);
        inject(Plan { call_rate: 1.0, kill_rate: 1.0, seed: 7 });
        for _ in 0..200 {
            assert!(roll(|plan| plan.call_rate, &Fault::OF_CALLS, "dynamodb", true).is_some());
        }
        assert!(kill_after("OutboxPublisherFunction").is_some_and(|after| after < KILL_WITHIN));
        assert_eq!(kill_after("CreateAssignmentFunction"), None, "only the publisher and the workers");
        let injected = injected();
        for fault in Fault::OF_CALLS {
            assert!(injected[&(fault, "dynamodb".to_owned())] > 20, "{fault:?}: {injected:?}");
        }
        assert_eq!(injected.get(&(Fault::Killed, "lambda".to_owned())), None, "counted when it happens");
        killed();
        assert_eq!(super::injected()[&(Fault::Killed, "lambda".to_owned())], 1);
        stop();
    }
}
