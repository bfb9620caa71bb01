//! SARIF intake benchmark: what reading a large log costs the functions that ingest it. Not a test: it
//! reports numbers measured in one run.
//!
//! `sarif-bench [results…]` writes CodeQL-shaped logs (rules in a query pack's extension with CWE
//! tags; each result with a message, a location and a 6-step code flow, as path queries write them) of
//! each size (by default 1,000 and 25,000 results, the most a log may hold), plain and gzip, then reads
//! each in a fresh child process — as `sarif_intake` reads an upload (streaming into `Findings`) and, for
//! comparison, as a whole-document `serde_json::Value` — and prints the time and the child's peak
//! resident memory (VmHWM, which includes the file's bytes both ways), with ratios from the same run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

const RULES: usize = 300;

fn location(line: usize) -> Value {
    json!({"physicalLocation": {"artifactLocation": {"uri": format!("src/module_{}.js", line % 97), "uriBaseId": "%SRCROOT%"},
           "region": {"startLine": line, "startColumn": 5, "endColumn": 42,
                      "snippet": {"text": "const query = `SELECT * FROM users WHERE id = ${req.query.id}`;"}}}})
}

/// A log with `results` results over [`RULES`] rules.
fn log(results: usize) -> Vec<u8> {
    let rules: Vec<Value> = (0..RULES)
        .map(|i| {
            json!({"id": format!("js/query-{i}"), "name": format!("js/query-{i}"),
                   "shortDescription": {"text": "A query that finds a weakness"},
                   "fullDescription": {"text": "Building a query from user-controlled sources is vulnerable to insertion of malicious code by the user."},
                   "defaultConfiguration": {"enabled": true, "level": "error"},
                   "properties": {"tags": ["security", format!("external/cwe/cwe-{:03}", [89, 79, 78, 22, 502, 918][i % 6]),
                                           format!("external/cwe/cwe-{:03}", 100 + i)],
                                  "kind": "path-problem", "precision": "high", "security-severity": "8.8"}})
        })
        .collect();
    let results: Vec<Value> = (0..results)
        .map(|i| {
            let flow: Vec<Value> = (0..6).map(|step| json!({"location": location(i + step)})).collect();
            json!({"ruleId": format!("js/query-{}", i % RULES),
                   "rule": {"id": format!("js/query-{}", i % RULES), "index": i % RULES, "toolComponent": {"index": 0}},
                   "message": {"text": "This query depends on a [user-provided value](1)."},
                   "locations": [location(i)],
                   "partialFingerprints": {"primaryLocationLineHash": format!("{:016x}:1", i * 7919)},
                   "codeFlows": [{"threadFlows": [{"locations": flow}]}]})
        })
        .collect();
    serde_json::to_vec(&json!({"version": "2.1.0", "runs": [{"tool": {
        "driver": {"name": "CodeQL", "semanticVersion": "2.19.3", "rules": []},
        "extensions": [{"name": "codeql/javascript-queries", "rules": rules}]}, "results": results}]}))
    .unwrap_or_default()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The child: reads `file` one `way`, prints a JSON line.
fn read(way: &str, file: &Path) {
    let bytes = std::fs::read(file).unwrap_or_default();
    let started = Instant::now();
    let (results, cwes) = match way {
        "streaming" => {
            let findings = sarif_intake::read_upload(&bytes).unwrap_or_else(|e| panic!("{e}"));
            (findings.results, findings.cwes.len())
        }
        _ => {
            let doc: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (doc["runs"][0]["results"].as_array().map_or(0, Vec::len), 0)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"results\": {results}, \"cwes\": {cwes}, \"seconds\": {seconds:.3}, \"peakRssKiB\": {}}}",
        bench::peak_rss_kib()
    );
}

fn child(exe: &str, way: &str, file: &Path) -> Value {
    let out = std::process::Command::new(exe).args(["read", way]).arg(file).output();
    let out = out.unwrap_or_else(|e| panic!("{exe}: {e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, cmd, way, file] = args.as_slice()
        && cmd == "read"
    {
        return read(way, Path::new(file));
    }
    let sizes: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, sarif_intake::parser::MAX_RESULTS] } else { sizes };
    let dir: PathBuf = std::env::temp_dir().join(format!("sarif-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    let mut streaming = Vec::new();
    for &size in &sizes {
        let plain = log(size);
        let packed = gzip(&plain);
        let (plain_file, packed_file) = (dir.join(format!("{size}.sarif")), dir.join(format!("{size}.sarif.gz")));
        std::fs::write(&plain_file, &plain).unwrap_or_default();
        std::fs::write(&packed_file, &packed).unwrap_or_default();
        let ours = child(&args[0], "streaming", &plain_file);
        let ours_gz = child(&args[0], "streaming", &packed_file);
        let dom = child(&args[0], "dom", &plain_file);
        println!("{size} results: {} bytes ({} gzip)", plain.len(), packed.len());
        println!("  streaming, plain: {ours}");
        println!("  streaming, gzip:  {ours_gz}");
        println!("  serde_json::Value, plain: {dom}");
        let ratio = |a: &Value, b: &Value, f: &str| a[f].as_f64().unwrap_or(0.0) / b[f].as_f64().unwrap_or(1.0);
        println!(
            "  streaming vs Value: peak memory ×{:.2}, time ×{:.2}; peak memory over the file's bytes: {:.1} MiB vs {:.1} MiB",
            ratio(&ours, &dom, "peakRssKiB"),
            ratio(&ours, &dom, "seconds"),
            (ours["peakRssKiB"].as_f64().unwrap_or(0.0) - plain.len() as f64 / 1024.0) / 1024.0,
            (dom["peakRssKiB"].as_f64().unwrap_or(0.0) - plain.len() as f64 / 1024.0) / 1024.0,
        );
        streaming.push((size, ours, ours_gz));
    }
    if let [(first, a, a_gz), .., (last, b, b_gz)] = streaming.as_slice() {
        let ratio = |b: &Value, a: &Value, f: &str| b[f].as_f64().unwrap_or(0.0) / a[f].as_f64().unwrap_or(1.0);
        println!(
            "streaming {last} vs {first} results (×{:.0}): plain time ×{:.2}, peak memory ×{:.2} (the file's bytes \
             included); gzip time ×{:.2}, peak memory ×{:.2}",
            *last as f64 / *first as f64,
            ratio(b, a, "seconds"),
            ratio(b, a, "peakRssKiB"),
            ratio(b_gz, a_gz, "seconds"),
            ratio(b_gz, a_gz, "peakRssKiB"),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
