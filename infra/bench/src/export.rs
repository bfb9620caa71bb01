//! Export benchmark (design §9: "an export of 100,000 progress rows completes without loss; memory
//! stays under 64 MiB whatever the size"). Not a test: it reports numbers measured in one run.
//!
//! `export-bench [assignments…]` seeds an org per size on the local stack (1,000 users × that many
//! org-wide assignments: by default 10 and 100, so 10,000 and 100,000 progress rows; `1000` gives
//! 1,000,000), then exports each `progress` pack in a fresh child process and prints rows, bytes,
//! parts, rows/second and the child's peak resident memory (VmHWM), each size against the first. The
//! child runs with the export worker's plain environment variables from `template.yaml` (its
//! allocator setting). Run it with the local stack's environment (infra/bench/README.md).
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::time::Instant;

use chrono::Utc;
use domain::{OrgId, ProgressRow, Source, UserId};
use futures::{StreamExt, TryStreamExt};
use store::Store;

const USERS: usize = 1_000;
/// Assignments seeded concurrently.
const SEEDED_AT_ONCE: usize = 8;

/// An org with `USERS` users and `assignments` org-wide assignments (so `assignments × USERS` rows).
async fn seed(store: &Store, assignments: usize) -> OrgId {
    let org = bench::new_org();
    let now = Utc::now();
    let users: Vec<UserId> = (0..USERS).map(|_| UserId(uuid::Uuid::new_v4())).collect();
    for chunk in users.chunks(50) {
        futures::future::try_join_all(chunk.iter().enumerate().map(|(i, id)| {
            let user = bench::learner(*id, i, None, now);
            let (store, org) = (store.clone(), org.clone());
            async move { store.put_user(&org, &user, chrono::Utc::now()).await }
        }))
        .await
        .unwrap();
    }
    let topics = ["sql-injection", "path-traversal", "idor", "cors-misconfiguration"];
    // Several assignments at once: one at a time, a million rows took ~47 minutes to seed.
    futures::stream::iter(0..assignments)
        .map(|n| {
            let (store, org, users) = (store.clone(), org.clone(), &users);
            async move {
                let target = format!("{}-{n}", topics[n % topics.len()]);
                let deadline = (now + chrono::Duration::days(30)).date_naive();
                let mut a = bench::org_wide(&org, n, target, deadline, Some(format!("=cmd|' /C calc'!A{n}")));
                // Not mandatory: the rows of a mandatory one come with their learners' compliance
                // items, which concurrent assignments of the same learners would contend for.
                a.is_mandatory = false;
                let rows: Vec<_> =
                    users.iter().map(|u| ProgressRow::new(a.id, *u, Source::Organization, now)).collect();
                store.create_assignment(&org, &a, &bench::created(&a), &rows, &[]).await
            }
        })
        .buffer_unordered(SEEDED_AT_ONCE)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    org
}

async fn export(org: &str) {
    let store = bench::store().await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let bucket = exports::Bucket::from_env(&config).unwrap();
    let org = OrgId::parse(org).unwrap();
    let now = Utc::now();
    let key = exports::object_key(&org, now, uuid::Uuid::now_v7(), exports::ExportKind::Progress);
    let started = Instant::now();
    let done = exports::export(&store, &bucket.client, &bucket.name, &org, exports::ExportKind::Progress, &key, now)
        .await
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"rows\": {}, \"bytes\": {}, \"parts\": {}, \"seconds\": {seconds:.2}, \"rowsPerSecond\": {:.0}, \"peakRssKiB\": {}}}",
        done.rows,
        done.bytes,
        done.parts,
        done.rows as f64 / seconds,
        bench::peak_rss_kib()
    );
}

/// The export worker's environment variables that the template sets to plain values (the process
/// settings it is deployed with, such as the allocator's), for the exporting child.
fn deployed_environment() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("template.yaml parses");
    let variables = &template["Resources"]["ExportWorkerFunction"]["Properties"]["Environment"]["Variables"];
    let variables = variables.as_mapping().expect("the export worker's environment");
    // Plain strings only: `!Ref …` values (tagged) are the deployment's resources, not settings.
    variables
        .iter()
        .filter_map(|(k, v)| match v {
            serde_yaml_ng::Value::String(value) => Some((k.as_str()?.to_owned(), value.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, cmd, org] = args.as_slice()
        && cmd == "export"
    {
        return export(org).await;
    }
    // `export-bench [assignments…]`: orgs of 1,000 users × that many org-wide assignments.
    let sizes: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![10, 100] } else { sizes };
    eprintln!("exporting with the export worker's settings from template.yaml: {:?}", deployed_environment());
    let store = bench::store().await;
    let mut results = Vec::new();
    for &assignments in &sizes {
        let started = Instant::now();
        let org = seed(&store, assignments).await;
        eprintln!("seeded {} rows in {:.1} s", assignments * USERS, started.elapsed().as_secs_f64());
        let out = std::process::Command::new(&args[0])
            .args(["export", org.as_str()])
            .envs(deployed_environment())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        println!("progress export of {} rows: {line}", assignments * USERS);
        results.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
    }
    for (i, result) in results.iter().enumerate().skip(1) {
        let ratio = |field: &str| result[field].as_f64().unwrap() / results[0][field].as_f64().unwrap();
        println!(
            "{} vs {} rows: peak memory ×{:.2}, rows/second ×{:.2}, rows ×{:.0}",
            sizes[i] * USERS,
            sizes[0] * USERS,
            ratio("peakRssKiB"),
            ratio("rowsPerSecond"),
            ratio("rows")
        );
    }
}
