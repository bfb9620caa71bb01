//! Who may do what: API keys and scopes, session tokens and roles (following the projection on the next
//! request), tenant isolation, rate limits and what authenticating costs.

use chrono::{Timelike, Utc};
use domain::{OrgId, Role};
use gateway::seed::{self, SeededOrg};
use reqwest::StatusCode;
use serde_json::json;
use testkit::e2e::{Env, SECRET, assert_problem, early_in_a_minute, eventually};

use crate::{path_of, team_topic};

#[tokio::test]
async fn tokens_scopes_and_roles_are_enforced() {
    let (env, org) = Env::with_org().await;
    assert_problem(&env.get("/assignments").await, 401, "unauthorized");
    assert_problem(&env.get("/assignments").token("scs_live_short").await, 401, "unauthorized");
    assert_problem(&env.get("/assignments").token(&seed::new_api_key_token()).await, 401, "unauthorized");
    let expired = seed::session_token(
        SECRET,
        org.admin().user_id,
        &org.org_id,
        Role::OrgAdmin,
        "a@x",
        Utc::now() - chrono::Duration::hours(1),
    );
    assert_problem(&env.get("/assignments").token(&expired).await, 401, "unauthorized");
    let forged = seed::session_token(
        b"another-secret-another-secret-xx",
        org.admin().user_id,
        &org.org_id,
        Role::OrgAdmin,
        "a@x",
        Utc::now() + chrono::Duration::hours(1),
    );
    assert_problem(&env.get("/assignments").token(&forged).await, 401, "unauthorized");

    let write = env.post("/assignments").token(org.api_keys.read_only.as_str()).json(team_topic(&org, "xxe")).await;
    assert_problem(&write, 403, "insufficient_scope");
    assert_eq!(write.body["required"], "assignments:write");
    assert_eq!(write.body["present"], json!(["assignments:read"]));

    let learner = org.learners().next().unwrap();
    let other = org.learners().nth(1).unwrap();
    assert_problem(&env.get("/assignments").token(learner.token.as_str()).await, 403, "forbidden");
    let theirs = env.get(&format!("/users/{}/assignments", other.user_id)).token(learner.token.as_str()).await;
    assert_problem(&theirs, 403, "forbidden");
    let own = env.get(&format!("/users/{}/assignments", learner.user_id)).token(learner.token.as_str()).await;
    assert_eq!(own.status, StatusCode::OK);

    // An expired API key is refused.
    let expired_key = seed::new_api_key_token();
    let mut stored = env.store.api_key_by_token(org.api_keys.read_only.as_str()).await.unwrap().unwrap();
    stored.key_id = uuid::Uuid::new_v4();
    stored.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
    env.store.put_api_key(&stored, &expired_key).await.unwrap();
    let refused = env.get("/assignments").token(&expired_key).await;
    assert_problem(&refused, 401, "unauthorized");
    assert!(refused.body["detail"].as_str().unwrap().contains("expired"));

    // Revocation applies to the very next request.
    let admin_key = org.api_keys.admin.as_str();
    assert_eq!(env.get("/assignments").token(admin_key).await.status, StatusCode::OK);
    let key_id = env.store.api_key_by_token(admin_key).await.unwrap().unwrap().key_id;
    env.store.revoke_api_key(&org.org_id, key_id, Utc::now()).await.unwrap();
    assert_problem(&env.get("/assignments").token(admin_key).await, 401, "unauthorized");
}

#[tokio::test]
async fn another_orgs_admin_sees_nothing_and_changes_nothing() {
    let env = Env::start().await;
    let acme = env.org().await;
    let rival = env.org().await;
    let created = env.post("/assignments").token(acme.api_keys.admin.as_str()).json(team_topic(&acme, "idor")).await;
    let path = path_of(&created);
    let rival_admin = rival.admin().token.as_str();

    assert_problem(&env.get(&path).token(rival_admin).await, 404, "not_found");
    assert_problem(&env.patch(&path).token(rival_admin).json(json!({"note": "mine"})).await, 404, "not_found");
    assert_problem(&env.delete(&path).token(rival_admin).await, 404, "not_found");
    let listed = env.get("/assignments").token(rival_admin).await;
    assert_eq!(listed.body, json!([]));
    let member = acme.learners().next().unwrap();
    let view = env.get(&format!("/users/{}/assignments", member.user_id)).token(rival_admin).await;
    assert_eq!(view.body, json!([]));

    let untouched = env.get(&path).token(acme.api_keys.admin.as_str()).await;
    assert_eq!(
        (untouched.body["isActive"].clone(), untouched.body["note"].clone()),
        (json!(true), json!("PCI DSS 6.2.2"))
    );

    // A cursor issued to one org is refused in another.
    for topic in ["xxe", "zip-slip"] {
        env.post("/assignments").token(acme.api_keys.admin.as_str()).json(team_topic(&acme, topic)).await;
    }
    let page = env.get("/assignments?limit=1").token(acme.api_keys.admin.as_str()).await;
    let cursor = page.next_cursor().expect("a next link");
    let next = env.get(&format!("/assignments?limit=1&cursor={cursor}")).token(acme.api_keys.admin.as_str()).await;
    assert_eq!(next.status, StatusCode::OK);
    assert_ne!(next.body[0]["id"], page.body[0]["id"]);
    let stolen = env.get(&format!("/assignments?limit=1&cursor={cursor}")).token(rival_admin).await;
    assert_problem(&stolen, 400, "validation_failed");
}

#[tokio::test]
async fn the_61st_request_in_a_minute_is_rate_limited() {
    let (env, org) = Env::with_org().await;
    // All 61 requests fall in the same calendar minute.
    early_in_a_minute().await;
    let key = org.api_keys.read_only.as_str();
    for i in 1..=60 {
        let ok = env.get("/assignments?limit=1").token(key).await;
        assert_eq!(ok.status, StatusCode::OK, "request {i}");
        assert_eq!(ok.headers["x-ratelimit-remaining"], (60 - i).to_string().as_str());
    }
    let limited = env.get("/assignments?limit=1").token(key).await;
    assert_problem(&limited, 429, "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(limited.headers["x-ratelimit-window"], "per_minute", "v1's headers name the window");
    assert_eq!(limited.headers["x-ratelimit-limit"], "60");
    // Another key of the same org has its own budget.
    assert_eq!(env.get("/assignments").token(org.api_keys.admin.as_str()).await.status, StatusCode::OK);
}

/// An org's requests together have a limit of their own, whatever key or user sends them: with the
/// org's limit set to 20 a minute (an operator's setting), the 21st request of the minute is refused with
/// `X-RateLimit-Scope: org` although each of its three callers is far inside its own 60, while another
/// org's requests go on.
#[tokio::test]
async fn an_orgs_requests_together_are_limited_whatever_key_or_user_sends_them() {
    let env = Env::start().await;
    let (busy, other) = (env.org().await, env.org().await);
    let limits = store::RateLimits { per_minute: 20, per_hour: 1_000 };
    env.store.set_org_rate_limits(&busy.org_id, Some(limits)).await.unwrap();
    early_in_a_minute().await;
    let callers = [busy.api_keys.admin.as_str(), busy.api_keys.read_only.as_str(), busy.admin().token.as_str()];
    for i in 1..=20 {
        let ok = env.get("/assignments?limit=1").token(callers[i % 3]).await;
        assert_eq!(ok.status, StatusCode::OK, "request {i}");
        let (scope, remaining) = (&ok.headers["x-ratelimit-scope"], &ok.headers["x-ratelimit-remaining"]);
        assert_eq!((scope.to_str().unwrap(), remaining.to_str().unwrap()), ("org", (20 - i).to_string().as_str()));
    }
    let limited = env.get("/assignments?limit=1").token(callers[0]).await;
    assert_problem(&limited, 429, "rate_limited");
    assert_eq!(limited.headers["x-ratelimit-scope"], "org", "the org's limit, not the key's");
    assert_eq!(limited.headers["x-ratelimit-limit"], "20");
    assert_eq!(limited.body["scope"], "org");
    assert!(limited.headers.contains_key("retry-after"));
    // Another org is not held back by it, and its callers see their own limit.
    let fine = env.get("/assignments?limit=1").token(other.api_keys.admin.as_str()).await;
    assert_eq!((fine.status, fine.headers["x-ratelimit-scope"].to_str().unwrap()), (StatusCode::OK, "key"));
}

/// A user the platform created on the bus, once the projection has them, with a still-valid session
/// token that claims `claimed`.
pub(crate) async fn platform_user(env: &Env, org: &SeededOrg, role: Role, claimed: Role) -> seed::SeededUser {
    let id = domain::UserId(uuid::Uuid::new_v4());
    let email = format!("{}@acme.example", id.0.simple());
    let token = seed::session_token(SECRET, id, &org.org_id, claimed, &email, Utc::now() + chrono::Duration::hours(8));
    let user = seed::SeededUser { user_id: id, name: "Grace".into(), email, role, team_id: None, token };
    env.publish(&[seed::user_created(&org.org_id, &user, Utc::now())]).await;
    eventually("the user's profile", || async { env.store.current_user(&org.org_id, id).await.unwrap() }).await;
    user
}

pub(crate) async fn projected(env: &Env, org: &OrgId, user: domain::UserId) -> domain::User {
    env.store.current_user(org, user).await.unwrap().expect("projected")
}

pub(crate) fn user_event(
    detail_type: &'static str,
    org: &SeededOrg,
    user: &seed::SeededUser,
    role: Role,
) -> seed::PlatformEvent {
    seed::PlatformEvent {
        source: "platform.users",
        detail_type,
        detail: json!({"orgId": org.org_id.as_str(), "userId": user.user_id, "name": user.name, "email": user.email,
                       "role": role.as_str(), "teamId": null, "occurredAt": Utc::now() + chrono::Duration::seconds(1)}),
    }
}

/// Platform events dated more than five minutes ahead of the service's clock change nothing and are
/// parked whole with their reason (`ParkedEventsQueue`), by each consumer: an admin's `user.updated`
/// dated 2999 (a producer with a bad clock, or anyone who may put `platform.*` events on the default
/// bus) does not freeze the admin's profile, so a real demotion a second later applies on the next
/// request; a completion and a course update dated ahead are parked the same way.
#[tokio::test]
async fn events_dated_ahead_of_the_clock_are_parked_and_a_later_real_change_applies() {
    let (env, org) = Env::with_org().await;
    let admin = platform_user(&env, &org, Role::OrgAdmin, Role::OrgAdmin).await;
    let before = projected(&env, &org.org_id, admin.user_id).await;
    let far = "2999-01-01T00:00:00Z";
    let mut ahead = user_event("user.updated", &org, &admin, Role::OrgAdmin);
    ahead.detail["occurredAt"] = json!(far);
    let learner = org.learners().next().unwrap().user_id;
    let course = uuid::Uuid::new_v4();
    env.publish(&[
        ahead,
        seed::PlatformEvent {
            source: "platform.training",
            detail_type: "challenge.completed",
            detail: json!({"orgId": org.org_id.as_str(), "userId": learner, "topicId": "sql-injection",
                           "challengeIndex": 0, "score": 90, "completedAt": far}),
        },
        seed::PlatformEvent {
            source: "platform.content",
            detail_type: "custom_course.updated",
            detail: json!({"orgId": org.org_id.as_str(), "courseId": course, "name": "Later", "isActive": true,
                           "items": [], "occurredAt": far}),
        },
    ])
    .await;
    let parked_queue = std::env::var(events::consumer::PARKED_QUEUE_URL_VAR).unwrap();
    for (kind, field, id) in [
        ("user.updated", "userId", admin.user_id.0.to_string()),
        ("challenge.completed", "userId", learner.0.to_string()),
        ("custom_course.updated", "courseId", course.to_string()),
    ] {
        let parked = testkit::e2e::peek_until(&env.sqs, &parked_queue, std::time::Duration::from_secs(60), |m| {
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_default();
            body["event"]["detail-type"] == kind && body["event"]["detail"][field] == id.as_str()
        })
        .await
        .unwrap_or_else(|| panic!("{kind} parked"));
        let body: serde_json::Value = serde_json::from_str(parked.body().unwrap()).unwrap();
        let reason = body["reason"].as_str().unwrap();
        assert!(reason.contains("ahead of the service's clock") && reason.contains("2999"), "{kind}: {reason}");
    }
    // Nothing changed: the profile keeps its time, the course was never made.
    assert_eq!(projected(&env, &org.org_id, admin.user_id).await, before);
    assert!(
        env.store
            .get_custom_course(&org.org_id, domain::CourseId::parse(&course.to_string()).unwrap())
            .await
            .unwrap()
            .is_none()
    );

    env.publish(&[user_event("user.updated", &org, &admin, Role::Learner)]).await;
    eventually("the demotion", || async {
        (projected(&env, &org.org_id, admin.user_id).await.role == Role::Learner).then_some(())
    })
    .await;
    assert_problem(&env.get("/audit-log").token(admin.token.as_str()).await, 403, "forbidden");
}

/// Black box, through the platform's events on the bus: a deactivated user's and a demoted admin's
/// still-valid session tokens stop working on the next request after the event is consumed; a
/// promoted learner's old token gets the new role; a token of a user the platform never announced is
/// refused.
#[tokio::test]
async fn deactivation_and_role_changes_apply_on_the_next_request() {
    let (env, org) = Env::with_org().await;
    let demoted = platform_user(&env, &org, Role::OrgAdmin, Role::OrgAdmin).await;
    let leaving = platform_user(&env, &org, Role::OrgAdmin, Role::OrgAdmin).await;
    let promoted = platform_user(&env, &org, Role::Learner, Role::Learner).await;
    for admin in [&demoted, &leaving] {
        let ok = env.get("/audit-log").token(admin.token.as_str()).await;
        assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    }
    let refused = env.get("/assignments").token(promoted.token.as_str()).await;
    assert_problem(&refused, 403, "forbidden");

    env.publish(&[
        user_event("user.updated", &org, &demoted, Role::Learner),
        user_event("user.deactivated", &org, &leaving, Role::OrgAdmin),
        user_event("user.updated", &org, &promoted, Role::OrgAdmin),
    ])
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

    let demoted_call = env.get("/audit-log").token(demoted.token.as_str()).await;
    assert_problem(&demoted_call, 403, "forbidden");
    let write = env.post("/assignments").token(demoted.token.as_str()).json(team_topic(&org, "xxe")).await;
    assert_problem(&write, 403, "forbidden");
    let own = env.get(&format!("/users/{}/assignments", demoted.user_id)).token(&demoted.token).await;
    assert_eq!(own.status, StatusCode::OK, "a learner still reads their own assignments");

    for path in ["/audit-log", "/assignments", &format!("/users/{}/assignments", leaving.user_id)] {
        let gone = env.get(path).token(leaving.token.as_str()).await;
        assert_problem(&gone, 401, "unauthorized");
    }

    let promoted_call = env.get("/audit-log").token(promoted.token.as_str()).await;
    assert_eq!(promoted_call.status, StatusCode::OK, "the projection's role wins over the token's claim");

    let stranger = seed::session_token(
        SECRET,
        domain::UserId(uuid::Uuid::new_v4()),
        &org.org_id,
        Role::OrgAdmin,
        "ghost@acme.example",
        Utc::now() + chrono::Duration::hours(1),
    );
    assert_problem(&env.get("/assignments").token(&stranger).await, 401, "unauthorized");
}

/// Session tokens have v1's limits too, per user: 60 in the calendar minute; successes say how many
/// remain, the 429 names the window and its limit.
#[tokio::test]
async fn session_tokens_are_rate_limited_per_user() {
    let (env, org) = Env::with_org().await;
    early_in_a_minute().await;
    let learner = org.learners().next().unwrap();
    let path = format!("/users/{}/assignments", learner.user_id);
    for i in 1..=60u32 {
        let ok = env.get(&path).token(learner.token.as_str()).await;
        assert_eq!(ok.status, StatusCode::OK, "request {i}");
        assert_eq!(ok.headers["x-ratelimit-remaining"], (60 - i).to_string().as_str(), "request {i}");
        assert_eq!(
            (&ok.headers["x-ratelimit-window"], &ok.headers["x-ratelimit-limit"]),
            (&"per_minute".parse().unwrap(), &"60".parse().unwrap())
        );
    }
    let limited = env.get(&path).token(learner.token.as_str()).await;
    assert_problem(&limited, 429, "rate_limited");
    assert_eq!(limited.headers["x-ratelimit-window"], "per_minute");
    assert_eq!(limited.headers["x-ratelimit-limit"], "60");
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    assert_eq!(limited.body["window"], "per_minute");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));

    let other = org.learners().nth(1).unwrap();
    let theirs = env.get(&format!("/users/{}/assignments", other.user_id)).token(&other.token).await;
    assert_eq!(theirs.status, StatusCode::OK, "another user of the org has their own budget");
}

/// What authenticating costs, counted by the store's request counter against DynamoDB Local: a session
/// is one strongly consistent GetItem of the user (1 read unit) plus the rate counter (an UpdateItem of
/// this hour and a GetItem of the previous one); an API key swaps the user for the key. Printed for the
/// issue note and pinned so a change that adds round trips shows up in review.
#[tokio::test]
async fn authenticating_a_session_costs_one_consistent_read_of_the_user_plus_the_rate_counters() {
    let (env, org) = Env::with_org().await;
    let capacity = store::Capacity::default();
    let app = api::App::new(env.store.clone().with_capacity_tracking(capacity.clone()), SECRET);
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
        assert_eq!(
            capacity.requests(),
            5,
            "{what}: identity + the caller's rate counter and the org's (each: update this hour, read the last); \
             the org's own limits were read by the first request and are remembered for a minute"
        );
        assert_eq!(who.principal.org, org.org_id);
    }
    let user_only = store::Capacity::default();
    let tracked = env.store.clone().with_capacity_tracking(user_only.clone());
    tracked.current_user(&org.org_id, org.admin().user_id).await.unwrap().unwrap();
    eprintln!("the session's user alone: {} request, {} read units", user_only.requests(), user_only.reads());
    assert_eq!((user_only.requests(), user_only.reads()), (1, 1.0), "one strongly consistent read of a small item");
}
