//! Deadlines that follow the learner: per-learner `dueOn`, extensions and exemptions
//! (`/assignments/{id}/users/{userId}`), relative deadlines and new-starter assignments, and the
//! reminders that follow each learner's date.

use chrono::Utc;
use domain::Role;
use gateway::seed;
use reqwest::StatusCode;
use serde_json::json;
use testkit::e2e::{Env, assert_problem, eventually, parse_csv};

use crate::{assign_team_topic, deadline, path_of, team_topic, user_of};

/// The counters equal a recount of the rows: the reconcile's repair finds nothing to correct.
async fn assert_counters_equal_rows(env: &Env, org: &seed::SeededOrg, id: &str) {
    let id = domain::AssignmentId::parse(id).unwrap();
    assert!(!env.store.repair_counters(&org.org_id, id).await.unwrap(), "counters differ from a recount");
}

#[tokio::test]
async fn an_extension_and_an_exemption_change_one_learner_only() {
    let (env, org) = Env::with_org().await;
    let other = env.org().await;
    let key = org.api_keys.admin.as_str();
    let created = assign_team_topic(&env, &org, "sql-injection").await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = path_of(&created);
    let updated = env.subscribe(&org, "assignment.user_updated").await;
    // A month on the org's clock (the scheduler paused): the deadline, 30 days away, was yesterday.
    let yesterday = created.body["deadline"].as_str().unwrap().parse::<chrono::NaiveDate>().unwrap();
    env.advance_clock_firing(&org.org_id, chrono::Duration::days(31), &[]).await;
    assert_eq!(env.clock(&org.org_id).await.date_naive() - chrono::Duration::days(1), yesterday);
    // Dates the org's admin picks from now on are in the org's time.
    let in_ten = (yesterday + chrono::Duration::days(11)).to_string();
    let detail = env.get(&path).token(key).await;
    assert_eq!(detail.body["progress"]["overdueUsers"], 5);

    let mut members = org.learners().filter(|u| u.team_id == Some(org.teams[0].team_id));
    let (extended, exempted) = (members.next().unwrap(), members.next().unwrap());
    let extended_path = format!("{path}/users/{}", extended.user_id);
    let one = env.get(&extended_path).token(key).await;
    assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
    assert_eq!((one.body["status"].clone(), one.body["dueOn"].clone()), (json!("overdue"), json!(yesterday)));
    assert_eq!(one.headers["etag"], "\"0\"");
    assert_eq!(one.body["name"], json!(extended.name));

    // An extension: this learner's date and status move, nobody else's.
    let patched = env.patch(&extended_path).token(key).header("if-match", "\"0\"").json(json!({"dueOn": in_ten})).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!((patched.body["status"].clone(), patched.body["dueOn"].clone()), (json!("not_started"), json!(in_ten)));
    assert_eq!(patched.headers["etag"], "\"1\"");
    let stale = env.patch(&extended_path).token(key).header("if-match", "\"0\"").json(json!({"dueOn": null})).await;
    assert_problem(&stale, 412, "precondition_failed");
    let detail = env.get(&path).token(key).await;
    assert_eq!(
        (detail.body["progress"]["overdueUsers"].clone(), detail.body["progress"]["notStartedUsers"].clone()),
        (json!(4), json!(1))
    );
    assert_eq!(user_of(&detail.body, exempted.user_id).unwrap()["dueOn"], json!(yesterday));
    assert_counters_equal_rows(&env, &org, &id).await;

    // An exemption: kept and shown, out of every rate.
    let exempt_path = format!("{path}/users/{}", exempted.user_id);
    let refused = env.patch(&exempt_path).token(key).json(json!({"exempt": true})).await;
    assert_problem(&refused, 400, "validation_failed");
    assert_eq!(refused.body["errors"][0]["field"], "reason");
    let exempt = env.patch(&exempt_path).token(key).json(json!({"exempt": true, "reason": "=Parental leave"})).await;
    assert_eq!(
        (exempt.body["status"].clone(), exempt.body["exemptReason"].clone()),
        (json!("exempt"), json!("=Parental leave"))
    );
    let repeat = env.patch(&exempt_path).token(key).json(json!({"exempt": true, "reason": "=Parental leave"})).await;
    assert_eq!(repeat.headers["etag"], exempt.headers["etag"], "a repeat changes nothing");
    let detail = env.get(&path).token(key).await;
    let progress = &detail.body["progress"];
    assert_eq!((progress["totalUsers"].clone(), progress["overdueUsers"].clone()), (json!(4), json!(3)));
    assert_eq!(user_of(&detail.body, exempted.user_id).unwrap()["status"], "exempt");
    assert_counters_equal_rows(&env, &org, &id).await;
    let overdue = env.get("/assignments?overdue=true").token(key).await;
    assert_eq!(overdue.body.as_array().unwrap().len(), 1);

    // Audit entries (before/after) and events, one per change.
    let audit = env.get("/audit-log?action=assignment.user_updated").token(key).await;
    let entries = audit.body["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1]["metadata"]["before"]["dueOn"], json!(yesterday));
    assert_eq!(entries[1]["metadata"]["after"]["extendedTo"], json!(in_ten));
    let events = env.drain(&updated).await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().any(|e| e["detail"]["after"]["reason"] == "=Parental leave"));

    // The progress export carries each learner's date and the exemption's reason (as text).
    let export = env.export(key, "progress").await;
    let text = env.http.get(export.body["downloadUrl"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    let (header, rows) = parse_csv(&text);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row_of = |user: domain::UserId| rows.iter().find(|r| r[col("userId")] == user.to_string()).unwrap();
    assert_eq!(&row_of(exempted.user_id)[col("status")], "exempt");
    assert_eq!(&row_of(exempted.user_id)[col("exemptReason")], "'=Parental leave");
    assert_eq!(&row_of(extended.user_id)[col("dueOn")], in_ten.as_str());

    // Strangers, learners and unknown learners see nothing.
    let stranger = other.api_keys.admin.as_str();
    assert_problem(&env.get(&extended_path).token(stranger).await, 404, "not_found");
    assert_problem(&env.patch(&extended_path).token(stranger).json(json!({"dueOn": null})).await, 404, "not_found");
    assert_problem(
        &env.patch(&extended_path).token(extended.token.as_str()).json(json!({"dueOn": null})).await,
        403,
        "forbidden",
    );
    let nobody = format!("{path}/users/{}", uuid::Uuid::new_v4());
    assert_problem(&env.patch(&nobody).token(key).json(json!({"dueOn": null})).await, 404, "not_found");
    assert_problem(&env.get(&format!("{path}/users/not-a-uuid")).token(key).await, 404, "not_found");
    let untouched = env.get(&extended_path).token(key).await;
    assert_eq!(untouched.body["dueOn"], json!(in_ten), "the stranger's attempt changed nothing");
}

#[tokio::test]
async fn a_relative_deadline_dates_each_learner_from_the_day_they_got_the_row() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let mut body = team_topic(&org, "sql-injection");
    body.as_object_mut().unwrap().remove("deadline");
    body["dueInDays"] = json!(10);
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!((created.body["dueInDays"].clone(), created.body["deadline"].clone()), (json!(10), json!(deadline(10))));
    let path = path_of(&created);
    let refused = env.patch(&path).token(key).json(json!({"deadline": deadline(20)})).await;
    assert_problem(&refused, 400, "validation_failed");

    // A joiner two days from now (the platform's time of the join decides; the org's clock is moved on so
    // the join is not dated ahead of it, with the scheduler paused).
    let joiner = seed::SeededUser {
        user_id: domain::UserId(uuid::Uuid::new_v4()),
        name: "Radia Perlman".into(),
        email: "radia@acme.example".into(),
        role: Role::Learner,
        team_id: None,
        token: String::new(),
    };
    let joined_at = Utc::now() + chrono::Duration::days(2);
    env.advance_clock_firing(&org.org_id, chrono::Duration::days(2), &[]).await;
    env.publish(&[seed::user_created(&org.org_id, &joiner, Utc::now())]).await;
    env.publish(&[seed::member_event(true, &org.org_id, &org.teams[0], joiner.user_id, joined_at)]).await;
    let row = eventually("the joiner's row", || async {
        let detail = env.get(&path).token(key).await;
        user_of(&detail.body, joiner.user_id)
    })
    .await;
    let joiner_due = joined_at.date_naive() + chrono::Duration::days(10);
    assert_eq!(row["dueOn"], json!(joiner_due), "join date + 10");
    let member = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();
    let detail = env.get(&path).token(key).await;
    assert_eq!(user_of(&detail.body, member.user_id).unwrap()["dueOn"], json!(deadline(10)));

    // Reminders follow each learner's own date, once per learner, date and offset.
    let due_soon = env.subscribe(&org, "assignment.due_soon").await;
    let week_before = joiner_due - chrono::Duration::days(7);
    for _ in 0..2 {
        env.run_daily_job(&org.org_id, week_before).await;
    }
    let events = env.drain(&due_soon).await;
    assert_eq!(events.len(), 1, "only the joiner is due in a week on that day: {events:?}");
    assert_eq!(events[0]["detail"]["userId"], json!(joiner.user_id));
    assert_eq!(
        (events[0]["detail"]["dueOn"].clone(), events[0]["detail"]["days"].clone()),
        (json!(joiner_due), json!(7))
    );
}

#[tokio::test]
async fn new_starters_get_the_assignment_and_existing_members_do_not() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
                      "assigneeType": "org", "assigneeId": org.org_id.as_str(), "dueInDays": 14,
                      "newStartersOnly": true});
    let preview = env.post("/assignments?dryRun=true").token(key).json(body.clone()).await;
    assert_eq!(preview.body["summary"], "Will assign 11 challenges to each new starter", "{:?}", preview.body);
    assert_eq!(preview.body["learnerCount"], 0);
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        (created.body["progress"]["totalUsers"].clone(), created.body["newStartersOnly"].clone()),
        (json!(0), json!(true))
    );
    let path = path_of(&created);

    let starter = seed::SeededUser {
        user_id: domain::UserId(uuid::Uuid::new_v4()),
        name: "Grace Hopper".into(),
        email: "grace@acme.example".into(),
        role: Role::Learner,
        team_id: None,
        token: String::new(),
    };
    let existing = org.learners().next().unwrap();
    let mut renamed = existing.clone();
    renamed.name = "Renamed Existing".into();
    env.publish(&[seed::user_created(&org.org_id, &starter, Utc::now())]).await;
    // An existing member's profile change is not joining: they get no row (not even a removed one).
    env.publish(&[seed::user_created(&org.org_id, &renamed, Utc::now())]).await;
    let view = format!("/users/{}/assignments", starter.user_id);
    let item = eventually("the new starter's assignment", || async {
        env.get(&view).token(key).await.body.as_array().and_then(|items| items.first().cloned())
    })
    .await;
    assert_eq!((item["source"].clone(), item["dueOn"].clone()), (json!("new_starters"), json!(deadline(14))));
    eventually("the existing member's new name", || async {
        env.store.get_user(&org.org_id, existing.user_id).await.unwrap().filter(|u| u.name == "Renamed Existing")
    })
    .await;
    let detail = env.get(&path).token(key).await;
    let users: Vec<_> = detail.body["users"].as_array().unwrap().iter().map(|u| u["userId"].clone()).collect();
    assert_eq!(users, [json!(starter.user_id)], "only the new starter: {:?}", detail.body);
    let theirs = env.get(&format!("/users/{}/assignments", existing.user_id)).token(key).await;
    assert!(!theirs.body.as_array().unwrap().iter().any(|a| a["id"] == created.body["id"]));
}

#[tokio::test]
async fn a_yearly_recertification_expires_and_renews_with_its_history() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let mut body = team_topic(&org, "sql-injection");
    body["recurrence"] = json!({"everyMonths": 12});
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["recurrence"], json!({"everyMonths": 12, "windowDays": 30}));
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = path_of(&created);
    let learner = org.learners().find(|u| u.team_id == Some(org.teams[0].team_id)).unwrap();
    let completed = env.subscribe(&org, "assignment.completed").await;
    let recert_due = env.subscribe(&org, "assignment.recertification_due").await;
    let expired = env.subscribe(&org, "assignment.expired").await;

    // A month on the org's clock the learner completes every challenge; thirteen more months pass (the
    // scheduler paused: the daily job runs below, for the days it matters).
    let complete_all = |at: chrono::DateTime<Utc>, score: f64| {
        (0..11u16)
            .map(|i| seed::challenge_completed(&org.org_id, learner.user_id, "sql-injection", i, score, at).envelope())
            .collect::<Vec<_>>()
    };
    let month = chrono::Duration::days(31);
    env.advance_clock_firing(&org.org_id, month, &[]).await;
    let first = env.clock(&org.org_id).await;
    for event in complete_all(first, 80.0) {
        env.invoke("ProgressEventsFunction", event).await;
    }
    let later = first.checked_add_months(chrono::Months::new(13)).unwrap() - first;
    env.advance_clock_firing(&org.org_id, later, &[]).await;
    let valid_until = first.date_naive().checked_add_months(chrono::Months::new(12)).unwrap();
    let learner_path = format!("{path}/users/{}", learner.user_id);
    let lapsed = env.get(&learner_path).token(key).await;
    assert_eq!(lapsed.body["status"], "expired", "{:?}", lapsed.body);
    assert_eq!(
        (lapsed.body["validUntil"].clone(), lapsed.body["dueOn"].clone()),
        (json!(valid_until), json!(valid_until))
    );
    assert_eq!(lapsed.body["cycles"].as_array().unwrap().len(), 1);
    assert_eq!(lapsed.body["cycles"][0]["averageScore"], 80.0);
    let detail = env.get(&path).token(key).await;
    let progress = &detail.body["progress"];
    assert_eq!((progress["expiredUsers"].clone(), progress["completedUsers"].clone()), (json!(1), json!(0)));
    let only_expired = env.get(&format!("{path}?status=expired")).token(key).await;
    let users: Vec<_> = only_expired.body["users"].as_array().unwrap().iter().map(|u| u["userId"].clone()).collect();
    assert_eq!(users, [json!(learner.user_id)]);
    let listed = env.get("/assignments?expired=true").token(key).await;
    assert_eq!(listed.body.as_array().unwrap().iter().map(|a| a["id"].clone()).collect::<Vec<_>>(), [json!(id)]);
    assert_problem(&env.get(&format!("{path}?status=late")).token(key).await, 400, "validation_failed");

    // The daily job, run twice on a day inside the window and twice after the lapse: each event once.
    let in_window = valid_until - chrono::Duration::days(28);
    for date in [in_window, in_window, valid_until + chrono::Duration::days(1), valid_until + chrono::Duration::days(1)]
    {
        env.run_daily_job(&org.org_id, date).await;
    }
    let due = env.drain(&recert_due).await;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(
        (due[0]["detail"]["userId"].clone(), due[0]["detail"]["validUntil"].clone()),
        (json!(learner.user_id), json!(valid_until))
    );
    let gone = env.drain(&expired).await;
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0]["detail"]["status"], "expired");

    // Completing it again: completed, two cycles in the history, valid for another year.
    let now = env.clock(&org.org_id).await;
    for event in complete_all(now, 95.0) {
        env.invoke("ProgressEventsFunction", event).await;
    }
    let renewed = env.get(&learner_path).token(key).await;
    assert_eq!(renewed.body["status"], "completed");
    let cycles = renewed.body["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 2);
    assert_eq!((cycles[0]["averageScore"].clone(), cycles[1]["averageScore"].clone()), (json!(80.0), json!(95.0)));
    let next_valid = now.date_naive().checked_add_months(chrono::Months::new(12)).unwrap();
    assert_eq!(renewed.body["validUntil"], json!(next_valid));
    assert_eq!(env.drain(&completed).await.len(), 2, "one assignment.completed per cycle");
    let detail = env.get(&path).token(key).await;
    assert_eq!(detail.body["progress"]["expiredUsers"], 0);
    assert_eq!(detail.body["progress"]["completedUsers"], 1);
    assert_counters_equal_rows(&env, &org, &id).await;

    // Stopping recertification keeps the history; the learner stays completed, with no expiry.
    let stopped = env.patch(&path).token(key).json(json!({"recurrence": null})).await;
    assert_eq!(stopped.status, StatusCode::OK, "{:?}", stopped.body);
    assert!(stopped.body.get("recurrence").is_none());
    let one_off = env.get(&learner_path).token(key).await;
    assert_eq!((one_off.body["status"].clone(), one_off.body.get("validUntil")), (json!("completed"), None));
    assert_eq!(one_off.body["cycles"].as_array().unwrap().len(), 2, "history is never deleted");
    assert_counters_equal_rows(&env, &org, &id).await;
    let monthly = env.patch(&path).token(key).json(json!({"recurrence": {"everyMonths": 1, "windowDays": 7}})).await;
    assert_eq!(monthly.body["recurrence"], json!({"everyMonths": 1, "windowDays": 7}));
    let again = env.get(&learner_path).token(key).await;
    let next_month = env.clock(&org.org_id).await.date_naive().checked_add_months(chrono::Months::new(1)).unwrap();
    assert_eq!(
        (again.body["status"].clone(), again.body["validUntil"].clone()),
        (json!("completed"), json!(next_month))
    );
    assert_counters_equal_rows(&env, &org, &id).await;
}
