//! The local gateway on loopback, driven over HTTP as a client would, against the local stack; and the
//! bus around it (rules to queues, the Lambda Invoke API).
//!
//! ```text
//! let env = Env::start().await;
//! let org = env.org().await;
//! let reply = env.post("/assignments").token(key).json(body).header("idempotency-key", "k-1").await;
//! ```

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use chrono::Utc;
use gateway::seed::{self, SeededOrg};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// The session-token secret the gateway under test verifies with.
pub const SECRET: &[u8] = b"end-to-end-test-session-secret-0123456789";

/// One test's view of the running service.
pub struct Env {
    pub base: String,
    pub invoke: String,
    pub http: Client,
    pub store: store::Store,
    pub consumer: events::Consumer,
    pub events: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
}

/// Local bus delivery runs once per test process, on a thread that outlives each test's runtime.
static DELIVERY: std::sync::OnceLock<()> = std::sync::OnceLock::new();

impl Env {
    /// Starts the gateway (every route and the Invoke API) on loopback ports of its own.
    pub async fn start() -> Env {
        Self::start_with(|_| {}).await
    }

    /// [`Env::start`] with the template's settings changed by `local` (local-only settings such as the
    /// job budget) for the process's event delivery: the first start of a process decides them.
    pub async fn start_with(local: impl FnOnce(&mut gateway::Template)) -> Env {
        let table = std::env::var("TABLE_NAME").unwrap_or_default();
        assert!(!table.is_empty(), "end-to-end tests need the local stack: run them through infra/test.sh");
        // E2E_LOG=1 (with --nocapture): the gateway's logs, e.g. the outbox publisher's retries.
        if std::env::var("E2E_LOG").is_ok() {
            events::init_tracing();
        }
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let store = store::Store::new(gateway::iam::dynamodb(&aws_sdk_dynamodb::Client::new(&config)), table);
        seed::load_catalog(&store).await.unwrap();
        let mut template = gateway::Template::of_project().unwrap();
        // A webhook schedule of seconds: a test sees a delivery's whole schedule (eight attempts).
        template.webhook_schedule = domain::webhook::Schedule::of(
            [0, 1, 1, 1, 1, 1, 1, 1].into_iter().map(chrono::Duration::seconds).collect(),
        );
        local(&mut template);
        DELIVERY.get_or_init(|| gateway::bus::start_in_background(template.clone(), SECRET.to_vec()).unwrap());
        let events = aws_sdk_eventbridge::Client::new(&config);
        let publisher =
            events::Publisher::new(gateway::iam::eventbridge(&events), std::env::var("EVENT_BUS_NAME").unwrap());
        let mut bucket = exports::Bucket::from_env(&config).unwrap();
        bucket.client = gateway::iam::s3(&bucket.client);
        // The gateway's per-org test clocks: what the functions read, and what the seed's direct
        // deliveries read too.
        let consumer = events::Consumer { store: store.clone(), clock: gateway::clock::TestClocks::shared() };
        // The session secret in the local Secrets Manager, read by the functions as deployed.
        let secrets = gateway::iam::secretsmanager(&aws_sdk_secretsmanager::Client::new(&config));
        let arn = SECRET_ARN
            .get_or_init(|| async {
                let secret = std::str::from_utf8(SECRET).unwrap();
                gateway::seed::store_session_secret(&secrets, secret).await.unwrap()
            })
            .await;
        let app = api::App::with_secret(store.clone(), api::secret::SessionSecret::managed(secrets, arn));
        let sqs = aws_sdk_sqs::Client::new(&config);
        let jobs = gateway::bus::queues(&sqs).unwrap();
        let gw = gateway::Gateway::new(app, publisher, bucket, jobs, template.routes)
            .unwrap()
            .with_job_budget(template.job_budget)
            .with_webhook_schedule(template.webhook_schedule.clone())
            .with_schedules(template.schedules);
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let invoke_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/api/public/v1", api_listener.local_addr().unwrap());
        let invoke = format!("http://{}", invoke_listener.local_addr().unwrap());
        tokio::spawn(gw.serve(api_listener, invoke_listener));
        let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Env { base, invoke, http, store, consumer, events, sqs }
    }

    /// [`Env::start`] and a fresh [`Env::org`]: what most tests begin with.
    pub async fn with_org() -> (Env, SeededOrg) {
        let env = Env::start().await;
        let org = env.org().await;
        (env, org)
    }

    /// A fresh org with the seed's teams, users, API keys and session tokens.
    pub async fn org(&self) -> SeededOrg {
        self.org_with_prefix("e2e").await
    }

    /// [`Env::org`] whose id starts with `prefix` and `-`.
    pub async fn org_with_prefix(&self, prefix: &str) -> SeededOrg {
        let id = crate::stack::new_org(prefix);
        seed::seed_org(&self.store, SECRET, id, "Acme", Utc::now(), seed::Delivery::Direct(&self.consumer))
            .await
            .unwrap()
    }

    pub fn request(&self, method: Method, path: &str) -> Request<'_> {
        Request { env: self, method, path: path.to_owned(), token: None, body: None, raw: None, headers: Vec::new() }
    }

    pub fn get(&self, path: &str) -> Request<'_> {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Request<'_> {
        self.request(Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> Request<'_> {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Request<'_> {
        self.request(Method::DELETE, path)
    }

    /// Invokes a function by its template logical id through the local Lambda Invoke API; its result.
    pub async fn invoke(&self, function: &str, event: Value) -> Value {
        self.invoke_raw(function, &event).await.json::<Value>().await.unwrap()
    }

    /// The Invoke API's HTTP response itself.
    pub async fn invoke_raw(&self, function: &str, event: &Value) -> reqwest::Response {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.invoke);
        self.http.post(url).json(event).send().await.unwrap()
    }

    /// Runs the daily job's part for `org` on `date` directly (as an operator would invoke the job
    /// function with a queue message's body), to its end: the part's report (`count`: notices sent).
    pub async fn run_daily_job(&self, org: &domain::OrgId, date: chrono::NaiveDate) -> Value {
        self.run_job(json!({"job": "reminders", "orgId": org, "date": date})).await
    }

    /// Runs roster reconcile's part for `org` directly; its report (`count`: repairs).
    pub async fn run_reconcile(&self, org: &domain::OrgId) -> Value {
        self.run_job(json!({"job": "reconcile", "orgId": org})).await
    }

    async fn run_job(&self, job: Value) -> Value {
        let part = self.invoke("OrgJobsFunction", job).await;
        assert_eq!(part["continued"], false, "a test org's run fits one part: {part}");
        part["report"].clone()
    }

    /// A fresh org (its id starting with `prefix`) whose first team's 5 learners are owed
    /// `assignment.due_soon` today (an assignment due in 7 days), and a queue subscribed to that event.
    pub async fn org_owed_reminders(&self, prefix: &str) -> (SeededOrg, String) {
        let org = self.org_with_prefix(prefix).await;
        let deadline = Utc::now().date_naive() + chrono::Duration::days(7);
        let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
                          "assigneeType": "team", "assigneeId": org.teams[0].team_id, "deadline": deadline});
        let created = self.post("/assignments").token(org.api_keys.admin.as_str()).json(body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let due_soon = self.subscribe(&org, "assignment.due_soon").await;
        (org, due_soon)
    }

    /// Moves `org`'s test clock forward by `by` through the gateway's local control, firing the
    /// template's schedules that fall in between for that org alone; the control's answer (`before`,
    /// `now`, `fired`: each firing's function, time and result).
    pub async fn advance_clock(&self, org: &domain::OrgId, by: chrono::Duration) -> Value {
        self.move_clock(org, json!({"advanceSeconds": by.num_seconds()})).await
    }

    /// [`Env::advance_clock`] firing only the schedules of the functions in `fire` (none: time passes
    /// with the scheduler paused).
    pub async fn advance_clock_firing(&self, org: &domain::OrgId, by: chrono::Duration, fire: &[&str]) -> Value {
        self.move_clock(org, json!({"advanceSeconds": by.num_seconds(), "fire": fire})).await
    }

    async fn move_clock(&self, org: &domain::OrgId, body: Value) -> Value {
        let url = format!("{}/local/orgs/{org}/clock", self.invoke);
        let reply = self.http.post(url).json(&body).send().await.unwrap();
        assert!(reply.status().is_success(), "{:?}", reply.text().await);
        reply.json().await.unwrap()
    }

    /// `org`'s time on its test clock.
    pub async fn clock(&self, org: &domain::OrgId) -> chrono::DateTime<Utc> {
        let url = format!("{}/local/orgs/{org}/clock", self.invoke);
        let reply: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
        serde_json::from_value(reply["now"].clone()).unwrap()
    }

    /// Sends platform events to the bus, as the platform would.
    pub async fn publish(&self, events: &[seed::PlatformEvent]) {
        seed::send(seed::Delivery::Bus(&self.events), events).await.unwrap();
    }

    /// A queue behind a rule on the service's own bus for `detail_type` of `org`, as a webhook
    /// dispatcher would subscribe. Returns the queue's URL.
    pub async fn subscribe(&self, org: &SeededOrg, detail_type: &str) -> String {
        subscribe_queue(&self.events, &self.sqs, org.org_id.as_str(), detail_type).await
    }

    /// At least `n` messages of `queue` (waiting up to a minute for them), and any that follow until
    /// it stays quiet for a few seconds: for events that asynchronous work (a queued job) sends.
    pub async fn drain_at_least(&self, queue: &str, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let waiting = std::time::Instant::now();
        while out.len() < n && waiting.elapsed() < Duration::from_secs(60) {
            out.extend(self.drain(queue).await);
        }
        out
    }

    /// Every message that arrives on `queue` until it stays quiet for a few seconds.
    pub async fn drain(&self, queue: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut quiet = 0;
        while quiet < 3 {
            let got = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                quiet += 1;
            }
            for m in messages {
                out.push(serde_json::from_str::<Value>(m.body().unwrap()).unwrap());
                let receipt = m.receipt_handle().unwrap();
                self.sqs.delete_message().queue_url(queue).receipt_handle(receipt).send().await.unwrap();
            }
        }
        out
    }
}

/// A request to the gateway, sent when awaited.
#[must_use = "a request is sent only when awaited"]
pub struct Request<'e> {
    env: &'e Env,
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<Value>,
    raw: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
}

impl Request<'_> {
    /// `Authorization: Bearer {token}` (an API key or a session token).
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// A body sent as these bytes, with its own headers (`header`).
    pub fn bytes(mut self, body: Vec<u8>) -> Self {
        self.raw = Some(body);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    async fn send(self) -> Reply {
        let mut req = self.env.http.request(self.method, format!("{}{}", self.env.base, self.path));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        if let Some(body) = self.body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        if let Some(raw) = self.raw {
            req = req.body(raw);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        assert!(
            headers.contains_key("x-request-id") || status == StatusCode::NOT_FOUND,
            "every response has X-Request-Id"
        );
        Reply { status, headers, body }
    }
}

impl<'e> IntoFuture for Request<'e> {
    type Output = Reply;
    type IntoFuture = Pin<Box<dyn Future<Output = Reply> + Send + 'e>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl Env {
    /// Requests an export of `kind` (asserting its `202` and `Location`) and waits for the export
    /// worker: the export's `GET` once it is no longer running.
    pub async fn export(&self, token: &str, kind: &str) -> Reply {
        let requested = self.post("/assignments/exports").token(token).json(json!({"kind": kind})).await;
        assert_eq!(requested.status, StatusCode::ACCEPTED, "{:?}", requested.body);
        assert_eq!((requested.body["kind"].as_str(), requested.body["status"].as_str()), (Some(kind), Some("running")));
        let location = requested.headers["location"].to_str().unwrap().to_owned();
        let path = format!("/assignments/exports/{}", requested.body["exportId"].as_str().unwrap());
        assert_eq!(location, format!("{}{path}", api::http::BASE_PATH));
        eventually("the export worker", || async {
            let reply = self.get(&path).token(token).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            (reply.body["status"] != "running").then_some(reply)
        })
        .await
    }
}

/// A response: status, headers and the body as JSON (`Null` when empty, a string when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The URL of an RFC 8288 `Link: <url>; rel="next"` header.
    pub fn next_link(&self) -> Option<String> {
        let link = self.headers.get("link")?.to_str().ok()?;
        let (url, params) = link.split_once(';')?;
        (params.trim() == "rel=\"next\"").then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    }

    /// The `cursor` of the next link.
    pub fn next_cursor(&self) -> Option<String> {
        let url = self.next_link()?;
        let query = url.split_once('?')?.1;
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "cursor").map(|(_, v)| v.into_owned())
    }
}

/// A v1 problem: this status, this `error` code, `application/problem+json`.
/// A downloaded CSV export: its header and its records, read as RFC 4180 readers read it.
pub fn parse_csv(text: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    (header, reader.records().map(Result::unwrap).collect())
}

pub fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "{:?}", reply.body);
    assert_eq!(reply.body["error"], code, "{:?}", reply.body);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(reply.body["status"], status);
}

/// The first message of `queue` whose body `wanted` picks, waiting up to `limit` for it. Only looks: every
/// message stays where it is for anyone else (the queue may be shared, as the failed-events queue is).
/// The local session token secret's ARN, stored once per process.
static SECRET_ARN: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

pub async fn peek_until(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    limit: Duration,
    wanted: impl Fn(&aws_sdk_sqs::types::Message) -> bool,
) -> Option<aws_sdk_sqs::types::Message> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let seen = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(found) = seen.messages.unwrap_or_default().into_iter().find(&wanted) {
            return Some(found);
        }
    }
    None
}

/// The messages of `queue` until there are `n` or `limit` has passed, then any that follow until it
/// is quiet; each deleted as it is read (ten at a time).
pub async fn drain_until(sqs: &aws_sdk_sqs::Client, queue: &str, n: usize, limit: Duration) -> Vec<Value> {
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let mut quiet = 0;
    while quiet < 3 && started.elapsed() < limit {
        let got = sqs.receive_message().queue_url(queue).max_number_of_messages(10).wait_time_seconds(1).send().await;
        let messages = got.map(|got| got.messages.unwrap_or_default()).unwrap_or_default();
        if messages.is_empty() && out.len() >= n {
            quiet += 1;
        }
        let entries: Vec<_> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        out.extend(messages.iter().filter_map(|m| serde_json::from_str::<Value>(m.body()?).ok()));
        if !entries.is_empty() {
            // A message not deleted would come again after its visibility timeout: read twice.
            let deleted = sqs.delete_message_batch().queue_url(queue).set_entries(Some(entries)).send().await;
            let failed = deleted.map(|out| out.failed().len()).unwrap_or(usize::MAX);
            assert_eq!(failed, 0, "messages of {queue} not deleted");
        }
    }
    out
}

/// Waits, if need be, for the start of the next calendar minute (UTC): a test that counts requests
/// per minute then has 30 s or more in one minute.
pub async fn early_in_a_minute() {
    use chrono::Timelike;
    let second = Utc::now().second();
    if second > 30 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
}

/// Polls `check` (up to 30 s) until it yields a value.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..120 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A queue behind a rule on the service's own bus for `detail_type` of `org`, as a webhook dispatcher
/// would subscribe. Returns the queue's URL.
pub async fn subscribe_queue(
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    org: &str,
    detail_type: &str,
) -> String {
    let pattern = json!({"source": ["assignments"], "detail-type": [detail_type], "detail": {"orgId": [org]}});
    subscribe_to(events, sqs, &pattern).await
}

/// A new queue behind a rule on the service's own bus for the events `pattern` matches. Returns the
/// queue's URL.
pub async fn subscribe_to(events: &aws_sdk_eventbridge::Client, sqs: &aws_sdk_sqs::Client, pattern: &Value) -> String {
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let url = sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let bus = std::env::var("EVENT_BUS_NAME").unwrap();
    events.put_rule().name(&name).event_bus_name(&bus).event_pattern(pattern.to_string()).send().await.unwrap();
    events
        .put_targets()
        .rule(&name)
        .event_bus_name(&bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("q").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    url
}
