//! The scheduled jobs' per-org runs, end to end: each org's run its own message on the job queue, an
//! unreadable item skipped rather than stopping anyone, a large org's run split into parts by its budget
//! while the small orgs' runs go ahead. Its own test binary (so its own process): the parts' budget is
//! the process's event delivery's, here a second and a half instead of the template's four minutes.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use domain::AssigneeType;
use gateway::queue::{Deliveries, Delivery};
use gateway::seed::SeededOrg;
use serde_json::{Value, json};
use testkit::e2e::Env;

const BUDGET: Duration = Duration::from_millis(1500);

async fn env() -> Env {
    Env::start_with(|template| template.job_budget = BUDGET).await
}

/// The events of `queue` until there are `n` (or five minutes passed) and it is quiet.
async fn collect(env: &Env, queue: &str, n: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let waiting = Instant::now();
    while events.len() < n && waiting.elapsed() < Duration::from_secs(300) {
        events.extend(env.drain(queue).await);
    }
    events
}

fn learners(events: &[Value]) -> BTreeSet<String> {
    events.iter().map(|e| e["detail"]["userId"].as_str().unwrap().to_owned()).collect()
}

/// The notices among `events`: delivery is at least once, so an event may come twice, by its stable id
/// (`detail.eventId`); a notice is one id.
fn notices(events: &[Value]) -> Vec<&Value> {
    let mut seen = BTreeSet::new();
    events.iter().filter(|e| seen.insert(e["detail"]["eventId"].as_str().unwrap().to_owned())).collect()
}

/// The job queue's deliveries of `job` runs of `org`.
fn runs_of(org: &SeededOrg, job: &str) -> Vec<Delivery> {
    Deliveries::shared().matching(|body| body["orgId"] == json!(org.org_id) && body["job"] == job)
}

/// One org's deadline index holds an item that does not parse (as a bad write or a manual edit would
/// leave): the daily job, dispatched for that org first and two others after it, still sends every
/// org's `due_soon` (the broken org's own readable assignment's too); the broken org's run reports the
/// item once, by its key, and goes on. Reconcile does the same with it.
#[tokio::test]
async fn an_unreadable_item_in_one_orgs_deadline_index_stops_no_org_and_is_counted_once_per_run() {
    let env = env().await;
    let (broken, broken_due) = env.org_owed_reminders("jobs").await;
    let others = [env.org_owed_reminders("jobs").await, env.org_owed_reminders("jobs").await];
    let today = Utc::now().date_naive();
    let corrupt_id = uuid::Uuid::new_v4();
    testkit::stack::raw_client()
        .await
        .put_item()
        .table_name(env.store.table_name())
        .item("PK", AttributeValue::S(format!("ORG#{}#ASG#{corrupt_id}", broken.org_id)))
        .item("SK", AttributeValue::S("A".into()))
        .item("GSI3PK", AttributeValue::S(store::keys::due_index(&broken.org_id)))
        .item("GSI3SK", AttributeValue::S(format!("{today}#{corrupt_id}")))
        .item("entity", AttributeValue::S("assignment".into()))
        .item("isActive", AttributeValue::S("not a boolean".into()))
        .send()
        .await
        .unwrap();

    let only: Vec<_> = std::iter::once(&broken).chain(others.iter().map(|(org, _)| org)).map(|o| &o.org_id).collect();
    let dispatched = env.invoke("RemindersFunction", json!({"orgIds": only})).await;
    assert_eq!(dispatched["dispatched"], 3, "{dispatched}");
    for (org, due) in std::iter::once((&broken, &broken_due)).chain(others.iter().map(|(org, due)| (org, due))) {
        let events = collect(&env, due, 5).await;
        assert_eq!((notices(&events).len(), learners(&events).len()), (5, 5), "{}: {events:?}", org.org_id);
    }
    let broken_runs = runs_of(&broken, "reminders");
    assert_eq!(broken_runs.len(), 1, "{broken_runs:?}");
    assert!(broken_runs[0].succeeded && broken_runs[0].times == 1, "the run went on past the item: {broken_runs:?}");

    // A run of its own reports it: counted once, nothing else owed.
    let report = env.run_daily_job(&broken.org_id, today).await;
    assert_eq!((report["corrupt"].clone(), report["count"].clone()), (json!(1), json!(0)), "{report}");
    // Reconcile, dispatched the same way, runs every org to its end past the item too.
    let dispatched = env.invoke("ReconcileFunction", json!({"orgIds": only})).await;
    assert_eq!(dispatched["dispatched"], 3, "{dispatched}");
    for org in std::iter::once(&broken).chain(others.iter().map(|(org, _)| org)) {
        let run = testkit::e2e::eventually("the org's reconcile run", || async {
            runs_of(org, "reconcile").into_iter().find(|run| run.succeeded)
        })
        .await;
        assert_eq!(run.times, 1, "{}: {run:?}", org.org_id);
    }
    let report = env.run_reconcile(&broken.org_id).await;
    assert_eq!(report["corrupt"], 1, "{report}");
}

/// A large org owes 2,000 reminders on the day and is first in line; five small orgs come after it.
/// Its run stops at each budget and puts its continuation at the back of the queue: every small org's
/// run has finished (its notices committed with their events) before the large org's last part begins,
/// and every learner of every org gets exactly one notice.
#[tokio::test]
async fn a_large_org_first_in_line_does_not_hold_back_the_small_orgs_and_every_learner_gets_one_notice() {
    let env = env().await;
    let large = env.org().await;
    let today = Utc::now().date_naive();
    let a = testkit::fixtures::org_wide(&large.org_id, today + chrono::Duration::days(7));
    let rows = testkit::fixtures::roster(&a, 2_000);
    let audit = testkit::fixtures::audit("assignment.created", &a.id.to_string());
    env.store.create_assignment(&large.org_id, &a, &audit, &rows, &[]).await.unwrap();
    let large_due = env.subscribe(&large, "assignment.due_soon").await;
    let mut small = Vec::new();
    for _ in 0..5 {
        small.push(env.org_owed_reminders("jobs").await);
    }

    let only: Vec<_> = std::iter::once(&large.org_id).chain(small.iter().map(|(org, _)| &org.org_id)).collect();
    let dispatched = env.invoke("RemindersFunction", json!({"orgIds": only, "date": today})).await;
    assert_eq!(dispatched["dispatched"], 6, "{dispatched}");

    // Read as they come, so the queue never holds thousands (moto's queues slow down as they grow).
    let large_events = {
        let (sqs, queue) = (env.sqs.clone(), large_due.clone());
        tokio::spawn(async move { testkit::e2e::drain_until(&sqs, &queue, 2_000, Duration::from_secs(300)).await })
    };
    for (org, due) in &small {
        let events = collect(&env, due, 5).await;
        assert_eq!((notices(&events).len(), learners(&events).len()), (5, 5), "{}: {events:?}", org.org_id);
    }
    let events = large_events.await.unwrap();
    let (notices, learners) = (notices(&events), learners(&events));
    assert_eq!((notices.len(), learners.len()), (2_000, 2_000), "each of the large org's learners one notice");

    let parts = runs_of(&large, "reminders");
    assert!(parts.len() >= 3, "the first part and at least two continuations: {}", parts.len());
    assert!(parts.iter().all(|p| p.succeeded && p.times == 1), "{parts:?}");
    let last = parts.iter().max_by_key(|p| p.body["part"].as_u64()).unwrap();
    for (org, _) in &small {
        let runs = runs_of(org, "reminders");
        assert_eq!(runs.len(), 1, "{}: one part", org.org_id);
        assert!(runs[0].done_at < last.first_at, "{} finished before the large org's last part began", org.org_id);
    }
}

/// Reconcile, likewise: a large org whose 60 org-wide assignments all miss their rows (as lost
/// membership events would leave them) is first in line, five small orgs with one such assignment each
/// after it. The large org's run repairs an assignment at a time and stops at each budget: every small
/// org's run has finished before the large org's last part begins, and every roster ends whole — each
/// active user one row, counted once.
#[tokio::test]
async fn a_large_org_with_rosters_to_repair_first_in_line_does_not_hold_back_the_small_orgs() {
    let env = env().await;
    let deadline = Utc::now().date_naive() + chrono::Duration::days(30);
    // Org-wide assignments written without their rows.
    let broken_rosters = |org: &SeededOrg, n: usize| {
        let store = env.store.clone();
        let org_id = org.org_id.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..n {
                let a =
                    testkit::fixtures::assignment(AssigneeType::Org, org_id.as_str(), &format!("topic-{i}"), deadline);
                let audit = testkit::fixtures::audit("assignment.created", &a.id.to_string());
                store.create_assignment(&org_id, &a, &audit, &[], &[]).await.unwrap();
                ids.push(a.id);
            }
            ids
        }
    };
    let large = env.org_with_prefix("jobs").await;
    let large_assignments = broken_rosters(&large, 60).await;
    let mut small = Vec::new();
    for _ in 0..5 {
        let org = env.org_with_prefix("jobs").await;
        let ids = broken_rosters(&org, 1).await;
        small.push((org, ids));
    }

    let only: Vec<_> = std::iter::once(&large.org_id).chain(small.iter().map(|(org, _)| &org.org_id)).collect();
    let dispatched = env.invoke("ReconcileFunction", json!({"orgIds": only})).await;
    assert_eq!(dispatched["dispatched"], 6, "{dispatched}");
    // The large org's last assignment (the deadline index's last) repaired, then its run quiet: no
    // part running or to come. (Read from the table: the API's rate limit is not what this is about.)
    let counted = |org: &SeededOrg, id: domain::AssignmentId| {
        let (store, org) = (env.store.clone(), org.org_id.clone());
        async move { store.get_assignment(&org, id).await.unwrap().unwrap().aggregates.total_users }
    };
    let last_assignment = *large_assignments.last().unwrap();
    tokio::time::timeout(Duration::from_secs(300), async {
        while counted(&large, last_assignment).await != large.users.len() as i64 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("the large org's rosters repaired");
    let mut parts = runs_of(&large, "reconcile");
    let mut quiet = 0;
    while quiet < 6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = runs_of(&large, "reconcile");
        let settled = now.len() == parts.len() && now.iter().all(|p| p.succeeded);
        quiet = if settled { quiet + 1 } else { 0 };
        parts = now;
    }
    assert!(parts.len() >= 3, "the first part and at least two continuations: {}", parts.len());
    let last = parts.iter().max_by_key(|p| p.body["part"].as_u64()).unwrap();
    for (org, _) in &small {
        // A small org's run may need a second part on a busy machine; all of it comes first.
        let runs = runs_of(org, "reconcile");
        assert!(!runs.is_empty() && runs.iter().all(|r| r.succeeded), "{}: {runs:?}", org.org_id);
        let finished = runs.iter().map(|r| r.done_at).max().unwrap();
        assert!(finished < last.first_at, "{} finished before the large org's last part began", org.org_id);
    }
    for (org, ids) in std::iter::once((&large, &large_assignments)).chain(small.iter().map(|(o, i)| (o, i))) {
        for id in ids {
            assert_eq!(counted(org, *id).await, org.users.len() as i64, "{}: {id}", org.org_id);
            let rows = env.store.progress_page(&org.org_id, *id, 100, None).await.unwrap().items;
            assert_eq!(rows.len(), org.users.len(), "{}: {id}: one row per active user", org.org_id);
        }
    }
}

/// The schedules walk the org registry (every org with assignments), here narrowed to the orgs whose id
/// starts with this test's own prefix (so that no other test's org runs): each of them gets its run,
/// of the daily job and of reconcile.
#[tokio::test]
async fn a_schedule_dispatches_every_org_of_the_registry() {
    let env = env().await;
    let prefix = format!("walk{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let orgs = [env.org_owed_reminders(&prefix).await, env.org_owed_reminders(&prefix).await];
    // As the scheduler fires them, but for this test's orgs only.
    let daily = env.invoke("RemindersFunction", json!({"orgIdPrefix": format!("{prefix}-")})).await;
    assert_eq!(daily["dispatched"], 2, "{daily}");
    for (org, due) in &orgs {
        let events = collect(&env, due, 5).await;
        assert_eq!((notices(&events).len(), learners(&events).len()), (5, 5), "{}: {events:?}", org.org_id);
    }
    let hourly = env.invoke("ReconcileFunction", json!({"orgIdPrefix": format!("{prefix}-")})).await;
    assert_eq!(hourly["dispatched"], 2, "{hourly}");
    for (org, _) in &orgs {
        testkit::e2e::eventually("the org's reconcile run", || async {
            runs_of(org, "reconcile").into_iter().find(|run| run.succeeded)
        })
        .await;
    }
    let refused = env.invoke("RemindersFunction", json!({"orgIdPrefix": "not an org id"})).await;
    assert!(refused["dropped"].is_string(), "{refused}");
}
