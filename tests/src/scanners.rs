//! SARIF as real scanners write it: Bandit and Semgrep (pinned in `infra/local/scanners.lock`,
//! installed into `.tools/scanners` by `infra/local/stack.sh install`) run over the deliberately
//! vulnerable sample in `tests/fixtures/sarif/`, and the CodeQL- and Snyk-shaped logs kept there.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/sarif").join(name)
}

fn scanner(name: &str) -> PathBuf {
    let path = root().join(".tools/scanners/bin").join(name);
    assert!(path.exists(), "{} is missing: run infra/local/stack.sh install", path.display());
    path
}

/// Runs a scanner that prints SARIF on stdout; it exits non-zero when it finds something.
fn run(command: &mut Command) -> Vec<u8> {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let sarif = out.stdout;
    assert!(
        sarif.starts_with(b"{"),
        "{command:?} printed no SARIF (exit {:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    sarif
}

/// `bandit -f sarif` over the vulnerable sample (run once per test binary).
pub fn bandit() -> &'static [u8] {
    static SARIF: OnceLock<Vec<u8>> = OnceLock::new();
    SARIF.get_or_init(|| {
        run(Command::new(scanner("bandit")).args(["-q", "-f", "sarif"]).arg(fixture("vulnerable_app.py")))
    })
}

/// `semgrep scan --sarif` with the local rule file over the vulnerable sample (no network: metrics
/// and the version check are off).
pub fn semgrep() -> &'static [u8] {
    static SARIF: OnceLock<Vec<u8>> = OnceLock::new();
    SARIF.get_or_init(|| {
        run(Command::new(scanner("semgrep"))
            .args(["scan", "--metrics=off", "--disable-version-check", "--quiet", "--sarif", "--config"])
            .arg(fixture("semgrep-rules.yml"))
            .arg(fixture("vulnerable_app.py")))
    })
}

/// A log kept in `tests/fixtures/sarif/` (`codeql-shaped.sarif`, `snyk-shaped.sarif`).
pub fn kept(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
