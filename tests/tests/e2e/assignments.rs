//! Creating, changing, deactivating and reactivating assignments through the API: previews, versions,
//! idempotent retries, rosters larger than one transaction.

use chrono::Utc;
use domain::Role;
use gateway::seed;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::e2e::{Env, assert_problem, eventually};

use crate::{assign_team_topic, deadline, head_counts_checked, path_of, team_topic};

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

/// A key's claim expires after 24 real hours, not 24 hours of the org's clock: a retry seconds later
/// is a replay even if the org's time moved two days meanwhile (found by the load-and-fault run, which
/// moves orgs' clocks while clients retry: the retry was answered `duplicate_assignment`).
#[tokio::test]
async fn a_retry_is_a_replay_however_far_the_orgs_clock_moved() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let send = || env.post("/assignments").token(key).json(team_topic(&org, "xxe")).header("idempotency-key", "k-2");
    let first = send().await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    env.advance_clock_firing(&org.org_id, chrono::Duration::days(2), &[]).await;
    let retry = send().await;
    assert_eq!((retry.status, &retry.body["id"]), (StatusCode::CREATED, &first.body["id"]), "{:?}", retry.body);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
}

/// The dry run answers from the directory's head counts and the assignees of the target's active
/// assignments (not by listing members): a team's assignment covers its members, an individual one its
/// learner (once, whatever else covers them), an org-wide one everyone.
#[tokio::test]
async fn a_dry_run_counts_learners_and_who_already_has_the_target_without_listing_members() {
    let (env, org) = Env::with_org().await;
    head_counts_checked(&env, &org).await;
    let key = org.api_keys.admin.as_str();
    let topic = "sql-injection";
    let to = |assignee_type: &str, assignee_id: String| {
        json!({"contentArea": "practice", "targetType": "topic", "targetId": topic, "assigneeType": assignee_type,
               "assigneeId": assignee_id, "deadline": deadline(30)})
    };
    let dry_run = async |body: Value| {
        let reply = env.post("/assignments?dryRun=true").token(key).json(body).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        (reply.body["learnerCount"].as_u64().unwrap(), reply.body["alreadyAssignedCount"].as_u64().unwrap())
    };
    let (payments, mobile) = (&org.teams[0], &org.teams[1]);
    let in_team = |team: &seed::SeededTeam| {
        let team = team.team_id;
        org.learners().filter(move |u| u.team_id == Some(team))
    };
    let everyone = to("org", org.org_id.as_str().to_owned());
    let mobile_team = to("team", mobile.team_id.to_string());
    let (mobile_learner, payments_learner) = (in_team(mobile).next().unwrap(), in_team(payments).next().unwrap());
    let users = org.users.len() as u64;
    assert_eq!(dry_run(everyone.clone()).await, (users, 0));
    assert_eq!(dry_run(mobile_team.clone()).await, (5, 0));

    for body in [
        to("team", payments.team_id.to_string()),
        to("user", mobile_learner.user_id.to_string()),
        to("user", payments_learner.user_id.to_string()),
    ] {
        let created = env.post("/assignments").token(key).json(body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    assert_eq!(dry_run(everyone.clone()).await, (users, 6), "5 through their team, 1 on their own");
    assert_eq!(dry_run(mobile_team.clone()).await, (5, 1));
    let another_payments_learner = in_team(payments).nth(1).unwrap();
    assert_eq!(dry_run(to("user", another_payments_learner.user_id.to_string())).await, (1, 1), "through the team");
    let no_team = org.learners().find(|u| u.team_id.is_none()).unwrap();
    assert_eq!(dry_run(to("user", no_team.user_id.to_string())).await, (1, 0));
    let other_topic = json!({"contentArea": "practice", "targetType": "topic", "targetId": "xxe",
                             "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(30)});
    assert_eq!(dry_run(other_topic).await, (users, 0), "another target");

    // A learner who leaves: counted out at once.
    let leaving = in_team(mobile).nth(1).unwrap();
    env.consumer
        .handle(seed::member_event(false, &org.org_id, mobile, leaving.user_id, Utc::now()).envelope())
        .await
        .unwrap();
    assert_eq!(dry_run(mobile_team.clone()).await, (4, 1));

    // A new-starters-only assignment covers the learners on its roster: the starter who joins after it.
    let starters = json!({"contentArea": "practice", "targetType": "topic", "targetId": topic, "assigneeType": "team",
                          "assigneeId": mobile.team_id, "dueInDays": 14, "newStartersOnly": true});
    let created = env.post("/assignments").token(key).json(starters).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let starter = seed::SeededUser {
        user_id: domain::UserId(uuid::Uuid::new_v4()),
        name: "Grace Hopper".into(),
        email: "grace@acme.example".into(),
        role: Role::Learner,
        team_id: Some(mobile.team_id),
        token: String::new(),
    };
    for event in [
        seed::user_created(&org.org_id, &starter, Utc::now()),
        seed::member_event(true, &org.org_id, mobile, starter.user_id, Utc::now()),
    ] {
        env.consumer.handle(event.envelope()).await.unwrap();
    }
    assert_eq!(dry_run(everyone.clone()).await, (users + 1, 7));
    assert_eq!(dry_run(mobile_team.clone()).await, (5, 2));
    assert_eq!(dry_run(to("user", starter.user_id.to_string())).await, (1, 1));

    let created = env.post("/assignments").token(key).json(everyone.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(dry_run(mobile_team).await, (5, 5), "the org-wide assignment covers everyone");
    assert_eq!(dry_run(everyone).await, (users + 1, users + 1));
}

/// Adds `n` learners (no team) to the org, as the platform's `user.created` events would.
/// Learners `numbers` (each a new user of the org, no team) through the membership consumer.
async fn add_learners(env: &Env, org: &seed::SeededOrg, numbers: std::ops::Range<usize>) {
    let now = Utc::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in numbers {
        let (consumer, org_id) = (env.consumer.clone(), org.org_id.clone());
        tasks.spawn(async move {
            let user = seed::SeededUser {
                user_id: domain::UserId(uuid::Uuid::new_v4()),
                name: format!("Learner {i}"),
                email: format!("learner-{i}@acme.example"),
                role: Role::Learner,
                team_id: None,
                token: String::new(),
            };
            consumer.handle(seed::user_created(&org_id, &user, now).envelope()).await.unwrap();
        });
        if tasks.len() >= 16 {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// Every row of the assignment, counted from the table.
async fn rows_of(env: &Env, org: &seed::SeededOrg, id: &str) -> Vec<domain::ProgressRow> {
    let id = domain::AssignmentId::parse(id).unwrap();
    let mut rows = Vec::new();
    let mut pages = store::Pages::default();
    while let Some(start) = pages.next_start() {
        rows.extend(pages.follow(env.store.progress_page(&org.org_id, id, 500, start).await.unwrap()));
    }
    rows
}

/// Where a new roster's run starts.
fn build() -> service::roster::Position {
    service::roster::Position::start(service::roster::Mode::Build)
}

/// An org-wide assignment stored as create leaves a large roster (building, run `run`), but without
/// the worker's request: only the test's runs build it.
async fn building_org_wide(env: &Env, org: &seed::SeededOrg, run: Option<uuid::Uuid>) -> domain::Assignment {
    let mut a = testkit::fixtures::org_wide(&org.org_id, testkit::fixtures::in_days(30));
    a.is_mandatory = false;
    a.roster_status = domain::RosterStatus::Building;
    a.roster_run = run;
    let audit = testkit::fixtures::audit("assignment.created", &a.id.to_string());
    env.store.create_assignment(&org.org_id, &a, &audit, &[], &[]).await.unwrap();
    a
}

/// Waits until the roster of `id` is complete, then checks it has every active learner once and
/// counters equal to the rows; returns the number of learners.
async fn complete_with_every_learner_once(env: &Env, org: &seed::SeededOrg, id: &str) -> u64 {
    let done = complete(env, org.api_keys.admin.as_str(), id).await;
    let learners = env.store.active_users(&org.org_id).await.unwrap().len() as u64;
    let rows = rows_of(env, org, id).await;
    let mut users: Vec<_> = rows.iter().map(|r| r.user_id).collect();
    users.sort();
    users.dedup();
    assert_eq!((rows.len() as u64, users.len() as u64), (learners, learners), "every learner once");
    assert_eq!(done["progress"]["totalUsers"].as_u64(), Some(learners), "counters equal the rows");
    learners
}

/// The assignment once its roster is complete.
async fn complete(env: &Env, key: &str, id: &str) -> Value {
    eventually("the roster worker", || async {
        let detail = env.get(&format!("/assignments/{id}?limit=1")).token(key).await;
        (detail.body["rosterStatus"] == "complete").then_some(detail.body)
    })
    .await
}

/// An org-wide assignment over 1,000 learners: 201 at once with the first page of rows
/// (`rosterStatus: building`); the roster worker writes the rest off the request path, the counters
/// moving with the rows, until it is complete with every learner once.
#[tokio::test]
async fn an_org_wide_assignment_over_a_thousand_learners_is_built_off_the_request_path() {
    let (env, org) = Env::with_org().await;
    add_learners(&env, &org, 0..1_000).await;
    let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "xxe", "assigneeType": "org",
                      "assigneeId": org.org_id.as_str(), "deadline": deadline(30)});
    let key = org.api_keys.admin.as_str();
    let preview = env.post("/assignments?dryRun=true").token(key).json(body.clone()).await;
    let learners = preview.body["learnerCount"].as_u64().unwrap();
    assert!(learners > 1_000, "{learners}");
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["rosterStatus"], "building");
    let first = created.body["progress"]["totalUsers"].as_u64().unwrap();
    assert!(first > 0 && first <= store::ROSTER_ROWS_PER_TRANSACTION as u64, "{first}");

    let id = created.body["id"].as_str().unwrap();
    assert_eq!(complete_with_every_learner_once(&env, &org, id).await, learners, "the learners the preview counted");
}

/// A worker run that stops after one page (as if killed once it had committed its next request) and a
/// retried delivery of the first request running at the same time: the roster ends complete, each
/// learner once, the counters equal to the rows.
#[tokio::test]
async fn a_roster_run_stopped_midway_and_a_retried_one_leave_no_duplicate_and_no_gap() {
    let (env, org) = Env::with_org().await;
    add_learners(&env, &org, 0..400).await;
    let key = org.api_keys.admin.as_str();
    let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "idor", "assigneeType": "org",
                      "assigneeId": org.org_id.as_str(), "deadline": deadline(30), "isMandatory": false});
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.body["rosterStatus"], "building");
    let id = created.body["id"].as_str().unwrap();

    let ctx = env.consumer.ctx();
    let assignment = domain::AssignmentId::parse(id).unwrap();
    let (one_page, from_start) = tokio::join!(
        service::roster::build(&ctx, &org.org_id, assignment, build(), 1, None),
        service::roster::build(&ctx, &org.org_id, assignment, build(), service::roster::PAGES_PER_RUN, None),
    );
    // Both end without error. Either may finish the roster, or neither: create's request and the
    // stopped run's hand-over reach the roster worker through the local bus, and such a run may finish
    // first (a retried run then finds the roster complete and stops; a CI run saw exactly that). What
    // must hold whatever the order is checked below.
    one_page.unwrap();
    from_start.unwrap();

    complete_with_every_learner_once(&env, &org, id).await;
}

/// A learner who completes an item before the roster worker reaches them (their completion is only
/// logged: they have no row yet) keeps it: the worker's new row catches up from their log.
#[tokio::test]
async fn a_completion_made_while_the_roster_is_building_counts_on_the_row_the_worker_writes() {
    let (env, org) = Env::with_org().await;
    add_learners(&env, &org, 0..150).await;
    // As create leaves a large roster, but without the worker's request: only this test's run builds it.
    let a = building_org_wide(&env, &org, None).await;
    let learner = env.store.active_users(&org.org_id).await.unwrap().pop().unwrap().user_id;
    let done = domain::Completion {
        item: domain::TrackedItem::parse_key("c:sql-injection:0").unwrap(),
        score: Some(80.0),
        at: Utc::now(),
    };
    let applied = env.consumer.ctx();
    let rows = service::progress::apply_completion(&applied, &org.org_id, learner, &done).await.unwrap();
    assert_eq!(rows.rows, 0, "no row yet: the completion is only logged");

    let ctx = env.consumer.ctx();
    let run =
        service::roster::build(&ctx, &org.org_id, a.id, build(), service::roster::PAGES_PER_RUN, None).await.unwrap();
    assert!(run.complete, "{run:?}");
    let row = env.store.progress_row(&org.org_id, a.id, learner).await.unwrap().expect("a row");
    assert!(row.completed.contains_key("c:sql-injection:0"), "{:?}", row.completed);
    let stored = env.store.get_assignment(&org.org_id, a.id).await.unwrap().unwrap();
    assert_eq!(stored.aggregates.in_progress_users, 1);
    assert_eq!(stored.roster_status, domain::RosterStatus::Complete);
}

/// Only the run that may go on builds: a duplicated request whose twin already handed over stops at
/// once, so duplicates do not build the rest twice.
#[tokio::test]
async fn a_duplicated_roster_request_stops_once_its_twin_has_handed_over() {
    let (env, org) = Env::with_org().await;
    add_learners(&env, &org, 0..250).await;
    let first = uuid::Uuid::now_v7();
    let a = building_org_wide(&env, &org, Some(first)).await;
    let ctx = env.consumer.ctx();
    let run = |run| service::roster::build(&ctx, &org.org_id, a.id, build(), 1, Some(run));

    let stranger = run(uuid::Uuid::now_v7()).await.unwrap();
    assert_eq!((stranger.rows, stranger.complete), (0, false), "not the run that may go on");
    let handed = run(first).await.unwrap();
    assert!(handed.rows > 0 && !handed.complete, "{handed:?}");
    let twin = run(first).await.unwrap();
    assert_eq!((twin.rows, twin.complete), (0, false), "its twin handed over: it stops");
    // The run it handed over to (requested through the outbox) finishes the roster.
    complete_with_every_learner_once(&env, &org, &a.id.to_string()).await;
}

/// A large roster reactivated: the PATCH answers at once with `rosterStatus: building`; a roster run
/// (a share in the request, the rest by the worker) adds the learners who joined while it was inactive
/// and brings in the completions logged meanwhile, until it is complete with every learner once.
#[tokio::test]
async fn a_reactivated_roster_catches_up_with_joins_and_completions_off_the_request_path() {
    let (env, org) = Env::with_org().await;
    add_learners(&env, &org, 0..150).await;
    let key = org.api_keys.admin.as_str();
    let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
                      "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(30),
                      "isMandatory": false});
    let created = env.post("/assignments").token(key).json(body).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let before = complete(&env, key, &id).await["progress"]["totalUsers"].as_u64().unwrap();
    let path = format!("/assignments/{id}");
    assert_eq!(env.delete(&path).token(key).await.status, StatusCode::NO_CONTENT);

    add_learners(&env, &org, 150..350).await;
    let learner = env.store.active_users(&org.org_id).await.unwrap()[0].user_id;
    let done = domain::Completion {
        item: domain::TrackedItem::parse_key("c:sql-injection:0").unwrap(),
        score: Some(90.0),
        at: Utc::now(),
    };
    service::progress::apply_completion(&env.consumer.ctx(), &org.org_id, learner, &done).await.unwrap();
    let inactive = env.get(&format!("{path}?limit=1")).token(key).await;
    assert_eq!(inactive.body["progress"]["totalUsers"].as_u64(), Some(before), "an inactive roster gains nobody");

    let reactivated = env.patch(&path).token(key).json(json!({"isActive": true})).await;
    assert_eq!(reactivated.status, StatusCode::OK, "{:?}", reactivated.body);
    assert_eq!(reactivated.body["rosterStatus"], "building", "more than a request's share to catch up");
    let learners = complete_with_every_learner_once(&env, &org, &id).await;
    assert_eq!(learners, before + 200);
    let row = env.store.progress_row(&org.org_id, domain::AssignmentId::parse(&id).unwrap(), learner).await.unwrap();
    assert!(row.unwrap().completed.contains_key("c:sql-injection:0"), "the completion made while inactive counts");
}

/// A new recurrence on a roster larger than a request's share: the PATCH answers `building`, the roster
/// worker derives every row again (a completed learner's validity follows the new period), and the
/// roster ends complete with every learner once and counters equal to the rows.
#[tokio::test]
async fn a_recurrence_change_re_derives_a_large_roster_off_the_request_path() {
    let (env, org) = Env::with_org().await;
    add_learners(&env, &org, 0..200).await;
    let key = org.api_keys.admin.as_str();
    let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
                      "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(30),
                      "isMandatory": false, "recurrence": {"everyMonths": 12}});
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    complete(&env, key, &id).await;
    // The learner with the greatest id: the last the worker reaches.
    let learner = env.store.active_users(&org.org_id).await.unwrap().into_iter().map(|u| u.user_id).max().unwrap();
    let today = Utc::now();
    for i in 0..11u16 {
        let event = seed::challenge_completed(&org.org_id, learner, "sql-injection", i, 90.0, today);
        env.consumer.handle(event.envelope()).await.unwrap();
    }
    let assignment = domain::AssignmentId::parse(&id).unwrap();
    let valid_until =
        || async { env.store.progress_row(&org.org_id, assignment, learner).await.unwrap().unwrap().valid_until };
    assert_eq!(valid_until().await, today.date_naive().checked_add_months(chrono::Months::new(12)));

    let path = format!("/assignments/{id}");
    let patched = env.patch(&path).token(key).json(json!({"recurrence": {"everyMonths": 1, "windowDays": 7}})).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["rosterStatus"], "building", "more rows than a request's share");
    complete_with_every_learner_once(&env, &org, &id).await;
    assert_eq!(valid_until().await, today.date_naive().checked_add_months(chrono::Months::new(1)));
}

/// A building roster whose run stopped (its request never arrived: here, none was committed) is started
/// again by the reconcile job once the run is over twelve hours old (`STOPPED_AFTER`), and finishes.
#[tokio::test]
async fn the_reconcile_job_starts_a_stopped_roster_run_again() {
    let (env, org) = Env::with_org().await;
    add_learners(&env, &org, 0..250).await;
    let long_ago = Utc::now() - service::roster::STOPPED_AFTER - chrono::Duration::hours(1);
    let stopped = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, long_ago.timestamp() as u64, 0));
    let a = building_org_wide(&env, &org, Some(stopped)).await;

    let report = env.run_reconcile(&org.org_id).await;
    assert!(report["count"].as_u64().unwrap() > 0, "rows written by the job's share: {report}");
    complete_with_every_learner_once(&env, &org, &a.id.to_string()).await;
}

/// An individual assignment reactivated: its learner's completion made while it was inactive counts
/// when the PATCH answers (one member: the request's share is the whole run), and nothing is left
/// building.
#[tokio::test]
async fn a_reactivated_individual_assignment_is_in_line_when_the_patch_answers() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let learner = org.learners().next().unwrap();
    let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
                      "assigneeType": "user", "assigneeId": learner.user_id.to_string(), "deadline": deadline(30)});
    let created = env.post("/assignments").token(key).json(body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let path = path_of(&created);
    assert_eq!(env.delete(&path).token(key).await.status, StatusCode::NO_CONTENT);
    let done = domain::Completion {
        item: domain::TrackedItem::parse_key("c:sql-injection:0").unwrap(),
        score: Some(75.0),
        at: Utc::now(),
    };
    service::progress::apply_completion(&env.consumer.ctx(), &org.org_id, learner.user_id, &done).await.unwrap();

    let reactivated = env.patch(&path).token(key).json(json!({"isActive": true})).await;
    assert_eq!(reactivated.status, StatusCode::OK, "{:?}", reactivated.body);
    assert_eq!(reactivated.body["rosterStatus"], "complete");
    assert_eq!(reactivated.body["progress"]["inProgressUsers"], 1, "{:?}", reactivated.body["progress"]);
}
