//! The v1 contract as clients see it: precise problems for bad requests, canonical ids, bare arrays
//! paged by `Link`.

use chrono::Utc;
use domain::OrgId;
use gateway::seed;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::e2e::{Env, assert_problem};

use crate::{assign_team_topic, deadline, team_topic};

#[tokio::test]
async fn bad_requests_get_precise_problems() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();

    let raw =
        env.http.post(format!("{}/assignments", env.base)).bearer_auth(key).body("{not json").send().await.unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(raw.json::<Value>().await.unwrap()["error"], "invalid_json");

    let mut body = team_topic(&org, "sql-injection");
    body["deadline"] = json!("2020-01-01");
    let past = env.post("/assignments").token(key).json(body).await;
    assert_problem(&past, 400, "validation_failed");
    assert_eq!(past.body["errors"][0]["field"], "deadline");

    let unknown_target = assign_team_topic(&env, &org, "no-such-topic").await;
    assert_problem(&unknown_target, 400, "unknown_target");

    let mut body = team_topic(&org, "xxe");
    body["assigneeId"] = json!(uuid::Uuid::new_v4());
    assert_problem(&env.post("/assignments").token(key).json(body).await, 400, "unknown_assignee");
    let mut body = team_topic(&org, "xxe");
    body["assigneeType"] = json!("org");
    body["assigneeId"] = json!("someone-elses-org");
    assert_problem(&env.post("/assignments").token(key).json(body).await, 400, "unknown_assignee");

    let big = json!({"note": "x".repeat(70 * 1024)});
    assert_problem(&env.post("/assignments").token(key).json(big).await, 413, "payload_too_large");

    let tampered = env.get("/assignments?cursor=eyJQSyI6IngifQ.AAAA").token(key).await;
    assert_problem(&tampered, 400, "validation_failed");
    assert_eq!(tampered.body["errors"][0]["field"], "cursor");
    assert_problem(&env.get("/assignments?limit=500").token(key).await, 400, "validation_failed");
    assert_problem(&env.get("/assignments/not-a-uuid").token(key).await, 404, "not_found");

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
    assert_problem(&env.post("/assignments").token(&bare_key).json(course).await, 400, "no_custom_courses");
}

/// `{…}`, upper-case, `urn:uuid:` and unhyphenated spellings of an id are that id: no second active
/// assignment past the duplicate lock, and filters and paths find the canonical one.
#[tokio::test]
async fn every_spelling_of_an_id_is_the_same_id() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let created = assign_team_topic(&env, &org, "xxe").await;
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
        let again = env.post("/assignments").token(key).json(body).await;
        assert_problem(&again, 409, "duplicate_assignment");
        assert_eq!(again.body["existingId"], created.body["id"], "{spelling}");

        let listed = env.get(&format!("/assignments?assigneeId={spelling}")).token(key).await;
        let ids: Vec<_> = listed.body.as_array().unwrap().iter().map(|a| a["id"].clone()).collect();
        assert_eq!(ids, vec![created.body["id"].clone()], "{spelling}");
    }
    let mut body = team_topic(&org, "sql-injection");
    body["assigneeId"] = json!(spellings[1]);
    let upper = env.post("/assignments").token(key).json(body).await;
    assert_eq!(upper.status, StatusCode::CREATED, "{:?}", upper.body);
    assert_eq!(upper.body["assigneeId"], json!(team.to_string()), "stored canonical");

    let course = org.custom_courses[0].course_id.0;
    let custom = json!({"contentArea": "custom", "targetType": "custom-course", "targetId": course.to_string().to_uppercase(),
                        "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(30)});
    let first = env.post("/assignments").token(key).json(custom).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["targetId"], json!(course.to_string()));
    let custom = json!({"contentArea": "custom", "targetType": "custom-course", "targetId": format!("urn:uuid:{course}"),
                        "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(30)});
    assert_problem(&env.post("/assignments").token(key).json(custom).await, 409, "duplicate_assignment");

    let learner = org.learners().next().unwrap();
    let upper_path = format!("/users/{}/assignments", learner.user_id.0.to_string().to_uppercase());
    let view = env.get(&upper_path).token(learner.token.as_str()).await;
    assert_eq!(view.status, StatusCode::OK, "a learner's own id in another spelling is still their own");
}

/// A v1 client: `GET /assignments` is a bare JSON array; it follows `Link: <…>; rel="next"` to the end
/// and sees every assignment once, newest first; without `limit`, one response holds them all.
#[tokio::test]
async fn a_v1_client_pages_bare_arrays_by_following_link() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let mut created = Vec::new();
    for topic in ["xxe", "sql-injection", "idor", "ssrf-basic", "zip-slip"] {
        let reply = assign_team_topic(&env, &org, topic).await;
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

    let exact = env.get("/assignments?limit=5").token(key).await;
    assert_eq!(exact.body.as_array().unwrap().len(), 5);
    assert!(exact.headers.get("link").is_none(), "a page that holds the rest exactly is the last one");

    let all = env.get("/assignments").token(key).await;
    assert_eq!(all.body.as_array().unwrap().len(), 5, "no limit: everything up to the cap");
    assert!(all.headers.get("link").is_none());
    assert!(all.headers.contains_key("x-ratelimit-remaining"));
}
