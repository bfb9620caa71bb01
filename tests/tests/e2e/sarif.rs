//! Code-scanning results in (`POST /sarif`, uploads): SARIF that Bandit and Semgrep really write (run
//! over `tests/fixtures/sarif/vulnerable_app.py`) and CodeQL- and Snyk-shaped logs become individual
//! assignments for the commit's author, except what an active assignment already gives them.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::Utc;
use domain::Role;
use gateway::seed::{SeededOrg, SeededUser};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::e2e::{Env, Reply, assert_problem, eventually};
use testkit::scanners;

use super::deadline;

/// A CI step posting a log about `sha` by `author` with the org's admin key (which holds `sarif:ingest`).
async fn post_sarif(env: &Env, org: &SeededOrg, author: &str, sha: &str, log: Vec<u8>) -> Reply {
    post_as(env, org.api_keys.admin.as_str(), author, sha, log).await
}

async fn post_as(env: &Env, token: &str, author: &str, sha: &str, log: Vec<u8>) -> Reply {
    post_to_repo(env, token, "acme/shop", author, sha, log).await
}

async fn post_to_repo(env: &Env, token: &str, repo: &str, author: &str, sha: &str, log: Vec<u8>) -> Reply {
    env.post("/sarif")
        .token(token)
        .header("content-type", "application/sarif+json")
        .header("x-source", "github-actions")
        .header("x-repo", repo)
        .header("x-branch", "main")
        .header("x-commit-sha", sha)
        .header("x-commit-author-email", author)
        .bytes(log)
        .await
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A topic list of a response (`created`, `alreadyCovered`, `notCreated`): topic → its CWEs.
fn topics(reply: &Reply, list: &str) -> BTreeMap<String, Vec<String>> {
    reply.body[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {:?}", reply.body))
        .iter()
        .map(|t| {
            let cwes = t["cwes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
            (t["topicId"].as_str().unwrap().to_owned(), cwes)
        })
        .collect()
}

fn expected(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs.iter().map(|(t, cwes)| ((*t).to_owned(), cwes.iter().map(|c| (*c).to_owned()).collect())).collect()
}

/// The assignment id a response lists for `topic` in `list`.
fn assignment_of(reply: &Reply, list: &str, topic: &str) -> String {
    let entry = reply.body[list].as_array().unwrap().iter().find(|t| t["topicId"] == topic).unwrap();
    entry["assignmentId"].as_str().unwrap().to_owned()
}

fn learner_in_team(org: &SeededOrg) -> &SeededUser {
    org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap()
}

async fn create(env: &Env, org: &SeededOrg, body: Value) -> String {
    let created = env.post("/assignments").token(org.api_keys.admin.as_str()).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

/// The learner's own view, by assignment id.
async fn learner_view(env: &Env, learner: &SeededUser) -> BTreeMap<String, Value> {
    let view = env.get(&format!("/users/{}/assignments", learner.user_id)).token(learner.token.as_str()).await;
    assert_eq!(view.status, StatusCode::OK, "{:?}", view.body);
    view.body.as_array().unwrap().iter().map(|a| (a["id"].as_str().unwrap().to_owned(), a.clone())).collect()
}

#[tokio::test]
async fn bandit_findings_assign_the_author_what_their_team_does_not_already_have() {
    let (env, org) = Env::with_org().await;
    let author = learner_in_team(&org);
    // The author's team already has the injection module (sql, os-command, input-validation, …).
    let module = create(
        &env,
        &org,
        json!({"contentArea": "practice", "targetType": "module", "targetId": "a03-injection",
               "assigneeType": "team", "assigneeId": org.teams[0].team_id, "deadline": deadline(30)}),
    )
    .await;

    let sha = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let reply = post_sarif(&env, &org, &author.email.to_uppercase(), sha, scanners::bandit().to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let body = &reply.body;
    assert_eq!(
        (body["source"].as_str(), body["repo"].as_str(), body["commitSha"].as_str()),
        (Some("github-actions"), Some("acme/shop"), Some(sha))
    );
    assert_eq!(body["authorUserId"], json!(author.user_id));
    assert_eq!(body["tools"], json!(["Bandit"]));
    assert_eq!(body["results"], json!(10), "bandit's ten findings in the sample");
    assert_eq!(
        body["cwes"],
        json!(["CWE-20", "CWE-78", "CWE-89", "CWE-295", "CWE-327", "CWE-400", "CWE-502", "CWE-703"])
    );
    assert_eq!(
        topics(&reply, "created"),
        expected(&[
            ("broken-cipher-modes", &["CWE-327"]),
            ("certificate-pinning", &["CWE-295"]),
            ("insecure-deserialization", &["CWE-502"]),
            ("unbounded-pagination", &["CWE-400"]),
        ])
    );
    assert_eq!(
        topics(&reply, "alreadyCovered"),
        expected(&[
            ("input-validation", &["CWE-20"]),
            ("os-command-injection", &["CWE-78"]),
            ("sql-injection", &["CWE-89"]),
        ])
    );
    for topic in ["input-validation", "os-command-injection", "sql-injection"] {
        assert_eq!(assignment_of(&reply, "alreadyCovered", topic), module, "covered by the team's module");
    }
    // B101 (assert used for a check) is CWE-703, which no topic teaches.
    assert_eq!(body["unmappedCwes"], json!(["CWE-703"]));
    assert_eq!(body["notCreated"], json!([]));

    // The author sees each new one in their own view: individual, due in 14 days, the note naming the scan.
    let view = learner_view(&env, author).await;
    let due = (Utc::now().date_naive() + chrono::Duration::days(14)).to_string();
    for topic in ["broken-cipher-modes", "certificate-pinning", "insecure-deserialization", "unbounded-pagination"] {
        let id = assignment_of(&reply, "created", topic);
        let seen = view.get(&id).unwrap_or_else(|| panic!("{topic} ({id}) not in the learner view"));
        assert_eq!((seen["targetType"].as_str(), seen["targetId"].as_str()), (Some("topic"), Some(topic)));
        assert_eq!(seen["source"], "individual");
        assert_eq!(seen["deadline"], json!(due));
        let note = seen["note"].as_str().unwrap();
        assert!(note.contains("acme/shop@4b825dc642cb") && note.contains("Bandit"), "{note}");
    }

    // Each creation is audited with the API key as actor and the scan in its metadata.
    let audit = env.get("/audit-log?action=assignment.created").token(org.api_keys.admin.as_str()).await;
    let by_sarif: Vec<&Value> =
        audit.body["items"].as_array().unwrap().iter().filter(|e| e["metadata"]["repo"] == "acme/shop").collect();
    assert_eq!(by_sarif.len(), 4, "{:?}", audit.body);
    for entry in by_sarif {
        assert!(entry["actorId"].as_str().unwrap().starts_with("apikey:"), "{entry}");
        assert_eq!(
            (entry["metadata"]["commitSha"].as_str(), entry["metadata"]["tools"].clone()),
            (Some(sha), json!(["Bandit"]))
        );
    }

    // A re-post of the commit (another run of the scanner, gzipped without saying so) answers the first
    // ingestion, creating nothing.
    let again = post_sarif(&env, &org, &author.email, sha, gzip(scanners::bandit())).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, reply.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(learner_view(&env, author).await.len(), view.len());

    // Another org sees none of it.
    let rival = env.org().await;
    for id in view.keys() {
        let theirs = env.get(&format!("/assignments/{id}")).token(rival.api_keys.admin.as_str()).await;
        assert_problem(&theirs, 404, "not_found");
    }
    let listed = env.get("/assignments").token(rival.api_keys.admin.as_str()).await;
    assert_eq!(listed.body, json!([]));
    // The same commit posted with the other org's key is that org's own ingestion, for its own user
    // with that email (seeded orgs share their learners' emails), never a replay of this one.
    let elsewhere = post_sarif(&env, &rival, &author.email, sha, scanners::bandit().to_vec()).await;
    assert_eq!(elsewhere.status, StatusCode::OK);
    assert!(elsewhere.headers.get("idempotent-replayed").is_none());
    assert_ne!(elsewhere.body["ingestionId"], reply.body["ingestionId"]);
    assert_ne!(elsewhere.body["authorUserId"], reply.body["authorUserId"]);
    assert_eq!(elsewhere.body["created"].as_array().unwrap().len(), 7, "nothing of this org covers the rival's");
    assert_eq!(learner_view(&env, author).await.len(), view.len());
}

#[tokio::test]
async fn semgrep_findings_gzipped_skip_topics_the_author_has_individually_or_through_the_org() {
    let (env, org) = Env::with_org().await;
    let author = learner_in_team(&org);
    let individual = create(
        &env,
        &org,
        json!({"contentArea": "practice", "targetType": "topic", "targetId": "insecure-deserialization",
               "assigneeType": "user", "assigneeId": author.user_id, "deadline": deadline(20)}),
    )
    .await;
    // Certificate pinning is in the mobile category, which the whole org has.
    let org_wide = create(
        &env,
        &org,
        json!({"contentArea": "practice", "targetType": "category", "targetId": "mobile",
               "assigneeType": "org", "assigneeId": org.org_id, "deadline": deadline(60)}),
    )
    .await;

    let ingested = env.subscribe(&org, "sarif.ingested").await;
    let created = env.subscribe(&org, "assignment.created").await;
    let reply = env
        .post("/sarif")
        .token(org.api_keys.admin.as_str())
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("x-source", "gitlab-ci")
        .header("x-repo", "acme/payments")
        .header("x-commit-sha", "A1B2C3D4E5F6")
        .header("x-commit-author-email", &author.email)
        .bytes(gzip(scanners::semgrep()))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["commitSha"], "a1b2c3d4e5f6");
    assert_eq!(reply.body["branch"], Value::Null);
    assert_eq!(reply.body["tools"], json!(["Semgrep OSS"]));
    assert_eq!(reply.body["results"], json!(4));
    assert_eq!(reply.body["cwes"], json!(["CWE-78", "CWE-89", "CWE-295", "CWE-502"]));
    assert_eq!(
        topics(&reply, "created"),
        expected(&[("os-command-injection", &["CWE-78"]), ("sql-injection", &["CWE-89"])])
    );
    assert_eq!(
        topics(&reply, "alreadyCovered"),
        expected(&[("certificate-pinning", &["CWE-295"]), ("insecure-deserialization", &["CWE-502"])])
    );
    assert_eq!(assignment_of(&reply, "alreadyCovered", "insecure-deserialization"), individual);
    assert_eq!(assignment_of(&reply, "alreadyCovered", "certificate-pinning"), org_wide);
    assert_eq!(reply.body["unmappedCwes"], json!([]));
    let view = learner_view(&env, author).await;
    for topic in ["os-command-injection", "sql-injection"] {
        let seen = &view[&assignment_of(&reply, "created", topic)];
        assert_eq!((seen["targetId"].as_str(), seen["source"].as_str()), (Some(topic), Some("individual")));
    }

    // The same payload goes out as `sarif.ingested`; each new assignment as `assignment.created`.
    let announced = env.drain(&ingested).await;
    assert_eq!(announced.len(), 1, "{announced:?}");
    let mut detail = announced[0]["detail"].clone();
    let extra = detail.as_object_mut().unwrap();
    assert_eq!(extra.remove("orgId"), Some(json!(org.org_id.as_str())));
    assert!(extra.remove("eventId").is_some() && extra.remove("occurredAt").is_some());
    assert_eq!(detail, reply.body);
    let mut announced: Vec<String> = env
        .drain(&created)
        .await
        .iter()
        .filter(|e| e["detail"]["actorId"].as_str().is_some_and(|a| a.starts_with("apikey:")))
        .map(|e| e["detail"]["id"].as_str().unwrap().to_owned())
        .filter(|id| *id != individual && *id != org_wide)
        .collect();
    announced.sort();
    let mut expected_ids = vec![
        assignment_of(&reply, "created", "os-command-injection"),
        assignment_of(&reply, "created", "sql-injection"),
    ];
    expected_ids.sort();
    assert_eq!(announced, expected_ids);
}

#[tokio::test]
async fn codeql_and_snyk_shaped_logs_map_their_cwes_and_report_the_unmapped() {
    let (env, org) = Env::with_org().await;
    let author = org.learners().next().unwrap();

    let codeql = post_sarif(&env, &org, &author.email, "1111111", scanners::kept("codeql-shaped.sarif")).await;
    assert_eq!(codeql.status, StatusCode::OK, "{:?}", codeql.body);
    assert_eq!((codeql.body["tools"].clone(), codeql.body["results"].clone()), (json!(["CodeQL"]), json!(3)));
    assert_eq!(codeql.body["cwes"], json!(["CWE-79", "CWE-116", "CWE-563"]));
    assert_eq!(topics(&codeql, "created"), expected(&[("reflected-xss", &["CWE-79"]), ("stored-xss", &["CWE-116"])]));
    assert_eq!(codeql.body["alreadyCovered"], json!([]));
    assert_eq!(codeql.body["unmappedCwes"], json!(["CWE-563"]));

    // Snyk's log, of a later commit: its XSS is now covered by what the CodeQL log assigned.
    let snyk = post_sarif(&env, &org, &author.email, "2222222", scanners::kept("snyk-shaped.sarif")).await;
    assert_eq!(snyk.status, StatusCode::OK, "{:?}", snyk.body);
    assert_eq!(snyk.body["cwes"], json!(["CWE-79", "CWE-89", "CWE-1321"]));
    assert_eq!(topics(&snyk, "created"), expected(&[("sql-injection", &["CWE-89"])]));
    assert_eq!(topics(&snyk, "alreadyCovered"), expected(&[("reflected-xss", &["CWE-79"])]));
    assert_eq!(
        assignment_of(&snyk, "alreadyCovered", "reflected-xss"),
        assignment_of(&codeql, "created", "reflected-xss")
    );
    assert_eq!(snyk.body["unmappedCwes"], json!(["CWE-1321"]));
    assert_eq!(learner_view(&env, author).await.len(), 3);
}

#[tokio::test]
async fn refused_and_unknown_ingestions_create_nothing() {
    let (env, org) = Env::with_org().await;
    let author = org.learners().next().unwrap();
    let bandit = scanners::bandit().to_vec();

    // An author the org does not have: 200, nothing created, and why.
    let unknown = post_sarif(&env, &org, "someone@elsewhere.example", "abcdef0", bandit.clone()).await;
    assert_eq!(unknown.status, StatusCode::OK, "{:?}", unknown.body);
    assert_eq!((unknown.body["authorUserId"].clone(), unknown.body["created"].clone()), (Value::Null, json!([])));
    assert!(unknown.body["reason"].as_str().unwrap().contains("email"), "{:?}", unknown.body);
    assert_eq!(topics(&unknown, "notCreated").len(), 7, "every mapped topic, not assigned");
    // Not remembered: once the author is known, a re-post of the commit assigns.
    let again = post_sarif(&env, &org, "someone@elsewhere.example", "abcdef0", bandit.clone()).await;
    assert!(again.headers.get("idempotent-replayed").is_none());
    assert_ne!(again.body["ingestionId"], unknown.body["ingestionId"]);

    // Who may post: a key with the scope and admins; not a read-only key, not a learner.
    let read_only = post_as(&env, org.api_keys.read_only.as_str(), &author.email, "abcdef1", bandit.clone()).await;
    assert_problem(&read_only, 403, "insufficient_scope");
    assert_eq!(read_only.body["required"], "sarif:ingest");
    assert_problem(
        &post_as(&env, author.token.as_str(), &author.email, "abcdef1", bandit.clone()).await,
        403,
        "forbidden",
    );
    let admin_session = org.admin().token.as_str();
    let by_admin = post_as(&env, admin_session, "nobody@elsewhere.example", "abcdef1", bandit.clone()).await;
    assert_eq!(by_admin.status, StatusCode::OK, "an org admin's session holds sarif:ingest: {:?}", by_admin.body);

    // Headers and bodies that are not an ingestion.
    let no_sha = env
        .post("/sarif")
        .token(org.api_keys.admin.as_str())
        .header("x-source", "ci")
        .header("x-repo", "r")
        .header("x-commit-author-email", &author.email)
        .bytes(bandit.clone())
        .await;
    assert_problem(&no_sha, 400, "validation_failed");
    assert_eq!(no_sha.body["errors"][0]["field"], "X-Commit-Sha");
    let malformed =
        post_sarif(&env, &org, &author.email, "abcdef2", b"{\"version\": \"2.1.0\", \"runs\": [".to_vec()).await;
    assert_problem(&malformed, 400, "invalid_sarif");
    assert!(malformed.body["reason"].as_str().unwrap().contains("not a SARIF log"), "{:?}", malformed.body);
    let old = String::from_utf8(bandit.clone()).unwrap().replace("\"version\": \"2.1.0\"", "\"version\": \"2.0.0\"");
    let wrong_version = post_sarif(&env, &org, &author.email, "abcdef3", old.into_bytes()).await;
    assert_problem(&wrong_version, 400, "invalid_sarif");
    assert!(wrong_version.body["reason"].as_str().unwrap().contains("2.0.0"), "{:?}", wrong_version.body);
    let results = vec![r#"{"ruleId":"B608","ruleIndex":0}"#; sarif_intake::parser::MAX_RESULTS + 1].join(",");
    let too_many = format!(
        r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"Bandit","rules":[{{"id":"B608",
        "properties":{{"tags":["external/cwe/cwe-89"]}}}}]}}}},"results":[{results}]}}]}}"#
    );
    let refused = post_sarif(&env, &org, &author.email, "abcdef4", gzip(too_many.as_bytes())).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{:?}", refused.body);
    let refused = post_as(&env, org.api_keys.admin.as_str(), &author.email, "abcdef4", too_many.into_bytes()).await;
    assert_problem(&refused, 400, "invalid_sarif");
    assert!(refused.body["reason"].as_str().unwrap().contains("25000"), "{:?}", refused.body);
    let gzip_claimed = env
        .post("/sarif")
        .token(org.api_keys.admin.as_str())
        .header("content-encoding", "gzip")
        .header("x-source", "ci")
        .header("x-repo", "r")
        .header("x-commit-sha", "abcdef5")
        .header("x-commit-author-email", &author.email)
        .bytes(bandit.clone())
        .await;
    assert_problem(&gzip_claimed, 400, "invalid_sarif");

    // Larger than a request may carry: 413, naming the uploads route.
    let mut huge = bandit.clone();
    huge.resize(sarif_intake::MAX_REQUEST_BYTES + 1, b' ');
    let too_large = post_sarif(&env, &org, &author.email, "abcdef6", huge).await;
    assert_problem(&too_large, 413, "payload_too_large");
    assert_eq!(too_large.body["limit"], json!(sarif_intake::MAX_REQUEST_BYTES));
    assert_eq!(too_large.body["alternative"], json!({"method": "POST", "href": "/api/public/v1/sarif/uploads"}));

    // None of it created anything.
    assert_eq!(env.get("/assignments").token(org.api_keys.admin.as_str()).await.body, json!([]));
    assert!(learner_view(&env, author).await.is_empty());
}

#[tokio::test]
async fn an_uploaded_log_is_ingested_by_the_worker_under_the_same_rules() {
    let (env, org) = Env::with_org().await;
    let author = org.learners().next().unwrap();
    let start = |sha: &'static str, bytes: usize| {
        env.post("/sarif/uploads")
            .token(org.api_keys.admin.as_str())
            .header("x-source", "jenkins")
            .header("x-repo", "acme/monolith")
            .header("x-commit-sha", sha)
            .header("x-commit-author-email", &author.email)
            .header("x-upload-bytes", &bytes.to_string())
    };
    let log = gzip(scanners::semgrep());
    let upload = start("feedc0de", log.len()).await;
    assert_eq!(upload.status, StatusCode::CREATED, "{:?}", upload.body);
    assert_eq!((upload.body["status"].as_str(), upload.body["method"].as_str()), (Some("pending"), Some("PUT")));
    assert_eq!(upload.body["bytes"], json!(log.len()));
    let path = format!("/sarif/uploads/{}", upload.body["uploadId"].as_str().unwrap());
    assert_eq!(upload.headers["location"].to_str().unwrap(), format!("{}{path}", api::http::BASE_PATH));

    // The CI step PUTs the log (gzip, as big logs travel) to the presigned URL; S3 announces it.
    let put = reqwest::Client::new().put(upload.body["uploadUrl"].as_str().unwrap()).body(log).send().await.unwrap();
    assert!(put.status().is_success(), "{:?}", put.text().await);
    let done = eventually("the SARIF worker", || async {
        let reply = env.get(&path).token(org.api_keys.admin.as_str()).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        (reply.body["status"] != "pending").then_some(reply)
    })
    .await;
    assert_eq!(done.body["status"], "ingested", "{:?}", done.body);
    let ingestion = &done.body["ingestion"];
    assert_eq!(
        (ingestion["repo"].as_str(), ingestion["commitSha"].as_str()),
        (Some("acme/monolith"), Some("feedc0de"))
    );
    assert_eq!(ingestion["created"].as_array().unwrap().len(), 4, "{ingestion}");
    assert_eq!(learner_view(&env, author).await.len(), 4);

    // A re-post of the commit gets the upload's ingestion.
    let token = org.api_keys.admin.as_str();
    let again =
        post_to_repo(&env, token, "acme/monolith", &author.email, "feedc0de", scanners::semgrep().to_vec()).await;
    assert_eq!(&again.body, ingestion);

    // An upload that is not SARIF fails with the reason; nothing more is created.
    let bad = start("deadbeef", "not json".len()).await;
    let put =
        reqwest::Client::new().put(bad.body["uploadUrl"].as_str().unwrap()).body("not json").send().await.unwrap();
    assert!(put.status().is_success());
    let bad_path = format!("/sarif/uploads/{}", bad.body["uploadId"].as_str().unwrap());
    let failed = eventually("the SARIF worker", || async {
        let reply = env.get(&bad_path).token(org.api_keys.admin.as_str()).await;
        (reply.body["status"] != "pending").then_some(reply)
    })
    .await;
    assert_eq!(failed.body["status"], "failed");
    assert!(failed.body["failure"].as_str().unwrap().contains("not a SARIF log"), "{:?}", failed.body);
    assert_eq!(learner_view(&env, author).await.len(), 4);

    // An upload whose log never came is reported as expired once it can no longer be ingested.
    let never = start("0ddba11", 1024).await;
    let never_id = never.body["uploadId"].as_str().unwrap().to_owned();
    // Three hours on the org's clock (the scheduler paused): past the two hours an upload can be ingested.
    env.advance_clock_firing(&org.org_id, chrono::Duration::hours(3), &[]).await;
    let expired = env.get(&format!("/sarif/uploads/{never_id}")).token(org.api_keys.admin.as_str()).await;
    assert_eq!(expired.body["status"], "expired", "{:?}", expired.body);
    assert!(expired.body["failure"].is_string());

    // Another org cannot read the upload.
    let rival = env.org().await;
    assert_problem(&env.get(&path).token(rival.api_keys.admin.as_str()).await, 404, "not_found");
}

#[tokio::test]
async fn a_new_starter_is_covered_by_the_new_starters_roster_they_are_on() {
    let (env, org) = Env::with_org().await;
    let roster = create(
        &env,
        &org,
        json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection", "assigneeType": "org",
               "assigneeId": org.org_id.as_str(), "dueInDays": 14, "newStartersOnly": true}),
    )
    .await;
    let starter = SeededUser {
        user_id: domain::UserId(uuid::Uuid::new_v4()),
        name: "Grace Hopper".into(),
        email: format!("grace.{}@acme.example", uuid::Uuid::new_v4().simple()),
        role: domain::Role::Learner,
        team_id: None,
        token: String::new(),
    };
    env.publish(&[gateway::seed::user_created(&org.org_id, &starter, Utc::now())]).await;
    let key = org.api_keys.admin.as_str();
    eventually("the new starter's row", || async {
        let view = env.get(&format!("/users/{}/assignments", starter.user_id)).token(key).await;
        view.body.as_array().filter(|items| !items.is_empty()).cloned()
    })
    .await;

    let reply = post_sarif(&env, &org, &starter.email, "5eed5eed", scanners::bandit().to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["authorUserId"], json!(starter.user_id));
    assert_eq!(topics(&reply, "alreadyCovered"), expected(&[("sql-injection", &["CWE-89"])]));
    assert_eq!(assignment_of(&reply, "alreadyCovered", "sql-injection"), roster);
    assert_eq!(topics(&reply, "created").len(), 6, "{:?}", reply.body);

    // An upload of a later commit goes through the same check in the worker: now all of it is covered.
    let uploaded = upload(&env, &org, &starter.email, "5eed5eee", scanners::bandit().to_vec()).await;
    let ingestion = &uploaded.body["ingestion"];
    assert_eq!(ingestion["created"], json!([]), "{ingestion}");
    assert_eq!(ingestion["alreadyCovered"].as_array().unwrap().len(), 7);
    assert!(ingestion["alreadyCovered"].as_array().unwrap().iter().any(|t| t["assignmentId"] == json!(roster)));
}

/// Uploads `log` through `POST /sarif/uploads` and its presigned PUT; the upload once the worker is done.
async fn upload(env: &Env, org: &SeededOrg, author: &str, sha: &str, log: Vec<u8>) -> Reply {
    let key = org.api_keys.admin.as_str();
    let started = start_upload(env, key, author, sha, Some(&log.len().to_string())).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    put_and_wait(env, key, &started, log).await
}

/// `POST /sarif/uploads` as `token` for `sha` by `author`, declaring `bytes` as `X-Upload-Bytes` (`None`:
/// no header).
async fn start_upload(env: &Env, token: &str, author: &str, sha: &str, bytes: Option<&str>) -> Reply {
    let request = env
        .post("/sarif/uploads")
        .token(token)
        .header("x-source", "jenkins")
        .header("x-repo", "acme/monolith")
        .header("x-commit-sha", sha)
        .header("x-commit-author-email", author);
    match bytes {
        Some(bytes) => request.header("x-upload-bytes", bytes).await,
        None => request.await,
    }
}

/// PUTs `log` to a started upload's URL; the upload once the worker is done, read with `token`.
async fn put_and_wait(env: &Env, token: &str, started: &Reply, log: Vec<u8>) -> Reply {
    let put = reqwest::Client::new().put(started.body["uploadUrl"].as_str().unwrap()).body(log).send().await.unwrap();
    assert!(put.status().is_success(), "{:?}", put.text().await);
    let path = format!("/sarif/uploads/{}", started.body["uploadId"].as_str().unwrap());
    eventually("the SARIF worker", || async {
        let reply = env.get(&path).token(token).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        (reply.body["status"] != "pending").then_some(reply)
    })
    .await
}

/// An upload is bounded by the size its starter declared (the URL signs it; the worker checks it
/// again), and ingested only while its starter still may: a key revoked, or an admin demoted, between
/// the upload URL and the log's arrival creates nothing. The same log, uploaded by a starter who may,
/// is ingested (so the refusals are the starters', not the log's).
#[tokio::test]
async fn an_upload_is_ingested_at_its_declared_size_while_its_starter_still_may() {
    let (env, org) = Env::with_org().await;
    let (key, author) = (org.api_keys.admin.as_str(), org.learners().next().unwrap());
    let log = scanners::bandit().to_vec();

    let missing = start_upload(&env, key, &author.email, "b0a710ad", None).await;
    assert_problem(&missing, 400, "validation_failed");
    assert_eq!(missing.body["errors"][0]["field"], "X-Upload-Bytes");
    // Not digits, 0, or more than 100 MiB (however many digits).
    for bad in ["12kB", "0", "-1", "+5", "5.0", "0x10", "104857601", "99999999999999999999999"] {
        let refused = start_upload(&env, key, &author.email, "b0a710ad", Some(bad)).await;
        assert_problem(&refused, 400, "validation_failed");
        assert_eq!(refused.body["errors"][0]["field"], "X-Upload-Bytes", "{bad}");
    }

    // Another size than declared: refused when read (S3 would refuse the PUT; moto checks no signature).
    let mismatched = start_upload(&env, key, &author.email, "512e0001", Some(&(log.len() - 1).to_string())).await;
    let failed = put_and_wait(&env, key, &mismatched, log.clone()).await;
    assert_eq!(failed.body["status"], "failed", "{:?}", failed.body);
    assert!(failed.body["failure"].as_str().unwrap().contains("declared"), "{:?}", failed.body);

    // A CI key revoked after it started the upload.
    let ci_token = gateway::seed::new_api_key_token();
    let mut ci_key = env.store.api_key_by_token(key).await.unwrap().unwrap();
    ci_key.key_id = uuid::Uuid::new_v4();
    env.store.put_api_key(&ci_key, &ci_token).await.unwrap();
    let by_key = start_upload(&env, &ci_token, &author.email, "4e70ced0", Some(&log.len().to_string())).await;
    assert_eq!(by_key.status, StatusCode::CREATED, "{:?}", by_key.body);
    env.store.revoke_api_key(&org.org_id, ci_key.key_id, Utc::now()).await.unwrap();
    let failed = put_and_wait(&env, key, &by_key, log.clone()).await;
    assert_eq!(failed.body["status"], "failed", "{:?}", failed.body);
    assert!(failed.body["failure"].as_str().unwrap().contains("revoked or expired"), "{:?}", failed.body);

    // An admin demoted after they started the upload.
    let admin = crate::access::platform_user(&env, &org, Role::OrgAdmin, Role::OrgAdmin).await;
    let by_admin = start_upload(&env, &admin.token, &author.email, "de307ed0", Some(&log.len().to_string())).await;
    assert_eq!(by_admin.status, StatusCode::CREATED, "{:?}", by_admin.body);
    env.publish(&[crate::access::user_event("user.updated", &org, &admin, Role::Learner)]).await;
    eventually("the demotion", || async {
        (crate::access::projected(&env, &org.org_id, admin.user_id).await.role == Role::Learner).then_some(())
    })
    .await;
    let failed = put_and_wait(&env, key, &by_admin, log.clone()).await;
    assert_eq!(failed.body["status"], "failed", "{:?}", failed.body);
    assert!(failed.body["failure"].as_str().unwrap().contains("no longer an active org admin"), "{:?}", failed.body);
    assert!(learner_view(&env, author).await.is_empty(), "no refused upload created anything");

    let started = start_upload(&env, key, &author.email, "900dc0de", Some(&log.len().to_string())).await;
    let ingested = put_and_wait(&env, key, &started, log).await;
    assert_eq!(ingested.body["status"], "ingested", "{:?}", ingested.body);
    assert!(!learner_view(&env, author).await.is_empty());
}

/// A log with one rule and one result per CWE (Bandit's shape).
fn log_of(cwes: &[u32]) -> Vec<u8> {
    let rules: Vec<Value> = cwes
        .iter()
        .map(|cwe| json!({"id": format!("R{cwe}"), "properties": {"tags": ["security", format!("external/cwe/cwe-{cwe:03}")]}}))
        .collect();
    let results: Vec<Value> =
        cwes.iter().enumerate().map(|(i, cwe)| json!({"ruleId": format!("R{cwe}"), "ruleIndex": i})).collect();
    serde_json::to_vec(&json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Bandit", "rules": rules}},
                                                          "results": results}]}))
    .unwrap()
}

#[tokio::test]
async fn an_ingestion_creates_at_most_twenty_and_reports_the_rest() {
    let (env, org) = Env::with_org().await;
    let author = org.learners().next().unwrap();
    // 25 CWEs of 25 different topics.
    let catalog = domain::Catalog::bundled().unwrap();
    let mut by_topic: BTreeMap<String, u32> = BTreeMap::new();
    for (cwe, topic) in catalog.cwe_topics() {
        by_topic.entry(topic.to_string()).or_insert(cwe);
    }
    let chosen: Vec<(String, u32)> = by_topic.into_iter().take(25).collect();
    let cwes: Vec<u32> = chosen.iter().map(|(_, cwe)| *cwe).collect();

    let reply = post_sarif(&env, &org, &author.email, "c0ffee1", log_of(&cwes)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let created = topics(&reply, "created");
    let not_created = topics(&reply, "notCreated");
    // One rule each: in topic order, the first 20 are created.
    let names: Vec<String> = chosen.iter().map(|(topic, _)| topic.clone()).collect();
    assert_eq!(created.keys().cloned().collect::<Vec<_>>(), names[..20].to_vec());
    assert_eq!(not_created.keys().cloned().collect::<Vec<_>>(), names[20..].to_vec());
    assert!(reply.body["notCreated"].as_array().unwrap().iter().all(|t| t.get("assignmentId").is_none()));
    assert_eq!(learner_view(&env, author).await.len(), 20);
}

#[tokio::test]
async fn concurrent_posts_of_one_commit_ingest_it_once() {
    let (env, org) = Env::with_org().await;
    let author = org.learners().next().unwrap();
    let posts = (0..4).map(|_| post_sarif(&env, &org, &author.email, "abcabc1", scanners::bandit().to_vec()));
    let replies = futures::future::join_all(posts).await;
    let answered: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::OK).collect();
    assert!(!answered.is_empty());
    for reply in &replies {
        if reply.status != StatusCode::OK {
            assert_problem(reply, 409, "ingestion_in_progress");
            assert_eq!(reply.headers["retry-after"], "1");
        }
    }
    assert!(answered.iter().all(|r| r.body == answered[0].body), "one ingestion's response");
    assert_eq!(learner_view(&env, author).await.len(), 7, "each topic once");
}

#[tokio::test]
async fn authors_written_before_the_email_index_are_found_once_the_reconcile_job_indexed_them() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (env, org) = Env::with_org().await;
    let author = org.learners().next().unwrap();
    // As a user item written by an earlier version: no email index entry.
    testkit::stack::raw_client()
        .await
        .update_item()
        .table_name(env.store.table_name())
        .key("PK", AttributeValue::S(format!("ORG#{}#USER#{}", org.org_id, author.user_id)))
        .key("SK", AttributeValue::S("PROFILE".into()))
        .update_expression("REMOVE GSI3PK, GSI3SK")
        .send()
        .await
        .unwrap();
    let before = post_sarif(&env, &org, &author.email, "01d01d1", scanners::bandit().to_vec()).await;
    assert_eq!((before.status, before.body["authorUserId"].clone()), (StatusCode::OK, Value::Null));

    env.run_reconcile(&org.org_id).await;
    let progress = env.store.email_index_progress(&org.org_id).await.unwrap();
    assert_eq!(progress, Some(None), "the org's backfill is done");
    let after = eventually("the email index", || async {
        let reply = post_sarif(&env, &org, &author.email, "01d01d1", scanners::bandit().to_vec()).await;
        (reply.body["authorUserId"] == json!(author.user_id)).then_some(reply)
    })
    .await;
    assert_eq!(after.body["created"].as_array().unwrap().len(), 7, "the unknown-author answer was not remembered");
}

#[tokio::test]
async fn a_topic_assigned_meanwhile_is_reported_covered_not_refused() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (env, org) = Env::with_org().await;
    let author = org.learners().next().unwrap();
    let meanwhile = create(
        &env,
        &org,
        json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
               "assigneeType": "user", "assigneeId": author.user_id, "deadline": deadline(20)}),
    )
    .await;
    // As if it were created after the ingestion read coverage (the indexes do not show it yet): only
    // the duplicate lock knows it.
    let raw = testkit::stack::raw_client().await;
    let pk = format!("ORG#{}#ASG#{meanwhile}", org.org_id);
    for sk in ["A".to_owned(), format!("USER#{}", author.user_id)] {
        raw.update_item()
            .table_name(env.store.table_name())
            .key("PK", AttributeValue::S(pk.clone()))
            .key("SK", AttributeValue::S(sk))
            .update_expression("REMOVE GSI2PK, GSI2SK")
            .send()
            .await
            .unwrap();
    }

    let reply = post_sarif(&env, &org, &author.email, "7e57ab1e", scanners::semgrep().to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(topics(&reply, "alreadyCovered"), expected(&[("sql-injection", &["CWE-89"])]));
    assert_eq!(assignment_of(&reply, "alreadyCovered", "sql-injection"), meanwhile);
    assert_eq!(topics(&reply, "created").len(), 3, "{:?}", reply.body);
}
