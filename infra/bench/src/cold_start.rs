//! Cold-start benchmark (issue 14; design §9). Not a test: it reports what one run measured.
//!
//! `cold-start-bench` builds every function the way `sam build` does (`cargo lambda build --release
//! --x86-64 --output-format zip -p <package>`, the packages read from the Makefile) and the baselines
//! in `infra/bench/baselines` the same way: `empty-function` (the runtime, the SDK configuration and a
//! DynamoDB client built as the functions build them), `empty-function-s3` (and the S3 client, as the
//! export functions), `empty-function-eventbridge` (only the EventBridge client, as the outbox
//! publisher) and `hello-function` (the runtime only). It then starts each bootstrap against a fake
//! Lambda runtime API on loopback and times process start → the first `GET
//! /2018-06-01/runtime/invocation/next` (the end of init), `BENCH_STARTS` times each (default 21; the
//! functions interleaved, round by round, so drift hits all alike), and prints the medians and the zip
//! sizes, each next to its baseline's.
//! Needs no local stack: nothing is called before `next`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BASELINE: &str = "empty-function";
const HELLO: &str = "hello-function";
/// The baselines: (binary, its package), each an empty `lambda_http` function that builds a
/// function's SDK clients the way the function does.
const BASELINES: [(&str, &str); 4] = [
    (BASELINE, "cold-start-baselines"),
    ("empty-function-s3", "cold-start-baseline-s3"),
    ("empty-function-eventbridge", "cold-start-baseline-eventbridge"),
    (HELLO, "cold-start-baselines"),
];

/// The baseline that builds `function`'s clients: the export and SARIF functions add S3 to DynamoDB,
/// the outbox publisher builds only EventBridge, every other function only DynamoDB.
fn baseline_of(function: &str) -> &'static str {
    match function {
        "export-csv" | "export-worker" | "sarif" | "sarif-worker" => "empty-function-s3",
        "outbox-publisher" => "empty-function-eventbridge",
        _ => BASELINE,
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the checkout");
    let starts: usize = std::env::var("BENCH_STARTS").ok().and_then(|s| s.parse().ok()).unwrap_or(21);
    let mut binaries: Vec<(String, String)> = packages(&root).into_iter().map(|p| (p.clone(), p)).collect();
    let functions = binaries.len();
    binaries.extend(BASELINES.iter().map(|(bin, package)| ((*bin).to_owned(), (*package).to_owned())));

    let unpacked = std::env::temp_dir().join(format!("cold-start-{}", std::process::id()));
    let mut bootstraps = Vec::new();
    for (name, package) in &binaries {
        build(&root, package);
        let zip = root.join("target/lambda").join(name).join("bootstrap.zip");
        let dir = unpacked.join(name);
        run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&zip).arg(&dir));
        let bootstrap = dir.join("bootstrap");
        run(Command::new("chmod").arg("755").arg(&bootstrap));
        let zip_bytes = std::fs::metadata(&zip).expect("the zip").len();
        bootstraps.push((name.clone(), bootstrap, zip_bytes));
    }

    let runtime_api = FakeRuntimeApi::start();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); bootstraps.len()];
    for _ in 0..starts {
        for (i, (name, bootstrap, _)) in bootstraps.iter().enumerate() {
            times[i].push(runtime_api.time_init(name, bootstrap));
        }
    }
    let _ = std::fs::remove_dir_all(&unpacked);

    let medians: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
    let index = |name: &str| bootstraps.iter().position(|(n, _, _)| n == name).expect("a measured binary");
    println!(
        "cold start: process start → first `next`, median of {starts} starts each; zips as `cargo lambda` builds them"
    );
    println!("| function | init (ms) | zip (bytes) | baseline (its clients) | × its init | × its zip |");
    println!("|---|---|---|---|---|---|");
    let (mut worst_init, mut worst_zip) = (0.0f64, 0.0f64);
    for (i, (name, _, zip)) in bootstraps.iter().enumerate() {
        let base = if i < functions { index(baseline_of(name)) } else { index(BASELINE) };
        let init_ratio = ms(medians[i]) / ms(medians[base]);
        let zip_ratio = *zip as f64 / bootstraps[base].2 as f64;
        if i < functions {
            worst_init = worst_init.max(init_ratio);
            worst_zip = worst_zip.max(zip_ratio);
        }
        println!(
            "| `{name}` | {:.2} | {zip} | `{}` | {init_ratio:.2} | {zip_ratio:.2} |",
            ms(medians[i]),
            bootstraps[base].0
        );
    }
    let hello = ms(medians[index(HELLO)]);
    println!(
        "worst of {functions} functions against their baselines: init ×{worst_init:.2}, zip ×{worst_zip:.2}; \
         {BASELINE} ×{:.2} of {HELLO}",
        ms(medians[index(BASELINE)]) / hello
    );
}

/// The function packages, in the Makefile's order (`build-<LogicalId>: PACKAGE := <package>`).
fn packages(root: &Path) -> Vec<String> {
    let makefile = std::fs::read_to_string(root.join("Makefile")).expect("the Makefile");
    makefile
        .lines()
        .filter_map(|line| line.strip_prefix("build-")?.split_once(": PACKAGE := ").map(|(_, p)| p.trim().to_owned()))
        .collect()
}

/// `cargo lambda build` as the Makefile runs it (cargo-lambda from the project's venv).
fn build(root: &Path, package: &str) {
    let path = format!("{}:{}", root.join(".tools/venv/bin").display(), std::env::var("PATH").unwrap_or_default());
    run(Command::new("cargo").current_dir(root).env("PATH", path).args([
        "lambda",
        "build",
        "--release",
        "--x86-64",
        "--output-format",
        "zip",
        "-p",
        package,
    ]));
}

fn run(command: &mut Command) {
    let status = command.status().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(status.success(), "{command:?}: {status}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// A Lambda runtime API on loopback that only notes when a runtime first asks for an event.
struct FakeRuntimeApi {
    address: String,
    asked: mpsc::Receiver<Instant>,
}

impl FakeRuntimeApi {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let address = listener.local_addr().expect("its address").to_string();
        let (tell, asked) = mpsc::channel();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                // The request line is all it needs; the connection is dropped with the process.
                let mut head = [0u8; 256];
                let read = stream.read(&mut head).unwrap_or(0);
                if String::from_utf8_lossy(&head[..read]).starts_with("GET /2018-06-01/runtime/invocation/next") {
                    let _ = tell.send(Instant::now());
                }
            }
        });
        Self { address, asked }
    }

    /// Starts `bootstrap` as Lambda would (its environment, nothing inherited) and returns how long it
    /// took to ask for its first event.
    fn time_init(&self, name: &str, bootstrap: &Path) -> Duration {
        while self.asked.try_recv().is_ok() {}
        let started = Instant::now();
        let mut child = Command::new(bootstrap)
            .env_clear()
            .envs(lambda_environment(name, &self.address))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let asked = self.asked.recv_timeout(Duration::from_secs(10));
        let _ = child.kill();
        let _ = child.wait();
        asked.unwrap_or_else(|_| panic!("{name} did not ask for an event within 10 s")) - started
    }
}

/// The variables Lambda sets, and the template's (values that need no network at init).
fn lambda_environment(name: &str, runtime_api: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_DEFAULT_REGION", "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_SESSION_TOKEN", "bench".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("TZ", ":UTC".into()),
        ("RUST_LOG", "info".into()),
        ("TABLE_NAME", "bench-table".into()),
        ("EXPORT_BUCKET", "bench-bucket".into()),
        ("EVENT_BUS_NAME", "bench-bus".into()),
        ("SARIF_BUCKET", "bench-uploads".into()),
        // Queue URLs (nothing is sent at start-up): the workers', the parked and failed events', the
        // job queue's.
        ("ROSTER_WORK_QUEUE_URL", "http://127.0.0.1:1/queue/bench-roster-work".into()),
        ("EXPORT_WORK_QUEUE_URL", "http://127.0.0.1:1/queue/bench-export-work".into()),
        ("PARKED_EVENTS_QUEUE_URL", "http://127.0.0.1:1/queue/bench-parked-events".into()),
        ("FAILED_EVENTS_QUEUE_URL", "http://127.0.0.1:1/queue/bench-failed-events".into()),
        ("ORG_JOBS_QUEUE_URL", "http://127.0.0.1:1/queue/bench-org-jobs".into()),
        ("JOB_BUDGET_SECONDS", "240".into()),
        // Read on the first request, not at start-up: a start does not wait for Secrets Manager.
        ("SESSION_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:000000000000:secret:bench-AbCdEf".into()),
        ("SESSION_TOKEN_ISSUER", "bench".into()),
        ("SESSION_TOKEN_AUDIENCE", "bench".into()),
    ]
}
