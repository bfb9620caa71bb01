//! Warm latency benchmark (issue 14; design §9). Not a test: it reports what one run measured.
//!
//! `latency-bench` seeds an org on the local stack (an org-wide assignment with 100 learners, 60
//! assignments in all), then times, interleaved round by round against the same DynamoDB Local:
//! - `GET /assignments/{id}?limit=50` through `detail_fn::HANDLER` and `GET /assignments?limit=50` through
//!   `list_fn::HANDLER` (API Gateway's payload 2.0 event in, the response out: the release handler as
//!   Lambda runs it, built with `--release`);
//! - the bare DynamoDB calls each request needs, sent with the same client: the API key's GetItem, the
//!   rate counter's UpdateItem beside the previous hour's GetItem, then the assignment's GetItem, a
//!   Query of 50 rows and the BatchGetItem of their 50 users (detail), or a Query of 50 assignments
//!   (list).
//!
//! The calls each side made are recorded (an SDK interceptor) and printed, so the comparison is of
//! the same calls. `BENCH_ROUNDS` (default 300) rounds after 30 to warm up; medians and 90th
//! percentiles, and their ratios. Run it with the local stack's environment (infra/bench/README.md).
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity, ReturnValue,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::Utc;
use domain::{OrgId, UserId};
use gateway::seed;
use serde_json::{Value, json};
use store::{Store, keys};

const SECRET: &[u8] = b"latency-bench-session-secret-0123456789";
const LEARNERS: usize = 100;
const ASSIGNMENTS: usize = 60;
const PAGE: usize = 50;
const TOTAL: ReturnConsumedCapacity = ReturnConsumedCapacity::Total;

/// The DynamoDB operations a client sent, in order.
#[derive(Debug, Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn take(&self) -> Vec<String> {
        let mut calls = std::mem::take(&mut *self.0.lock().expect("the call log"));
        // The rate counter's two calls go out together, in either order.
        calls.sort();
        calls
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // DynamoDB's JSON protocol names the operation in a header: `DynamoDB_20120810.GetItem`.
        let target = context.request().headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.0.lock().expect("the call log").push(operation);
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(300);
    let table = std::env::var("TABLE_NAME").expect("run with the local stack's environment (TABLE_NAME)");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let calls = Calls::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config).interceptor(calls.clone()).build(),
    );
    let store = Store::new(dynamodb.clone(), table.clone());
    let consumer = events::Consumer::new(store.clone());
    seed::load_catalog(&store).await.expect("the catalog");
    let org = seed::seed_org(&store, SECRET, bench::new_org(), "Bench", Utc::now(), seed::Delivery::Direct(&consumer))
        .await
        .expect("a seeded org");
    let (assignment, users) = seed_assignments(&store, &org.org_id).await;
    let app = api::App::new(store.clone(), SECRET);
    let key = org.api_keys.admin.clone();
    let bare = Bare { client: dynamodb, table, org: org.org_id.clone(), key: key.clone(), consumed: Mutex::default() };

    let detail_path = format!("/api/public/v1/assignments/{assignment}");
    let detail_event = event("GET /api/public/v1/assignments/{id}", &detail_path, &key, Some(("id", assignment)));
    let list_event = event("GET /api/public/v1/assignments", "/api/public/v1/assignments", &key, None);
    let detail = || async {
        let response = detail_fn::HANDLER(&app, request(&detail_event)).await;
        assert_eq!(response.status(), 200, "detail");
    };
    let list = || async {
        let response = list_fn::HANDLER(&app, request(&list_event)).await;
        assert_eq!(response.status(), 200, "list");
    };

    // Warm (untimed): the org's own limits are read once a minute, not on every request.
    detail().await;
    list().await;
    calls.take();
    detail().await;
    let detail_calls = calls.take();
    bare.detail(assignment, &users).await;
    let bare_detail_calls = calls.take();
    list().await;
    let list_calls = calls.take();
    bare.list().await;
    let bare_list_calls = calls.take();
    println!("calls: detail {detail_calls:?}; bare {bare_detail_calls:?}");
    println!("calls: list {list_calls:?}; bare {bare_list_calls:?}");
    assert_eq!(detail_calls, bare_detail_calls, "the detail's calls and the bare ones");
    assert_eq!(list_calls, bare_list_calls, "the list's calls and the bare ones");

    let mut times: [Vec<Duration>; 4] = Default::default();
    for round in 0..rounds + 30 {
        // The API allows a key 60 requests a minute: its counter starts again each round (untimed).
        bare.forget_requests().await;
        let measured = [
            timed(detail()).await,
            timed(bare.detail(assignment, &users)).await,
            timed(list()).await,
            timed(bare.list()).await,
        ];
        if round >= 30 {
            for (all, one) in times.iter_mut().zip(measured) {
                all.push(one);
            }
        }
    }
    println!(
        "warm latency, {rounds} rounds (after 30 to warm up), release handler vs the bare calls it needs, one run:"
    );
    println!("| request | handler median | bare median | × | handler p90 | bare p90 | × |");
    println!("|---|---|---|---|---|---|---|");
    let rows = [("detail: 100 learners, page of 50", 0, 1), ("list: page of 50 of 60 assignments", 2, 3)];
    for (name, handler, bare) in rows {
        let (hm, bm) = (percentile(&mut times[handler], 50), percentile(&mut times[bare], 50));
        let (h9, b9) = (percentile(&mut times[handler], 90), percentile(&mut times[bare], 90));
        println!("| {name} | {hm:.2} ms | {bm:.2} ms | {:.2} | {h9:.2} ms | {b9:.2} ms | {:.2} |", hm / bm, h9 / b9);
    }

    // The session token secret (Secrets Manager, here moto's): a container reads it on its first
    // request, not at start-up. Each round, a fresh app's first list request with the secret to read,
    // against a fresh app's first one with the secret given (both read the org's limits first).
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let secret = secrets
        .create_secret()
        .name(format!("bench-session-{}", uuid::Uuid::new_v4().simple()))
        .secret_string(std::str::from_utf8(SECRET).expect("text"))
        .send()
        .await
        .expect("the local stack's Secrets Manager");
    let arn = secret.arn.unwrap_or_default();
    let mut firsts: [Vec<Duration>; 2] = Default::default();
    for _ in 0..rounds.min(100) {
        bare.forget_requests().await;
        let read = api::App::with_secret(store.clone(), api::secret::SessionSecret::managed(secrets.clone(), &arn));
        let given = api::App::new(store.clone(), SECRET);
        for (times, app) in firsts.iter_mut().zip([&read, &given]) {
            let first = async { assert_eq!(list_fn::HANDLER(app, request(&list_event)).await.status(), 200, "list") };
            times.push(timed(first).await);
        }
    }
    let (read, given) = (percentile(&mut firsts[0], 50), percentile(&mut firsts[1], 50));
    println!("a container's first request, {} fresh apps each (moto's Secrets Manager):", firsts[0].len());
    println!("| request | the secret read first (median) | the secret given (median) | the read adds |");
    println!("|---|---|---|---|");
    println!("| list: page of 50 of 60 assignments | {read:.2} ms | {given:.2} ms | {:.2} ms |", read - given);

    // Consumed capacity: one request each, the handler's store asking for it like the bare calls.
    let capacity = store::Capacity::default();
    let counted = api::App::new(store.clone().with_capacity_tracking(capacity.clone()), SECRET);
    bare.forget_requests().await;
    assert_eq!(list_fn::HANDLER(&counted, request(&list_event)).await.status(), 200, "warm");
    bare.take_consumed();
    let mut measured = Vec::new();
    for (name, handler, event) in
        [("detail", detail_fn::HANDLER, &detail_event), ("list", list_fn::HANDLER, &list_event)]
    {
        capacity.reset();
        assert_eq!(handler(&counted, request(event)).await.status(), 200, "{name}");
        measured.push((name, capacity.reads(), capacity.writes(), capacity.requests()));
    }
    bare.detail(assignment, &users).await;
    let bare_detail = bare.take_consumed();
    bare.list().await;
    let bare_list = bare.take_consumed();
    println!("consumed capacity (ReturnConsumedCapacity, DynamoDB Local), one request each:");
    println!("| request | handler RCU / WCU (requests) | bare calls RCU / WCU | × RCU | × WCU |");
    println!("|---|---|---|---|---|");
    for ((name, reads, writes, requests), (bare_reads, bare_writes)) in
        measured.into_iter().zip([bare_detail, bare_list])
    {
        println!(
            "| {name} | {reads} / {writes} ({requests}) | {bare_reads} / {bare_writes} | {:.2} | {:.2} |",
            reads / bare_reads,
            writes / bare_writes
        );
    }
}

async fn timed(work: impl Future<Output = ()>) -> Duration {
    let started = Instant::now();
    work.await;
    started.elapsed()
}

/// The `p`th percentile, in milliseconds.
fn percentile(times: &mut [Duration], p: usize) -> f64 {
    times.sort();
    times[(times.len() * p / 100).min(times.len() - 1)].as_secs_f64() * 1_000.0
}

/// An org-wide assignment with `LEARNERS` rows (returned with its learners) among `ASSIGNMENTS`.
async fn seed_assignments(store: &Store, org: &OrgId) -> (domain::AssignmentId, Vec<UserId>) {
    let now = Utc::now();
    let mut users = Vec::new();
    for i in 0..LEARNERS {
        let user = bench::learner(UserId(uuid::Uuid::new_v4()), i, None, now);
        store.put_user(org, &user, chrono::Utc::now()).await.expect("a learner");
        users.push(user.user_id);
    }
    let deadline = now.date_naive() + chrono::Days::new(30);
    let mut measured = None;
    for n in 0..ASSIGNMENTS {
        let mut a = bench::org_wide(org, n, format!("topic-{n}"), deadline, None);
        a.is_mandatory = false;
        let rows: Vec<_> = if n == 0 {
            users.iter().map(|u| a.new_row(*u, domain::Source::Organization, now)).collect()
        } else {
            Vec::new()
        };
        store.create_assignment(org, &a, &bench::created(&a), &rows, &[]).await.expect("an assignment");
        measured.get_or_insert(a.id);
    }
    (measured.expect("an assignment"), users)
}

/// API Gateway's payload 2.0 event of a GET with the admin's API key.
fn event(route_key: &str, path: &str, key: &str, id: Option<(&str, domain::AssignmentId)>) -> Value {
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": format!("limit={PAGE}"),
        "queryStringParameters": {"limit": PAGE.to_string()},
        "headers": {"authorization": format!("Bearer {key}"), "host": "bench.local", "x-forwarded-proto": "https"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "bench", "domainName": "bench.local", "domainPrefix": "bench",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": route_key, "stage": "$default", "time": "29/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": false,
    });
    if let Some((name, id)) = id {
        event["pathParameters"] = json!({name: id.to_string()});
    }
    event
}

/// The request Lambda's runtime gives the handler for `event` (parsed from its JSON, as the runtime does).
fn request(event: &Value) -> lambda_http::Request {
    let parsed: lambda_http::request::LambdaRequest =
        serde_json::from_str(&event.to_string()).expect("a payload 2.0 event");
    parsed.into()
}

/// The bare calls, with the same client.
struct Bare {
    client: aws_sdk_dynamodb::Client,
    table: String,
    org: OrgId,
    key: String,
    /// Read and write capacity units the bare calls consumed.
    consumed: Mutex<(f64, f64)>,
}

impl Bare {
    fn s(value: impl Into<String>) -> AttributeValue {
        AttributeValue::S(value.into())
    }

    /// Adds what one call consumed (reads, or writes) to the bare side's count.
    fn note(&self, consumed: Option<&ConsumedCapacity>, write: bool) {
        let units = consumed.and_then(|c| c.capacity_units()).unwrap_or(0.0);
        let mut total = self.consumed.lock().expect("the bare count");
        if write {
            total.1 += units;
        } else {
            total.0 += units;
        }
    }

    /// Reads and writes consumed since the last call.
    fn take_consumed(&self) -> (f64, f64) {
        std::mem::take(&mut *self.consumed.lock().expect("the bare count"))
    }

    /// The rate counter of `subject` (`key-<id>`, or `org`: the org's own) for the hour of `at`.
    fn rate_key(&self, subject: &str, at: chrono::DateTime<Utc>) -> String {
        keys::rate_pk(&self.org, subject, &at.format("%Y%m%d%H").to_string())
    }

    async fn key_id(&self) -> String {
        let key = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, Self::s(keys::api_key_pk(&store::token_sha256(&self.key))))
            .key(keys::SK, Self::s(keys::API_KEY_SK))
            .consistent_read(true)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .expect("the key");
        self.note(key.consumed_capacity(), false);
        key.item.and_then(|i| i.get(keys::GSI1SK).and_then(|v| v.as_s().ok()).cloned()).unwrap_or_default()
    }

    /// Deletes the key's and the org's request counters of this hour.
    async fn forget_requests(&self) {
        let key_id = self.key_id().await;
        for subject in [format!("key-{key_id}"), "org".to_owned()] {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key(keys::PK, Self::s(self.rate_key(&subject, Utc::now())))
                .key(keys::SK, Self::s(keys::RATE_SK))
                .send()
                .await
                .expect("the counter deleted");
        }
    }

    /// The API key's GetItem, then its rate counter's and its org's (each an UpdateItem beside the
    /// previous hour's GetItem). The org's own limits are read once a minute: not here.
    async fn authenticate(&self) {
        let key_id = self.key_id().await;
        self.count(&format!("key-{key_id}")).await;
        self.count("org").await;
    }

    /// `subject`'s rate counter: this hour's UpdateItem beside the previous hour's GetItem.
    async fn count(&self, subject: &str) {
        let now = Utc::now();
        let hour = |at: chrono::DateTime<Utc>| self.rate_key(subject, at);
        let count = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, Self::s(hour(now)))
            .key(keys::SK, Self::s(keys::RATE_SK))
            .update_expression("ADD #minute :one")
            .expression_attribute_names("#minute", "m00")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(TOTAL)
            .send();
        let previous = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, Self::s(hour(now - chrono::Duration::hours(1))))
            .key(keys::SK, Self::s(keys::RATE_SK))
            .return_consumed_capacity(TOTAL)
            .send();
        let (count, previous) = tokio::join!(count, previous);
        self.note(count.expect("the count").consumed_capacity(), true);
        self.note(previous.expect("the previous hour").consumed_capacity(), false);
    }

    async fn detail(&self, id: domain::AssignmentId, users: &[UserId]) {
        self.authenticate().await;
        let pk = keys::assignment_pk(&self.org, id);
        let assignment = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, Self::s(pk.as_str()))
            .key(keys::SK, Self::s(keys::ASSIGNMENT_SK))
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .expect("the assignment");
        self.note(assignment.consumed_capacity(), false);
        let rows = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :rows)")
            .expression_attribute_values(":pk", Self::s(pk.as_str()))
            .expression_attribute_values(":rows", Self::s(keys::PROGRESS_SK_PREFIX))
            .limit(PAGE as i32)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .expect("a page of rows");
        self.note(rows.consumed_capacity(), false);
        let mut wanted = KeysAndAttributes::builder();
        for user in &users[..PAGE] {
            wanted = wanted.keys(
                [
                    (keys::PK.to_owned(), Self::s(keys::user_pk(&self.org, *user))),
                    (keys::SK.to_owned(), Self::s(keys::PROFILE_SK)),
                ]
                .into(),
            );
        }
        let named = self
            .client
            .batch_get_item()
            .request_items(&self.table, wanted.build().expect("keys"))
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .expect("their users");
        for consumed in named.consumed_capacity() {
            self.note(Some(consumed), false);
        }
    }

    async fn list(&self) {
        self.authenticate().await;
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :org")
            .expression_attribute_values(":org", Self::s(keys::org_assignments(&self.org)))
            .scan_index_forward(false)
            .limit(PAGE as i32)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .expect("a page of assignments");
        self.note(page.consumed_capacity(), false);
    }
}
