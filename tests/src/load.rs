//! The load-and-fault run: several orgs, one ten times the others; concurrent clients over the API's
//! routes; platform events streaming in, out of order and duplicated; the orgs' clocks moved across
//! due dates (reminders, reconcile); while the functions' AWS calls fail and the outbox publisher and
//! the workers are killed mid-run ([`gateway::faults`]). Every request and response is kept, and
//! afterwards the service's promises are checked against that history and against the table.
//!
//! Run in full by the bench (`cargo run --release -p bench --bin load-fault-bench`, infra/bench/README.md
//! "Benchmarks"), and in short by the test command (`tests/tests/load_and_faults.rs`), which fails on
//! any broken promise. The fault plan is process-wide: a run needs a process of its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{NaiveDate, Utc};
use domain::{ApiKey, OrgId, Role, TeamId, UserId};
use gateway::faults::{self, Fault};
use gateway::seed::{self, PlatformEvent, SeededOrg, SeededUser};
use reqwest::Method;
use serde_json::{Value, json};

use crate::e2e::{Env, Reply, SECRET};

/// What a run does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Orgs besides the large one.
    pub small_orgs: usize,
    /// The large org has this many times a small one's users and teams.
    pub large_factor: usize,
    /// Concurrent API clients per small org (the large org has this many times `large_factor / 2`).
    pub clients_per_org: usize,
    /// How long the traffic runs.
    pub traffic: Duration,
    /// Each org's clock moves a day this often while the traffic runs.
    pub day_every: Duration,
    /// The faults.
    pub plan: faults::Plan,
    /// Each fault kind must have been injected at least this often.
    pub min_each_fault: u64,
    /// How long the service may take to settle after the traffic (queues drained, rosters built).
    pub settle: Duration,
}

impl Settings {
    /// API clients of org `index` (the large org is the first).
    fn clients_of(&self, index: usize) -> usize {
        if index == 0 { self.clients_per_org * self.large_factor.div_ceil(2) } else { self.clients_per_org }
    }

    /// The bench's run.
    pub fn full() -> Self {
        Settings {
            small_orgs: 3,
            large_factor: 10,
            clients_per_org: 3,
            traffic: Duration::from_secs(120),
            day_every: Duration::from_secs(3),
            plan: faults::Plan { call_rate: 0.03, kill_rate: 0.1, seed: 29 },
            min_each_fault: 20,
            settle: Duration::from_secs(420),
        }
    }

    /// The test command's run: the same, smaller and shorter.
    pub fn short() -> Self {
        Settings {
            small_orgs: 2,
            large_factor: 4,
            clients_per_org: 2,
            traffic: Duration::from_secs(40),
            day_every: Duration::from_millis(1200),
            plan: faults::Plan { call_rate: 0.04, kill_rate: 0.15, seed: 7 },
            min_each_fault: 3,
            settle: Duration::from_secs(300),
        }
    }
}

/// Topics the clients assign (each tracks challenges the events complete).
const TOPICS: [&str; 4] = ["sql-injection", "xxe", "idor", "insecure-deserialization"];
/// Learn scenarios the recertified assignments track: one completion makes a cycle.
const SCENARIOS: [&str; 3] = ["idor", "sqli-login-bypass", "stored-xss-comments"];
/// API keys per API client: each key carries 60 requests a minute, so the callers' own limits are not
/// what a run measures.
const KEYS_PER_CLIENT: usize = 10;
/// The org runs' budget in the run (the template's is minutes): the large org's runs take several parts.
const JOB_BUDGET: Duration = Duration::from_millis(300);
/// Attempts a client makes of one request while it is answered 503 or 429 (honouring `Retry-After`).
const ATTEMPTS: usize = 8;

/// One org of the run.
struct Tenant {
    index: usize,
    org: SeededOrg,
    keys: Vec<String>,
    learners: Vec<SeededUser>,
    teams: Vec<TeamId>,
    /// Assignments acknowledged (201): id → (idempotency key, the individual learner).
    created: Mutex<Vec<(String, String, UserId)>>,
    /// Every final answer to each idempotency key: (status, the assignment's id or the error code).
    answers: Mutex<HashMap<String, Vec<(u16, String)>>>,
    /// Receives every event the service publishes for this org.
    events_queue: String,
    next_key: std::sync::atomic::AtomicUsize,
}

impl Tenant {
    fn key(&self) -> &str {
        let i = self.next_key.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.keys[i % self.keys.len()]
    }
}

/// One exchange of the history.
#[derive(Debug, Clone)]
struct Exchange {
    org: usize,
    route: &'static str,
    status: u16,
    retry_after: bool,
    millis: f64,
    body: String,
}

#[derive(Default)]
struct History {
    exchanges: Mutex<Vec<Exchange>>,
}

impl History {
    fn record(&self, exchange: Exchange) {
        self.exchanges.lock().unwrap_or_else(|p| p.into_inner()).push(exchange);
    }

    fn all(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One promise, checked.
#[derive(Debug, Clone)]
pub struct Invariant {
    pub name: &'static str,
    pub held: bool,
    pub detail: String,
}

/// What a run did and found.
#[derive(Debug, Clone)]
pub struct Report {
    pub settings: Settings,
    pub orgs: Vec<(String, usize, usize)>,
    pub traffic_seconds: f64,
    pub settle_seconds: f64,
    pub requests: usize,
    /// route → (count, p50 ms, p99 ms)
    pub routes: BTreeMap<&'static str, (usize, f64, f64)>,
    pub statuses: BTreeMap<u16, usize>,
    /// Refusals (4xx) by route, status and `error` code.
    pub refusals: BTreeMap<(&'static str, u16, String), usize>,
    pub faults: BTreeMap<(Fault, String), u64>,
    pub events_sent: usize,
    pub days_moved: usize,
    pub invariants: Vec<Invariant>,
}

impl Report {
    pub fn broken(&self) -> Vec<&Invariant> {
        self.invariants.iter().filter(|i| !i.held).collect()
    }

    /// The run as Markdown tables (infra/bench/README.md's).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let orgs: Vec<String> =
            self.orgs.iter().map(|(org, users, teams)| format!("{org} ({users} users, {teams} teams)")).collect();
        out.push_str(&format!(
            "Orgs: {}. Traffic {:.0} s, then {:.0} s to settle; {} requests ({:.1}/s), {} platform events, {} org-days moved.\n\n",
            orgs.join(", "),
            self.traffic_seconds,
            self.settle_seconds,
            self.requests,
            self.requests as f64 / self.traffic_seconds.max(1.0),
            self.events_sent,
            self.days_moved,
        ));
        out.push_str("| route | requests | p50 (ms) | p99 (ms) |\n|---|---|---|---|\n");
        for (route, (count, p50, p99)) in &self.routes {
            out.push_str(&format!("| {route} | {count} | {p50:.1} | {p99:.1} |\n"));
        }
        out.push_str("\n| status | responses |\n|---|---|\n");
        for (status, count) in &self.statuses {
            out.push_str(&format!("| {status} | {count} |\n"));
        }
        out.push_str("\n| refused (4xx) | status | error | responses |\n|---|---|---|---|\n");
        for ((route, status, code), count) in &self.refusals {
            out.push_str(&format!("| {route} | {status} | `{code}` | {count} |\n"));
        }
        let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
        for ((fault, _), count) in &self.faults {
            *by_kind.entry(fault.name()).or_default() += count;
        }
        out.push_str("\n| fault injected | count | by service |\n|---|---|---|\n");
        for (kind, count) in &by_kind {
            let services: Vec<String> = self
                .faults
                .iter()
                .filter(|((f, _), _)| f.name() == *kind)
                .map(|((_, service), n)| format!("{service} {n}"))
                .collect();
            out.push_str(&format!("| {kind} | {count} | {} |\n", services.join(", ")));
        }
        out.push_str("\n| invariant | held | detail |\n|---|---|---|\n");
        for i in &self.invariants {
            out.push_str(&format!("| {} | {} | {} |\n", i.name, if i.held { "yes" } else { "**no**" }, i.detail));
        }
        out
    }
}

/// Runs the load-and-fault run against the local stack, with the gateway in this process.
pub async fn run(settings: Settings) -> Report {
    // Org runs stop after a short budget and go on in continuations, as a large org's do in production:
    // the fairness check watches whether small orgs wait behind them.
    let env = Arc::new(Env::start_with(|template| template.job_budget = JOB_BUDGET).await);
    let history = Arc::new(History::default());
    let mut tenants = Vec::new();
    for index in 0..=settings.small_orgs {
        let factor = if index == 0 { settings.large_factor } else { 1 };
        tenants.push(Arc::new(tenant(&env, index, factor, settings.clients_of(index)).await));
    }
    let limited = default_limits_phase(&env, &history).await;

    faults::inject(settings.plan);
    let started = Instant::now();
    let until = started + settings.traffic;
    let events_sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let days_moved = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for t in &tenants {
        for c in 0..settings.clients_of(t.index) {
            let (env, t, history) = (env.clone(), t.clone(), history.clone());
            let seed = settings.plan.seed ^ ((t.index as u64) << 32) ^ c as u64;
            tasks.spawn(async move { api_client(&env, &t, &history, until, fastrand::Rng::with_seed(seed)).await });
        }
        let (env_, t_, sent) = (env.clone(), t.clone(), events_sent.clone());
        let seed = settings.plan.seed ^ 0xe7e7 ^ t.index as u64;
        tasks.spawn(async move { platform(&env_, &t_, until, fastrand::Rng::with_seed(seed), &sent).await });
        let (env, t, moved, every) = (env.clone(), t.clone(), days_moved.clone(), settings.day_every);
        tasks.spawn(async move { days(&env, &t, until, every, &moved).await });
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(panicked) = done {
            std::panic::resume_unwind(panicked.into_panic());
        }
    }
    let traffic_seconds = started.elapsed().as_secs_f64();
    faults::stop();

    let settling = Instant::now();
    let invariants = settle_and_check(&env, &tenants, &history, &settings, limited).await;
    let settle_seconds = settling.elapsed().as_secs_f64();

    let exchanges = history.all();
    let mut by_route: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    let mut refusals = BTreeMap::new();
    for e in &exchanges {
        by_route.entry(e.route).or_default().push(e.millis);
        *statuses.entry(e.status).or_default() += 1;
        if (400..500).contains(&e.status) {
            let code = serde_json::from_str::<Value>(&e.body).ok().and_then(|b| b["error"].as_str().map(str::to_owned));
            *refusals.entry((e.route, e.status, code.unwrap_or_default())).or_default() += 1;
        }
    }
    let routes = by_route
        .into_iter()
        .map(|(route, mut millis)| {
            millis.sort_by(f64::total_cmp);
            let at = |q: f64| millis[((millis.len() as f64 - 1.0) * q).round() as usize];
            (route, (millis.len(), at(0.5), at(0.99)))
        })
        .collect();
    Report {
        orgs: tenants.iter().map(|t| (t.org.org_id.to_string(), t.learners.len() + 1, t.teams.len())).collect(),
        settings,
        traffic_seconds,
        settle_seconds,
        requests: exchanges.len(),
        routes,
        statuses,
        refusals,
        faults: faults::injected(),
        events_sent: events_sent.load(std::sync::atomic::Ordering::Relaxed),
        days_moved: days_moved.load(std::sync::atomic::Ordering::Relaxed),
        invariants,
    }
}

/// A seeded org with `factor` times the seed's users and teams (the extra ones through the consumers,
/// directly), its limits raised through its per-org override, enough API keys, and a queue that
/// receives every event the service publishes for it.
async fn tenant(env: &Env, index: usize, factor: usize, clients: usize) -> Tenant {
    let org = env.org_with_prefix(if index == 0 { "load-large" } else { "load-small" }).await;
    let now = Utc::now();
    let mut learners: Vec<SeededUser> = org.learners().cloned().collect();
    let mut teams: Vec<TeamId> = org.teams.iter().map(|t| t.team_id).collect();
    let mut events = Vec::new();
    for extra in 1..factor {
        let extra_teams: Vec<seed::SeededTeam> = (0..2)
            .map(|i| seed::SeededTeam { team_id: TeamId(uuid::Uuid::new_v4()), name: format!("Team {extra}-{i}") })
            .collect();
        for i in 0..12 {
            let team = &extra_teams[i % 2];
            let user_id = UserId(uuid::Uuid::new_v4());
            let email = format!("learner-{}@load.example", user_id.0.simple());
            let token = seed::session_token(
                SECRET,
                user_id,
                &org.org_id,
                Role::Learner,
                &email,
                now + chrono::Duration::days(1),
            );
            let user = SeededUser {
                user_id,
                name: format!("Learner {extra}-{i}"),
                email,
                role: Role::Learner,
                team_id: Some(team.team_id),
                token,
            };
            events.push(seed::user_created(&org.org_id, &user, now));
            events.push(seed::member_event(true, &org.org_id, team, user_id, now + chrono::Duration::milliseconds(1)));
            learners.push(user);
        }
        teams.extend(extra_teams.iter().map(|t| t.team_id));
    }
    seed::send(seed::Delivery::Direct(&env.consumer), &events).await.unwrap();
    env.store
        .set_org_rate_limits(&org.org_id, Some(store::RateLimits { per_minute: 1_000_000, per_hour: 10_000_000 }))
        .await
        .unwrap();
    let mut keys = vec![org.api_keys.admin.clone()];
    for k in 1..clients * KEYS_PER_CLIENT {
        let token = seed::new_api_key_token();
        let key = ApiKey {
            key_id: uuid::Uuid::new_v4(),
            org_id: org.org_id.clone(),
            name: format!("load {k}"),
            scopes: api::auth::ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            expires_at: None,
            revoked_at: None,
            created_by: "load".into(),
            created_at: now,
        };
        env.store.put_api_key(&key, &token).await.unwrap();
        keys.push(token);
    }
    let events_queue = subscribe_all(env, &org.org_id).await;
    Tenant {
        index,
        org,
        keys,
        learners,
        teams,
        created: Mutex::default(),
        answers: Mutex::default(),
        events_queue,
        next_key: std::sync::atomic::AtomicUsize::new(0),
    }
}

/// A queue behind a rule on the service's bus for every event of `org`.
async fn subscribe_all(env: &Env, org: &OrgId) -> String {
    let pattern = json!({"source": ["assignments"], "detail": {"orgId": [org.as_str()]}});
    crate::e2e::subscribe_to(&env.events, &env.sqs, &pattern).await
}

/// At the default limits (a fresh org, one key): a burst past the caller's 60 a minute. Returns how
/// many were refused and how many of those carried `Retry-After`.
async fn default_limits_phase(env: &Env, history: &History) -> (usize, usize) {
    let org = env.org_with_prefix("load-limits").await;
    // The limits count per calendar minute: the burst must not straddle two.
    crate::e2e::early_in_a_minute().await;
    let (mut refused, mut with_retry_after) = (0, 0);
    for _ in 0..75 {
        let started = Instant::now();
        let reply = env.get("/assignments?limit=1").token(org.api_keys.admin.as_str()).await;
        let retry_after = reply.headers.contains_key("retry-after");
        if reply.status == 429 {
            refused += 1;
            with_retry_after += usize::from(retry_after);
        }
        history.record(Exchange {
            org: usize::MAX,
            route: "GET /assignments (default limits)",
            status: reply.status.as_u16(),
            retry_after,
            millis: started.elapsed().as_secs_f64() * 1000.0,
            body: String::new(),
        });
    }
    (refused, with_retry_after)
}

/// A request's body.
enum Payload {
    None,
    Json(Value),
    Bytes(Vec<u8>),
}

/// Sends one request as a client would: again while it is answered with a `Retry-After` (503, 429, a
/// create still in progress), after it (at most 2 s here), up to [`ATTEMPTS`] times, with the same
/// headers (an `Idempotency-Key` stays). Every attempt goes into the history.
/// What one client of an org sends through, and where it records what it got.
struct Client<'a> {
    env: &'a Env,
    t: &'a Tenant,
    history: &'a History,
}

impl Client<'_> {
    async fn send(
        &self,
        route: &'static str,
        method: Method,
        path: &str,
        token: &str,
        body: Payload,
        headers: &[(&str, &str)],
    ) -> Reply {
        let (env, t, history) = (self.env, self.t, self.history);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = env.request(method.clone(), path).token(token);
            request = match &body {
                Payload::None => request,
                Payload::Json(body) => request.json(body.clone()),
                Payload::Bytes(bytes) => request.bytes(bytes.clone()),
            };
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let started = Instant::now();
            let reply = request.await;
            let retry_after = reply.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            history.record(Exchange {
                org: t.index,
                route,
                status: reply.status.as_u16(),
                retry_after: retry_after.is_some(),
                millis: started.elapsed().as_secs_f64() * 1000.0,
                body: reply.body.to_string(),
            });
            // 503, 429 and a create still in progress (409) say when to come back.
            let again = retry_after.is_some() && reply.status.as_u16() >= 409 && attempt < ATTEMPTS;
            if !again {
                return reply;
            }
            tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1).min(2))).await;
        }
    }
}

/// The org's today on its test clock.
async fn org_today(env: &Env, org: &OrgId) -> NaiveDate {
    env.clock(org).await.date_naive()
}

/// One API client of an org until `until`: every route, weighted as an admin console and an
/// integration would use them, with idempotent retries of creates.
async fn api_client(env: &Env, t: &Tenant, history: &History, until: Instant, mut rng: fastrand::Rng) {
    let client = Client { env, t, history };
    while Instant::now() < until {
        let created: Vec<(String, String, UserId)> = t.created.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let known = (!created.is_empty()).then(|| created[rng.usize(..created.len())].clone());
        let learner = &t.learners[rng.usize(..t.learners.len())];
        match (rng.u8(..20), known) {
            (0..=4, _) | (_, None) => create(&client, &mut rng, learner).await,
            (5, _) => {
                let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": TOPICS[rng.usize(..4)],
                                  "assigneeType": "team", "assigneeId": t.teams[rng.usize(..t.teams.len())],
                                  "deadline": org_today(env, &t.org.org_id).await + chrono::Duration::days(20)});
                let key = t.key().to_owned();
                client
                    .send(
                        "POST /assignments?dryRun",
                        Method::POST,
                        "/assignments?dryRun=true",
                        &key,
                        Payload::Json(body),
                        &[],
                    )
                    .await;
            }
            (6..=7, _) => {
                let filter = ["", "&overdue=true", "&isActive=true", "&contentArea=practice"][rng.usize(..4)];
                let key = t.key().to_owned();
                let first = client
                    .send(
                        "GET /assignments",
                        Method::GET,
                        &format!("/assignments?limit=20{filter}"),
                        &key,
                        Payload::None,
                        &[],
                    )
                    .await;
                if let Some(next) = first.next_link() {
                    let path = next.trim_start_matches(api::http::BASE_PATH).to_owned();
                    client.send("GET /assignments (next page)", Method::GET, &path, &key, Payload::None, &[]).await;
                }
            }
            (8..=9, Some((id, _, _))) => {
                let key = t.key().to_owned();
                client
                    .send("GET /assignments/{id}", Method::GET, &format!("/assignments/{id}"), &key, Payload::None, &[])
                    .await;
            }
            (10, Some((id, _, _))) => {
                let body = json!({"isMandatory": rng.bool()});
                let key = t.key().to_owned();
                client
                    .send(
                        "PATCH /assignments/{id}",
                        Method::PATCH,
                        &format!("/assignments/{id}"),
                        &key,
                        Payload::Json(body),
                        &[],
                    )
                    .await;
            }
            (11, Some((id, _, user))) => {
                let due = org_today(env, &t.org.org_id).await + chrono::Duration::days(rng.i64(10..40));
                let key = t.key().to_owned();
                let path = format!("/assignments/{id}/users/{user}");
                client
                    .send(
                        "PATCH /assignments/{id}/users/{userId}",
                        Method::PATCH,
                        &path,
                        &key,
                        Payload::Json(json!({"dueOn": due})),
                        &[],
                    )
                    .await;
            }
            (12..=13, _) => {
                let key = t.key().to_owned();
                let path = format!("/users/{}/assignments", learner.user_id);
                client.send("GET /users/{userId}/assignments", Method::GET, &path, &key, Payload::None, &[]).await;
            }
            (14, _) => {
                // The learner's own session: their own view.
                let path = format!("/users/{}/assignments", learner.user_id);
                client
                    .send(
                        "GET /users/{userId}/assignments (session)",
                        Method::GET,
                        &path,
                        &learner.token,
                        Payload::None,
                        &[],
                    )
                    .await;
            }
            (15, _) => {
                let key = t.key().to_owned();
                client.send("GET /compliance", Method::GET, "/compliance", &key, Payload::None, &[]).await;
            }
            (16, _) => {
                let key = t.key().to_owned();
                client
                    .send(
                        "GET /compliance/learners",
                        Method::GET,
                        "/compliance/learners?limit=50",
                        &key,
                        Payload::None,
                        &[],
                    )
                    .await;
            }
            (17, _) => {
                let key = t.key().to_owned();
                client.send("GET /audit-log", Method::GET, "/audit-log?limit=20", &key, Payload::None, &[]).await;
            }
            (18, _) => {
                let kind = ["assignments", "progress", "compliance"][rng.usize(..3)];
                let key = t.key().to_owned();
                let started = client
                    .send(
                        "POST /assignments/exports",
                        Method::POST,
                        "/assignments/exports",
                        &key,
                        Payload::Json(json!({"kind": kind})),
                        &[],
                    )
                    .await;
                if let Some(export) = started.body["exportId"].as_str() {
                    let path = format!("/assignments/exports/{export}");
                    client
                        .send("GET /assignments/exports/{exportId}", Method::GET, &path, &key, Payload::None, &[])
                        .await;
                }
            }
            _ => {
                // A CodeQL-shaped log of a commit by one of the org's learners: posted, or (one in
                // three) uploaded to a presigned URL as large logs are, the worker ingesting it.
                let key = t.key().to_owned();
                let log = crate::scanners::kept("codeql-shaped.sarif");
                let (sha, bytes) = (format!("{:08x}", rng.u32(..)), log.len().to_string());
                let mut headers = vec![
                    ("x-source", "github-actions"),
                    ("x-repo", "acme/load"),
                    ("x-branch", "main"),
                    ("x-commit-sha", sha.as_str()),
                    ("x-commit-author-email", learner.email.as_str()),
                ];
                if rng.u8(..3) == 0 {
                    headers.push(("x-upload-bytes", bytes.as_str()));
                    let started = client
                        .send("POST /sarif/uploads", Method::POST, "/sarif/uploads", &key, Payload::None, &headers)
                        .await;
                    if let (Some(url), Some(upload)) =
                        (started.body["uploadUrl"].as_str(), started.body["uploadId"].as_str())
                    {
                        let put = env.http.put(url).body(log).send().await.map(|r| r.status().is_success());
                        if put.unwrap_or(false) {
                            let path = format!("/sarif/uploads/{upload}");
                            let route = "GET /sarif/uploads/{uploadId}";
                            client.send(route, Method::GET, &path, &key, Payload::None, &[]).await;
                        }
                    }
                } else {
                    headers.push(("content-type", "application/sarif+json"));
                    client.send("POST /sarif", Method::POST, "/sarif", &key, Payload::Bytes(log), &headers).await;
                }
            }
        }
    }
}

/// A create of an individual assignment under a fresh `Idempotency-Key` (its note carries the key,
/// so the table says which key made each assignment); one in six is sent again with the same key.
async fn create(client: &Client<'_>, rng: &mut fastrand::Rng, learner: &SeededUser) {
    let (env, t) = (client.env, client.t);
    let idempotency = uuid::Uuid::new_v4().to_string();
    let deadline = org_today(env, &t.org.org_id).await + chrono::Duration::days(rng.i64(2..16));
    let mut body = json!({"contentArea": "practice", "targetType": "topic", "targetId": TOPICS[rng.usize(..4)],
                      "assigneeType": "user", "assigneeId": learner.user_id, "deadline": deadline,
                      "note": format!("load {idempotency}")});
    if rng.u8(..4) == 0 {
        // A scenario recertified monthly, its next cycle open two weeks before the validity ends:
        // windows open and lapse as the org's clock moves.
        body["contentArea"] = json!("learn");
        body["targetType"] = json!("scenario");
        body["targetId"] = json!(SCENARIOS[rng.usize(..SCENARIOS.len())]);
        body["recurrence"] = json!({"everyMonths": 1, "windowDays": 14});
    }
    let sends = if rng.u8(..6) == 0 { 2 } else { 1 };
    // Idempotency keys are the caller's own (an API key's): a retry comes with the same credentials.
    let key = t.key().to_owned();
    for _ in 0..sends {
        let reply = client
            .send(
                "POST /assignments",
                Method::POST,
                "/assignments",
                &key,
                Payload::Json(body.clone()),
                &[("idempotency-key", idempotency.as_str())],
            )
            .await;
        let answer = match reply.status.as_u16() {
            201 => reply.body["id"].as_str().unwrap_or_default().to_owned(),
            // Which assignment it says exists: never the one this key made.
            409 if reply.body["error"] == "duplicate_assignment" => {
                format!("duplicate_assignment {}", reply.body["existingId"].as_str().unwrap_or_default())
            }
            _ => reply.body["error"].as_str().unwrap_or_default().to_owned(),
        };
        let first_created = {
            let mut answers = t.answers.lock().unwrap_or_else(|p| p.into_inner());
            let entry = answers.entry(idempotency.clone()).or_default();
            entry.push((reply.status.as_u16(), answer.clone()));
            reply.status == 201 && entry.iter().filter(|(status, _)| *status == 201).count() == 1
        };
        if first_created {
            t.created.lock().unwrap_or_else(|p| p.into_inner()).push((answer, idempotency.clone(), learner.user_id));
        }
    }
}

/// The platform's events for an org until `until`: completions, team moves, role changes, a
/// deactivation, course changes; each batch shuffled, some dated a little earlier than others, and one
/// in five sent twice.
async fn platform(
    env: &Env,
    t: &Tenant,
    until: Instant,
    mut rng: fastrand::Rng,
    sent: &std::sync::atomic::AtomicUsize,
) {
    let org = &t.org.org_id;
    let mut deactivated = false;
    while Instant::now() < until {
        // The platform's time is the org's: its test clock moves ahead of the wall's.
        let now = env.clock(org).await;
        let mut batch = Vec::new();
        for _ in 0..4 {
            let learner = &t.learners[rng.usize(..t.learners.len())];
            let at = now - chrono::Duration::seconds(rng.i64(0..30));
            match rng.u8(..10) {
                0 => batch.push(PlatformEvent {
                    source: "platform.training",
                    detail_type: "scenario.completed",
                    detail: json!({"orgId": org.as_str(), "userId": learner.user_id,
                                   "scenarioId": SCENARIOS[rng.usize(..SCENARIOS.len())],
                                   "score": rng.u8(50..=100), "completedAt": at}),
                }),
                1..=4 => batch.push(seed::challenge_completed(
                    org,
                    learner.user_id,
                    TOPICS[rng.usize(..4)],
                    rng.u16(..4),
                    f64::from(rng.u8(50..=100)),
                    at,
                )),
                5..=6 => {
                    let team = &t.org.teams[rng.usize(..t.org.teams.len())];
                    let joined = rng.bool();
                    batch.push(seed::member_event(joined, org, team, learner.user_id, at));
                }
                7 => {
                    let role = if rng.bool() { Role::OrgAdmin } else { Role::Learner };
                    batch.push(user_updated(org, learner, role, at));
                }
                8 if !deactivated && rng.u8(..8) == 0 => {
                    deactivated = true;
                    batch.push(PlatformEvent {
                        source: "platform.users",
                        detail_type: "user.deactivated",
                        detail: json!({"orgId": org.as_str(), "userId": learner.user_id, "occurredAt": at}),
                    });
                }
                _ => {
                    let course = &t.org.custom_courses[0];
                    batch.push(PlatformEvent {
                        source: "platform.content",
                        detail_type: "custom_course.updated",
                        detail: json!({"orgId": org.as_str(), "courseId": course.course_id,
                            "name": format!("{} {}", course.name, rng.u8(..3)), "isActive": true, "occurredAt": at,
                            "items": [{"itemType": "topic", "itemId": "sql-injection", "orderIndex": 1},
                                      {"itemType": "topic", "itemId": "idor", "orderIndex": 2}]}),
                    });
                }
            }
        }
        rng.shuffle(&mut batch);
        let times = if rng.u8(..5) == 0 { 2 } else { 1 };
        for _ in 0..times {
            env.publish(&batch).await;
            sent.fetch_add(batch.len(), std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(150..400))).await;
    }
}

/// `user.updated` for a learner of the run with `role` (they keep their profile and team).
fn user_updated(org: &OrgId, user: &SeededUser, role: Role, at: chrono::DateTime<Utc>) -> PlatformEvent {
    PlatformEvent {
        source: "platform.users",
        detail_type: "user.updated",
        detail: json!({"orgId": org.as_str(), "userId": user.user_id, "name": user.name, "email": user.email,
                       "role": role.as_str(), "teamId": user.team_id, "occurredAt": at}),
    }
}

/// Moves the org's clock a day every `every` until `until`, firing its daily reminders and, once a day
/// (not 24 times: the run moves weeks), its hourly reconcile, as it goes: due dates pass, recertification
/// windows open and lapse.
async fn days(env: &Env, t: &Tenant, until: Instant, every: Duration, moved: &std::sync::atomic::AtomicUsize) {
    let org = &t.org.org_id;
    loop {
        tokio::time::sleep(every).await;
        if Instant::now() >= until {
            return;
        }
        env.advance_clock_firing(org, chrono::Duration::hours(23), &["RemindersFunction"]).await;
        env.advance_clock_firing(org, chrono::Duration::hours(1), &["RemindersFunction", "ReconcileFunction"]).await;
        moved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits for the service to settle (the outbox published, the queues drained, the rosters built), then
/// checks every promise. Checks that depend on work still under way are tried again until they hold
/// or `settings.settle` has passed.
async fn settle_and_check(
    env: &Env,
    tenants: &[Arc<Tenant>],
    history: &History,
    settings: &Settings,
    limited: (usize, usize),
) -> Vec<Invariant> {
    let exchanges = history.all();
    let mut invariants = vec![
        server_errors(&exchanges),
        idempotent_answers(tenants),
        no_other_orgs_data(&exchanges, tenants),
        faults_injected(settings),
        limits(&exchanges, limited),
    ];
    let deadline = Instant::now() + settings.settle;
    let mut received: HashMap<usize, Vec<Value>> = HashMap::new();
    loop {
        for t in tenants {
            // The detail, with the envelope's detail type beside it.
            received.entry(t.index).or_default().extend(env.drain(&t.events_queue).await.into_iter().map(|m| {
                let mut detail = m["detail"].clone();
                detail["detail-type"] = m["detail-type"].clone();
                detail
            }));
        }
        let eventual = vec![
            creates_once(env, tenants).await,
            counters_equal_recount(env, tenants).await,
            head_counts_equal_recount(tenants).await,
            rollups_equal_recount(env, tenants).await,
            events_delivered(tenants, &received).await,
            reminders_once(&received),
        ];
        if eventual.iter().all(|i| i.held) || Instant::now() >= deadline {
            invariants.extend(eventual);
            invariants.push(small_orgs_not_held_back(tenants));
            return invariants;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// The first of what broke a promise, for its detail (nothing when nothing did).
fn first<T: std::fmt::Display>(broke: &[T]) -> String {
    broke.first().map(|b| format!(": {b}")).unwrap_or_default()
}

fn server_errors(exchanges: &[Exchange]) -> Invariant {
    let bad: Vec<String> = exchanges
        .iter()
        .filter(|e| e.status >= 500 && !(e.status == 503 && e.retry_after))
        .take(5)
        .map(|e| format!("{} {} {}", e.route, e.status, e.body.chars().take(160).collect::<String>()))
        .collect();
    let count = exchanges.iter().filter(|e| e.status >= 500 && !(e.status == 503 && e.retry_after)).count();
    Invariant {
        name: "no 5xx but 503 with Retry-After",
        held: count == 0,
        detail: if count == 0 {
            format!("{} answered 503 with Retry-After", exchanges.iter().filter(|e| e.status == 503).count())
        } else {
            format!("{count}: {}", bad.join("; "))
        },
    }
}

/// The large org's scheduled work never held a small org's back beyond one of its parts: of the large
/// org's continuations that `OrgJobsQueue` took after a small org's run (their `SentTimestamp`s), at
/// most one ran to its end before the small org's run started. An order, not a duration (parts that
/// merely start side by side, taken by concurrent pollers, hold nobody back).
fn small_orgs_not_held_back(tenants: &[Arc<Tenant>]) -> Invariant {
    let deliveries = gateway::queue::Deliveries::shared();
    let of = |t: &Tenant| deliveries.matching(|body| body["orgId"] == t.org.org_id.as_str());
    let part = |d: &gateway::queue::Delivery| d.body["part"].as_u64().unwrap_or(0);
    let continuations: Vec<(i64, Instant)> = tenants
        .iter()
        .filter(|t| t.index == 0)
        .flat_map(|t| of(t))
        .filter(|c| part(c) > 0)
        .filter_map(|c| Some((c.sent_ms?, c.done_at)))
        .collect();
    let (mut runs, mut most_ahead, mut held_back) = (0, 0, Vec::new());
    for t in tenants.iter().filter(|t| t.index != 0) {
        for delivery in of(t).iter().filter(|d| part(d) == 0) {
            let Some(sent) = delivery.sent_ms else { continue };
            runs += 1;
            let ahead =
                continuations.iter().filter(|(queued, done)| *queued > sent && *done < delivery.first_at).count();
            most_ahead = most_ahead.max(ahead);
            if ahead > 1 {
                held_back.push(format!("{}: {ahead} large-org parts queued after it ran first", t.org.org_id));
            }
        }
    }
    Invariant {
        name: "the large org never held a small org's scheduled work back beyond one of its parts",
        held: runs > 0 && !continuations.is_empty() && held_back.is_empty(),
        detail: format!(
            "{runs} small-org runs, {} large-org continuations; at most {most_ahead} queued after a small run ended before it started{}",
            continuations.len(),
            first(&held_back)
        ),
    }
}

/// The default limits refuse a burst past them, and every 429 of the run says when to come back.
fn limits(exchanges: &[Exchange], (refused, with_retry_after): (usize, usize)) -> Invariant {
    let limited: Vec<&Exchange> = exchanges.iter().filter(|e| e.status == 429).collect();
    let without = limited.iter().filter(|e| !e.retry_after).count();
    Invariant {
        name: "the default limits refuse a burst; every 429 carries Retry-After",
        held: refused > 0 && refused == with_retry_after && without == 0,
        detail: format!(
            "a burst of 75 on one key: {refused} refused; {} 429s in the run, {without} without Retry-After",
            limited.len()
        ),
    }
}

fn idempotent_answers(tenants: &[Arc<Tenant>]) -> Invariant {
    let (mut repeated, mut differing) = (0, Vec::new());
    for t in tenants {
        for (key, answers) in t.answers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if answers.len() > 1 {
                repeated += 1;
                // Once a create was acknowledged, every later send of its key that was answered at all
                // (not refused for its rate, not 503 to the end) gets that answer again.
                let after_first = answers
                    .iter()
                    .skip_while(|(status, _)| *status != 201)
                    .filter(|(status, _)| !matches!(status, 429 | 503))
                    .collect::<Vec<_>>();
                if after_first.iter().any(|a| *a != after_first[0]) {
                    differing.push(format!("{key}: {answers:?}"));
                }
            }
        }
    }
    Invariant {
        name: "an idempotent retry is answered with the first response",
        held: differing.is_empty() && repeated > 0,
        detail: format!("{repeated} keys sent again; {} answered differently{}", differing.len(), first(&differing)),
    }
}

/// Every id in a body that belongs to another org of the run (its org id, users, teams, assignments).
fn no_other_orgs_data(exchanges: &[Exchange], tenants: &[Arc<Tenant>]) -> Invariant {
    let mut owner: HashMap<String, usize> = HashMap::new();
    for t in tenants {
        owner.insert(t.org.org_id.to_string(), t.index);
        for u in &t.org.users {
            owner.insert(u.user_id.to_string(), t.index);
        }
        for u in &t.learners {
            owner.insert(u.user_id.to_string(), t.index);
        }
        for team in &t.teams {
            owner.insert(team.to_string(), t.index);
        }
        for (id, _, _) in t.created.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            owner.insert(id.clone(), t.index);
        }
    }
    let mut leaks = Vec::new();
    let mut checked = 0;
    for e in exchanges.iter().filter(|e| e.org != usize::MAX) {
        checked += 1;
        for token in e.body.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if let Some(other) = owner.get(token).filter(|o| **o != e.org) {
                leaks.push(format!("{} of org {} named {token} of org {other}", e.route, e.org));
            }
        }
    }
    Invariant {
        name: "no response carried another org's data",
        held: leaks.is_empty() && checked > 0,
        detail: format!("{checked} responses checked; {} leaks{}", leaks.len(), first(&leaks)),
    }
}

fn faults_injected(settings: &Settings) -> Invariant {
    let injected = faults::injected();
    let mut by_kind: BTreeMap<Fault, u64> = BTreeMap::new();
    for ((fault, _), count) in &injected {
        *by_kind.entry(*fault).or_default() += count;
    }
    let short: Vec<String> = Fault::OF_CALLS
        .iter()
        .chain([&Fault::Killed])
        .filter(|f| by_kind.get(f).copied().unwrap_or(0) < settings.min_each_fault)
        .map(|f| format!("{} {}", f.name(), by_kind.get(f).copied().unwrap_or(0)))
        .collect();
    Invariant {
        name: "each fault kind injected at least N times",
        held: short.is_empty(),
        detail: format!(
            "N = {}; {}",
            settings.min_each_fault,
            by_kind.iter().map(|(f, n)| format!("{} {n}", f.name())).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Every acknowledged create is in the table, and no idempotency key made two assignments.
async fn creates_once(env: &Env, tenants: &[Arc<Tenant>]) -> Invariant {
    let (mut acknowledged, mut missing, mut twice) = (0, Vec::new(), Vec::new());
    for t in tenants {
        let stored = active_assignments(env, &t.org.org_id).await;
        let mut by_note: HashMap<String, usize> = HashMap::new();
        for a in &stored {
            if let Some(note) = &a.note {
                *by_note.entry(note.clone()).or_default() += 1;
            }
        }
        let ids: HashSet<String> = stored.iter().map(|a| a.id.to_string()).collect();
        let note_of: HashMap<String, String> =
            stored.iter().filter_map(|a| Some((a.id.to_string(), a.note.clone()?))).collect();
        // A key whose own create was answered as a duplicate of itself: its first answer was lost and
        // the retry made it again (or was refused for what the first one did).
        for (key, answers) in t.answers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let own = format!("load {key}");
            if answers.iter().any(|(_, answer)| {
                answer.strip_prefix("duplicate_assignment ").is_some_and(|existing| note_of.get(existing) == Some(&own))
            }) {
                twice.push(format!("{key}: answered a duplicate of its own create"));
            }
        }
        for (id, key, _) in t.created.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            acknowledged += 1;
            if !ids.contains(id) {
                missing.push(id.clone());
            }
            if by_note.get(&format!("load {key}")).copied().unwrap_or(0) > 1 {
                twice.push(key.clone());
            }
        }
    }
    Invariant {
        name: "every acknowledged create is stored exactly once",
        held: missing.is_empty() && twice.is_empty() && acknowledged > 0,
        detail: format!("{acknowledged} acknowledged; {} missing, {} made twice", missing.len(), twice.len()),
    }
}

async fn active_assignments(env: &Env, org: &OrgId) -> Vec<domain::Assignment> {
    let far = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = env.store.due_assignments_page(org, far, start).await.unwrap();
        out.extend(page.items.into_iter().filter_map(|listed| listed.item.ok()));
        match page.next {
            Some(next) => start = Some(next),
            None => return out,
        }
    }
}

/// Each assignment's counters equal the sum of what its rows count.
async fn counters_equal_recount(env: &Env, tenants: &[Arc<Tenant>]) -> Invariant {
    let (mut checked, mut differing) = (0, Vec::new());
    for t in tenants {
        for a in active_assignments(env, &t.org.org_id).await {
            checked += 1;
            let mut counted = domain::Aggregates::default();
            let mut start = None;
            loop {
                let page = env.store.progress_page(&t.org.org_id, a.id, 1000, start).await.unwrap();
                for row in &page.items {
                    // What the row counts for now, from its own state: not only the bookkeeping the
                    // service wrote beside it.
                    let contribution = row.contribution(&a.units, a.item_count);
                    if row.counted.is_some_and(|counted| counted != contribution) {
                        differing.push(format!(
                            "row {} of {}: counted {:?}, is {contribution:?}",
                            row.user_id, a.id, row.counted
                        ));
                    }
                    counted = counted + domain::Aggregates::delta(None, Some(contribution));
                }
                match page.next {
                    Some(next) => start = Some(next),
                    None => break,
                }
            }
            let stored = env.store.get_assignment(&t.org.org_id, a.id).await.unwrap().map(|a| a.aggregates);
            if stored.as_ref() != Some(&counted) {
                differing.push(a.id.to_string());
            }
        }
    }
    Invariant {
        name: "counters equal a recount of the rows",
        held: differing.is_empty() && checked > 0,
        detail: format!("{checked} assignments; {} differ{}", differing.len(), first(&differing)),
    }
}

/// The org's and each team's head counts (the sum of their shards, as moved by every write) equal a
/// count of their index partitions: read only, nothing repaired.
async fn head_counts_equal_recount(tenants: &[Arc<Tenant>]) -> Invariant {
    let client = crate::stack::raw_client().await;
    let table = std::env::var("TABLE_NAME").unwrap();
    let (mut checked, mut differing) = (0, Vec::new());
    for t in tenants {
        let org = &t.org.org_id;
        let counts = std::iter::once(("ORG#".to_owned(), store::keys::GSI1, store::keys::org_users(org))).chain(
            t.teams
                .iter()
                .map(|team| (format!("TEAM#{team}#"), store::keys::GSI2, store::keys::team_members(org, *team))),
        );
        for (shards, index, listing) in counts {
            checked += 1;
            let stored: i64 = client
                .query()
                .table_name(&table)
                .consistent_read(true)
                .key_condition_expression("PK = :pk AND begins_with(SK, :shards)")
                .expression_attribute_values(":pk", AttributeValue::S(store::keys::headcount_pk(org)))
                .expression_attribute_values(":shards", AttributeValue::S(shards.clone()))
                .send()
                .await
                .unwrap()
                .items()
                .iter()
                .filter_map(|shard| shard.get("activeUsers")?.as_n().ok()?.parse::<i64>().ok())
                .sum();
            let mut listed = 0;
            let mut start = None;
            loop {
                let page = client
                    .query()
                    .table_name(&table)
                    .index_name(index)
                    .key_condition_expression(format!("{index}PK = :pk"))
                    .expression_attribute_values(":pk", AttributeValue::S(listing.clone()))
                    .select(aws_sdk_dynamodb::types::Select::Count)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .unwrap();
                listed += i64::from(page.count());
                match page.last_evaluated_key {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => break,
                }
            }
            if stored != listed {
                differing.push(format!("{shards} of {org}: stored {stored}, listed {listed}"));
            }
        }
    }
    Invariant {
        name: "head counts equal a recount",
        held: differing.is_empty() && checked > 0,
        detail: format!("{checked} counts; {} differ{}", differing.len(), first(&differing)),
    }
}

/// The org's and each team's compliance rollup, read as of the org's today, equal a recount of the
/// learners' compliance items.
async fn rollups_equal_recount(env: &Env, tenants: &[Arc<Tenant>]) -> Invariant {
    let (mut checked, mut differing) = (0, Vec::new());
    for t in tenants {
        let org = &t.org.org_id;
        let today = org_today(env, org).await;
        let mut by_team: HashMap<Option<TeamId>, domain::ComplianceRollup> = HashMap::new();
        let mut whole = domain::ComplianceRollup::default();
        let mut start = None;
        loop {
            let filter = store::LearnerFilter::default();
            let page = env.store.compliance_learners_page(org, &filter, 1000, start).await.unwrap();
            for learner in &page.items {
                let counted = domain::ComplianceRollup::of(learner.standing());
                whole.merge(&counted, 1);
                by_team.entry(learner.team_id).or_default().merge(&counted, 1);
            }
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        let stored = env.store.compliance_rollups(org).await.unwrap();
        let mut compare = |what: String, stored: &domain::ComplianceRollup, counted: &domain::ComplianceRollup| {
            checked += 1;
            if stored.figures(today) != counted.figures(today) {
                differing.push(format!(
                    "{what}: stored {:?}, counted {:?}",
                    stored.figures(today),
                    counted.figures(today)
                ));
            }
        };
        compare(format!("org {org}"), &stored.org, &whole);
        for (team, rollup) in &stored.teams {
            compare(format!("team {team}"), rollup, &by_team.remove(&Some(*team)).unwrap_or_default());
        }
        for (team, counted) in by_team.iter().filter(|(team, _)| team.is_some()) {
            compare(format!("team {team:?} (no rollup)"), &domain::ComplianceRollup::default(), counted);
        }
    }
    Invariant {
        name: "compliance rollups (org, teams) equal a recount of the learners",
        held: differing.is_empty() && checked > 0,
        detail: format!("{checked} rollups; {} differ{}", differing.len(), first(&differing)),
    }
}

/// Every event committed to the outbox for the run's orgs (those for the bus, not the workers'
/// requests) reached the org's queue, at least once; duplicates by `eventId` are counted.
async fn events_delivered(tenants: &[Arc<Tenant>], received: &HashMap<usize, Vec<Value>>) -> Invariant {
    let (mut committed_total, mut missing, mut duplicates) = (0, Vec::new(), 0);
    for t in tenants {
        let committed = committed_events(&t.org.org_id).await;
        committed_total += committed.len();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for detail in received.get(&t.index).into_iter().flatten() {
            *seen.entry(detail["eventId"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        }
        duplicates += seen.values().filter(|n| **n > 1).count();
        missing.extend(committed.iter().filter(|(id, _, _)| !seen.contains_key(id)).map(|(id, kind, published)| {
            format!("{kind} {id} ({})", if *published { "its item confirmed published" } else { "not yet published" })
        }));
    }
    Invariant {
        name: "every committed event delivered at least once",
        held: missing.is_empty() && committed_total > 0,
        detail: format!(
            "{committed_total} committed; {} missing{}; {duplicates} delivered more than once (same eventId)",
            missing.len(),
            first(&missing)
        ),
    }
}

/// The (id, detail type, whether the publisher confirmed its item) of every bus event in the org's
/// outbox items.
async fn committed_events(org: &OrgId) -> Vec<(String, String, bool)> {
    let client = crate::stack::raw_client().await;
    let table = std::env::var("TABLE_NAME").unwrap();
    let prefix = format!("ORG#{org}#OUTBOX#");
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(&table)
            .filter_expression("begins_with(PK, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.clone()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let published = item.contains_key("publishedAt");
            let image = serde_json::to_value(serde_dynamo::Item::from(item.clone())).unwrap();
            if let store::OutboxImage::Item(item) = store::outbox_image(&image) {
                for event in item.events.iter().filter(|e| domain::Lane::of(&e.detail_type).is_none()) {
                    out.push((event.id.to_string(), event.detail_type.clone(), published));
                }
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return out,
        }
    }
}

/// Notices the daily job owes once each: a reminder of a date, a recertification window that opened,
/// a lapse.
const NOTICES: [&str; 4] =
    ["assignment.due_soon", "assignment.overdue", "assignment.recertification_due", "assignment.expired"];

/// No learner got the same notice (type, assignment, its date and day count, or the validity it
/// renews or lapses) twice under different event ids.
fn reminders_once(received: &HashMap<usize, Vec<Value>>) -> Invariant {
    let mut by_claim: HashMap<String, HashSet<String>> = HashMap::new();
    for detail in received.values().flatten() {
        if !NOTICES.iter().any(|n| detail["detail-type"] == *n) {
            continue;
        }
        let claim = format!(
            "{}|{}|{}|{}|{}|{}",
            detail["detail-type"],
            detail["assignment"]["id"],
            detail["userId"],
            detail["dueOn"],
            detail["days"],
            detail["validUntil"]
        );
        by_claim.entry(claim).or_default().insert(detail["eventId"].as_str().unwrap_or_default().to_owned());
    }
    let twice: Vec<&String> = by_claim.iter().filter(|(_, ids)| ids.len() > 1).map(|(claim, _)| claim).collect();
    Invariant {
        name: "every owed notice (reminders, recertification, lapses) sent once",
        held: twice.is_empty() && !by_claim.is_empty(),
        detail: format!(
            "{} notices ({}); {} sent twice{}",
            by_claim.len(),
            NOTICES
                .iter()
                .map(|n| format!(
                    "{} {}",
                    n.trim_start_matches("assignment."),
                    by_claim.keys().filter(|k| k.contains(n)).count()
                ))
                .collect::<Vec<_>>()
                .join(", "),
            twice.len(),
            first(&twice)
        ),
    }
}
