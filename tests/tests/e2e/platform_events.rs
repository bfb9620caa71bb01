//! The platform's events on the bus reach the consumers through the template's rules: completions,
//! team membership and custom courses change rosters and progress, and domain events go out.

use std::time::Duration;

use chrono::Utc;
use domain::Role;
use gateway::seed;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::e2e::{Env, eventually};

use crate::{assign_team_topic, deadline, path_of, user_of};

#[tokio::test]
async fn completing_all_eleven_challenges_completes_the_learner_once() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let created = assign_team_topic(&env, &org, "sql-injection").await;
    let path = path_of(&created);
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

    let detail = env.get(&path).token(key).await;
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

    let mine = env.get(&format!("/users/{}/assignments", learner.user_id)).token(learner.token.as_str()).await;
    assert_eq!((mine.body[0]["status"].clone(), mine.body[0]["progress"].clone()), (json!("completed"), json!(1.0)));
}

#[tokio::test]
async fn team_membership_events_on_the_bus_move_learners_in_and_out() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let created = assign_team_topic(&env, &org, "sql-injection").await;
    let path = path_of(&created);
    assert_eq!(created.body["progress"]["totalUsers"], 5);
    let added = env.subscribe(&org, "assignment.user_added").await;

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
    env.publish(&[seed::user_created(&org.org_id, &joiner, now)]).await;
    eventually("the new user's profile", || async {
        env.store.get_user(&org.org_id, joiner.user_id).await.unwrap().filter(|u| !u.email.is_empty())
    })
    .await;
    let added_at = now + chrono::Duration::milliseconds(1);
    env.publish(&[seed::member_event(true, &org.org_id, &org.teams[0], joiner.user_id, added_at)]).await;
    let view_path = format!("/users/{}/assignments", joiner.user_id);
    let item = eventually("the joiner to see the team's assignment", || async {
        let view = env.get(&view_path).token(key).await;
        view.body.as_array().and_then(|items| items.first().cloned())
    })
    .await;
    assert_eq!((item["source"].clone(), item["teamName"].clone()), (json!("team"), json!("Payments Platform")));
    assert_eq!(item["status"], "not_started");

    // An existing member leaves: out of the rates, still in the detail as removed.
    let leaver = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();
    env.publish(&[seed::member_event(false, &org.org_id, &org.teams[0], leaver.user_id, Utc::now())]).await;
    let detail = eventually("the leaver to be removed", || async {
        let detail = env.get(&path).token(key).await;
        (user_of(&detail.body, leaver.user_id)?["status"] == "removed").then_some(detail.body)
    })
    .await;
    assert_eq!(detail["progress"]["totalUsers"], 5, "5 members + 1 joiner - 1 leaver");
    assert_eq!(detail["progress"]["notStartedUsers"], 5);
    assert!(user_of(&detail, leaver.user_id).unwrap()["removedAt"].is_string());
    assert_eq!(user_of(&detail, joiner.user_id).unwrap()["name"], "Hedy Lamarr");

    // A late, older join of the leaver changes nothing.
    env.publish(&[seed::member_event(
        true,
        &org.org_id,
        &org.teams[0],
        leaver.user_id,
        Utc::now() - chrono::Duration::hours(1),
    )])
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let detail = env.get(&path).token(key).await;
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
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let completed = env.subscribe(&org, "assignment.completed").await;
    let created = assign_team_topic(&env, &org, "sql-injection").await;
    let path = path_of(&created);
    let learner = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();

    let now = Utc::now();
    let events: Vec<_> = (0..11u16)
        .rev()
        .map(|i| seed::challenge_completed(&org.org_id, learner.user_id, "sql-injection", i, 80.0, now))
        .collect();
    env.publish(&events).await;
    let detail = eventually("completedUsers to reach 1", || async {
        let detail = env.get(&path).token(key).await;
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
    assert_eq!(d["id"], created.body["id"], "the assignment's summary, flattened beside the learner");
    assert_eq!(d["targetId"], created.body["targetId"]);
    assert!(d["completedAt"].is_string());
}

/// Custom-course events on the platform's bus reach the course consumer through the template's rule:
/// the course is projected, and a later change of its items re-evaluates the learners already on it
/// (one whose remaining items are all done completes).
#[tokio::test]
async fn custom_course_changes_on_the_bus_re_evaluate_assigned_learners() {
    let (env, org) = Env::with_org().await;
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
    env.publish(&[course_event(json!([scenario, topic]), first_version)]).await;
    let stored =
        eventually("the course", || async { env.store.get_custom_course(&org.org_id, course).await.unwrap() }).await;
    assert_eq!(stored.name, "Threat Modelling 101");

    let key = org.api_keys.admin.as_str();
    let body = json!({"contentArea": "custom", "targetType": "custom-course", "targetId": course,
                      "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(30)});
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let path = path_of(&created);
    let learner = org.learners().next().unwrap();
    let done = seed::PlatformEvent {
        source: "platform.training",
        detail_type: "scenario.completed",
        detail: json!({"orgId": org.org_id.as_str(), "userId": learner.user_id, "scenarioId": "secrets-in-env",
                       "score": 90, "completedAt": Utc::now()}),
    };
    env.consumer.handle(done.envelope()).await.unwrap();
    let detail = env.get(&path).token(key).await;
    assert_eq!(user_of(&detail.body, learner.user_id).unwrap()["status"], "in_progress");

    env.publish(&[course_event(json!([scenario]), first_version + chrono::Duration::seconds(1))]).await;
    eventually("the learner to complete the shortened course", || async {
        let detail = env.get(&path).token(key).await;
        (user_of(&detail.body, learner.user_id)?["status"] == "completed").then_some(())
    })
    .await;
}
