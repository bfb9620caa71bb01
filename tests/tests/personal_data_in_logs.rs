//! No personal data in the logs (ids only): the failure paths that handle people's names and emails —
//! a poison platform event, one dated ahead of the clock, a refused one, a publish that keeps failing, a
//! refused SARIF upload, requests refused for what they carry — are forced, everything the functions
//! log is collected as production writes it (JSON, `info` and up), and none of the org's users' names
//! or emails is in it.
//!
//! Its own test process: the log collector is the process's one tracing subscriber.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::Utc;
use gateway::seed::{self, PlatformEvent};
use reqwest::StatusCode;
use serde_json::json;
use testkit::e2e::{Env, eventually};

/// What the process logged, as the functions write it.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Logs {
    /// The process's logs from now on, as the functions write them (`events::init_tracing`).
    fn collect() -> Logs {
        static LOGS: OnceLock<Logs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            events::init_tracing_to(logs.clone());
            logs
        })
        .clone()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A `platform.users` event about `user` whose detail is changed by `edit`.
fn user_event(
    org: &seed::SeededOrg,
    user: &seed::SeededUser,
    edit: impl FnOnce(&mut serde_json::Value),
) -> PlatformEvent {
    let mut event = seed::user_created(&org.org_id, user, Utc::now());
    event.detail_type = "user.updated";
    edit(&mut event.detail);
    event
}

#[tokio::test]
async fn the_failure_paths_log_ids_and_never_a_name_or_an_email() {
    let logs = Logs::collect();
    let (env, org) = Env::with_org().await;
    let mut learners = org.learners();
    let (learner, author) = (learners.next().unwrap(), learners.next().unwrap());

    // Poison events carrying the learner's name and email, the email also where an id or a role goes.
    for poison in [
        user_event(&org, learner, |d| d["role"] = json!(learner.email)),
        user_event(&org, learner, |d| d["teamId"] = json!(learner.email)),
        user_event(&org, learner, |d| d["userId"] = json!(learner.name)),
        user_event(&org, learner, |d| d["occurredAt"] = json!(learner.email)),
    ] {
        let outcome = env.consumer.handle(poison.envelope()).await.unwrap();
        assert!(outcome["dropped"].is_string(), "{outcome}");
    }
    // Dated ahead of the clock: held back.
    let ahead = user_event(&org, learner, |d| d["occurredAt"] = json!("2999-01-01T00:00:00Z"));
    let outcome = env.consumer.handle(ahead.envelope()).await.unwrap();
    assert!(outcome["parked"].is_string(), "{outcome}");

    // A publish that keeps failing, of events whose details hold the learner's name and email.
    let failing = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(PutEventsResultEntry::builder().error_code("InternalFailure").error_message("boom").build())
            .build()
    });
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&failing]);
    let (id, time) = (uuid::Uuid::now_v7(), Utc::now());
    let completed = service::DomainEvent {
        id,
        detail_type: "assignment.completed".into(),
        detail: json!({"userId": learner.user_id, "userName": learner.name, "userEmail": learner.email,
                       "eventId": id, "orgId": org.org_id, "occurredAt": time}),
        time,
    };
    let published = events::Publisher::new(client, "bus").publish(&[completed]).await;
    assert!(published.is_err(), "the publish failed");

    // A SARIF upload about the author's commit that is no log: refused by the worker.
    let key = org.api_keys.admin.as_str();
    let started = env
        .post("/sarif/uploads")
        .token(key)
        .header("x-source", "jenkins")
        .header("x-repo", "acme/monolith")
        .header("x-commit-sha", "10b5afe0")
        .header("x-commit-author-email", &author.email)
        .header("x-upload-bytes", "8")
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let put = env.http.put(started.body["uploadUrl"].as_str().unwrap()).body("not json").send().await.unwrap();
    assert!(put.status().is_success());
    let path = format!("/sarif/uploads/{}", started.body["uploadId"].as_str().unwrap());
    eventually("the SARIF worker", || async {
        let reply = env.get(&path).token(key).await;
        (reply.body["status"] == "failed").then_some(())
    })
    .await;

    // Requests refused for what they carry: an email where an id goes, a name as a deadline.
    let refused = env
        .post("/assignments")
        .token(key)
        .json(json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
                     "assigneeType": "user", "assigneeId": learner.email, "deadline": learner.name}))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{:?}", refused.body);
    let unknown = env.get(&format!("/users/{}/assignments", learner.email)).token(key).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let text = logs.text();
    for path in [
        "dropping malformed event",
        "holding back an event dated ahead of the clock",
        "event not published",
        "SARIF upload refused",
        // The refused request by its route, the parameter not filled in.
        r#""route":"GET /api/public/v1/users/{userId}/assignments","status":404"#,
    ] {
        assert!(text.contains(path), "the test forced this path, so its log line is there: {path}");
    }
    for user in &org.users {
        for personal in [&user.email, &user.name] {
            let line = text.lines().find(|line| line.contains(personal.as_str()));
            assert!(line.is_none(), "{personal:?} is in the logs: {line:?}");
        }
    }
}
