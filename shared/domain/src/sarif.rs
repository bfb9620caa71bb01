//! Code scanning: the results a CI step posts for an org — which commit they are about, what the log
//! reports ([`Findings`], read from the SARIF wire by the `sarif-intake` crate) and, for logs too large
//! for a request, the upload that carries them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most characters of a scan's source, repository, branch or commit sha (v1's header limits).
pub const MAX_SCAN_FIELD_LEN: usize = 512;
/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// What a log reports, reduced to what assignments need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// `runs[].tool.driver.name`, each once, in order of first appearance; at most the parser's `MAX_TOOLS`.
    pub tools: Vec<String>,
    /// Results in all runs.
    pub results: usize,
    /// CWE id → the rule ids (at most the parser's `MAX_RULES_PER_CWE`) of the results that carry it; at most
    /// `MAX_CWES` CWEs. A CWE carried only by results without a rule id is present with an empty
    /// set: the weakness was still reported.
    pub cwes: BTreeMap<u32, BTreeSet<String>>,
}

/// What a CI step says about the commit it scanned (v1 sends it as the `X-Source`, `X-Repo`,
/// `X-Branch`, `X-Commit-Sha`, `X-Commit-Author-Email` headers; [`ScanError::field`] names the field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scan {
    pub source: String,
    pub repo: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub commit_sha: String,
    pub author_email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct ScanError {
    pub field: &'static str,
    pub message: String,
}

impl Scan {
    /// Checks each field (trimmed): required ones present, all within their length, the email one
    /// address, the sha hexadecimal (7 to 64 digits: short or full SHA-1 or SHA-256).
    pub fn new(
        source: Option<&str>,
        repo: Option<&str>,
        branch: Option<&str>,
        commit_sha: Option<&str>,
        author_email: Option<&str>,
    ) -> Result<Self, ScanError> {
        fn field(name: &'static str, value: Option<&str>, max: usize) -> Result<Option<String>, ScanError> {
            let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
            if value.chars().count() > max {
                return Err(ScanError { field: name, message: format!("must be at most {max} characters") });
            }
            if value.chars().any(char::is_control) {
                return Err(ScanError { field: name, message: "must not contain control characters".into() });
            }
            Ok(Some(value.to_owned()))
        }
        let required = |name: &'static str, value: Option<String>| {
            value.ok_or_else(|| ScanError { field: name, message: "is required".into() })
        };
        let commit_sha = required("commitSha", field("commitSha", commit_sha, 64)?)?;
        if commit_sha.len() < 7 || !commit_sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ScanError { field: "commitSha", message: "must be 7 to 64 hexadecimal digits".into() });
        }
        let author_email = required("authorEmail", field("authorEmail", author_email, MAX_EMAIL_LEN)?)?;
        let well_formed = author_email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if !well_formed || author_email.contains(char::is_whitespace) {
            return Err(ScanError { field: "authorEmail", message: "must be an email address".into() });
        }
        Ok(Self {
            source: required("source", field("source", source, MAX_SCAN_FIELD_LEN)?)?,
            repo: required("repo", field("repo", repo, MAX_SCAN_FIELD_LEN)?)?,
            branch: field("branch", branch, MAX_SCAN_FIELD_LEN)?,
            commit_sha: commit_sha.to_ascii_lowercase(),
            author_email,
        })
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    /// Waiting for its object.
    Pending,
    /// Ingested: `outcome` holds the ingestion.
    Ingested,
    /// The object was refused: `failure` says why; nothing was created.
    Failed,
}

/// A SARIF log uploaded to S3 instead of posted (larger than a request may carry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifUpload {
    pub upload_id: uuid::Uuid,
    pub scan: Scan,
    /// Who asked for the upload (`apikey:<id>` or `user:<id>`): the actor of what it creates.
    pub actor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    pub actor_role: crate::Role,
    /// The log's size in bytes as the client declared it: the presigned PUT signs it, so S3 takes no
    /// other, and the worker reads no other. `None` on an upload started before sizes were declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub status: UploadStatus,
    /// The ingestion's response (JSON), once ingested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(sha: &str, email: &str) -> Result<Scan, ScanError> {
        Scan::new(Some("codeql"), Some("acme/shop"), Some("main"), Some(sha), Some(email))
    }

    #[test]
    fn a_scan_is_trimmed_and_its_sha_lowercased() {
        let ok =
            Scan::new(Some(" semgrep "), Some("acme/shop"), None, Some("ABCDEF1"), Some(" Dev@Acme.example ")).unwrap();
        assert_eq!(
            ok,
            Scan {
                source: "semgrep".into(),
                repo: "acme/shop".into(),
                branch: None,
                commit_sha: "abcdef1".into(),
                author_email: "Dev@Acme.example".into(),
            }
        );
    }

    #[test]
    fn bad_headers_are_named() {
        let field = |r: Result<Scan, ScanError>| r.unwrap_err().field;
        assert_eq!(field(scan("abc", "a@b.c")), "commitSha");
        assert_eq!(field(scan("zzzzzzz", "a@b.c")), "commitSha");
        assert_eq!(field(scan(&"a".repeat(65), "a@b.c")), "commitSha");
        assert_eq!(field(scan("abcdef1", "not-an-email")), "authorEmail");
        assert_eq!(field(scan("abcdef1", "a@b@c")), "authorEmail");
        assert_eq!(field(Scan::new(None, Some("r"), None, Some("abcdef1"), Some("a@b.c"))), "source");
        assert_eq!(field(Scan::new(Some("s"), Some(&"r".repeat(513)), None, Some("abcdef1"), Some("a@b.c"))), "repo");
        assert_eq!(field(Scan::new(Some("s"), Some("r\u{7}x"), None, Some("abcdef1"), Some("a@b.c"))), "repo");
    }
}
