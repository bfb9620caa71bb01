//! Compliance with mandatory training: `GET /compliance`, `GET /compliance/learners`, the
//! `compliance` export and `compliance.changed`, end to end.

use chrono::{Duration, NaiveDate};
use gateway::seed;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::e2e::{Env, assert_problem, eventually, parse_csv};

use crate::{deadline, update_behind_the_api};

/// What a patch of an assignment's deadline leaves when it fails after its change committed and before
/// its learners were synced: the new deadline and the "not yet synced" marker (see
/// [`update_behind_the_api`]).
async fn interrupted_deadline_patch(env: &Env, org: &seed::SeededOrg, id: &str, day: NaiveDate) {
    update_behind_the_api(env, org, id, "SET #a = :v, complianceSync = unitsRev", "deadline", day.to_string()).await;
}

async fn create(env: &Env, org: &seed::SeededOrg, body: Value) -> String {
    let created = env.post("/assignments").token(org.api_keys.admin.as_str()).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

fn team_figures(summary: &Value, team: domain::TeamId) -> Value {
    summary["teams"].as_array().unwrap().iter().find(|t| t["teamId"] == json!(team)).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_overdue_mandatory_assignment_makes_a_learner_non_compliant_until_they_complete_it() {
    let (env, org) = Env::with_org().await;
    let other = env.org().await;
    let key = org.api_keys.admin.as_str();
    let changed = env.subscribe(&org, "compliance.changed").await;
    let (team, other_team) = (org.teams[0].team_id, org.teams[1].team_id);
    let day0 = env.clock(&org.org_id).await.date_naive();

    // Mandatory: the first team's SQL injection (due in 30 days) and everyone's XXE (in 60);
    // optional: everyone's reflected XSS (tomorrow).
    let team_mandatory = create(
        &env,
        &org,
        json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
               "assigneeType": "team", "assigneeId": team, "deadline": deadline(30)}),
    )
    .await;
    let org_wide = |topic: &str, days: i64, mandatory: bool| {
        json!({"contentArea": "practice", "targetType": "topic", "targetId": topic, "assigneeType": "org",
               "assigneeId": org.org_id.as_str(), "deadline": deadline(days), "isMandatory": mandatory})
    };
    let everyone = create(&env, &org, org_wide("xxe", 60, true)).await;
    create(&env, &org, org_wide("reflected-xss", 1, false)).await;
    let everyone_detail = env.get(&format!("/assignments/{everyone}")).token(key).await;
    let learners = everyone_detail.body["progress"]["totalUsers"].as_u64().unwrap();
    let members: Vec<_> = org.users.iter().filter(|u| u.team_id == Some(team)).collect();
    assert_eq!(members.len(), 5);

    let summary = env.get("/compliance").token(key).await;
    assert_eq!(summary.status, StatusCode::OK, "{:?}", summary.body);
    assert_eq!(
        (summary.body["learners"].as_u64(), summary.body["compliantLearners"].as_u64()),
        (Some(learners), Some(learners))
    );
    assert_eq!(
        (summary.body["complianceRate"].clone(), summary.body["mandatoryAssignments"].clone()),
        (json!(1.0), json!(2))
    );

    // The team's mandatory assignment is moved to tomorrow by a patch interrupted before its learners
    // were synced; four days pass on the org's clock (the scheduler paused), so it and the optional one
    // are overdue since 2 days. The reconcile job finishes the sync and announces who fell out of
    // compliance.
    interrupted_deadline_patch(&env, &org, &team_mandatory, day0 + Duration::days(1)).await;
    env.advance_clock_firing(&org.org_id, Duration::days(4), &[]).await;
    let today = env.clock(&org.org_id).await.date_naive();
    assert_eq!(today, day0 + Duration::days(4));
    let report = env.run_reconcile(&org.org_id).await;
    assert_eq!(report["count"], 5, "{report}");
    let quiet = env.run_reconcile(&org.org_id).await;
    assert_eq!(quiet["count"], 0, "the marker is gone once synced: {quiet}");
    let summary = env.get("/compliance").token(key).await;
    assert_eq!(summary.body["compliantLearners"].as_u64(), Some(learners - 5), "{:?}", summary.body);
    assert_eq!(
        (summary.body["overdueLearners"].clone(), summary.body["expiredLearners"].clone()),
        (json!(5), json!(0))
    );
    let in_team = team_figures(&summary.body, team);
    assert_eq!(
        (in_team["learners"].clone(), in_team["compliantLearners"].clone(), in_team["complianceRate"].clone()),
        (json!(5), json!(0), json!(0.0)),
        "{in_team}"
    );
    assert_eq!(in_team["name"], json!(org.teams[0].name));
    let elsewhere = team_figures(&summary.body, other_team);
    assert_eq!(elsewhere["learners"], elsewhere["compliantLearners"], "an optional overdue assignment changes nothing");

    let listed = env.get("/compliance/learners?compliant=false").token(key).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let listed = listed.body.as_array().unwrap().clone();
    assert_eq!(listed.len(), 5);
    let first = &listed[0];
    assert_eq!(
        (
            first["teamId"].clone(),
            first["teamName"].clone(),
            first["mandatoryAssigned"].clone(),
            first["overdue"].clone()
        ),
        (json!(team), json!(org.teams[0].name), json!(2), json!(1))
    );
    assert_eq!(
        (first["compliant"].clone(), first["nonCompliantSince"].clone()),
        (json!(false), json!(today - Duration::days(2)))
    );
    assert_eq!(first["dueSoon"], 0, "the org-wide one is due in 60 days");
    let paged = env.get(&format!("/compliance/learners?teamId={team}&limit=2")).token(key).await;
    assert_eq!(paged.body.as_array().unwrap().len(), 2);
    let next = paged.next_link().expect("a next page");
    assert!(next.contains("cursor="), "{next}");

    let fell_out = env.drain(&changed).await;
    assert_eq!(fell_out.len(), 5, "{fell_out:?}");
    let since = json!(today - Duration::days(2));
    assert!(fell_out.iter().all(|e| e["detail"]["compliant"] == false && e["detail"]["nonCompliantSince"] == since));

    // One of them completes the overdue assignment: compliant again, announced once.
    let learner = members[0];
    let now = env.clock(&org.org_id).await;
    let done: Vec<_> = (0..11)
        .map(|i| seed::challenge_completed(&org.org_id, learner.user_id, "sql-injection", i, 90.0, now))
        .collect();
    env.publish(&done).await;
    let summary = eventually("the learner to be compliant", || async {
        let summary = env.get("/compliance").token(key).await;
        (summary.body["compliantLearners"].as_u64() == Some(learners - 4)).then_some(summary.body)
    })
    .await;
    assert_eq!(team_figures(&summary, team)["compliantLearners"], 1);
    let back = env.drain(&changed).await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(
        (back[0]["detail"]["userId"].clone(), back[0]["detail"]["compliant"].clone()),
        (json!(learner.user_id), json!(true))
    );
    let mine = env.get(&format!("/compliance/learners?teamId={team}&compliant=true")).token(key).await;
    let mine = mine.body.as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0]["completed"].clone(), mine[0]["lastCompletedAt"].is_string()), (json!(1), true));

    // The clock alone: on the day after the org-wide deadline everyone still compliant falls out,
    // announced by the daily job once however often it runs.
    let day_after = day0 + Duration::days(61);
    env.run_daily_job(&org.org_id, day_after).await;
    env.run_daily_job(&org.org_id, day_after).await;
    let clock = env.drain(&changed).await;
    assert_eq!(clock.len() as u64, learners - 4, "{clock:?}");
    assert!(clock.iter().all(|e| e["detail"]["compliant"] == false));

    // The auditor's evidence: one row per learner and active mandatory assignment.
    let export = env.export(key, "compliance").await;
    assert_eq!((export.status, export.body["status"].as_str()), (StatusCode::OK, Some("ready")), "{:?}", export.body);
    assert_eq!(export.body["kind"], "compliance");
    let text = env.http.get(export.body["downloadUrl"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    let (header, rows) = parse_csv(&text);
    assert_eq!(header, exports::COMPLIANCE_COLUMNS);
    assert_eq!(rows.len() as u64, learners + 5, "the team's 5 and everyone's, not the optional one");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let theirs: Vec<_> = rows.iter().filter(|r| r[col("userId")] == learner.user_id.to_string()).collect();
    assert_eq!(theirs.len(), 2);
    let done_row = theirs.iter().find(|r| r[col("targetPath")].contains("SQL Injection")).unwrap();
    assert_eq!((&done_row[col("status")], &done_row[col("teamName")]), ("completed", org.teams[0].name.as_str()));
    assert!(!done_row[col("completedAt")].is_empty() && done_row[col("averageScore")] == *"90.00");
    assert!(rows.iter().all(|r| !r[col("targetPath")].contains("Cross")), "no optional assignment");

    // Another org's admin sees none of it; learners and keys without the scope are refused.
    let theirs = env.get("/compliance").token(other.api_keys.admin.as_str()).await;
    assert_eq!((theirs.body["learners"].clone(), theirs.body["teams"].clone()), (json!(0), json!([])));
    let theirs = env.get(&format!("/compliance/learners?teamId={team}")).token(other.api_keys.admin.as_str()).await;
    assert_eq!(theirs.body, json!([]));
    for path in ["/compliance", "/compliance/learners"] {
        assert_problem(&env.get(path).token(&learner.token).await, 403, "forbidden");
        assert_problem(&env.get(path).token(org.api_keys.read_only.as_str()).await, 403, "insufficient_scope");
    }
    assert_problem(&env.get("/compliance/learners?teamId=nope").token(key).await, 400, "validation_failed");
    let admin = env.get("/compliance").token(&org.admin().token).await;
    assert_eq!(admin.status, StatusCode::OK, "an org admin's session has the scope");
}

/// A rule change of a mandatory org-wide assignment of 1,000 learners (its deadline moved): the PATCH
/// brings at most its share (two pages) in line and answers `complianceSync: syncing`; the roster worker
/// does the rest off the request path, until every learner's obligation has the new date and the
/// assignment says `synced`. A repeated PATCH and a note's change meanwhile neither restart nor lose it.
#[tokio::test]
async fn a_rule_change_of_a_thousand_learners_syncs_off_the_request_path() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let today = env.clock(&org.org_id).await.date_naive();
    let mut a = testkit::fixtures::org_wide(&org.org_id, today + Duration::days(30));
    a.is_mandatory = true;
    let rows = testkit::fixtures::roster(&a, 1_000);
    let audit = testkit::fixtures::audit("assignment.created", &a.id.to_string());
    env.store.create_assignment(&org.org_id, &a, &audit, &rows, &[]).await.unwrap();
    // How many learners' obligations of `a` fall due on `day`: a recount of the learners' items.
    let due_on = |day: NaiveDate| {
        let env = &env;
        let org = org.org_id.clone();
        async move {
            let mut due = 0;
            let mut pages = store::Pages::default();
            while let Some(start) = pages.next_start() {
                let page = env.store.compliance_learners_page(&org, &Default::default(), 500, start).await.unwrap();
                due += pages
                    .follow(page)
                    .iter()
                    .filter(|l| l.obligations.get(&a.id).and_then(|o| o.due_on) == Some(day))
                    .count();
            }
            due
        }
    };
    let moved = today + Duration::days(10);
    assert_eq!(due_on(today + Duration::days(30)).await, 1_000);

    let path = format!("/assignments/{}", a.id);
    let patched = env.patch(&path).token(key).json(json!({"deadline": moved})).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["complianceSync"], "syncing", "more than the request's share");
    assert!(due_on(moved).await < 1_000, "the request did not bring every learner in line itself");
    // A client's retry, and another change, while the worker goes on.
    let again = env.patch(&path).token(key).json(json!({"deadline": moved})).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    let noted = env.patch(&path).token(key).json(json!({"note": "moved up"})).await;
    assert_eq!(noted.status, StatusCode::OK, "{:?}", noted.body);

    let synced = eventually("the sync's end", || async {
        let detail = env.get(&path).token(key).await;
        (detail.body["complianceSync"] == "synced").then_some(detail)
    })
    .await;
    assert_eq!((synced.body["note"].clone(), synced.body["deadline"].clone()), (json!("moved up"), json!(moved)));
    assert_eq!(due_on(moved).await, 1_000, "every learner's obligation follows the new deadline");
    let summary = env.get("/compliance").token(key).await;
    assert_eq!(
        (summary.body["learners"].clone(), summary.body["compliantLearners"].clone()),
        (json!(1_000), json!(1_000)),
        "the figures equal the recount: {:?}",
        summary.body
    );
}
