//! End-to-end: the local gateway on loopback, driven over HTTP as a client would, against DynamoDB
//! Local. Each test seeds its own orgs, so tests run in parallel without seeing each other.

use std::time::Duration;

use chrono::{Timelike, Utc};
use domain::{OrgId, Role};
use gateway::seed::{self, SeededOrg};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &[u8] = b"end-to-end-test-session-secret-0123456789";

struct Env {
    base: String,
    invoke: String,
    http: Client,
    store: store::Store,
    consumer: events::Consumer,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
}

/// Local bus delivery runs once per test process, on a thread that outlives each test's runtime.
static DELIVERY: std::sync::OnceLock<()> = std::sync::OnceLock::new();

async fn start() -> Env {
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    assert!(!table.is_empty(), "end-to-end tests need the local stack: run them through infra/test.sh");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let store = store::Store::new(gateway::iam::dynamodb(&aws_sdk_dynamodb::Client::new(&config)), table);
    seed::load_catalog(&store).await.unwrap();
    let template = gateway::Template::of_project().unwrap();
    DELIVERY.get_or_init(|| gateway::bus::start_in_background(template.clone(), SECRET.to_vec()).unwrap());
    let events = aws_sdk_eventbridge::Client::new(&config);
    let publisher =
        events::Publisher::new(gateway::iam::eventbridge(&events), std::env::var("EVENT_BUS_NAME").unwrap());
    let mut bucket = exports::Bucket::from_env(&config).unwrap();
    bucket.client = gateway::iam::s3(&bucket.client);
    let consumer = events::Consumer { store: store.clone(), publisher: publisher.clone() };
    let gw = gateway::Gateway::new(api::App::new(store.clone(), SECRET, publisher), bucket, template.routes).unwrap();
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let invoke_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/public/v1", api_listener.local_addr().unwrap());
    let invoke = format!("http://{}", invoke_listener.local_addr().unwrap());
    tokio::spawn(gw.serve(api_listener, invoke_listener));
    let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    Env { base, invoke, http, store, consumer, events, sqs: aws_sdk_sqs::Client::new(&config) }
}

async fn org(env: &Env) -> SeededOrg {
    let id = OrgId::parse(&format!("e2e-{}", uuid::Uuid::new_v4().simple())).unwrap();
    seed::seed_org(&env.store, SECRET, id, "Acme", Utc::now(), seed::Delivery::Direct(&env.consumer)).await.unwrap()
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(
    env: &Env,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = env.http.request(method, format!("{}{path}", env.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    assert!(headers.contains_key("x-request-id") || status == StatusCode::NOT_FOUND, "every response has X-Request-Id");
    Reply { status, headers, body }
}

/// The URL of an RFC 8288 `Link: <url>; rel="next"` header.
fn next_link(reply: &Reply) -> Option<String> {
    let link = reply.headers.get("link")?.to_str().ok()?;
    let (url, params) = link.split_once(';')?;
    (params.trim() == "rel=\"next\"").then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
}

/// The `cursor` of the next link.
fn next_cursor(reply: &Reply) -> Option<String> {
    let url = next_link(reply)?;
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "cursor").map(|(_, v)| v.into_owned())
}

fn deadline(days: i64) -> String {
    (Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

fn team_topic(org: &SeededOrg, topic: &str) -> Value {
    json!({"contentArea": "practice", "targetType": "topic", "targetId": topic,
           "assigneeType": "team", "assigneeId": org.teams[0].team_id, "deadline": deadline(30),
           "note": "PCI DSS 6.2.2"})
}

fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "{:?}", reply.body);
    assert_eq!(reply.body["error"], code, "{:?}", reply.body);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(reply.body["status"], status);
}

#[tokio::test]
async fn an_admin_assigns_a_team_and_everyone_sees_it() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();

    let preview =
        call(&env, Method::POST, "/assignments?dryRun=true", Some(key), Some(team_topic(&org, "sql-injection")), &[])
            .await;
    assert_eq!(preview.status, StatusCode::OK, "{:?}", preview.body);
    assert_eq!(preview.body["summary"], "Will assign 11 challenges to 5 learners");
    assert_eq!(preview.body["alreadyAssignedCount"], 0);

    let created =
        call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "sql-injection")), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.headers["location"], format!("/api/public/v1/assignments/{id}").as_str());
    assert_eq!(created.headers["etag"], "\"1\"");
    assert_eq!(created.body["targetPath"], "OWASP Web Top 10 / A03 Injection / SQL Injection");
    assert_eq!(created.body["assigneeName"], "Payments Platform");
    assert_eq!(created.body["itemCount"], 11);
    assert_eq!(created.body["progress"]["totalUsers"], 5);
    assert_eq!(created.body["progress"]["notStartedUsers"], 5);

    let preview_again =
        call(&env, Method::POST, "/assignments?dryRun=true", Some(key), Some(team_topic(&org, "sql-injection")), &[])
            .await;
    assert_eq!(preview_again.body["alreadyAssignedCount"], 5);

    let list = call(&env, Method::GET, "/assignments", Some(org.api_keys.read_only.as_str()), None, &[]).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body[0]["id"], id.as_str(), "v1: a bare array");
    assert!(!list.headers.contains_key("link"), "one page: no next link");

    let detail =
        call(&env, Method::GET, &format!("/assignments/{id}"), Some(org.admin().token.as_str()), None, &[]).await;
    assert_eq!(detail.status, StatusCode::OK);
    let users = detail.body["users"].as_array().unwrap();
    assert_eq!(users.len(), 5);
    assert!(
        users
            .iter()
            .all(|u| u["status"] == "not_started" && u["source"] == "team" && u["teamName"] == "Payments Platform")
    );
    assert!(users.iter().all(|u| u["name"].is_string() && u["totalItems"] == 11));

    let member = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();
    let mine = call(
        &env,
        Method::GET,
        &format!("/users/{}/assignments", member.user_id),
        Some(member.token.as_str()),
        None,
        &[],
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    assert_eq!(mine.body[0]["id"], id.as_str());
    assert_eq!(mine.body[0]["source"], "team");
    assert_eq!(mine.body[0]["teamName"], "Payments Platform");
    assert_eq!(mine.body[0]["status"], "not_started");
}

#[tokio::test]
async fn patch_delete_and_reactivate_with_versions() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let created = call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "xxe")), &[]).await;
    let path = format!("/assignments/{}", created.body["id"].as_str().unwrap());

    let patched = call(
        &env,
        Method::PATCH,
        &path,
        Some(key),
        Some(json!({"note": null, "isMandatory": false})),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!((patched.body["note"].clone(), patched.body["version"].clone()), (Value::Null, json!(2)));
    assert_eq!(patched.headers["etag"], "\"2\"");

    let stale = call(&env, Method::PATCH, &path, Some(key), Some(json!({"note": "x"})), &[("if-match", "\"1\"")]).await;
    assert_problem(&stale, 412, "precondition_failed");
    let immutable = call(&env, Method::PATCH, &path, Some(key), Some(json!({"targetId": "idor"})), &[]).await;
    assert_problem(&immutable, 400, "immutable_field");
    let unknown = call(&env, Method::PATCH, &path, Some(key), Some(json!({"colour": "red"})), &[]).await;
    assert_problem(&unknown, 400, "validation_failed");
    assert_eq!(unknown.body["errors"][0]["field"], "colour");

    for _ in 0..2 {
        let deleted = call(&env, Method::DELETE, &path, Some(key), None, &[]).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "repeating DELETE is harmless");
    }
    let inactive = call(&env, Method::GET, &path, Some(key), None, &[]).await;
    assert_eq!(inactive.body["isActive"], false);
    assert_eq!(inactive.body["users"].as_array().unwrap().len(), 5, "history is kept");

    let again = call(&env, Method::PATCH, &path, Some(key), Some(json!({"isActive": true})), &[]).await;
    assert_eq!((again.status, again.body["isActive"].clone()), (StatusCode::OK, json!(true)));
    let dup = call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "xxe")), &[]).await;
    assert_problem(&dup, 409, "duplicate_assignment");
    assert_eq!(dup.body["existingId"], again.body["id"]);
}

#[tokio::test]
async fn bad_requests_get_precise_problems() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();

    let raw =
        env.http.post(format!("{}/assignments", env.base)).bearer_auth(key).body("{not json").send().await.unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(raw.json::<Value>().await.unwrap()["error"], "invalid_json");

    let mut body = team_topic(&org, "sql-injection");
    body["deadline"] = json!("2020-01-01");
    let past = call(&env, Method::POST, "/assignments", Some(key), Some(body), &[]).await;
    assert_problem(&past, 400, "validation_failed");
    assert_eq!(past.body["errors"][0]["field"], "deadline");

    let unknown_target =
        call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "no-such-topic")), &[]).await;
    assert_problem(&unknown_target, 400, "unknown_target");

    let mut body = team_topic(&org, "xxe");
    body["assigneeId"] = json!(uuid::Uuid::new_v4());
    assert_problem(
        &call(&env, Method::POST, "/assignments", Some(key), Some(body), &[]).await,
        400,
        "unknown_assignee",
    );
    let mut body = team_topic(&org, "xxe");
    body["assigneeType"] = json!("org");
    body["assigneeId"] = json!("someone-elses-org");
    assert_problem(
        &call(&env, Method::POST, "/assignments", Some(key), Some(body), &[]).await,
        400,
        "unknown_assignee",
    );

    let big = json!({"note": "x".repeat(70 * 1024)});
    assert_problem(
        &call(&env, Method::POST, "/assignments", Some(key), Some(big), &[]).await,
        413,
        "payload_too_large",
    );

    let tampered = call(&env, Method::GET, "/assignments?cursor=eyJQSyI6IngifQ.AAAA", Some(key), None, &[]).await;
    assert_problem(&tampered, 400, "validation_failed");
    assert_eq!(tampered.body["errors"][0]["field"], "cursor");
    assert_problem(
        &call(&env, Method::GET, "/assignments?limit=500", Some(key), None, &[]).await,
        400,
        "validation_failed",
    );
    assert_problem(&call(&env, Method::GET, "/assignments/not-a-uuid", Some(key), None, &[]).await, 404, "not_found");

    // An org without custom courses cannot assign one.
    let bare = OrgId::parse(&format!("e2e-bare-{}", uuid::Uuid::new_v4().simple())).unwrap();
    let bare_key = seed::new_api_key_token();
    env.store
        .put_api_key(
            &domain::ApiKey {
                key_id: uuid::Uuid::new_v4(),
                org_id: bare.clone(),
                name: "bare".into(),
                scopes: api::auth::ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
                expires_at: None,
                revoked_at: None,
                created_by: "test".into(),
                created_at: Utc::now(),
            },
            &bare_key,
        )
        .await
        .unwrap();
    let course = json!({"contentArea": "custom", "targetType": "custom-course", "targetId": uuid::Uuid::new_v4(),
                        "assigneeType": "org", "assigneeId": bare.as_str(), "deadline": deadline(3)});
    assert_problem(
        &call(&env, Method::POST, "/assignments", Some(&bare_key), Some(course), &[]).await,
        400,
        "no_custom_courses",
    );
}

#[tokio::test]
async fn tokens_scopes_and_roles_are_enforced() {
    let env = start().await;
    let org = org(&env).await;
    assert_problem(&call(&env, Method::GET, "/assignments", None, None, &[]).await, 401, "unauthorized");
    assert_problem(
        &call(&env, Method::GET, "/assignments", Some("scs_live_short"), None, &[]).await,
        401,
        "unauthorized",
    );
    assert_problem(
        &call(&env, Method::GET, "/assignments", Some(&seed::new_api_key_token()), None, &[]).await,
        401,
        "unauthorized",
    );
    let expired = seed::session_token(
        SECRET,
        org.admin().user_id,
        &org.org_id,
        Role::OrgAdmin,
        "a@x",
        Utc::now() - chrono::Duration::hours(1),
    );
    assert_problem(&call(&env, Method::GET, "/assignments", Some(&expired), None, &[]).await, 401, "unauthorized");
    let forged = seed::session_token(
        b"another-secret-another-secret-xx",
        org.admin().user_id,
        &org.org_id,
        Role::OrgAdmin,
        "a@x",
        Utc::now() + chrono::Duration::hours(1),
    );
    assert_problem(&call(&env, Method::GET, "/assignments", Some(&forged), None, &[]).await, 401, "unauthorized");

    let write = call(
        &env,
        Method::POST,
        "/assignments",
        Some(org.api_keys.read_only.as_str()),
        Some(team_topic(&org, "xxe")),
        &[],
    )
    .await;
    assert_problem(&write, 403, "insufficient_scope");
    assert_eq!(write.body["required"], "assignments:write");
    assert_eq!(write.body["present"], json!(["assignments:read"]));

    let learner = org.learners().next().unwrap();
    let other = org.learners().nth(1).unwrap();
    assert_problem(
        &call(&env, Method::GET, "/assignments", Some(learner.token.as_str()), None, &[]).await,
        403,
        "forbidden",
    );
    let theirs = call(
        &env,
        Method::GET,
        &format!("/users/{}/assignments", other.user_id),
        Some(learner.token.as_str()),
        None,
        &[],
    )
    .await;
    assert_problem(&theirs, 403, "forbidden");
    let own = call(
        &env,
        Method::GET,
        &format!("/users/{}/assignments", learner.user_id),
        Some(learner.token.as_str()),
        None,
        &[],
    )
    .await;
    assert_eq!(own.status, StatusCode::OK);

    // An expired API key is refused.
    let expired_key = seed::new_api_key_token();
    let mut stored = env.store.api_key_by_token(org.api_keys.read_only.as_str()).await.unwrap().unwrap();
    stored.key_id = uuid::Uuid::new_v4();
    stored.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
    env.store.put_api_key(&stored, &expired_key).await.unwrap();
    let refused = call(&env, Method::GET, "/assignments", Some(&expired_key), None, &[]).await;
    assert_problem(&refused, 401, "unauthorized");
    assert!(refused.body["detail"].as_str().unwrap().contains("expired"));

    // Revocation applies to the very next request.
    let admin_key = org.api_keys.admin.as_str();
    assert_eq!(call(&env, Method::GET, "/assignments", Some(admin_key), None, &[]).await.status, StatusCode::OK);
    let key_id = env.store.api_key_by_token(admin_key).await.unwrap().unwrap().key_id;
    env.store.revoke_api_key(&org.org_id, key_id, Utc::now()).await.unwrap();
    assert_problem(&call(&env, Method::GET, "/assignments", Some(admin_key), None, &[]).await, 401, "unauthorized");
}

#[tokio::test]
async fn another_orgs_admin_sees_nothing_and_changes_nothing() {
    let env = start().await;
    let acme = org(&env).await;
    let rival = org(&env).await;
    let created = call(
        &env,
        Method::POST,
        "/assignments",
        Some(acme.api_keys.admin.as_str()),
        Some(team_topic(&acme, "idor")),
        &[],
    )
    .await;
    let path = format!("/assignments/{}", created.body["id"].as_str().unwrap());
    let rival_admin = rival.admin().token.as_str();

    assert_problem(&call(&env, Method::GET, &path, Some(rival_admin), None, &[]).await, 404, "not_found");
    assert_problem(
        &call(&env, Method::PATCH, &path, Some(rival_admin), Some(json!({"note": "mine"})), &[]).await,
        404,
        "not_found",
    );
    assert_problem(&call(&env, Method::DELETE, &path, Some(rival_admin), None, &[]).await, 404, "not_found");
    let listed = call(&env, Method::GET, "/assignments", Some(rival_admin), None, &[]).await;
    assert_eq!(listed.body, json!([]));
    let member = acme.learners().next().unwrap();
    let view =
        call(&env, Method::GET, &format!("/users/{}/assignments", member.user_id), Some(rival_admin), None, &[]).await;
    assert_eq!(view.body, json!([]));

    let untouched = call(&env, Method::GET, &path, Some(acme.api_keys.admin.as_str()), None, &[]).await;
    assert_eq!(
        (untouched.body["isActive"].clone(), untouched.body["note"].clone()),
        (json!(true), json!("PCI DSS 6.2.2"))
    );

    // A cursor issued to one org is refused in another.
    for topic in ["xxe", "zip-slip"] {
        call(
            &env,
            Method::POST,
            "/assignments",
            Some(acme.api_keys.admin.as_str()),
            Some(team_topic(&acme, topic)),
            &[],
        )
        .await;
    }
    let page = call(&env, Method::GET, "/assignments?limit=1", Some(acme.api_keys.admin.as_str()), None, &[]).await;
    let cursor = next_cursor(&page).expect("a next link");
    let next = call(
        &env,
        Method::GET,
        &format!("/assignments?limit=1&cursor={cursor}"),
        Some(acme.api_keys.admin.as_str()),
        None,
        &[],
    )
    .await;
    assert_eq!(next.status, StatusCode::OK);
    assert_ne!(next.body[0]["id"], page.body[0]["id"]);
    let stolen =
        call(&env, Method::GET, &format!("/assignments?limit=1&cursor={cursor}"), Some(rival_admin), None, &[]).await;
    assert_problem(&stolen, 400, "validation_failed");
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_reuse() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let first = call(
        &env,
        Method::POST,
        "/assignments",
        Some(key),
        Some(team_topic(&org, "xxe")),
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = call(
        &env,
        Method::POST,
        "/assignments",
        Some(key),
        Some(team_topic(&org, "xxe")),
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    assert_eq!(retry.body["id"], first.body["id"]);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let reuse = call(
        &env,
        Method::POST,
        "/assignments",
        Some(key),
        Some(team_topic(&org, "idor")),
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_problem(&reuse, 409, "idempotency_key_reused");
    let listed = call(&env, Method::GET, "/assignments", Some(key), None, &[]).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "the retry created nothing");
}

#[tokio::test]
async fn the_61st_request_in_a_minute_is_rate_limited() {
    let env = start().await;
    let org = org(&env).await;
    // Start early in a calendar minute so all 61 requests fall in the same one.
    let second = Utc::now().second();
    if second > 30 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    let key = org.api_keys.read_only.as_str();
    for i in 1..=60 {
        let ok = call(&env, Method::GET, "/assignments?limit=1", Some(key), None, &[]).await;
        assert_eq!(ok.status, StatusCode::OK, "request {i}");
        assert_eq!(ok.headers["x-ratelimit-remaining"], (60 - i).to_string().as_str());
    }
    let limited = call(&env, Method::GET, "/assignments?limit=1", Some(key), None, &[]).await;
    assert_problem(&limited, 429, "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(limited.headers["x-ratelimit-window"], "per_minute", "v1's headers name the window");
    assert_eq!(limited.headers["x-ratelimit-limit"], "60");
    // Another key of the same org has its own budget.
    assert_eq!(
        call(&env, Method::GET, "/assignments", Some(org.api_keys.admin.as_str()), None, &[]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn functions_can_be_invoked_through_the_lambda_invoke_api() {
    let env = start().await;
    let org = org(&env).await;
    let event = json!({
        "version": "2.0", "routeKey": "GET /api/public/v1/assignments", "rawPath": "/api/public/v1/assignments",
        "rawQueryString": "", "headers": {"authorization": format!("Bearer {}", org.api_keys.admin)},
        "requestContext": {"http": {"method": "GET", "path": "/api/public/v1/assignments", "protocol": "HTTP/1.1",
                                     "sourceIp": "127.0.0.1", "userAgent": "test"},
                           "requestId": "invoke-1", "routeKey": "GET /api/public/v1/assignments", "stage": "$default",
                           "accountId": "000000000000", "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
                           "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 0},
        "isBase64Encoded": false
    });
    let resp = env
        .http
        .post(format!("{}/2015-03-31/functions/ListAssignmentsFunction/invocations", env.invoke))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let result: Value = resp.json().await.unwrap();
    assert_eq!(result["statusCode"], 200);
    assert_eq!(result["headers"]["x-request-id"], "invoke-1");
    let unknown = env
        .http
        .post(format!("{}/2015-03-31/functions/Nope/invocations", env.invoke))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn completing_all_eleven_challenges_completes_the_learner_once() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let created =
        call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "sql-injection")), &[]).await;
    let path = format!("/assignments/{}", created.body["id"].as_str().unwrap());
    let learner = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();

    let before_creation = Utc::now() - chrono::Duration::hours(1);
    let event = |index: u16, at: chrono::DateTime<Utc>| {
        json!({"version": "0", "id": uuid::Uuid::new_v4(), "source": "platform.training", "detail-type": "challenge.completed",
               "account": "000000000000", "time": at, "region": "us-east-1", "resources": [],
               "detail": {"orgId": org.org_id.as_str(), "userId": learner.user_id, "topicId": "sql-injection",
                          "challengeIndex": index, "score": 70 + index, "completedAt": at}})
    };
    let invoke = |event: Value| {
        let url = format!("{}/2015-03-31/functions/ProgressEventsFunction/invocations", env.invoke);
        let http = env.http.clone();
        async move { http.post(url).json(&event).send().await.unwrap().json::<Value>().await.unwrap() }
    };

    // A completion from before the assignment existed does not count.
    assert_eq!(invoke(event(0, before_creation)).await["applied"], 0);
    // Eleven challenges, each delivered twice, in a shuffled order.
    let order = [3u16, 0, 7, 10, 1, 3, 5, 2, 9, 0, 4, 8, 6, 10, 1, 7, 2, 5, 9, 4, 6, 8];
    let mut applied = 0;
    for index in order {
        applied += invoke(event(index, Utc::now())).await["applied"].as_u64().unwrap();
    }
    assert_eq!(applied, 11, "duplicates change nothing");
    let poison = invoke(json!({"id": "poison", "detail-type": "challenge.completed", "detail": {}})).await;
    assert!(poison["dropped"].is_string(), "malformed events are dropped, not retried forever: {poison}");

    let detail = call(&env, Method::GET, &path, Some(key), None, &[]).await;
    assert_eq!(detail.body["progress"]["completedUsers"], 1);
    assert_eq!(detail.body["progress"]["notStartedUsers"], 4);
    let row = detail.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userId"] == json!(learner.user_id))
        .unwrap()
        .clone();
    assert_eq!(
        (row["status"].clone(), row["completedItems"].clone(), row["progress"].clone()),
        (json!("completed"), json!(11), json!(1.0))
    );
    assert!(row["completedAt"].is_string());
    assert_eq!(row["averageScore"], 75.0, "best score per challenge, averaged");

    let mine = call(
        &env,
        Method::GET,
        &format!("/users/{}/assignments", learner.user_id),
        Some(learner.token.as_str()),
        None,
        &[],
    )
    .await;
    assert_eq!((mine.body[0]["status"].clone(), mine.body[0]["progress"].clone()), (json!("completed"), json!(1.0)));
}

/// Polls `check` (up to 30 s) until it yields a value.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..120 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A queue behind a rule on the service's own bus, as a webhook dispatcher would subscribe.
async fn subscribe(env: &Env, org: &SeededOrg, detail_type: &str) -> String {
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    let url = env.sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let arn = env
        .sqs
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
    let pattern =
        json!({"source": ["assignments"], "detail-type": [detail_type], "detail": {"orgId": [org.org_id.as_str()]}});
    env.events.put_rule().name(&name).event_bus_name(&bus).event_pattern(pattern.to_string()).send().await.unwrap();
    env.events
        .put_targets()
        .rule(&name)
        .event_bus_name(&bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("q").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    url
}

async fn publish(env: &Env, events: &[seed::PlatformEvent]) {
    seed::send(seed::Delivery::Bus(&env.events), events).await.unwrap();
}

fn user_of(detail: &Value, user: domain::UserId) -> Option<Value> {
    detail["users"].as_array()?.iter().find(|u| u["userId"] == json!(user)).cloned()
}

#[tokio::test]
async fn team_membership_events_on_the_bus_move_learners_in_and_out() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let created =
        call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "sql-injection")), &[]).await;
    let path = format!("/assignments/{}", created.body["id"].as_str().unwrap());
    assert_eq!(created.body["progress"]["totalUsers"], 5);
    let added = subscribe(&env, &org, "assignment.user_added").await;

    // A new platform user joins the assigned team after the assignment was made.
    let joiner = seed::SeededUser {
        user_id: domain::UserId(uuid::Uuid::new_v4()),
        name: "Hedy Lamarr".into(),
        email: "hedy@acme.example".into(),
        role: Role::Learner,
        team_id: None,
        token: String::new(),
    };
    let now = Utc::now();
    // Rules deliver independently (users and teams are two rules): wait for the profile, so the
    // user_added event below can carry the name and email.
    publish(&env, &[seed::user_created(&org.org_id, &joiner, now)]).await;
    eventually("the new user's profile", || async {
        env.store.get_user(&org.org_id, joiner.user_id).await.unwrap().filter(|u| !u.email.is_empty())
    })
    .await;
    let added_at = now + chrono::Duration::milliseconds(1);
    publish(&env, &[seed::member_event(true, &org.org_id, &org.teams[0], joiner.user_id, added_at)]).await;
    let view_path = format!("/users/{}/assignments", joiner.user_id);
    let item = eventually("the joiner to see the team's assignment", || async {
        let view = call(&env, Method::GET, &view_path, Some(key), None, &[]).await;
        view.body.as_array().and_then(|items| items.first().cloned())
    })
    .await;
    assert_eq!((item["source"].clone(), item["teamName"].clone()), (json!("team"), json!("Payments Platform")));
    assert_eq!(item["status"], "not_started");

    // An existing member leaves: out of the rates, still in the detail as removed.
    let leaver = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();
    publish(&env, &[seed::member_event(false, &org.org_id, &org.teams[0], leaver.user_id, Utc::now())]).await;
    let detail = eventually("the leaver to be removed", || async {
        let detail = call(&env, Method::GET, &path, Some(key), None, &[]).await;
        (user_of(&detail.body, leaver.user_id)?["status"] == "removed").then_some(detail.body)
    })
    .await;
    assert_eq!(detail["progress"]["totalUsers"], 5, "5 members + 1 joiner - 1 leaver");
    assert_eq!(detail["progress"]["notStartedUsers"], 5);
    assert!(user_of(&detail, leaver.user_id).unwrap()["removedAt"].is_string());
    assert_eq!(user_of(&detail, joiner.user_id).unwrap()["name"], "Hedy Lamarr");

    // A late, older join of the leaver changes nothing.
    publish(
        &env,
        &[seed::member_event(
            true,
            &org.org_id,
            &org.teams[0],
            leaver.user_id,
            Utc::now() - chrono::Duration::hours(1),
        )],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let detail = call(&env, Method::GET, &path, Some(key), None, &[]).await;
    assert_eq!(user_of(&detail.body, leaver.user_id).unwrap()["status"], "removed");

    let event = eventually("assignment.user_added on the service's bus", || async {
        let out = env.sqs.receive_message().queue_url(&added).wait_time_seconds(1).send().await.unwrap();
        out.messages.unwrap_or_default().into_iter().find_map(|m| serde_json::from_str::<Value>(m.body()?).ok())
    })
    .await;
    assert_eq!(event["detail"]["userId"], json!(joiner.user_id));
    assert_eq!(event["detail"]["userEmail"], "hedy@acme.example");
    assert_eq!(event["detail"]["assignment"]["id"], created.body["id"]);
}

#[tokio::test]
async fn completions_on_the_bus_complete_the_learner_and_announce_it() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let completed = subscribe(&env, &org, "assignment.completed").await;
    let created =
        call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "sql-injection")), &[]).await;
    let path = format!("/assignments/{}", created.body["id"].as_str().unwrap());
    let learner = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();

    let now = Utc::now();
    let events: Vec<_> = (0..11u16)
        .rev()
        .map(|i| seed::challenge_completed(&org.org_id, learner.user_id, "sql-injection", i, 80.0, now))
        .collect();
    publish(&env, &events).await;
    let detail = eventually("completedUsers to reach 1", || async {
        let detail = call(&env, Method::GET, &path, Some(key), None, &[]).await;
        (detail.body["progress"]["completedUsers"] == 1).then_some(detail.body)
    })
    .await;
    assert_eq!(user_of(&detail, learner.user_id).unwrap()["status"], "completed");
    assert_eq!(detail["progress"]["completionRate"], 0.2);

    let event = eventually("assignment.completed on the service's bus", || async {
        let out = env.sqs.receive_message().queue_url(&completed).wait_time_seconds(1).send().await.unwrap();
        out.messages.unwrap_or_default().into_iter().find_map(|m| serde_json::from_str::<Value>(m.body()?).ok())
    })
    .await;
    assert_eq!(event["source"], "assignments");
    assert_eq!(event["detail-type"], "assignment.completed");
    let d = &event["detail"];
    assert_eq!((d["userId"].clone(), d["userName"].clone()), (json!(learner.user_id), json!(learner.name)));
    assert_eq!(d["userEmail"], json!(learner.email));
    assert_eq!(d["assignment"]["id"], created.body["id"]);
    assert!(d["completedAt"].is_string());
}

#[tokio::test]
async fn the_audit_log_lists_admin_writes_newest_first_with_filters_and_paging() {
    let env = start().await;
    let org = org(&env).await;
    let other = self::org(&env).await;
    let key = org.api_keys.admin.as_str();
    let admin = org.admin().token.as_str();
    let created =
        call(&env, Method::POST, "/assignments", Some(admin), Some(team_topic(&org, "sql-injection")), &[]).await;
    let path = format!("/assignments/{}", created.body["id"].as_str().unwrap());
    call(&env, Method::PATCH, &path, Some(key), Some(json!({"note": "Q3"})), &[]).await;
    call(&env, Method::DELETE, &path, Some(key), None, &[]).await;
    call(
        &env,
        Method::POST,
        "/assignments",
        Some(other.api_keys.admin.as_str()),
        Some(team_topic(&other, "path-traversal")),
        &[],
    )
    .await;

    let all = call(&env, Method::GET, "/audit-log", Some(key), None, &[]).await;
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
    let actions: Vec<_> = all.body["items"].as_array().unwrap().iter().map(|e| e["action"].clone()).collect();
    assert_eq!(actions, [json!("assignment.deactivated"), json!("assignment.updated"), json!("assignment.created")]);
    let first = &all.body["items"][2];
    assert_eq!(first["actorEmail"], json!(org.admin().email));
    assert_eq!(first["actorRole"], "org_admin");
    assert_eq!(
        (first["targetType"].clone(), first["targetId"].clone()),
        (json!("assignment"), created.body["id"].clone())
    );
    assert!(first["requestId"].is_string() && first["metadata"]["after"].is_object());
    assert_eq!(all.body["items"][1]["metadata"]["after"]["note"], "Q3");

    let by_action = call(&env, Method::GET, "/audit-log?action=assignment.updated", Some(key), None, &[]).await;
    assert_eq!(by_action.body["items"].as_array().unwrap().len(), 1);
    let by_email =
        call(&env, Method::GET, &format!("/audit-log?actorEmail={}", org.admin().email), Some(key), None, &[]).await;
    assert_eq!(by_email.body["items"].as_array().unwrap().len(), 1, "API-key writes carry no email");
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let future = call(&env, Method::GET, &format!("/audit-log?from={tomorrow}"), Some(key), None, &[]).await;
    assert_eq!(future.body["items"], json!([]));
    let today =
        call(&env, Method::GET, &format!("/audit-log?to={}", Utc::now().date_naive()), Some(key), None, &[]).await;
    assert_eq!(today.body["items"].as_array().unwrap().len(), 3);

    // Paging: one at a time, in the same order; the cursor is bound to the org and this listing.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/audit-log?limit=1&cursor={c}"),
            None => "/audit-log?limit=1".to_owned(),
        };
        let page = call(&env, Method::GET, &query, Some(key), None, &[]).await;
        seen.extend(page.body["items"].as_array().unwrap().iter().map(|e| e["action"].clone()));
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        let stolen = call(&env, Method::GET, &query, Some(other.api_keys.admin.as_str()), None, &[]).await;
        if cursor.is_some() && query.contains("cursor") {
            assert_problem(&stolen, 400, "validation_failed");
        }
    }
    assert_eq!(seen, actions);

    assert_problem(
        &call(&env, Method::GET, "/audit-log?from=yesterday", Some(key), None, &[]).await,
        400,
        "validation_failed",
    );
    assert_problem(&call(&env, Method::GET, "/audit-log?nope=1", Some(key), None, &[]).await, 400, "validation_failed");
    let read_only = call(&env, Method::GET, "/audit-log", Some(org.api_keys.read_only.as_str()), None, &[]).await;
    assert_problem(&read_only, 403, "insufficient_scope");
    let learner = org.learners().next().unwrap();
    assert_problem(
        &call(&env, Method::GET, "/audit-log", Some(learner.token.as_str()), None, &[]).await,
        403,
        "forbidden",
    );
}

async fn invoke_fn(env: &Env, function: &str, event: Value) -> Value {
    let url = format!("{}/2015-03-31/functions/{function}/invocations", env.invoke);
    env.http.post(url).json(&event).send().await.unwrap().json::<Value>().await.unwrap()
}

/// Every message that arrives on `queue` until it stays quiet for a few seconds.
async fn drain(env: &Env, queue: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut quiet = 0;
    while quiet < 3 {
        let got = env
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
            env.sqs.delete_message().queue_url(queue).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    out
}

#[tokio::test]
async fn reminders_go_out_once_per_learner_and_offset_however_often_the_job_runs() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let mut body = team_topic(&org, "sql-injection");
    body["deadline"] = json!(deadline(7));
    let created = call(&env, Method::POST, "/assignments", Some(key), Some(body), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let due_soon = subscribe(&env, &org, "assignment.due_soon").await;
    let overdue = subscribe(&env, &org, "assignment.overdue").await;
    let only = json!([org.org_id.as_str()]);

    let today = Utc::now().date_naive();
    let first = invoke_fn(&env, "RemindersFunction", json!({"date": today, "orgIds": only})).await;
    let again = invoke_fn(&env, "RemindersFunction", json!({"date": today, "orgIds": only})).await;
    assert_eq!((first["sent"].clone(), again["sent"].clone()), (json!(5), json!(0)), "{first} {again}");
    let events = drain(&env, &due_soon).await;
    let mut users: Vec<_> = events.iter().map(|e| e["detail"]["userId"].as_str().unwrap().to_owned()).collect();
    users.sort();
    users.dedup();
    assert_eq!((events.len(), users.len()), (5, 5), "each of the 5 team members once");
    assert_eq!(events[0]["detail"]["days"], 7);
    assert_eq!(events[0]["detail"]["assignment"]["id"], created.body["id"]);
    assert!(events[0]["detail"]["userEmail"].as_str().unwrap().contains('@'));

    // The day after the deadline: overdue, again once.
    let after = today + chrono::Duration::days(8);
    for _ in 0..2 {
        invoke_fn(&env, "RemindersFunction", json!({"date": after, "orgIds": only})).await;
    }
    let late = drain(&env, &overdue).await;
    assert_eq!(late.len(), 5);
    assert_eq!(late[0]["detail"]["days"], 1);
    assert_eq!(late[0]["detail"]["status"], "overdue");
    let nothing =
        invoke_fn(&env, "RemindersFunction", json!({"date": today + chrono::Duration::days(3), "orgIds": only})).await;
    assert_eq!(nothing["sent"], 0, "no reminder between the offsets");
}

#[tokio::test]
async fn reconcile_repairs_a_roster_row_deleted_behind_the_services_back() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let created =
        call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "sql-injection")), &[]).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/assignments/{id}");
    let member = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();

    let ddb = env.store.client();
    ddb.delete_item()
        .table_name(env.store.table_name())
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("ORG#{}#ASG#{id}", org.org_id)))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{}", member.user_id)))
        .send()
        .await
        .unwrap();
    let broken = call(&env, Method::GET, &path, Some(key), None, &[]).await;
    assert!(user_of(&broken.body, member.user_id).is_none());

    let report = invoke_fn(&env, "ReconcileFunction", json!({"orgIds": [org.org_id.as_str()]})).await;
    assert_eq!(report["repairs"], 2, "the row, then the counters: {report}");
    let repaired = call(&env, Method::GET, &path, Some(key), None, &[]).await;
    assert_eq!(user_of(&repaired.body, member.user_id).unwrap()["status"], "not_started");
    assert_eq!(repaired.body["progress"]["totalUsers"], 5, "counters equal the rows again");
    let quiet = invoke_fn(&env, "ReconcileFunction", json!({"orgIds": [org.org_id.as_str()]})).await;
    assert_eq!(quiet["repairs"], 0, "nothing left to repair: {quiet}");
}

fn parse_csv(text: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    (header, reader.records().map(Result::unwrap).collect())
}

#[tokio::test]
async fn csv_exports_are_downloadable_formula_safe_and_keep_removed_learners() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let mut body = team_topic(&org, "sql-injection");
    body["note"] = json!("=HYPERLINK(\"http://x\")");
    let created = call(&env, Method::POST, "/assignments", Some(key), Some(body), &[]).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let other =
        call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "path-traversal")), &[]).await;
    call(&env, Method::DELETE, &format!("/assignments/{}", other.body["id"].as_str().unwrap()), Some(key), None, &[])
        .await;
    let leaver = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();
    env.consumer
        .handle(seed::member_event(false, &org.org_id, &org.teams[0], leaver.user_id, Utc::now()).envelope())
        .await
        .unwrap();
    let ready = subscribe(&env, &org, "export.ready").await;

    let export = call(
        &env,
        Method::POST,
        "/assignments/exports",
        Some(org.api_keys.read_only.as_str()),
        Some(json!({"kind": "assignments"})),
        &[],
    )
    .await;
    assert_eq!(export.status, StatusCode::CREATED, "{:?}", export.body);
    assert_eq!((export.body["kind"].clone(), export.body["rowCount"].clone()), (json!("assignments"), json!(2)));
    let object_key = export.body["key"].as_str().unwrap();
    let now = Utc::now();
    assert!(
        object_key.starts_with(&format!("exports/{}/{}/", org.org_id, now.format("%Y/%m")))
            && object_key.ends_with(&format!("{}-assignments.csv", export.body["exportId"].as_str().unwrap())),
        "{object_key}"
    );
    let download = env.http.get(export.body["downloadUrl"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert!(download.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let text = download.text().await.unwrap();
    assert_eq!(text.len() as u64, export.body["bytes"].as_u64().unwrap());
    let (header, rows) = parse_csv(&text);
    assert_eq!(header, exports::ASSIGNMENT_COLUMNS);
    assert_eq!(rows.len(), 2, "active and inactive");
    let note_col = header.iter().position(|h| h == "note").unwrap();
    let id_col = header.iter().position(|h| h == "assignmentId").unwrap();
    let ours = rows.iter().find(|r| &r[id_col] == id.as_str()).unwrap();
    assert_eq!(&ours[note_col], "'=HYPERLINK(\"http://x\")", "rendered as text, value kept");
    let active = header.iter().position(|h| h == "isActive").unwrap();
    assert_eq!(rows.iter().filter(|r| &r[active] == "false").count(), 1);

    let progress =
        call(&env, Method::POST, "/assignments/exports", Some(key), Some(json!({"kind": "progress"})), &[]).await;
    assert_eq!(progress.status, StatusCode::CREATED, "{:?}", progress.body);
    let text = env.http.get(progress.body["downloadUrl"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    let (header, rows) = parse_csv(&text);
    assert_eq!(header, exports::PROGRESS_COLUMNS);
    assert_eq!(rows.len(), 10, "5 team members on each of the two assignments");
    let (user_col, status_col, removed_col) = (
        header.iter().position(|h| h == "userId").unwrap(),
        header.iter().position(|h| h == "status").unwrap(),
        header.iter().position(|h| h == "removedAt").unwrap(),
    );
    let gone: Vec<_> = rows.iter().filter(|r| r[user_col] == leaver.user_id.to_string()).collect();
    assert!(gone.iter().any(|r| &r[status_col] == "removed" && !r[removed_col].is_empty()), "{gone:?}");
    assert!(rows.iter().all(|r| r.len() == header.len()));

    let audit = call(&env, Method::GET, "/audit-log?action=assignment.exported", Some(key), None, &[]).await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(audit.body["items"][0]["metadata"]["kind"], "progress");
    let announced = drain(&env, &ready).await;
    assert_eq!(announced.len(), 2);
    assert!(announced.iter().any(|e| e["detail"]["key"] == json!(object_key)));

    assert_problem(
        &call(&env, Method::POST, "/assignments/exports", Some(key), Some(json!({"kind": "everything"})), &[]).await,
        400,
        "validation_failed",
    );
    assert_problem(
        &call(&env, Method::POST, "/assignments/exports", Some(key), Some(json!({"kind": "progress", "x": 1})), &[])
            .await,
        400,
        "validation_failed",
    );
    let learner = org.learners().next().unwrap();
    assert_problem(
        &call(
            &env,
            Method::POST,
            "/assignments/exports",
            Some(learner.token.as_str()),
            Some(json!({"kind": "progress"})),
            &[],
        )
        .await,
        403,
        "forbidden",
    );
}

/// A user the platform created on the bus, once the projection has them, with a still-valid session
/// token that claims `claimed`.
async fn platform_user(env: &Env, org: &SeededOrg, role: Role, claimed: Role) -> seed::SeededUser {
    let id = domain::UserId(uuid::Uuid::new_v4());
    let email = format!("{}@acme.example", id.0.simple());
    let token = seed::session_token(SECRET, id, &org.org_id, claimed, &email, Utc::now() + chrono::Duration::hours(8));
    let user = seed::SeededUser { user_id: id, name: "Grace".into(), email, role, team_id: None, token };
    publish(env, &[seed::user_created(&org.org_id, &user, Utc::now())]).await;
    eventually("the user's profile", || async { env.store.current_user(&org.org_id, id).await.unwrap() }).await;
    user
}

async fn projected(env: &Env, org: &OrgId, user: domain::UserId) -> domain::User {
    env.store.current_user(org, user).await.unwrap().expect("projected")
}

fn user_event(detail_type: &'static str, org: &SeededOrg, user: &seed::SeededUser, role: Role) -> seed::PlatformEvent {
    seed::PlatformEvent {
        source: "platform.users",
        detail_type,
        detail: json!({"orgId": org.org_id.as_str(), "userId": user.user_id, "name": user.name, "email": user.email,
                       "role": role.as_str(), "teamId": null, "occurredAt": Utc::now() + chrono::Duration::seconds(1)}),
    }
}

/// Black box, through the platform's events on the bus: a deactivated user's and a demoted admin's
/// still-valid session tokens stop working on the next request after the event is consumed; a
/// promoted learner's old token gets the new role; a token of a user the platform never announced is
/// refused.
#[tokio::test]
async fn deactivation_and_role_changes_apply_on_the_next_request() {
    let env = start().await;
    let org = org(&env).await;
    let demoted = platform_user(&env, &org, Role::OrgAdmin, Role::OrgAdmin).await;
    let leaving = platform_user(&env, &org, Role::OrgAdmin, Role::OrgAdmin).await;
    let promoted = platform_user(&env, &org, Role::Learner, Role::Learner).await;
    for admin in [&demoted, &leaving] {
        let ok = call(&env, Method::GET, "/audit-log", Some(admin.token.as_str()), None, &[]).await;
        assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    }
    let refused = call(&env, Method::GET, "/assignments", Some(promoted.token.as_str()), None, &[]).await;
    assert_problem(&refused, 403, "forbidden");

    publish(
        &env,
        &[
            user_event("user.updated", &org, &demoted, Role::Learner),
            user_event("user.deactivated", &org, &leaving, Role::OrgAdmin),
            user_event("user.updated", &org, &promoted, Role::OrgAdmin),
        ],
    )
    .await;
    let org_id = &org.org_id;
    eventually("the demotion", || async {
        (projected(&env, org_id, demoted.user_id).await.role == Role::Learner).then_some(())
    })
    .await;
    eventually("the deactivation", || async {
        (!projected(&env, org_id, leaving.user_id).await.is_active).then_some(())
    })
    .await;
    eventually("the promotion", || async {
        (projected(&env, org_id, promoted.user_id).await.role == Role::OrgAdmin).then_some(())
    })
    .await;

    let demoted_call = call(&env, Method::GET, "/audit-log", Some(demoted.token.as_str()), None, &[]).await;
    assert_problem(&demoted_call, 403, "forbidden");
    let write =
        call(&env, Method::POST, "/assignments", Some(demoted.token.as_str()), Some(team_topic(&org, "xxe")), &[])
            .await;
    assert_problem(&write, 403, "forbidden");
    let own =
        call(&env, Method::GET, &format!("/users/{}/assignments", demoted.user_id), Some(&demoted.token), None, &[])
            .await;
    assert_eq!(own.status, StatusCode::OK, "a learner still reads their own assignments");

    for path in ["/audit-log", "/assignments", &format!("/users/{}/assignments", leaving.user_id)] {
        let gone = call(&env, Method::GET, path, Some(leaving.token.as_str()), None, &[]).await;
        assert_problem(&gone, 401, "unauthorized");
    }

    let promoted_call = call(&env, Method::GET, "/audit-log", Some(promoted.token.as_str()), None, &[]).await;
    assert_eq!(promoted_call.status, StatusCode::OK, "the projection's role wins over the token's claim");

    let stranger = seed::session_token(
        SECRET,
        domain::UserId(uuid::Uuid::new_v4()),
        &org.org_id,
        Role::OrgAdmin,
        "ghost@acme.example",
        Utc::now() + chrono::Duration::hours(1),
    );
    assert_problem(&call(&env, Method::GET, "/assignments", Some(&stranger), None, &[]).await, 401, "unauthorized");
}

/// Session tokens have v1's limits too, per user: 60 in the calendar minute; successes say how many
/// remain, the 429 names the window and its limit.
#[tokio::test]
async fn session_tokens_are_rate_limited_per_user() {
    let env = start().await;
    let org = org(&env).await;
    let second = Utc::now().second();
    if second > 30 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    let learner = org.learners().next().unwrap();
    let path = format!("/users/{}/assignments", learner.user_id);
    for i in 1..=60u32 {
        let ok = call(&env, Method::GET, &path, Some(learner.token.as_str()), None, &[]).await;
        assert_eq!(ok.status, StatusCode::OK, "request {i}");
        assert_eq!(ok.headers["x-ratelimit-remaining"], (60 - i).to_string().as_str(), "request {i}");
        assert_eq!(
            (&ok.headers["x-ratelimit-window"], &ok.headers["x-ratelimit-limit"]),
            (&"per_minute".parse().unwrap(), &"60".parse().unwrap())
        );
    }
    let limited = call(&env, Method::GET, &path, Some(learner.token.as_str()), None, &[]).await;
    assert_problem(&limited, 429, "rate_limited");
    assert_eq!(limited.headers["x-ratelimit-window"], "per_minute");
    assert_eq!(limited.headers["x-ratelimit-limit"], "60");
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    assert_eq!(limited.body["window"], "per_minute");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));

    let other = org.learners().nth(1).unwrap();
    let theirs =
        call(&env, Method::GET, &format!("/users/{}/assignments", other.user_id), Some(&other.token), None, &[]).await;
    assert_eq!(theirs.status, StatusCode::OK, "another user of the org has their own budget");
}

/// `{…}`, upper-case, `urn:uuid:` and unhyphenated spellings of an id are that id: no second active
/// assignment past the duplicate lock, and filters and paths find the canonical one.
#[tokio::test]
async fn every_spelling_of_an_id_is_the_same_id() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let created = call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "xxe")), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let team = org.teams[0].team_id.0;
    let spellings = [
        format!("{{{team}}}"),
        team.to_string().to_uppercase(),
        format!("urn:uuid:{team}"),
        team.simple().to_string(),
        format!("{{{}}}", team.to_string().to_uppercase()),
    ];
    for spelling in &spellings {
        let mut body = team_topic(&org, "xxe");
        body["assigneeId"] = json!(spelling);
        let again = call(&env, Method::POST, "/assignments", Some(key), Some(body), &[]).await;
        assert_problem(&again, 409, "duplicate_assignment");
        assert_eq!(again.body["existingId"], created.body["id"], "{spelling}");

        let listed =
            call(&env, Method::GET, &format!("/assignments?assigneeId={spelling}"), Some(key), None, &[]).await;
        let ids: Vec<_> = listed.body.as_array().unwrap().iter().map(|a| a["id"].clone()).collect();
        assert_eq!(ids, vec![created.body["id"].clone()], "{spelling}");
    }
    let mut body = team_topic(&org, "sql-injection");
    body["assigneeId"] = json!(spellings[1]);
    let upper = call(&env, Method::POST, "/assignments", Some(key), Some(body), &[]).await;
    assert_eq!(upper.status, StatusCode::CREATED, "{:?}", upper.body);
    assert_eq!(upper.body["assigneeId"], json!(team.to_string()), "stored canonical");

    let course = org.custom_courses[0].course_id.0;
    let custom = json!({"contentArea": "custom", "targetType": "custom-course", "targetId": course.to_string().to_uppercase(),
                        "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(30)});
    let first = call(&env, Method::POST, "/assignments", Some(key), Some(custom), &[]).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["targetId"], json!(course.to_string()));
    let custom = json!({"contentArea": "custom", "targetType": "custom-course", "targetId": format!("urn:uuid:{course}"),
                        "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(30)});
    assert_problem(
        &call(&env, Method::POST, "/assignments", Some(key), Some(custom), &[]).await,
        409,
        "duplicate_assignment",
    );

    let learner = org.learners().next().unwrap();
    let upper_path = format!("/users/{}/assignments", learner.user_id.0.to_string().to_uppercase());
    let view = call(&env, Method::GET, &upper_path, Some(learner.token.as_str()), None, &[]).await;
    assert_eq!(view.status, StatusCode::OK, "a learner's own id in another spelling is still their own");
}

/// A v1 client: `GET /assignments` is a bare JSON array; it follows `Link: <…>; rel="next"` to the end
/// and sees every assignment once, newest first; without `limit`, one response holds them all.
#[tokio::test]
async fn a_v1_client_pages_bare_arrays_by_following_link() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    let mut created = Vec::new();
    for topic in ["xxe", "sql-injection", "idor", "ssrf-basic", "zip-slip"] {
        let reply = call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, topic)), &[]).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        created.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut url = Some(format!("{}/assignments?limit=2&isActive=true", env.base));
    let mut responses = 0;
    while let Some(next) = url {
        let resp = env.http.get(&next).bearer_auth(key).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let link = resp.headers().get("link").map(|l| l.to_str().unwrap().to_owned());
        let page: Vec<Value> = resp.json().await.expect("a bare JSON array");
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
        url = link.map(|l| {
            let (target, rel) = l.split_once(';').unwrap();
            assert_eq!(rel.trim(), "rel=\"next\"");
            let target = target.trim().trim_start_matches('<').trim_end_matches('>').to_owned();
            assert!(target.contains("limit=2") && target.contains("isActive=true"), "filters carry over: {target}");
            assert!(target.starts_with("/api/public/v1/assignments?"), "a relative reference: {target}");
            reqwest::Url::parse(&next).unwrap().join(&target).unwrap().to_string()
        });
        responses += 1;
        assert!(responses <= 5, "the listing ends");
    }
    assert_eq!(seen, created);
    assert_eq!(responses, 3);

    let exact = call(&env, Method::GET, "/assignments?limit=5", Some(key), None, &[]).await;
    assert_eq!(exact.body.as_array().unwrap().len(), 5);
    assert!(exact.headers.get("link").is_none(), "a page that holds the rest exactly is the last one");

    let all = call(&env, Method::GET, "/assignments", Some(key), None, &[]).await;
    assert_eq!(all.body.as_array().unwrap().len(), 5, "no limit: everything up to the cap");
    assert!(all.headers.get("link").is_none());
    assert!(all.headers.contains_key("x-ratelimit-remaining"));
}

/// An audit-log cursor continues the range it was issued for; with another `from`/`to` it is refused
/// as a bad request, never a server error.
#[tokio::test]
async fn an_audit_cursor_is_bound_to_its_range() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    for topic in ["xxe", "idor"] {
        call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, topic)), &[]).await;
    }
    let today = Utc::now().date_naive();
    let first = call(&env, Method::GET, &format!("/audit-log?limit=1&from={today}"), Some(key), None, &[]).await;
    let cursor = first.body["nextCursor"].as_str().expect("a second page").to_owned();
    let same =
        call(&env, Method::GET, &format!("/audit-log?limit=1&from={today}&cursor={cursor}"), Some(key), None, &[])
            .await;
    assert_eq!(same.status, StatusCode::OK);
    let yesterday = today - chrono::Duration::days(1);
    for other in [format!("from={yesterday}"), format!("from={today}&to={today}"), String::new()] {
        let moved =
            call(&env, Method::GET, &format!("/audit-log?limit=1&{other}&cursor={cursor}"), Some(key), None, &[]).await;
        assert_problem(&moved, 400, "validation_failed");
    }
}

/// Custom-course events on the platform's bus reach the course consumer through the template's rule:
/// the course is projected, and a later change of its items re-evaluates the learners already on it
/// (one whose remaining items are all done completes).
#[tokio::test]
async fn custom_course_changes_on_the_bus_re_evaluate_assigned_learners() {
    let env = start().await;
    let org = org(&env).await;
    let course = domain::CourseId(uuid::Uuid::new_v4());
    let course_event = |items: Value, at: chrono::DateTime<Utc>| seed::PlatformEvent {
        source: "platform.content",
        detail_type: "custom_course.updated",
        detail: json!({"orgId": org.org_id.as_str(), "courseId": course, "name": "Threat Modelling 101",
                       "isActive": true, "occurredAt": at, "items": items}),
    };
    let scenario = json!({"itemType": "scenario", "itemId": "secrets-in-env", "orderIndex": 1});
    let topic = json!({"itemType": "topic", "itemId": "xxe", "orderIndex": 2});
    let first_version = Utc::now();
    publish(&env, &[course_event(json!([scenario, topic]), first_version)]).await;
    let stored =
        eventually("the course", || async { env.store.get_custom_course(&org.org_id, course).await.unwrap() }).await;
    assert_eq!(stored.name, "Threat Modelling 101");

    let key = org.api_keys.admin.as_str();
    let body = json!({"contentArea": "custom", "targetType": "custom-course", "targetId": course,
                      "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(30)});
    let created = call(&env, Method::POST, "/assignments", Some(key), Some(body), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let path = format!("/assignments/{}", created.body["id"].as_str().unwrap());
    let learner = org.learners().next().unwrap();
    let done = seed::PlatformEvent {
        source: "platform.training",
        detail_type: "scenario.completed",
        detail: json!({"orgId": org.org_id.as_str(), "userId": learner.user_id, "scenarioId": "secrets-in-env",
                       "score": 90, "completedAt": Utc::now()}),
    };
    env.consumer.handle(done.envelope()).await.unwrap();
    let detail = call(&env, Method::GET, &path, Some(key), None, &[]).await;
    assert_eq!(user_of(&detail.body, learner.user_id).unwrap()["status"], "in_progress");

    publish(&env, &[course_event(json!([scenario]), first_version + chrono::Duration::seconds(1))]).await;
    eventually("the learner to complete the shortened course", || async {
        let detail = call(&env, Method::GET, &path, Some(key), None, &[]).await;
        (user_of(&detail.body, learner.user_id)?["status"] == "completed").then_some(())
    })
    .await;
}

/// Fails S3's CompleteMultipartUpload before it is sent; every other call reaches the (moto) server.
#[derive(Debug)]
struct FailCompleteMultipartUpload;

impl aws_smithy_runtime_api::client::interceptors::Intercept for FailCompleteMultipartUpload {
    fn name(&self) -> &'static str {
        "FailCompleteMultipartUpload"
    }

    fn read_before_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadInput;
        match context.input().downcast_ref::<CompleteMultipartUploadInput>() {
            Some(_) => Err("injected failure of CompleteMultipartUpload".into()),
            None => Ok(()),
        }
    }
}

/// An export whose upload fails to complete answers 503, aborts its multipart upload (nothing is left
/// in the bucket) and writes no audit entry.
#[tokio::test]
async fn a_failed_export_aborts_its_upload() {
    let env = start().await;
    let org = org(&env).await;
    let key = org.api_keys.admin.as_str();
    call(&env, Method::POST, "/assignments", Some(key), Some(team_topic(&org, "xxe")), &[]).await;

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let mut bucket = exports::Bucket::from_env(&config).unwrap();
    let healthy = bucket.client.clone();
    let failing = healthy.config().to_builder().interceptor(FailCompleteMultipartUpload).build();
    bucket.client = gateway::iam::s3(&aws_sdk_s3::Client::from_conf(failing));
    let template = gateway::Template::of_project().unwrap();
    let publisher = events::Publisher::new(env.events.clone(), std::env::var("EVENT_BUS_NAME").unwrap());
    let broken =
        gateway::Gateway::new(api::App::new(env.store.clone(), SECRET, publisher), bucket.clone(), template.routes)
            .unwrap();
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let invoke_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/public/v1", api_listener.local_addr().unwrap());
    tokio::spawn(broken.serve(api_listener, invoke_listener));

    let reply = env
        .http
        .post(format!("{base}/assignments/exports"))
        .bearer_auth(key)
        .json(&json!({"kind": "progress"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);

    let prefix = format!("exports/{}/", org.org_id.as_str());
    let uploads = healthy.list_multipart_uploads().bucket(&bucket.name).prefix(&prefix).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "the upload was aborted: {:?}", uploads.uploads());
    let objects = healthy.list_objects_v2().bucket(&bucket.name).prefix(&prefix).send().await.unwrap();
    assert_eq!(objects.key_count(), Some(0));
    let audit = call(&env, Method::GET, "/audit-log?action=assignment.exported", Some(key), None, &[]).await;
    assert_eq!(audit.body["items"], json!([]));
}

/// An org-wide assignment whose roster does not fit one transaction: the create function writes the
/// first rows with the assignment and the rest in further transactions that update its counters.
#[tokio::test]
async fn an_org_wide_assignment_writes_a_roster_larger_than_one_transaction() {
    let env = start().await;
    let org = org(&env).await;
    let now = Utc::now();
    for i in 0..store::ROSTER_ROWS_PER_TRANSACTION + 10 {
        let user = seed::SeededUser {
            user_id: domain::UserId(uuid::Uuid::new_v4()),
            name: format!("Learner {i}"),
            email: format!("learner-{i}@acme.example"),
            role: Role::Learner,
            team_id: None,
            token: String::new(),
        };
        env.consumer.handle(seed::user_created(&org.org_id, &user, now).envelope()).await.unwrap();
    }
    let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "xxe", "assigneeType": "org",
                      "assigneeId": org.org_id.as_str(), "deadline": deadline(30)});
    let key = org.api_keys.admin.as_str();
    let preview = call(&env, Method::POST, "/assignments?dryRun=true", Some(key), Some(body.clone()), &[]).await;
    let learners = preview.body["learnerCount"].as_u64().unwrap();
    assert!(learners > store::ROSTER_ROWS_PER_TRANSACTION as u64, "{learners}");
    let created = call(&env, Method::POST, "/assignments", Some(key), Some(body), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["progress"]["totalUsers"].as_u64(), Some(learners));
}

/// What authenticating costs, counted by the store's request counter against DynamoDB Local: a session
/// is one strongly consistent GetItem of the user (1 read unit) plus the rate counter (an UpdateItem of
/// this hour and a GetItem of the previous one); an API key swaps the user for the key. Printed for the
/// issue note and pinned so a change that adds round trips shows up in review.
#[tokio::test]
async fn authenticating_a_session_costs_one_consistent_read_of_the_user_plus_the_rate_counter() {
    let env = start().await;
    let org = org(&env).await;
    let capacity = store::Capacity::default();
    let publisher = events::Publisher::new(env.events.clone(), std::env::var("EVENT_BUS_NAME").unwrap());
    let app = api::App::new(env.store.clone().with_capacity_tracking(capacity.clone()), SECRET, publisher);
    // Not in minute 59, where the sliding hour lies wholly in this hour and the previous one is not read.
    let at = Utc::now().with_minute(30).unwrap();
    for (what, token) in [("session", org.admin().token.as_str()), ("API key", org.api_keys.admin.as_str())] {
        let header = format!("Bearer {token}");
        // Twice: the second request finds this hour's counter already there, as most requests do.
        app.auth.authenticate(Some(&header), at).await.unwrap();
        capacity.reset();
        let who = app.auth.authenticate(Some(&header), at).await.unwrap();
        eprintln!(
            "{what}: {} DynamoDB requests, {} read units, {} write units",
            capacity.requests(),
            capacity.reads(),
            capacity.writes()
        );
        assert_eq!(capacity.requests(), 3, "{what}: identity + rate counter (update this hour, read the last)");
        assert_eq!(who.principal.org, org.org_id);
    }
    let user_only = store::Capacity::default();
    let tracked = env.store.clone().with_capacity_tracking(user_only.clone());
    tracked.current_user(&org.org_id, org.admin().user_id).await.unwrap().unwrap();
    eprintln!("the session's user alone: {} request, {} read units", user_only.requests(), user_only.reads());
    assert_eq!((user_only.requests(), user_only.reads()), (1, 1.0), "one strongly consistent read of a small item");
}
