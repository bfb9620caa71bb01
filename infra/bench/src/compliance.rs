//! Compliance capacity benchmark (issue: "report the consumed capacity of each route for an org of
//! 1,000 learners and 50 assignments and for 10× that"). Not a test: it reports what one run measured.
//!
//! `compliance-bench` seeds two orgs on the local stack through the store's own transactions (learners
//! in 10 teams, 50 mandatory org-wide assignments: 50,000 and 500,000 progress rows with their
//! learners' compliance), then measures with `ReturnConsumedCapacity` what each compliance read costs
//! (the summary, a page of the learners listing, its non-compliant filter, the compliance export's
//! table reads) and what keeping compliance costs a write (one completion, one learner's extension).
//! Auth (one GetItem) and the rate counter (one UpdateItem) are the same for every route and left out.
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::time::Instant;

use chrono::{Duration, Utc};
use domain::{OrgId, ProgressRow, Source, TeamId, TrackedItem, UserId};
use store::{Capacity, LearnerFilter, Store};

const ASSIGNMENTS: usize = 50;

/// Read units, write units and requests one measured piece of work consumed.
type Cost = (f64, f64, u64);
const TEAMS: usize = 10;

/// An org with `learners` users in [`TEAMS`] teams and [`ASSIGNMENTS`] mandatory org-wide assignments
/// (deadlines in 1..50 days).
async fn seed(store: &Store, learners: usize) -> (OrgId, Vec<UserId>, Vec<domain::Assignment>) {
    let org = bench::new_org();
    let now = Utc::now();
    let teams: Vec<TeamId> = (0..TEAMS).map(|_| TeamId(uuid::Uuid::now_v7())).collect();
    let users: Vec<UserId> = (0..learners).map(|_| UserId(uuid::Uuid::now_v7())).collect();
    for chunk in users.chunks(50) {
        futures::future::try_join_all(chunk.iter().enumerate().map(|(i, id)| {
            let user = bench::learner(*id, i, Some(teams[i % TEAMS]), now);
            let (store, org) = (store.clone(), org.clone());
            async move {
                store.put_user(&org, &user, chrono::Utc::now()).await?;
                store.place_learner(&org, user.user_id, now, &store::announce_nothing).await
            }
        }))
        .await
        .unwrap();
    }
    let mut assignments = Vec::new();
    for n in 0..ASSIGNMENTS {
        let a = bench::org_wide(&org, n, format!("topic-{n}"), (now + Duration::days(1 + n as i64)).date_naive(), None);
        let rows: Vec<_> = users.iter().map(|u| ProgressRow::new(a.id, *u, Source::Organization, now)).collect();
        assignments.push(store.create_assignment(&org, &a, &bench::created(&a), &rows, &[]).await.unwrap());
    }
    (org, users, assignments)
}

/// Runs `work` and returns the read and write capacity units and requests it consumed.
async fn measured<F: std::future::Future<Output = ()>>(capacity: &Capacity, work: F) -> Cost {
    capacity.reset();
    work.await;
    (capacity.reads(), capacity.writes(), capacity.requests())
}

#[tokio::main]
async fn main() {
    let capacity = Capacity::default();
    let store = bench::store().await.with_capacity_tracking(capacity.clone());
    let mut table: Vec<(String, Vec<Cost>)> = Vec::new();
    let mut record = |name: &str, cost: Cost| match table.iter_mut().find(|(n, _)| n == name) {
        Some((_, costs)) => costs.push(cost),
        None => table.push((name.to_owned(), vec![cost])),
    };
    for learners in [1_000, 10_000] {
        let started = Instant::now();
        let (org, users, assignments) = seed(&store, learners).await;
        eprintln!(
            "seeded {learners} learners × {ASSIGNMENTS} assignments ({} rows) in {:.0} s",
            learners * ASSIGNMENTS,
            started.elapsed().as_secs_f64()
        );
        let now = Utc::now();
        let later = now + Duration::days(30);
        let summary = measured(&capacity, async {
            let (rollup, _) = store.org_rollup(&org).await.unwrap();
            let teams = store.team_rollups_page(&org, 200, None).await.unwrap();
            let ids: Vec<TeamId> = teams.items.iter().map(|(t, _)| *t).collect();
            store.get_teams(&org, &ids).await.unwrap();
            assert_eq!(rollup.figures(later.date_naive()).learners, learners as u64);
        })
        .await;
        record("GET /compliance (org rollup GetItem + a page of team rollups + their names)", summary);
        let page = measured(&capacity, async {
            let page = store.compliance_learners_page(&org, &LearnerFilter::default(), 50, None).await.unwrap();
            let ids: Vec<_> = page.items.iter().map(|l| l.user_id).collect();
            store.get_users(&org, &ids).await.unwrap();
        })
        .await;
        record("GET /compliance/learners?limit=50 (+ users BatchGetItem)", page);
        let filtered = measured(&capacity, async {
            let filter = LearnerFilter { team: None, compliant_on: Some((false, later.date_naive())) };
            store.compliance_learners_page(&org, &filter, 50, None).await.unwrap();
        })
        .await;
        record("GET /compliance/learners?compliant=false (as of +30 days, listing reads only)", filtered);
        let export = measured(&capacity, async {
            let mut pages = store::Pages::default();
            let mut rows = 0;
            for a in &assignments {
                while let Some(start) = pages.next_start() {
                    let page = pages.follow(store.progress_page(&org, a.id, 500, start).await.unwrap());
                    let ids: Vec<_> = page.iter().map(|r| r.user_id).collect();
                    store.get_users(&org, &ids).await.unwrap();
                    rows += page.len();
                }
                pages = store::Pages::default();
            }
            assert_eq!(rows, learners * ASSIGNMENTS);
        })
        .await;
        record("compliance export (every row + users, table reads only)", export);
        let item = TrackedItem::parse_key("c:sql-injection:0").unwrap();
        let completion = measured(&capacity, async {
            store
                .record_completion(
                    &org,
                    &assignments[0],
                    users[0],
                    &item,
                    Some(80.0),
                    now,
                    chrono::Utc::now().date_naive(),
                )
                .await
                .unwrap();
        })
        .await;
        record("one completion on a mandatory assignment (row + counters + learner + rollups)", completion);
        let row = store.progress_row(&org, assignments[1].id, users[1]).await.unwrap().unwrap();
        let mut extended = row.clone();
        extended.extended_to = Some((now + Duration::days(90)).date_naive());
        let extension = measured(&capacity, async {
            store
                .apply_progress(
                    &org,
                    &assignments[1],
                    &row,
                    &extended,
                    chrono::Utc::now().date_naive(),
                    &store::announce_nothing,
                )
                .await
                .unwrap();
        })
        .await;
        record("one learner's extension (moves their standing: + team and org rollups)", extension);
    }
    println!(
        "| route | 1,000 learners × 50: RCU / WCU / requests | 10,000 × 50: RCU / WCU / requests | ratio (RCU+WCU) |"
    );
    println!("|---|---|---|---|");
    for (name, costs) in &table {
        let cell = |(r, w, q): Cost| format!("{r:.1} / {w:.1} / {q}");
        let ratio = (costs[1].0 + costs[1].1) / (costs[0].0 + costs[0].1).max(0.01);
        println!("| {name} | {} | {} | ×{ratio:.2} |", cell(costs[0]), cell(costs[1]));
    }
}
