//! Roster scale benchmark (issue 14). Not a test: it reports what one run measured.
//!
//! `scale-bench [learners…]` (default 10,000 and 100,000) seeds an org with that many active learners
//! (the user projection, written through the store), then, through the local gateway's release
//! handlers as a client would: the dry run's preview (waiting past API Gateway's 30 s to time it;
//! before and after the reconcile job has checked the org's head count against its index),
//! the org-wide create (time to its 201, and the rows it wrote itself), and the time until
//! `GET /assignments/{id}` says `rosterStatus: complete` —
//! the roster worker's runs chained through the outbox, the table's stream and the bus, as deployed.
//! Then it counts the rows in the table (each learner once: nothing missing, nothing twice) and
//! prints rows per second. Run it with the local stack's environment (infra/bench/README.md).
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::time::{Duration, Instant};

use chrono::Utc;
use domain::UserId;
use futures::StreamExt;
use serde_json::json;
use testkit::e2e::Env;

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.replace(['_', ','], "").parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![10_000, 100_000] } else { sizes };
    println!(
        "| learners | seeded in | dry run, count unchecked | dry run from the count | create → 201 | rows in the 201 | 201 → complete | rows/s (create → complete) | rows = learners, each once |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for learners in sizes {
        measure(learners).await;
    }
}

async fn measure(extra: usize) {
    let (env, org) = Env::with_org().await;
    let seeding = Instant::now();
    seed(&env, &org.org_id, extra).await;
    let seeded = seeding.elapsed();
    let key = org.api_keys.admin.as_str();
    let body = json!({"contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
                      "assigneeType": "org", "assigneeId": org.org_id.as_str(), "deadline": deadline(),
                      "isMandatory": false});

    // The dry run through a client that waits longer than API Gateway's 30 s, to say how long it takes:
    // first while the org's head count has never been checked against its index (it counts the index
    // if that is small enough, as right after counts were introduced), then once the reconcile job has
    // checked it.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(600)).build().expect("an HTTP client");
    let dry_run = async || {
        let previewing = Instant::now();
        let preview = client
            .post(format!("{}/assignments?dryRun=true", env.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("the dry run's answer");
        let status = preview.status().as_u16();
        let preview: serde_json::Value = preview.json().await.expect("the dry run's JSON");
        let learners = preview["learnerCount"].as_u64();
        let answer = match learners {
            Some(_) => format!("{:.3} s", previewing.elapsed().as_secs_f64()),
            None => format!(
                "{status} `{}` in {:.3} s",
                preview["error"].as_str().unwrap_or("?"),
                previewing.elapsed().as_secs_f64()
            ),
        };
        (answer, learners)
    };
    let (first_dry_run, first_count) = dry_run().await;
    // A recount sets a count only once its last move is a minute old (the index has caught up).
    tokio::time::sleep(Duration::from_secs(61)).await;
    env.run_reconcile(&org.org_id).await;
    let (counted_dry_run, learners) = dry_run().await;
    let learners = learners.expect("the dry run from the established count answers");
    assert!(first_count.is_none_or(|first| first == learners), "both dry runs count the same learners");

    let creating = Instant::now();
    let created = env.post("/assignments").token(key).json(body).await;
    let answered = creating.elapsed();
    assert_eq!(created.status.as_u16(), 201, "{:?}", created.body);
    let first_rows = created.body["progress"]["totalUsers"].as_u64().unwrap_or_default();
    let id = created.body["id"].as_str().expect("the assignment's id").to_owned();
    loop {
        let detail = env.get(&format!("/assignments/{id}?limit=1")).token(key).await;
        assert_eq!(detail.status.as_u16(), 200, "{:?}", detail.body);
        if detail.body["rosterStatus"] == "complete" {
            assert_eq!(detail.body["progress"]["totalUsers"].as_u64(), Some(learners), "the counters");
            break;
        }
        assert!(creating.elapsed() < Duration::from_secs(3_600), "no complete roster within an hour");
        // Within the key's rate limits (60 a minute, 1,000 an hour) for a build of several minutes.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    let complete = creating.elapsed();

    let id = domain::AssignmentId::parse(&id).expect("a UUID");
    let mut users = Vec::new();
    let mut pages = store::Pages::default();
    while let Some(start) = pages.next_start() {
        let page = env.store.progress_page(&org.org_id, id, 1_000, start).await.expect("a page of rows");
        users.extend(pages.follow(page).into_iter().map(|row| row.user_id));
    }
    let rows = users.len();
    users.sort();
    users.dedup();
    let whole = rows as u64 == learners && users.len() == rows;
    println!(
        "| {learners} | {:.1} s | {first_dry_run} | {counted_dry_run} | {:.3} s | {first_rows} | {:.1} s | {:.0} | {} ({rows} rows, {} learners) |",
        seeded.as_secs_f64(),
        answered.as_secs_f64(),
        (complete - answered).as_secs_f64(),
        rows as f64 / complete.as_secs_f64(),
        if whole { "yes" } else { "NO" },
        users.len()
    );
}

/// `n` more active learners in the org's user projection (32 writes at a time).
async fn seed(env: &Env, org: &domain::OrgId, n: usize) {
    let now = Utc::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let (store, org) = (env.store.clone(), org.clone());
            async move {
                let user = bench::learner(UserId(uuid::Uuid::new_v4()), i, None, now);
                store.put_user(&org, &user, chrono::Utc::now()).await.expect("a learner written");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

fn deadline() -> String {
    (Utc::now().date_naive() + chrono::Days::new(30)).to_string()
}
