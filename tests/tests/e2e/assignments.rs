//! Creating, changing, deactivating and reactivating assignments through the API: previews, versions,
//! idempotent retries, rosters larger than one transaction.

use chrono::Utc;
use domain::Role;
use gateway::seed;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::e2e::{Env, assert_problem};

use crate::{assign_team_topic, deadline, path_of, team_topic};

#[tokio::test]
async fn an_admin_assigns_a_team_and_everyone_sees_it() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();

    let preview = env.post("/assignments?dryRun=true").token(key).json(team_topic(&org, "sql-injection")).await;
    assert_eq!(preview.status, StatusCode::OK, "{:?}", preview.body);
    assert_eq!(preview.body["summary"], "Will assign 11 challenges to 5 learners");
    assert_eq!(preview.body["alreadyAssignedCount"], 0);

    let created = assign_team_topic(&env, &org, "sql-injection").await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.headers["location"], format!("/api/public/v1/assignments/{id}").as_str());
    assert_eq!(created.headers["etag"], "\"1\"");
    assert_eq!(created.body["targetPath"], "OWASP Web Top 10 / A03 Injection / SQL Injection");
    assert_eq!(created.body["assigneeName"], "Payments Platform");
    assert_eq!(created.body["itemCount"], 11);
    assert_eq!(created.body["progress"]["totalUsers"], 5);
    assert_eq!(created.body["progress"]["notStartedUsers"], 5);

    let preview_again = env.post("/assignments?dryRun=true").token(key).json(team_topic(&org, "sql-injection")).await;
    assert_eq!(preview_again.body["alreadyAssignedCount"], 5);

    let list = env.get("/assignments").token(org.api_keys.read_only.as_str()).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body[0]["id"], id.as_str(), "v1: a bare array");
    assert!(!list.headers.contains_key("link"), "one page: no next link");

    let detail = env.get(&format!("/assignments/{id}")).token(org.admin().token.as_str()).await;
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
    let mine = env.get(&format!("/users/{}/assignments", member.user_id)).token(member.token.as_str()).await;
    assert_eq!(mine.status, StatusCode::OK, "{:?}", mine.body);
    assert_eq!(mine.body[0]["id"], id.as_str());
    assert_eq!(mine.body[0]["source"], "team");
    assert_eq!(mine.body[0]["teamName"], "Payments Platform");
    assert_eq!(mine.body[0]["status"], "not_started");
}

#[tokio::test]
async fn patch_delete_and_reactivate_with_versions() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let created = assign_team_topic(&env, &org, "xxe").await;
    let path = path_of(&created);

    let patched =
        env.patch(&path).token(key).json(json!({"note": null, "isMandatory": false})).header("if-match", "\"1\"").await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!((patched.body["note"].clone(), patched.body["version"].clone()), (Value::Null, json!(2)));
    assert_eq!(patched.headers["etag"], "\"2\"");

    let stale = env.patch(&path).token(key).json(json!({"note": "x"})).header("if-match", "\"1\"").await;
    assert_problem(&stale, 412, "precondition_failed");
    let immutable = env.patch(&path).token(key).json(json!({"targetId": "idor"})).await;
    assert_problem(&immutable, 400, "immutable_field");
    let unknown = env.patch(&path).token(key).json(json!({"colour": "red"})).await;
    assert_problem(&unknown, 400, "validation_failed");
    assert_eq!(unknown.body["errors"][0]["field"], "colour");

    for _ in 0..2 {
        let deleted = env.delete(&path).token(key).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "repeating DELETE is harmless");
    }
    let inactive = env.get(&path).token(key).await;
    assert_eq!(inactive.body["isActive"], false);
    assert_eq!(inactive.body["users"].as_array().unwrap().len(), 5, "history is kept");

    let again = env.patch(&path).token(key).json(json!({"isActive": true})).await;
    assert_eq!((again.status, again.body["isActive"].clone()), (StatusCode::OK, json!(true)));
    let dup = assign_team_topic(&env, &org, "xxe").await;
    assert_problem(&dup, 409, "duplicate_assignment");
    assert_eq!(dup.body["existingId"], again.body["id"]);
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_reuse() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let first =
        env.post("/assignments").token(key).json(team_topic(&org, "xxe")).header("idempotency-key", "k-1").await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry =
        env.post("/assignments").token(key).json(team_topic(&org, "xxe")).header("idempotency-key", "k-1").await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    assert_eq!(retry.body["id"], first.body["id"]);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let reuse =
        env.post("/assignments").token(key).json(team_topic(&org, "idor")).header("idempotency-key", "k-1").await;
    assert_problem(&reuse, 409, "idempotency_key_reused");
    let listed = env.get("/assignments").token(key).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "the retry created nothing");
}

/// An org-wide assignment whose roster does not fit one transaction: the create function writes the
/// first rows with the assignment and the rest in further transactions that update its counters.
#[tokio::test]
async fn an_org_wide_assignment_writes_a_roster_larger_than_one_transaction() {
    let (env, org) = Env::with_org().await;
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
    let preview = env.post("/assignments?dryRun=true").token(key).json(body.clone()).await;
    let learners = preview.body["learnerCount"].as_u64().unwrap();
    assert!(learners > store::ROSTER_ROWS_PER_TRANSACTION as u64, "{learners}");
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["progress"]["totalUsers"].as_u64(), Some(learners));
}
