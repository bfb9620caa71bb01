//! The scheduled functions through the local Lambda Invoke API: reminders and roster reconcile.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use gateway::seed;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::e2e::{Env, eventually};

use crate::{assign_team_topic, change_head_counts, deadline, team_topic, user_of};

#[tokio::test]
async fn functions_can_be_invoked_through_the_lambda_invoke_api() {
    let (env, org) = Env::with_org().await;
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
    let resp = env.invoke_raw("ListAssignmentsFunction", &event).await;
    assert_eq!(resp.status(), 200);
    let result: Value = resp.json().await.unwrap();
    assert_eq!(result["statusCode"], 200);
    assert_eq!(result["headers"]["x-request-id"], "invoke-1");
    let unknown = env.invoke_raw("Nope", &event).await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn reminders_go_out_once_per_learner_and_offset_however_often_the_job_runs() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let mut body = team_topic(&org, "sql-injection");
    body["deadline"] = json!(deadline(7));
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let due_soon = env.subscribe(&org, "assignment.due_soon").await;
    let overdue = env.subscribe(&org, "assignment.overdue").await;

    let today = Utc::now().date_naive();
    let first = env.run_daily_job(&org.org_id, today).await;
    let again = env.run_daily_job(&org.org_id, today).await;
    assert_eq!((first["count"].clone(), again["count"].clone()), (json!(5), json!(0)), "{first} {again}");
    let events = env.drain(&due_soon).await;
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
        env.run_daily_job(&org.org_id, after).await;
    }
    let late = env.drain(&overdue).await;
    assert_eq!(late.len(), 5);
    assert_eq!(late[0]["detail"]["days"], 1);
    assert_eq!(late[0]["detail"]["status"], "overdue");
    let nothing = env.run_daily_job(&org.org_id, today + chrono::Duration::days(3)).await;
    assert_eq!(nothing["count"], 0, "no reminder between the offsets");
}

/// The daily schedule (the template's `cron(0 7 * * ? *)`) fires for an org whose test clock moves
/// across 07:00, at that org's time and for that org alone: its learners get `due_soon` the day the
/// clock reaches, another org with the same assignment (whose clock stands still) gets nothing, and the
/// hourly reconcile, not asked for, does not run.
#[tokio::test]
async fn moving_one_orgs_clock_fires_its_daily_reminders_and_leaves_another_orgs_time_alone() {
    let env = Env::start().await;
    let (moved, still) = (env.org().await, env.org().await);
    // Due in 8 days: the next 07:00 or the one after is 7 days before it, whatever the time now.
    let due = (env.clock(&moved.org_id).await + chrono::Duration::days(8)).date_naive();
    for org in [&moved, &still] {
        let mut body = team_topic(org, "sql-injection");
        body["deadline"] = json!(due);
        let created = env.post("/assignments").token(org.api_keys.admin.as_str()).json(body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    let (moved_soon, still_soon) =
        (env.subscribe(&moved, "assignment.due_soon").await, env.subscribe(&still, "assignment.due_soon").await);
    let still_before = env.clock(&still.org_id).await;

    // Two days on: 07:00 has passed twice, once 7 days before the deadline. Each firing puts the org's
    // run on the job queue, for the day it fired on; the job function takes it from there.
    let moved_clock = env.advance_clock_firing(&moved.org_id, chrono::Duration::days(2), &["RemindersFunction"]).await;
    let fired = moved_clock["fired"].as_array().unwrap();
    assert_eq!(fired.len(), 2, "{moved_clock}");
    for firing in fired {
        assert_eq!(firing["function"], "RemindersFunction", "{firing}");
        assert!(firing["at"].as_str().unwrap().contains("T07:00:00"), "{firing}");
        assert_eq!(firing["result"]["dispatched"], 1, "fired for the moved org alone: {firing}");
    }
    let events = env.drain_at_least(&moved_soon, 5).await;
    assert_eq!(events.len(), 5, "the team's 5 learners, once each, on the day 7 days before: {events:?}");
    assert!(events.iter().all(|e| e["detail"]["days"] == 7), "{events:?}");

    // The other org: no reminder, and its clock still reads the real time.
    assert!(env.drain(&still_soon).await.is_empty(), "another org's schedule did not fire");
    let still_now = env.clock(&still.org_id).await;
    assert!(still_now - still_before < chrono::Duration::minutes(5), "{still_before} → {still_now}");
    let moved_now = env.clock(&moved.org_id).await;
    assert!(moved_now - still_now > chrono::Duration::hours(47), "{moved_now} vs {still_now}");
    // The routes read each org's own time too: past the deadline (scheduler paused) the moved org's
    // learners are overdue, the other org's are not.
    let moved_on = env.advance_clock_firing(&moved.org_id, chrono::Duration::days(8), &[]).await;
    assert_eq!(moved_on["fired"], json!([]), "{moved_on}");
    let overdue = |org: &gateway::seed::SeededOrg| {
        let (env, key) = (&env, org.api_keys.admin.clone());
        async move {
            let listed = env.get("/assignments").token(&key).await;
            listed.body[0]["progress"]["overdueUsers"].clone()
        }
    };
    assert_eq!((overdue(&moved).await, overdue(&still).await), (json!(5), json!(0)));
}

#[tokio::test]
async fn reconcile_repairs_a_roster_row_deleted_behind_the_services_back() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let created = assign_team_topic(&env, &org, "sql-injection").await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/assignments/{id}");
    let member = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();

    testkit::stack::raw_client()
        .await
        .delete_item()
        .table_name(env.store.table_name())
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("ORG#{}#ASG#{id}", org.org_id)))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{}", member.user_id)))
        .send()
        .await
        .unwrap();
    let broken = env.get(&path).token(key).await;
    assert!(user_of(&broken.body, member.user_id).is_none());

    let report = env.run_reconcile(&org.org_id).await;
    assert_eq!(report["count"], 2, "the row, then the counters: {report}");
    let repaired = env.get(&path).token(key).await;
    assert_eq!(user_of(&repaired.body, member.user_id).unwrap()["status"], "not_started");
    assert_eq!(repaired.body["progress"]["totalUsers"], 5, "counters equal the rows again");
    let quiet = env.run_reconcile(&org.org_id).await;
    assert_eq!(quiet["count"], 0, "nothing left to repair: {quiet}");
}

/// A team's head count written wrong behind the service's back: the dry run reads it as stored, the
/// reconcile job sets it from the team's members again.
#[tokio::test]
async fn reconcile_recounts_a_head_count_that_drifted() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let team = org.teams[0].team_id;
    let a_while_ago = (Utc::now() - chrono::Duration::minutes(5)).timestamp_millis();
    let changed = change_head_counts(
        &env,
        &org,
        Some(&format!("TEAM#{team}#")),
        "SET activeUsers = :wrong, recounted = :yes, lastMoveMs = :then",
        &[
            (":wrong", AttributeValue::N("33".into())),
            (":yes", AttributeValue::Bool(true)),
            (":then", AttributeValue::N(a_while_ago.to_string())),
        ],
    )
    .await;
    assert!(changed > 0, "the seed's members moved the team's count");
    let learners = async || {
        let preview = env.post("/assignments?dryRun=true").token(key).json(team_topic(&org, "sql-injection")).await;
        preview.body["learnerCount"].clone()
    };
    let wrong = learners().await.as_u64().unwrap();
    assert!(wrong >= 33 && wrong % 33 == 0, "read as stored (33 on each shard): {wrong}");

    let report = env.run_reconcile(&org.org_id).await;
    assert_eq!(report["count"], 1, "the team's head count: {report}");
    assert_eq!(learners().await, 5);
}

/// Times stored ahead of the clock before consumed events were bounded (by a producer whose clock was
/// ahead) order nothing. A member whose projected team time and row membership time say 2999 still
/// leaves on a real `team.member_removed`: the projection and the row forget those times before the
/// change. And the reconcile job forgets them where it finds them (another member's projection and
/// row), so nothing it leaves is ahead of the clock; a second run finds nothing.
#[tokio::test]
async fn times_stored_ahead_of_the_clock_order_nothing_and_reconcile_forgets_them() {
    let (env, org) = Env::with_org().await;
    let created = assign_team_topic(&env, &org, "sql-injection").await;
    let id = domain::AssignmentId::parse(created.body["id"].as_str().unwrap()).unwrap();
    let team = &org.teams[0];
    let mut members = org.learners().filter(|u| u.team_id == Some(team.team_id));
    let (leaving, staying) = (members.next().unwrap().user_id, members.next().unwrap().user_id);
    let far: chrono::DateTime<Utc> = "2999-01-01T00:00:00Z".parse().unwrap();
    for member in [leaving, staying] {
        let mut user = env.store.current_user(&org.org_id, member).await.unwrap().unwrap();
        (user.facets.profile_at, user.facets.team_at, user.updated_at) = (Some(far), Some(far), far);
        assert!(env.store.put_user(&org.org_id, &user, Utc::now()).await.unwrap());
        testkit::stack::raw_client()
            .await
            .update_item()
            .table_name(env.store.table_name())
            .key("PK", AttributeValue::S(format!("ORG#{}#ASG#{id}", org.org_id)))
            .key("SK", AttributeValue::S(format!("USER#{member}")))
            .update_expression("SET membershipAt = :far")
            .expression_attribute_values(":far", AttributeValue::S("2999-01-01T00:00:00Z".into()))
            .send()
            .await
            .unwrap();
    }
    let row = |user| {
        let (env, org) = (&env, &org);
        async move { env.store.progress_row(&org.org_id, id, user).await.unwrap().unwrap() }
    };
    assert_eq!(row(leaving).await.membership_at, far);

    env.publish(&[seed::member_event(false, &org.org_id, team, leaving, Utc::now())]).await;
    eventually("the leave", || async { row(leaving).await.removed_at }).await;
    let projected = env.store.current_user(&org.org_id, leaving).await.unwrap().unwrap();
    assert_eq!(projected.team_id, None);
    assert!(projected.facets.team_at.unwrap() < Utc::now(), "{projected:?}");

    let ahead = |user: &domain::User, row: &domain::ProgressRow| {
        let bound = Utc::now() + domain::skew::MAX_CLOCK_AHEAD;
        [user.facets.profile_at, user.facets.team_at, Some(user.updated_at), Some(row.membership_at)]
            .into_iter()
            .flatten()
            .any(|at| at > bound)
    };
    let stored = env.store.current_user(&org.org_id, staying).await.unwrap().unwrap();
    assert!(ahead(&stored, &row(staying).await), "nothing forgot the staying member's times yet");
    let report = env.run_reconcile(&org.org_id).await;
    assert!(report["count"].as_u64().unwrap() >= 2, "the projection and the row: {report}");
    let stored = env.store.current_user(&org.org_id, staying).await.unwrap().unwrap();
    let staying_row = row(staying).await;
    assert!(!ahead(&stored, &staying_row), "{stored:?} {staying_row:?}");
    assert_eq!((stored.team_id, staying_row.removed_at), (Some(team.team_id), None), "still a member");
    let quiet = env.run_reconcile(&org.org_id).await;
    assert_eq!(quiet["count"], 0, "nothing left to forget: {quiet}");
}
