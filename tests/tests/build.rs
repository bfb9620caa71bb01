//! What `sam build` builds, checked through cargo's own resolution of each function's package (as the
//! Makefile builds it: `cargo lambda build -p <package>`, one function per cargo invocation).
//!
//! - Nothing local-only reaches a deployed bootstrap: no function depends on the local gateway (whose
//!   per-org test clocks and clock control live there), and none is built with the `api` crate's
//!   `local` feature (the fuzz step's unlimited org). The template cannot turn either on: they are not
//!   settings a function reads, they are code a deployed function does not contain.
//! - In the test command's deploy-check build (the Makefile turns on each function's optional
//!   `workspace-hack`), every function resolves the same features of the third-party crates it shares
//!   with the others, so building one function after another compiles each dependency once; a
//!   deployment's release build leaves the hack out.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// The package `sam build` builds for each function (the Makefile's `build-<LogicalId>: PACKAGE := …`).
fn function_packages() -> BTreeMap<String, String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let makefile = std::fs::read_to_string(format!("{root}/Makefile")).expect("Makefile readable");
    let packages: BTreeMap<String, String> = makefile
        .lines()
        .filter_map(|line| {
            let (target, package) = line.strip_prefix("build-")?.split_once(": PACKAGE := ")?;
            Some((package.trim().to_owned(), target.to_owned()))
        })
        .collect();
    assert!(packages.len() >= 18, "{packages:?}");
    packages
}

/// `package`'s dependency graph as `sam build` builds it (`features`: the Makefile's, if any):
/// `(crate, its features)` for every crate.
fn resolved(package: &str, features: &[&str]) -> BTreeSet<(String, String)> {
    let out = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "--locked", "-p", package, "-e", "normal,build"])
        .args(features.iter().flat_map(|f| ["--features", f]))
        .args(["--target", "x86_64-unknown-linux-gnu", "--prefix", "none", "--format", "{p}|{f}"])
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            // `(*)`: a crate shown before (cargo tree prints each crate's subtree once).
            let (name, features) = line.trim_end_matches(" (*)").split_once('|')?;
            Some((name.trim_end_matches(" (proc-macro)").to_owned(), features.to_owned()))
        })
        .collect()
}

#[test]
fn deployed_functions_contain_nothing_local_and_share_every_compiled_dependency() {
    let mut features_of: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (package, function) in function_packages() {
        // A deployment's release build: the function's own features.
        for (name, features) in &resolved(&package, &[]) {
            assert!(!name.starts_with("gateway "), "{function} ({package}) depends on the local gateway");
            assert!(!name.starts_with("workspace-hack "), "{function} ({package}) is deployed with the workspace-hack");
            if name.starts_with("api ") {
                assert!(!features.split(',').any(|f| f == "local"), "{function} ({package}) is built with api/local");
            }
        }
        // The test command's deploy-check build (the Makefile's `--features workspace-hack`).
        let graph = resolved(&package, &["workspace-hack"]);
        for (name, features) in &graph {
            assert!(!name.starts_with("gateway "), "{function} ({package}) depends on the local gateway");
            // Our own crates may differ (the export functions' `service/export`); third-party ones not.
            if !name.contains(" (/") {
                features_of.entry(name.clone()).or_default().insert(package.clone(), features.clone());
            }
        }
    }
    let drifted: Vec<String> = features_of
        .iter()
        .filter(|(_, by_package)| by_package.values().collect::<BTreeSet<_>>().len() > 1)
        .map(|(name, by_package)| format!("{name}: {by_package:?}"))
        .collect();
    assert!(
        drifted.is_empty(),
        "functions resolve different features of these crates (each difference compiles them and everything \
         above them again in sam build): add the features to shared/workspace-hack/Cargo.toml\n{}",
        drifted.join("\n")
    );
}
