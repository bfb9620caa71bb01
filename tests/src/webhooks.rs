//! Webhook receivers on loopback for the end-to-end tests (`tests/fixtures/webhooks/receiver.py`: plain
//! HTTP, or HTTPS under the local stack's test CA), and the check customers run on what they receive:
//! the Standard Webhooks reference library from PyPI (`standardwebhooks`, in `.tools/venv`).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The test command's venv's Python (`infra/local/stack.sh install-fuzz` installs the library there).
pub fn python() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/python"))
}

/// A receiver process; killed when dropped.
pub struct Receiver {
    child: Child,
    /// `http://127.0.0.1:<port>` or `https://127.0.0.1:<port>`.
    pub base: String,
    log: tempfile_path::TempLog,
}

mod tempfile_path {
    /// A log file of its own in the system's temp folder, removed when dropped.
    pub struct TempLog(pub std::path::PathBuf);

    impl Drop for TempLog {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl Receiver {
    /// A plain HTTP receiver.
    pub fn plain() -> Receiver {
        Self::spawn(&[])
    }

    /// An HTTPS receiver whose certificate the local stack's test CA signed (`LOCAL_WEBHOOK_RECEIVER_*`).
    pub fn https() -> Receiver {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}: run through infra/test.sh"));
        Self::spawn(&[var("LOCAL_WEBHOOK_RECEIVER_CERT_FILE"), var("LOCAL_WEBHOOK_RECEIVER_KEY_FILE")])
    }

    fn spawn(tls: &[String]) -> Receiver {
        let log = std::env::temp_dir().join(format!("webhook-receiver-{}.jsonl", uuid::Uuid::new_v4()));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/webhooks/receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(&log)
            .args(tls)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the receiver starts");
        let mut port = String::new();
        BufReader::new(child.stdout.take().expect("its stdout")).read_line(&mut port).expect("its port");
        let scheme = if tls.is_empty() { "http" } else { "https" };
        Receiver { child, base: format!("{scheme}://127.0.0.1:{}", port.trim()), log: tempfile_path::TempLog(log) }
    }

    /// The URL of `path` (its first segment says how the receiver answers: `ok`, `fail`, `fail-once`, `slow`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// Every request answered so far, in the order answered.
    pub fn received(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log.0).unwrap_or_default();
        text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }

    /// The requests to `path` answered so far.
    pub fn received_at(&self, path: &str) -> Vec<Value> {
        let path = format!("/{}", path.trim_start_matches('/'));
        self.received().into_iter().filter(|r| r["path"] == path.as_str()).collect()
    }

    /// Waits (up to `limit`) until `path` has had at least `n` requests answered; they all.
    pub async fn wait_for(&self, path: &str, n: usize, limit: Duration) -> Vec<Value> {
        let started = std::time::Instant::now();
        loop {
            let got = self.received_at(path);
            if got.len() >= n || started.elapsed() > limit {
                assert!(got.len() >= n, "{path}: {} of {n} requests in {limit:?}: {got:#?}", got.len());
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks each `(secret, received request)` with the reference library: per request, the payload it
/// verified, or its error.
pub fn verify(cases: &[(&str, &Value)]) -> Vec<Result<Value, String>> {
    const VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
out = []
for case in json.load(sys.stdin):
    try:
        out.append({"ok": Webhook(case["secret"]).verify(case["body"], case["headers"])})
    except Exception as e:
        out.append({"error": type(e).__name__ + ": " + str(e)})
print(json.dumps(out))
"#;
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, received)| json!({"secret": secret, "body": received["body"], "headers": received["headers"]}))
        .collect();
    let mut child = Command::new(python())
        .args(["-c", VERIFY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test command installs .tools/venv (infra/local/stack.sh install-fuzz)");
    child.stdin.take().expect("stdin").write_all(Value::Array(input).to_string().as_bytes()).expect("written");
    let output = child.wait_with_output().expect("the library ran");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).expect("its answer");
    answers
        .into_iter()
        .map(|a| match a.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => Err(a["error"].as_str().unwrap_or_default().to_owned()),
        })
        .collect()
}
