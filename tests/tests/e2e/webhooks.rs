//! Customer webhooks end to end: endpoints through the gateway, the service's events through the bus to
//! the dispatcher, attempts through the delivery queue to receivers on loopback (plain HTTP, and HTTPS
//! under the local stack's test CA), each delivery verified by the Standard Webhooks reference library
//! with the secret the customer was shown. The test process runs a schedule of seconds
//! (`testkit::e2e::Env::start_with`): eight attempts in about seven seconds.

use std::time::Duration;

use gateway::seed::{self, SeededOrg};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::e2e::{Env, Reply, assert_problem, eventually};
use testkit::scanners;
use testkit::webhooks::{Receiver, verify};

use super::assign_team_topic;

const WAIT: Duration = Duration::from_secs(60);

/// Creates an endpoint of `org` for `url` subscribed to `events`; the reply (with its secret).
async fn endpoint(env: &Env, org: &SeededOrg, url: &str, events: &[&str]) -> Reply {
    let reply = env
        .post("/webhook-endpoints")
        .token(org.api_keys.admin.as_str())
        .json(json!({"url": url, "description": "tests", "events": events}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply
}

fn secret(created: &Reply) -> String {
    created.body["secret"].as_str().expect("the secret, shown once").to_owned()
}

fn data(received: &Value) -> Value {
    serde_json::from_str::<Value>(received["body"].as_str().unwrap()).unwrap()
}

async fn deliveries(env: &Env, org: &SeededOrg, endpoint: &Reply) -> Vec<Value> {
    let path = format!("/webhook-endpoints/{}/deliveries", endpoint.body["id"].as_str().unwrap());
    let reply = env.get(&path).token(org.api_keys.admin.as_str()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn signed_deliveries_of_created_completed_and_ingested_verify_with_the_reference_library() {
    let (env, org) = Env::with_org().await;
    let (plain, https) = (Receiver::plain(), Receiver::https());
    let all =
        endpoint(&env, &org, &plain.url("ok/all"), &["assignment.created", "assignment.completed", "sarif.ingested"])
            .await;
    let location = all.headers.get("location").and_then(|l| l.to_str().ok()).unwrap_or_default();
    assert!(location.ends_with(all.body["id"].as_str().unwrap()), "{location}");
    assert!(secret(&all).starts_with("whsec_"));
    let tls = endpoint(&env, &org, &https.url("ok/tls"), &["assignment.created"]).await;

    let created = assign_team_topic(&env, &org, "sql-injection").await;
    let to_plain = plain.wait_for("ok/all", 1, WAIT).await;
    let to_tls = https.wait_for("ok/tls", 1, WAIT).await;
    let verified = verify(&[(&secret(&all), &to_plain[0]), (&secret(&tls), &to_tls[0]), (&secret(&tls), &to_plain[0])]);
    let payload = verified[0].clone().expect("the library verifies the plain delivery");
    verified[1].as_ref().expect("the library verifies the HTTPS delivery");
    assert!(verified[2].is_err(), "another endpoint's secret does not verify it");
    assert_eq!(payload["type"], "assignment.created");
    // data: the POST /assignments response's shape (its fields, and who created it).
    let mut fields: Vec<&String> = payload["data"].as_object().unwrap().keys().filter(|k| *k != "actorId").collect();
    let mut response: Vec<&String> = created.body.as_object().unwrap().keys().collect();
    fields.sort();
    response.sort();
    assert_eq!(fields, response);
    assert_eq!(payload["data"]["id"], created.body["id"]);
    let id = to_plain[0]["headers"]["webhook-id"].as_str().unwrap();
    assert_eq!(to_tls[0]["headers"]["webhook-id"], id, "webhook-id is the event's id, the same for every endpoint");

    // A completion: assignment.completed with the learner.
    let learner = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();
    let now = chrono::Utc::now();
    let events: Vec<_> = (0..11u16)
        .map(|i| seed::challenge_completed(&org.org_id, learner.user_id, "sql-injection", i, 80.0, now))
        .collect();
    env.publish(&events).await;
    let completed = eventually("assignment.completed delivered", || async {
        plain.received_at("ok/all").into_iter().find(|r| data(r)["type"] == "assignment.completed")
    })
    .await;
    let payload = verify(&[(&secret(&all), &completed)]).remove(0).expect("verified");
    assert_eq!(payload["data"]["userId"], json!(learner.user_id));
    assert_eq!(payload["data"]["id"], created.body["id"]);
    assert!(payload["data"]["completedAt"].is_string());

    // An ingestion: sarif.ingested, whose data is the POST /sarif response.
    let author = org.learners().next().unwrap();
    let ingested = env
        .post("/sarif")
        .token(org.api_keys.admin.as_str())
        .header("content-type", "application/json")
        .header("x-source", "github-actions")
        .header("x-repo", "acme/payments")
        .header("x-commit-sha", "abc123def456")
        .header("x-commit-author-email", &author.email)
        .bytes(scanners::semgrep().to_vec())
        .await;
    assert_eq!(ingested.status, StatusCode::OK, "{:?}", ingested.body);
    let delivered = eventually("sarif.ingested delivered", || async {
        plain.received_at("ok/all").into_iter().find(|r| data(r)["type"] == "sarif.ingested")
    })
    .await;
    let payload = verify(&[(&secret(&all), &delivered)]).remove(0).expect("verified");
    assert_eq!(payload["data"], ingested.body);

    // The delivery log: one delivery per event, each succeeded after one attempt.
    let log = deliveries(&env, &org, &all).await;
    assert!(
        log.iter().all(|d| d["status"] == "succeeded" && d["attempts"] == 1 && d["lastStatusCode"] == 204),
        "{log:#?}"
    );
    let listed = env
        .get(&format!("/webhook-endpoints/{}", all.body["id"].as_str().unwrap()))
        .token(org.api_keys.admin.as_str())
        .await;
    assert_eq!(listed.body["health"], "Healthy");
    assert!(listed.body.get("secret").is_none(), "the secret is shown once, at creation");
}

#[tokio::test]
async fn a_failed_attempt_comes_again_with_the_same_id_and_a_receiver_that_always_fails_disables_its_endpoint() {
    let (env, org) = Env::with_org().await;
    let receiver = Receiver::plain();
    let once = endpoint(&env, &org, &receiver.url("fail-once/a"), &["assignment.created"]).await;
    let always = endpoint(&env, &org, &receiver.url("fail/b"), &["assignment.created"]).await;
    assign_team_topic(&env, &org, "sql-injection").await;

    let twice = receiver.wait_for("fail-once/a", 2, WAIT).await;
    assert_eq!((twice[0]["status"].clone(), twice[1]["status"].clone()), (json!(500), json!(204)));
    assert_eq!(twice[0]["headers"]["webhook-id"], twice[1]["headers"]["webhook-id"]);
    assert_ne!(twice[0]["headers"]["webhook-timestamp"], Value::Null);
    for r in verify(&[(&secret(&once), &twice[0]), (&secret(&once), &twice[1])]) {
        r.expect("each attempt is signed afresh");
    }
    let log = eventually("the delivery log shows both attempts", || async {
        let log = deliveries(&env, &org, &once).await;
        (log.len() == 1 && log[0]["status"] == "succeeded").then_some(log)
    })
    .await;
    assert_eq!((log[0]["attempts"].clone(), log[0]["lastStatusCode"].clone()), (json!(2), json!(204)));

    // Eight attempts, then the delivery has failed and the endpoint is disabled.
    let eight = receiver.wait_for("fail/b", 8, WAIT).await;
    assert!(eight.iter().all(|r| r["headers"]["webhook-id"] == eight[0]["headers"]["webhook-id"]));
    let id = always.body["id"].as_str().unwrap();
    let disabled = eventually("the endpoint disabled", || async {
        let reply = env.get(&format!("/webhook-endpoints/{id}")).token(org.api_keys.admin.as_str()).await;
        (reply.body["health"] == "Disabled").then_some(reply.body)
    })
    .await;
    assert!(disabled["disabledAt"].is_string());
    let log = deliveries(&env, &org, &always).await;
    assert_eq!((log[0]["status"].clone(), log[0]["attempts"].clone()), (json!("failed"), json!(8)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received_at("fail/b").len(), 8, "no attempt after the last");

    // While disabled, nothing is queued for it; turning it active clears `disabled`.
    assert_eq!(assign_team_topic(&env, &org, "idor").await.status, StatusCode::CREATED);
    let active = env
        .patch(&format!("/webhook-endpoints/{id}"))
        .token(org.api_keys.admin.as_str())
        .json(json!({"isActive": true}))
        .await;
    assert_eq!(active.status, StatusCode::OK, "{:?}", active.body);
    assert_eq!(active.body["disabledAt"], Value::Null);
    assert_ne!(active.body["health"], "Disabled");
    assert_eq!(deliveries(&env, &org, &always).await.len(), 1, "the event committed while disabled was not queued");

    // recover: what failed since then is attempted again (a new round of eight).
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let recovered = env
        .post(&format!("/webhook-endpoints/{id}/recover"))
        .token(org.api_keys.admin.as_str())
        .json(json!({"since": since}))
        .await;
    assert_eq!(recovered.status, StatusCode::ACCEPTED, "{:?}", recovered.body);
    receiver.wait_for("fail/b", 9, WAIT).await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_back_another_endpoint() {
    let (env, org) = Env::with_org().await;
    let receiver = Receiver::plain();
    endpoint(&env, &org, &receiver.url("slow/a"), &["assignment.created"]).await;
    endpoint(&env, &org, &receiver.url("ok/b"), &["assignment.created"]).await;
    for topic in ["sql-injection", "idor", "csrf", "path-traversal"] {
        let created = assign_team_topic(&env, &org, topic).await;
        assert_eq!(created.status, StatusCode::CREATED, "{topic}: {:?}", created.body);
    }
    let fast = receiver.wait_for("ok/b", 4, WAIT).await;
    let slow = receiver.wait_for("slow/a", 1, WAIT).await;
    let last_fast = fast.iter().map(|r| r["answered"].as_f64().unwrap()).fold(0.0, f64::max);
    let first_slow = slow.iter().map(|r| r["answered"].as_f64().unwrap()).fold(f64::MAX, f64::min);
    assert!(
        last_fast < first_slow,
        "every delivery to the fast endpoint completed ({last_fast}) before the slow one's first ({first_slow})"
    );
}

#[tokio::test]
async fn a_test_ping_a_redelivery_a_rotation_and_a_delete() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let receiver = Receiver::plain();
    let created = endpoint(&env, &org, &receiver.url("ok/ping"), &["assignment.created"]).await;
    let id = created.body["id"].as_str().unwrap();
    let first = secret(&created);

    let ping = env.post(&format!("/webhook-endpoints/{id}/test")).token(key).await;
    assert_eq!(ping.status, StatusCode::ACCEPTED, "{:?}", ping.body);
    let got = receiver.wait_for("ok/ping", 1, WAIT).await;
    let payload = verify(&[(&first, &got[0])]).remove(0).expect("verified");
    assert_eq!(payload["type"], "webhook.test");
    assert_eq!(payload["data"]["endpointId"], id);

    // Redelivery: the same delivery, the same webhook-id.
    let delivery = ping.body["deliveryId"].as_str().unwrap().to_owned();
    eventually("the ping's delivery recorded", || async {
        deliveries(&env, &org, &created).await.into_iter().find(|d| d["status"] == "succeeded")
    })
    .await;
    let redeliver = format!("/webhook-endpoints/{id}/deliveries/{delivery}/redeliver");
    let again = env.post(&redeliver).token(key).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{:?}", again.body);
    assert_eq!(again.body["deliveryId"], delivery.as_str());
    let two = receiver.wait_for("ok/ping", 2, WAIT).await;
    assert_eq!(two[0]["headers"]["webhook-id"], two[1]["headers"]["webhook-id"]);

    // Rotation: both secrets verify for 24 hours of the org's clock, then only the new one.
    let rotated = env.post(&format!("/webhook-endpoints/{id}/rotate-secret")).token(key).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let second = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    env.post(&format!("/webhook-endpoints/{id}/test")).token(key).await;
    let during = receiver.wait_for("ok/ping", 3, WAIT).await.remove(2);
    assert_eq!(during["headers"]["webhook-signature"].as_str().unwrap().split(' ').count(), 2);
    for r in verify(&[(&first, &during), (&second, &during)]) {
        r.expect("both secrets verify during the overlap");
    }
    env.advance_clock_firing(&org.org_id, chrono::Duration::hours(24) + chrono::Duration::minutes(1), &[]).await;
    env.post(&format!("/webhook-endpoints/{id}/test")).token(key).await;
    let after = receiver.wait_for("ok/ping", 4, WAIT).await.remove(3);
    let checked = verify(&[(&first, &after), (&second, &after)]);
    assert!(checked[0].is_err(), "the old secret no longer verifies after 24 h");
    checked[1].as_ref().expect("the new one does");

    // Delete: no more deliveries.
    assert_eq!(env.delete(&format!("/webhook-endpoints/{id}")).token(key).await.status, StatusCode::NO_CONTENT);
    assert_problem(&env.get(&format!("/webhook-endpoints/{id}")).token(key).await, 404, "not_found");
    assign_team_topic(&env, &org, "sql-injection").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received_at("ok/ping").len(), 4);
    let audit = env.get("/audit-log").token(key).await;
    let actions: Vec<&str> =
        audit.body["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["webhook_endpoint.created", "webhook_endpoint.secret_rotated", "webhook_endpoint.deleted"] {
        assert!(actions.contains(&action), "{action} in the audit log: {actions:?}");
    }
    assert!(!audit.body.to_string().contains(&second[6..]), "never the secret");
}

#[tokio::test]
async fn an_event_the_bus_delivers_twice_is_delivered_once_per_endpoint() {
    let (env, org) = Env::with_org().await;
    let receiver = Receiver::plain();
    let created = endpoint(&env, &org, &receiver.url("ok/once"), &["assignment.created"]).await;
    let event_id = uuid::Uuid::now_v7();
    let event = json!({
        "id": uuid::Uuid::new_v4(), "source": "assignments", "detail-type": "assignment.created",
        "time": chrono::Utc::now(), "detail": {"eventId": event_id, "orgId": org.org_id, "occurredAt": chrono::Utc::now(),
            "id": uuid::Uuid::now_v7(), "actorId": "apikey:x"}
    });
    for _ in 0..3 {
        let answer = env.invoke("WebhookDispatcherFunction", event.clone()).await;
        assert_eq!(answer["deliveries"], 1, "{answer}");
    }
    receiver.wait_for("ok/once", 1, WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received_at("ok/once").len(), 1);
    let log = deliveries(&env, &org, &created).await;
    assert_eq!(log.len(), 1, "{log:#?}");
}

#[tokio::test]
async fn endpoints_are_the_orgs_own_admins_only_and_unsafe_targets_are_refused() {
    let env = Env::start().await;
    let (org, other) = (env.org().await, env.org().await);
    let receiver = Receiver::plain();
    let created = endpoint(&env, &org, &receiver.url("ok/x"), &["assignment.created"]).await;
    let id = created.body["id"].as_str().unwrap();
    let delivery = uuid::Uuid::now_v7();
    let routes = [
        ("GET", format!("/webhook-endpoints/{id}")),
        ("PATCH", format!("/webhook-endpoints/{id}")),
        ("DELETE", format!("/webhook-endpoints/{id}")),
        ("POST", format!("/webhook-endpoints/{id}/test")),
        ("POST", format!("/webhook-endpoints/{id}/rotate-secret")),
        ("GET", format!("/webhook-endpoints/{id}/deliveries")),
        ("POST", format!("/webhook-endpoints/{id}/deliveries/{delivery}/redeliver")),
        ("POST", format!("/webhook-endpoints/{id}/recover")),
    ];
    let body = |method: &str, path: &str| match (method, path.ends_with("recover")) {
        ("PATCH", _) => Some(json!({"isActive": false})),
        (_, true) => Some(json!({"since": chrono::Utc::now().to_rfc3339()})),
        _ => None,
    };
    for (method, path) in &routes {
        let mut request = env.request(method.parse().unwrap(), path).token(other.api_keys.admin.as_str());
        if let Some(b) = body(method, path) {
            request = request.json(b);
        }
        assert_problem(&request.await, 404, "not_found");
    }
    let learner = org.learners().next().unwrap().token.clone();
    for token in [org.api_keys.read_only.as_str(), learner.as_str()] {
        assert_eq!(env.get("/webhook-endpoints").token(token).await.status, StatusCode::FORBIDDEN);
        let refused = env
            .post("/webhook-endpoints")
            .token(token)
            .json(json!({"url": "https://hooks.example.com/x", "events": ["assignment.created"]}))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
    let listed = env.get("/webhook-endpoints").token(other.api_keys.admin.as_str()).await;
    assert_eq!(listed.body, json!([]), "another org's endpoints are not listed");
    let catalog = env.get("/webhook-endpoints/events").token(org.api_keys.admin.as_str()).await;
    let types: Vec<&str> = catalog.body.as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(types.contains(&"assignment.created") && !types.contains(&"assignment.roster_requested"), "{types:?}");

    for url in [
        "http://hooks.example.com/x",
        "https://hooks.example.com:8080/x",
        "https://user:pw@hooks.example.com/x",
        "https://hooks.example.com/x#frag",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:10.0.0.1]/x",
        "https://100.64.0.1/x",
        "https://224.0.0.1/x",
        "https://0.0.0.0/x",
        "https://[fe80::1]/x",
        "https://printer.local/x",
    ] {
        let reply = env
            .post("/webhook-endpoints")
            .token(org.api_keys.admin.as_str())
            .json(json!({"url": url, "events": ["assignment.created"]}))
            .await;
        assert_problem(&reply, 400, "validation_failed");
    }
    let unknown = env
        .post("/webhook-endpoints")
        .token(org.api_keys.admin.as_str())
        .json(json!({"url": "https://hooks.example.com/x", "events": ["assignment.roster_requested"]}))
        .await;
    assert_problem(&unknown, 400, "validation_failed");

    // A name that resolves to a refused address: the attempt fails with why, and no connection is made
    // (the local resolver maps `*.private.test` to 10.0.0.1 without any lookup).
    let inside = endpoint(&env, &org, "https://hooks.private.test/in", &["assignment.created"]).await;
    assign_team_topic(&env, &org, "sql-injection").await;
    let log = eventually("the refused attempt recorded", || async {
        let log = deliveries(&env, &org, &inside).await;
        (log.first().is_some_and(|d| d["attempts"].as_u64() >= Some(1))).then_some(log)
    })
    .await;
    assert!(log[0]["lastError"].as_str().unwrap().contains("private address"), "{log:#?}");
    assert_eq!(log[0]["lastStatusCode"], Value::Null);

    // At most 20 endpoints an org.
    for n in 3..=20 {
        endpoint(&env, &org, &receiver.url(&format!("ok/{n}")), &["assignment.created"]).await;
    }
    let over = env
        .post("/webhook-endpoints")
        .token(org.api_keys.admin.as_str())
        .json(json!({"url": receiver.url("ok/21"), "events": ["assignment.created"]}))
        .await;
    assert_problem(&over, 400, "too_many_endpoints");
    assert_eq!(over.body["limit"], 20);
}
