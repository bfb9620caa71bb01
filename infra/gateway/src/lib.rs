//! The local API Gateway.
//!
//! Routes come from `template.yaml` (each function's `HttpApi` events), so a route missing from the
//! template is missing here too. Each HTTP request becomes the HTTP API payload-2.0 event API Gateway
//! would send; the event goes through the same path as the Lambda Invoke API (event JSON → the
//! function's `handle` → response JSON), and the response JSON becomes the HTTP response.

pub mod bus;
pub mod clock;
pub mod concurrency;
pub mod faults;
pub mod iam;
pub mod queue;
mod running;
pub mod schedule;
pub mod seed;
pub mod stream;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::Arc;

use api::App;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use lambda_http::Body;
use lambda_http::request::LambdaRequest;
use serde_json::{Value, json};

/// How the gateway runs one of the template's functions: the handler its `main.rs` runs, over the
/// context that function builds.
#[derive(Clone, Copy)]
enum Handler {
    Http(api::entry::Handler<App>),
    Export(api::entry::Handler<export_csv_fn::Exporter>),
    Platform(events::entry::Handler<events::PlatformConsumer>),
    ExportWorker(events::entry::Handler<export_worker_fn::Worker>),
    RosterWorker(events::entry::Handler<roster_worker_fn::Worker>),
    Sarif(api::entry::Handler<sarif_fn::Intake>),
    SarifWorker(events::entry::Handler<sarif_worker_fn::Worker>),
    Publish(events::entry::Handler<events::Publisher>),
    Dispatch(events::entry::Handler<events::jobs::Dispatcher>),
    Jobs(events::entry::Handler<events::jobs::Runner>),
    WebhookEndpoints(api::entry::Handler<webhook_endpoints_fn::Endpoints>),
    WebhookDispatch(events::entry::Handler<webhook_dispatcher_fn::Dispatcher>),
    WebhookDelivery(events::entry::Handler<webhook_delivery_fn::Delivery>),
}

/// Every function of `template.yaml` this gateway can run, by logical id: the one place a function is
/// registered.
const REGISTRY: &[(&str, Handler)] = &[
    ("CreateAssignmentFunction", Handler::Http(create_fn::HANDLER)),
    ("ListAssignmentsFunction", Handler::Http(list_fn::HANDLER)),
    ("GetAssignmentFunction", Handler::Http(detail_fn::HANDLER)),
    ("PatchAssignmentFunction", Handler::Http(patch_fn::HANDLER)),
    ("LearnerAssignmentsFunction", Handler::Http(learner_view_fn::HANDLER)),
    ("AuditLogFunction", Handler::Http(audit_log_fn::HANDLER)),
    ("ComplianceFunction", Handler::Http(compliance_fn::HANDLER)),
    ("ExportCsvFunction", Handler::Export(export_csv_fn::HANDLER)),
    ("ExportWorkerFunction", Handler::ExportWorker(export_worker_fn::HANDLER)),
    ("SarifFunction", Handler::Sarif(sarif_fn::HANDLER)),
    ("SarifWorkerFunction", Handler::SarifWorker(sarif_worker_fn::HANDLER)),
    ("RosterWorkerFunction", Handler::RosterWorker(roster_worker_fn::HANDLER)),
    ("ProgressEventsFunction", Handler::Platform(events::entry::CONSUME)),
    ("MembershipEventsFunction", Handler::Platform(events::entry::CONSUME)),
    ("CourseEventsFunction", Handler::Platform(events::entry::CONSUME)),
    ("RemindersFunction", Handler::Dispatch(reminders_fn::HANDLER)),
    ("ReconcileFunction", Handler::Dispatch(reconcile_fn::HANDLER)),
    ("OrgJobsFunction", Handler::Jobs(org_jobs_fn::HANDLER)),
    ("OutboxPublisherFunction", Handler::Publish(outbox_publisher_fn::HANDLER)),
    ("WebhookEndpointsFunction", Handler::WebhookEndpoints(webhook_endpoints_fn::HANDLER)),
    ("WebhookDispatcherFunction", Handler::WebhookDispatch(webhook_dispatcher_fn::HANDLER)),
    ("WebhookDeliveryFunction", Handler::WebhookDelivery(webhook_delivery_fn::HANDLER)),
];

/// The registered function with this logical id, under the registry's own name for it.
fn registered(function: &str) -> Option<(&'static str, Handler)> {
    REGISTRY.iter().find(|(id, _)| *id == function).copied()
}

/// API Gateway HTTP APIs accept bodies up to 10 MB; the functions enforce their own smaller limit.
const MAX_GATEWAY_BODY: usize = 10 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("function {0} is not known to the local gateway")]
    UnknownFunction(String),
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("local event delivery: {0}")]
    Bus(String),
    #[error("environment: {0}")]
    Environment(String),
    #[error("{0} is at its reserved concurrency")]
    Throttled(String),
}

/// One `HttpApi` event of a function in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
}

/// What the gateway runs from `template.yaml`, read once: the HTTP API's routes, the EventBridge rules,
/// the schedules, the SQS event source mappings, each function's reserved concurrency, the stream
/// mapping's settings and the job function's budget.
#[derive(Debug, Clone)]
pub struct Template {
    pub routes: Vec<Route>,
    pub rules: Vec<bus::Rule>,
    pub schedules: Vec<schedule::Schedule>,
    pub queues: Vec<queue::Mapping>,
    pub reserved: HashMap<String, usize>,
    pub stream: stream::StreamSettings,
    /// `OrgJobsFunction`'s `JOB_BUDGET_SECONDS`: how long an org's part of a job runs before it hands
    /// the rest on (tests may shorten it before the event delivery starts).
    pub job_budget: std::time::Duration,
    /// The local webhook delivery's attempt schedule (tests shorten it before the event delivery
    /// starts); `None`: `LOCAL_WEBHOOK_ATTEMPT_DELAYS`'s, else the standard one ([`webhooks::local_schedule`]).
    pub webhook_schedule: Option<domain::webhook::Schedule>,
}

impl Template {
    pub fn parse(template_yaml: &str) -> Result<Self, GatewayError> {
        let template: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(template_yaml).map_err(|e| GatewayError::Template(e.to_string()))?;
        let resources =
            template["Resources"].as_mapping().ok_or_else(|| GatewayError::Template("no Resources".into()))?;
        Ok(Self {
            routes: routes(resources)?,
            rules: bus::rules(resources)?,
            schedules: schedule::schedules(resources)?,
            queues: queue::mappings(resources, &template["Parameters"])?,
            reserved: concurrency::reserved(resources, &template["Parameters"])?,
            stream: stream::settings(resources)?,
            job_budget: job_budget(resources)?,
            webhook_schedule: None,
        })
    }

    /// The project's `template.yaml`.
    pub fn of_project() -> Result<Self, GatewayError> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let yaml = std::fs::read_to_string(path).map_err(|e| GatewayError::Template(format!("{path}: {e}")))?;
        Self::parse(&yaml)
    }
}

/// The job function's `JOB_BUDGET_SECONDS`.
fn job_budget(resources: &serde_yaml_ng::Mapping) -> Result<std::time::Duration, GatewayError> {
    let value = &resources
        .get("OrgJobsFunction")
        .map(|f| &f["Properties"]["Environment"]["Variables"][events::jobs::BUDGET_VAR])
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0);
    value
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| GatewayError::Template("OrgJobsFunction: no JOB_BUDGET_SECONDS".into()))
}

/// The HTTP API routes declared in the template.
fn routes(resources: &serde_yaml_ng::Mapping) -> Result<Vec<Route>, GatewayError> {
    let mut routes = Vec::new();
    for (logical_id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for event in events.values().filter(|e| e["Type"].as_str() == Some("HttpApi")) {
            let props = &event["Properties"];
            let (Some(method), Some(path)) = (props["Method"].as_str(), props["Path"].as_str()) else {
                return Err(GatewayError::Template(format!("{logical_id:?}: HttpApi event without Method/Path")));
            };
            routes.push(Route {
                method: method.to_ascii_uppercase(),
                path: path.to_owned(),
                function: logical_id.as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    Ok(routes)
}

/// Matches `/a/{id}/b` style templates; returns the path parameters.
fn match_path(template: &str, path: &str) -> Option<HashMap<String, String>> {
    let mut params = HashMap::new();
    let mut want = template.trim_end_matches('/').split('/');
    let mut got = path.trim_end_matches('/').split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {
                let decoded = percent_decode(g);
                params.insert(w[1..w.len() - 1].to_owned(), decoded);
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

fn percent_decode(raw: &str) -> String {
    form_urlencoded::parse(format!("x={}", raw.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Lambda's retries of a scheduled function's failed invocation (the template's `MaximumRetryAttempts`).
const SCHEDULE_RETRIES: usize = 2;

#[derive(Clone)]
pub struct Gateway {
    app: Arc<App>,
    exporter: Arc<export_csv_fn::Exporter>,
    export_worker: Arc<export_worker_fn::Worker>,
    roster_worker: Arc<roster_worker_fn::Worker>,
    intake: Arc<sarif_fn::Intake>,
    sarif_worker: Arc<sarif_worker_fn::Worker>,
    platform: Arc<events::PlatformConsumer>,
    publisher: Arc<events::Publisher>,
    dispatcher: Arc<events::jobs::Dispatcher>,
    runner: Arc<events::jobs::Runner>,
    webhook_endpoints: Arc<webhook_endpoints_fn::Endpoints>,
    webhook_dispatcher: Arc<webhook_dispatcher_fn::Dispatcher>,
    webhook_delivery: Arc<webhook_delivery_fn::Delivery>,
    routes: Arc<Vec<Route>>,
    clocks: Arc<clock::TestClocks>,
    schedules: Arc<Vec<schedule::Schedule>>,
}

impl Gateway {
    /// Refuses a template route whose function this gateway cannot run.
    /// `publisher` is the outbox publisher's way to the bus; `bucket`'s client also reaches the SARIF
    /// uploads bucket (`SARIF_BUCKET`); `queues` are the scheduled jobs' queue, whose parts run on the
    /// template's budget, and the workers' (the publisher sends their requests there) (see [`Gateway::with_job_budget`]). Every function runs on the process's test
    /// clocks ([`clock::TestClocks::shared`]).
    pub fn new(
        mut app: App,
        publisher: events::Publisher,
        bucket: exports::Bucket,
        queues: bus::Queues,
        routes: Vec<Route>,
    ) -> Result<Self, GatewayError> {
        if let Some(route) = routes.iter().find(|r| registered(&r.function).is_none()) {
            return Err(GatewayError::UnknownFunction(route.function.clone()));
        }
        let clocks = clock::TestClocks::shared();
        app.clock = clocks.clone();
        let consumer = events::Consumer { store: app.store.clone(), clock: clocks.clone() };
        let uploads =
            || sarif_intake::UploadBucket::with_client(bucket.client.clone()).map_err(GatewayError::Environment);
        let intake = sarif_fn::Intake { app: app.clone(), bucket: uploads()? };
        let sarif_worker =
            sarif_worker_fn::Worker { store: app.store.clone(), bucket: uploads()?, clock: clocks.clone() };
        let bus::Queues { jobs, roster, export, parked, failed, webhooks } = queues;
        let export_worker = export_worker_fn::Worker {
            store: app.store.clone(),
            bucket: bucket.clone(),
            clock: clocks.clone(),
            queue: export.clone(),
        };
        let roster_worker = roster_worker_fn::Worker { consumer: consumer.clone(), queue: roster.clone() };
        let platform = events::PlatformConsumer { consumer: consumer.clone(), parked };
        let publisher = publisher
            .with_work(events::work::WorkQueues { lanes: consumer.clone(), roster, export })
            .with_ledger(events::Ledger { table: app.store.clone(), failed });
        let deliveries = webhooks::delivery_queue(webhooks);
        let webhook_endpoints = webhook_endpoints_fn::Endpoints {
            app: app.clone(),
            vault: webhooks::local_vault()?,
            queue: deliveries.clone(),
            urls: webhooks::local_url,
        };
        let webhook_dispatcher =
            webhook_dispatcher_fn::Dispatcher { consumer: consumer.clone(), queue: deliveries.clone() };
        let webhook_delivery = webhook_delivery_fn::Delivery {
            consumer: consumer.clone(),
            queue: deliveries,
            vault: webhooks::local_vault()?,
            sender: webhooks::local_sender()?,
            schedule: webhooks::local_schedule()?,
            pacing: service::webhooks::deliver::Pacing::DEFAULT,
        };
        let dispatcher = events::jobs::Dispatcher { consumer: consumer.clone(), queue: jobs.clone() };
        let runner = events::jobs::Runner {
            consumer: consumer.clone(),
            queue: jobs,
            budget: Template::of_project()?.job_budget,
        };
        Ok(Self {
            webhook_endpoints: Arc::new(webhook_endpoints),
            webhook_dispatcher: Arc::new(webhook_dispatcher),
            webhook_delivery: Arc::new(webhook_delivery),
            dispatcher: Arc::new(dispatcher),
            runner: Arc::new(runner),
            clocks,
            intake: Arc::new(intake),
            sarif_worker: Arc::new(sarif_worker),
            export_worker: Arc::new(export_worker),
            roster_worker: Arc::new(roster_worker),
            exporter: Arc::new(export_csv_fn::Exporter { app: app.clone(), bucket }),
            app: Arc::new(app),
            platform: Arc::new(platform),
            publisher: Arc::new(publisher),
            routes: Arc::new(routes),
            schedules: Arc::default(),
        })
    }

    /// Org runs of the scheduled jobs stop after `budget` and continue in a next part (the template's
    /// `JOB_BUDGET_SECONDS` unless set here).
    pub fn with_job_budget(mut self, budget: std::time::Duration) -> Self {
        if let Some(runner) = Arc::get_mut(&mut self.runner) {
            runner.budget = budget;
        }
        self
    }

    /// Webhook attempts follow `schedule` (a test's shorter one) instead of the local default.
    pub fn with_webhook_schedule(mut self, schedule: Option<domain::webhook::Schedule>) -> Self {
        if let (Some(schedule), Some(delivery)) = (schedule, Arc::get_mut(&mut self.webhook_delivery)) {
            delivery.schedule = schedule;
        }
        self
    }

    /// The template's schedules, which moving an org's clock (and `--tick`) fires.
    pub fn with_schedules(mut self, schedules: Vec<schedule::Schedule>) -> Self {
        self.schedules = Arc::new(schedules);
        self
    }

    /// Moves `org`'s clock forward to `to`, firing for that org alone, at each firing's time, the
    /// template's schedules that fall in between (oldest first, each run to its end, as many as
    /// [`schedule::MAX_FIRINGS`]): those of the functions in `fire`, every schedule when `None` (an
    /// empty list: time passes with the scheduler paused). Returns the clock before and what each firing
    /// returned.
    pub async fn advance_clock(
        &self,
        org: &domain::OrgId,
        to: clock::Target,
        fire: Option<&[String]>,
    ) -> Result<Value, GatewayError> {
        use service::Clock;
        let before = self.clocks.now(org);
        let to = match to {
            clock::Target::By(by) => before + by,
            clock::Target::At(at) if at >= before => at,
            clock::Target::At(at) => {
                return Err(GatewayError::InvalidEvent(format!(
                    "{org}'s clock reads {before}; it does not go back to {at}"
                )));
            }
        };
        let mut firings: Vec<(chrono::DateTime<chrono::Utc>, &schedule::Schedule)> = self
            .schedules
            .iter()
            .filter(|s| s.per_org() && fire.is_none_or(|fire| fire.contains(&s.function)))
            .flat_map(|s| s.expression.firings(before, to, schedule::MAX_FIRINGS).into_iter().map(move |at| (at, s)))
            .collect();
        firings.sort_by_key(|(at, s)| (*at, s.function.clone()));
        firings.truncate(schedule::MAX_FIRINGS);
        let mut fired = Vec::new();
        // The clock runs on while a firing runs: each move is to at least the firing's time.
        for (at, s) in firings {
            self.clocks.set_at_least(org, at);
            let event = schedule::scheduled_event(s, at, Some(&[org.as_str()]));
            // As Lambda runs an asynchronous invocation that failed: again, twice (the template's
            // `EventInvokeConfig`); what still fails would go to the failed-events queue.
            let mut result = self.invoke(&s.function, event.clone()).await?;
            for _ in 0..SCHEDULE_RETRIES {
                if result.get("errorType").is_none() {
                    break;
                }
                result = self.invoke(&s.function, event.clone()).await?;
            }
            fired.push(json!({"function": s.function, "at": at, "result": result}));
        }
        self.clocks.set_at_least(org, to);
        Ok(json!({"orgId": org, "before": before, "now": self.clocks.now(org), "fired": fired}))
    }

    /// Fires, for every org, the schedules that fall after `after` up to `until` by the wall clock
    /// (the run command's `--tick`).
    pub async fn fire_schedules(&self, after: chrono::DateTime<chrono::Utc>, until: chrono::DateTime<chrono::Utc>) {
        for s in self.schedules.iter() {
            for at in s.expression.firings(after, until, schedule::MAX_FIRINGS) {
                match self.invoke(&s.function, schedule::scheduled_event(s, at, None)).await {
                    Ok(result) => tracing::info!(function = s.function, %at, %result, "schedule fired"),
                    Err(error) => tracing::error!(function = s.function, %at, %error, "schedule not fired"),
                }
            }
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Runs a function on an event, as Lambda's Invoke API would, returning the function's result; a
    /// function at its reserved concurrency is throttled ([`concurrency`]).
    pub async fn invoke(&self, function: &str, event: Value) -> Result<Value, GatewayError> {
        let Some((function, handler)) = registered(function) else {
            return Err(GatewayError::UnknownFunction(function.to_owned()));
        };
        let _slot = concurrency::Concurrency::shared().admit(function)?;
        let run = iam::as_function(function, self.run(handler, event));
        let Some(after) = faults::kill_after(function) else { return run.await };
        // Killed a moment into its run (a fault plan's): dropped where it stands, as Lambda reports it.
        tokio::select! {
            result = run => result,
            () = tokio::time::sleep(after) => {
                faults::killed();
                tracing::warn!(function, "killed mid-run by the fault plan");
                Ok(json!({"errorType": "Runtime.ExitError", "errorMessage": "killed mid-run by the local fault plan"}))
            }
        }
    }

    async fn run(&self, handler: Handler, event: Value) -> Result<Value, GatewayError> {
        let request = |event: Value| -> Result<lambda_http::Request, GatewayError> {
            let request: LambdaRequest =
                serde_json::from_value(event).map_err(|e| GatewayError::InvalidEvent(e.to_string()))?;
            Ok(request.into())
        };
        Ok(match handler {
            Handler::Http(handle) => response_event(handle(&self.app, request(event)?).await),
            Handler::Export(handle) => response_event(handle(&self.exporter, request(event)?).await),
            // An event-driven function's error is what Lambda would report for the invocation.
            Handler::Platform(handle) => event_result(handle(&self.platform, event).await),
            Handler::ExportWorker(handle) => event_result(handle(&self.export_worker, event).await),
            Handler::RosterWorker(handle) => event_result(handle(&self.roster_worker, event).await),
            Handler::Sarif(handle) => response_event(handle(&self.intake, request(event)?).await),
            Handler::SarifWorker(handle) => event_result(handle(&self.sarif_worker, event).await),
            Handler::Publish(handle) => event_result(handle(&self.publisher, event).await),
            Handler::Dispatch(handle) => event_result(handle(&self.dispatcher, event).await),
            Handler::Jobs(handle) => event_result(handle(&self.runner, event).await),
            Handler::WebhookEndpoints(handle) => response_event(handle(&self.webhook_endpoints, request(event)?).await),
            Handler::WebhookDispatch(handle) => event_result(handle(&self.webhook_dispatcher, event).await),
            Handler::WebhookDelivery(handle) => event_result(handle(&self.webhook_delivery, event).await),
        })
    }

    /// The public API on one listener.
    pub fn api_router(&self) -> Router {
        Router::new().fallback(api_request).with_state(self.clone())
    }

    /// The Lambda Invoke API (`POST /2015-03-31/functions/<LogicalId>/invocations`), and the local-only
    /// control of the orgs' test clocks (`GET`/`POST /local/orgs/{orgId}/clock`, see [`clock`]).
    pub fn invoke_router(&self) -> Router {
        Router::new()
            .route("/2015-03-31/functions/{function}/invocations", axum::routing::post(invoke_request))
            .route("/local/orgs/{org}/clock", axum::routing::get(read_clock).post(move_clock))
            .with_state(self.clone())
    }

    /// Serves both routers until the process ends.
    pub async fn serve(self, api: tokio::net::TcpListener, invoke: tokio::net::TcpListener) -> std::io::Result<()> {
        let api_server = axum::serve(api, self.api_router());
        let invoke_server = axum::serve(invoke, self.invoke_router());
        tokio::try_join!(async { api_server.await }, async { invoke_server.await })?;
        Ok(())
    }
}

/// An event-driven function's result, or its error as Lambda reports it for the invocation.
fn event_result(result: Result<Value, events::ConsumerError>) -> Value {
    match result {
        Ok(result) => result,
        Err(err) => json!({"errorType": "ConsumerError", "errorMessage": err.to_string()}),
    }
}

/// The payload-2.0 response format a function returns to API Gateway.
fn response_event(response: http::Response<Body>) -> Value {
    let (parts, body) = response.into_parts();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(",")));
    }
    let (body, encoded) = match body {
        Body::Empty => (String::new(), false),
        Body::Text(text) => (text, false),
        Body::Binary(bytes) => (BASE64.encode(bytes), true),
        _ => (String::new(), false),
    };
    json!({"statusCode": parts.status.as_u16(), "headers": headers, "body": body, "isBase64Encoded": encoded})
}

/// The payload-2.0 event API Gateway builds for a request.
pub fn request_event(
    route: &Route,
    params: &HashMap<String, String>,
    parts: &http::request::Parts,
    body: &[u8],
) -> Value {
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        // Values that are not visible ASCII are passed on, not dropped: a function must see, and refuse,
        // what a client sent (UTF-8 where the bytes are, else ISO-8859-1, HTTP's historical charset).
        let values: Vec<String> = parts.headers.get_all(name).iter().map(|v| header_text(v.as_bytes())).collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(",")));
    }
    // API Gateway adds these; lambda_http takes the scheme of the request URI (and so of `Link` URLs)
    // from X-Forwarded-Proto.
    headers.entry("x-forwarded-proto").or_insert_with(|| json!("http"));
    let raw_query = parts.uri.query().unwrap_or("");
    let mut query: serde_json::Map<String, Value> = serde_json::Map::new();
    for (name, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        // HTTP APIs join repeated query parameters with commas.
        match query.get_mut(name.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(name.into_owned(), json!(value));
            }
        }
    }
    // API Gateway stamps a request by its own clock.
    let now = service::Clock::wall(&service::SystemClock);
    let route_key = format!("{} {}", route.method, route.path);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": parts.headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !params.is_empty() {
        event["pathParameters"] = json!(params);
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => event["body"] = json!(text),
            Err(_) => {
                event["body"] = json!(BASE64.encode(body));
                event["isBase64Encoded"] = json!(true);
            }
        }
    }
    event
}

/// A header value's bytes as text: UTF-8 if they are, else ISO-8859-1 (each byte its own character).
fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

fn http_response(event: &Value) -> axum::response::Response {
    let status = event["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    if let Some(map) = event["headers"].as_object() {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) =
                (HeaderName::from_bytes(name.as_bytes()), value.as_str().map(HeaderValue::from_str))
            {
                headers.insert(name, value);
            }
        }
    }
    let body = event["body"].as_str().unwrap_or_default();
    let body = if event["isBase64Encoded"].as_bool() == Some(true) {
        BASE64.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    (status, headers, body).into_response()
}

async fn api_request(State(gateway): State<Gateway>, request: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_GATEWAY_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(json!({"message": "Request Entity Too Large"})))
            .into_response();
    };
    let path = parts.uri.path();
    // As API Gateway routes: of the routes that match, the most specific (fewest path parameters), so
    // `/assignments/exports` is not `/assignments/{id}`.
    let matched = gateway
        .routes
        .iter()
        .filter_map(|route| {
            (route.method == parts.method.as_str()).then(|| match_path(&route.path, path)).flatten().map(|p| (route, p))
        })
        .min_by_key(|(_, params)| params.len());
    let Some((route, params)) = matched else {
        // What an HTTP API answers for a route it does not have.
        return (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found"}))).into_response();
    };
    let event = request_event(route, &params, &parts, &body);
    match gateway.invoke(&route.function, event).await {
        Ok(response) => http_response(&response),
        Err(err) => {
            tracing::error!(error = %err, "local gateway could not invoke {}", route.function);
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"message": "Internal Server Error"}))).into_response()
        }
    }
}

/// `GET /local/orgs/{orgId}/clock`: `{"orgId", "now"}`.
async fn read_clock(State(gateway): State<Gateway>, Path(org): Path<String>) -> axum::response::Response {
    use service::Clock;
    match domain::OrgId::parse(&org) {
        Ok(org) => axum::Json(json!({"orgId": org, "now": gateway.clocks.now(&org)})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(json!({"message": e.to_string()}))).into_response(),
    }
}

/// `POST /local/orgs/{orgId}/clock` with `{"now": "<RFC 3339>"}` or `{"advanceSeconds": n}`, and
/// optionally `"fire": ["<LogicalId>", …]`: moves the org's clock forward (see
/// [`Gateway::advance_clock`]); answers with the firings it ran.
async fn move_clock(State(gateway): State<Gateway>, Path(org): Path<String>, body: Bytes) -> axum::response::Response {
    let bad = |message: String| (StatusCode::BAD_REQUEST, axum::Json(json!({"message": message}))).into_response();
    // Any content type, as the Invoke API takes its events (`curl -d` sends a form's).
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return bad(format!("the body is not JSON: {e}")),
    };
    let org = match domain::OrgId::parse(&org) {
        Ok(org) => org,
        Err(e) => return bad(e.to_string()),
    };
    let to = match (body["now"].as_str(), body["advanceSeconds"].as_i64()) {
        (Some(now), None) => match chrono::DateTime::parse_from_rfc3339(now) {
            Ok(now) => clock::Target::At(now.to_utc()),
            Err(e) => return bad(format!("now: {e}")),
        },
        (None, Some(seconds)) if (0..=400 * 86_400).contains(&seconds) => {
            clock::Target::By(chrono::Duration::seconds(seconds))
        }
        _ => return bad("give either now (RFC 3339) or advanceSeconds (0 to 400 days)".into()),
    };
    let fire: Option<Vec<String>> = match body.get("fire") {
        None => None,
        Some(fire) => match serde_json::from_value(fire.clone()) {
            Ok(fire) => Some(fire),
            Err(_) => return bad("fire: a list of the template's function logical ids".into()),
        },
    };
    match gateway.advance_clock(&org, to, fire.as_deref()).await {
        Ok(moved) => axum::Json(moved).into_response(),
        Err(e) => bad(e.to_string()),
    }
}

async fn invoke_request(
    State(gateway): State<Gateway>,
    Path(function): Path<String>,
    body: Bytes,
) -> axum::response::Response {
    let event: Value = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"Type": "InvalidRequestContentException", "Message": e.to_string()})),
            )
                .into_response();
        }
    };
    match gateway.invoke(&function, event).await {
        Ok(result) => (StatusCode::OK, axum::Json(result)).into_response(),
        // As Lambda answers a synchronous invocation it throttles.
        Err(GatewayError::Throttled(name)) => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"Type": "TooManyRequestsException", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                              "Message": format!("Rate Exceeded: {name}")})),
        )
            .into_response(),
        Err(GatewayError::UnknownFunction(name)) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"Type": "ResourceNotFoundException", "Message": format!("Function not found: {name}")})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"Type": "InvalidRequestContentException", "Message": e.to_string()})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_route_is_served_and_paths_match_with_parameters() {
        let routes = Template::of_project().unwrap().routes;
        assert!(routes.len() >= 6, "{routes:?}");
        for route in &routes {
            assert!(registered(&route.function).is_some(), "{route:?}");
        }
        let params = match_path("/api/public/v1/assignments/{id}", "/api/public/v1/assignments/abc").unwrap();
        assert_eq!(params["id"], "abc");
        assert!(match_path("/api/public/v1/assignments/{id}", "/api/public/v1/assignments").is_none());
        assert!(match_path("/api/public/v1/assignments", "/api/public/v1/assignments/x").is_none());
    }
}
