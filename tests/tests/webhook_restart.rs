//! A webhook delivery's schedule outlives the process that runs it: the receiver answers the first
//! attempt `500`, the local gateway is killed at once and a new one started, and the second attempt
//! still arrives on schedule with the same `webhook-id` — the schedule is held by the delivery's item
//! and its message on the delivery queue, not by a sleeping process.
//!
//! The gateway runs as its own process (the run command's `local-gateway`, which `infra/test.sh` builds
//! first and names in `LOCAL_GATEWAY_BIN`) with a schedule of two attempts, the second 6 s after the
//! first fails. This test process runs no event delivery of its own.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::e2e::SECRET;
use testkit::webhooks::{Receiver, verify};

/// A `local-gateway` process on free ports; killed (SIGKILL, as a crash) when dropped.
struct LocalGateway {
    child: Child,
    base: String,
}

impl LocalGateway {
    async fn start() -> LocalGateway {
        let bin = std::env::var("LOCAL_GATEWAY_BIN").expect("LOCAL_GATEWAY_BIN: run through infra/test.sh");
        let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (api, invoke) = (port(), port());
        let child = Command::new(bin)
            .args(["--api-port", &api.to_string(), "--invoke-port", &invoke.to_string()])
            .env("SESSION_TOKEN_SECRET", std::str::from_utf8(SECRET).unwrap())
            .env("LOCAL_WEBHOOK_ATTEMPT_DELAYS", "0,6")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("local-gateway starts");
        let gateway = LocalGateway { child, base: format!("http://127.0.0.1:{api}/api/public/v1") };
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", api)).await.is_ok() {
                return gateway;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("local-gateway did not listen within 30 s");
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: String, key: &str, body: Option<Value>) -> Value {
    let mut request = http.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

#[tokio::test]
async fn the_second_attempt_arrives_on_schedule_after_the_gateway_was_restarted() {
    let (store, org) = testkit::stack::store_and_org().await;
    let consumer = testkit::stack::consumer(None).await;
    gateway::seed::load_catalog(&store).await.unwrap();
    let org = gateway::seed::seed_org(
        &store,
        SECRET,
        org,
        "Acme",
        chrono::Utc::now(),
        gateway::seed::Delivery::Direct(&consumer),
    )
    .await
    .unwrap();
    let key = org.api_keys.admin.as_str();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let receiver = Receiver::plain();

    let first = LocalGateway::start().await;
    let endpoint = call(
        &http,
        reqwest::Method::POST,
        format!("{}/webhook-endpoints", first.base),
        key,
        Some(json!({"url": receiver.url("fail-once/restart"), "events": ["assignment.created"]})),
    )
    .await;
    let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
        "assigneeType": "team", "assigneeId": org.teams[0].team_id,
        "deadline": (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string()});
    call(&http, reqwest::Method::POST, format!("{}/assignments", first.base), key, Some(body)).await;
    let failed = receiver.wait_for("fail-once/restart", 1, Duration::from_secs(60)).await;
    // Killed once the first attempt's outcome is written: between the two attempts.
    let id = endpoint["id"].as_str().unwrap();
    let deliveries = |base: &str| format!("{base}/webhook-endpoints/{id}/deliveries");
    for _ in 0..100 {
        let log = call(&http, reqwest::Method::GET, deliveries(&first.base), key, None).await;
        if log[0]["attempts"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill();
    assert_eq!(failed[0]["status"], 500);

    let second = LocalGateway::start().await;
    let both = receiver.wait_for("fail-once/restart", 2, Duration::from_secs(60)).await;
    assert_eq!(both[1]["status"], 204);
    assert_eq!(both[0]["headers"]["webhook-id"], both[1]["headers"]["webhook-id"]);
    let waited = both[1]["arrived"].as_f64().unwrap() - both[0]["answered"].as_f64().unwrap();
    assert!(waited >= 5.0, "the second attempt waited its 6 s ({waited:.1} s)");
    let secret = endpoint["secret"].as_str().unwrap();
    for checked in verify(&[(secret, &both[0]), (secret, &both[1])]) {
        checked.expect("each attempt verifies with the secret");
    }
    let log = call(&http, reqwest::Method::GET, deliveries(&second.base), key, None).await;
    assert_eq!((log[0]["status"].clone(), log[0]["attempts"].clone()), (json!("succeeded"), json!(2)));
}
