//! CSV audit packs (design §6): one row per assignment, one per assignment × learner (removed
//! learners included), or the compliance evidence (one per learner × active mandatory assignment),
//! RFC 4180 with a header row, cells neutralised against formula injection, and
//! streamed to S3 by multipart upload so memory stays flat whatever the org's size.

mod rows;
mod sink;

use chrono::{DateTime, Datelike, Utc};
use domain::{OrgId, Source};
use store::{AssignmentFilter, Pages, Store, StoreError};

pub use rows::{
    ASSIGNMENT_COLUMNS, COMPLIANCE_COLUMNS, PROGRESS_COLUMNS, assignment_record, compliance_record, neutralise,
    progress_record,
};
pub use sink::{PART_SIZE, S3Csv, csv_writer};

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Assignments,
    Progress,
    /// One row per learner in scope (exempt ones included, with their reason) × active mandatory
    /// assignment: what an auditor files.
    Compliance,
}

impl ExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Assignments => "assignments",
            ExportKind::Progress => "progress",
            ExportKind::Compliance => "compliance",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "assignments" => Some(ExportKind::Assignments),
            "progress" => Some(ExportKind::Progress),
            "compliance" => Some(ExportKind::Compliance),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("S3: {0}")]
    S3(String),
    #[error("CSV: {0}")]
    Csv(String),
}

/// A finished export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub parts: usize,
}

/// `exports/<orgId>/<yyyy>/<mm>/<exportId>-<kind>.csv`
pub fn object_key(org: &OrgId, at: DateTime<Utc>, export_id: uuid::Uuid, kind: ExportKind) -> String {
    format!("exports/{org}/{:04}/{:02}/{export_id}-{}.csv", at.year(), at.month(), kind.as_str())
}

/// Streams every row of `kind` for the org into a new object. On any failure the multipart upload is
/// aborted, so no orphan parts are left.
pub async fn export(
    store: &Store,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    org: &OrgId,
    kind: ExportKind,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Exported, ExportError> {
    let columns = match kind {
        ExportKind::Assignments => &ASSIGNMENT_COLUMNS[..],
        ExportKind::Progress => &PROGRESS_COLUMNS[..],
        ExportKind::Compliance => &COMPLIANCE_COLUMNS[..],
    };
    let mut out = S3Csv::start(s3, bucket, key, columns).await?;
    match write_rows(store, org, kind, now, &mut out).await {
        Ok(()) => out.finish().await,
        Err(err) => {
            out.abort().await;
            Err(err)
        }
    }
}

async fn write_rows(
    store: &Store,
    org: &OrgId,
    kind: ExportKind,
    now: DateTime<Utc>,
    out: &mut S3Csv,
) -> Result<(), ExportError> {
    let mut team_names = std::collections::HashMap::new();
    let mut pages = Pages::default();
    while let Some(start) = pages.next_start() {
        for a in &pages.follow(store.list_assignments(org, &AssignmentFilter::default(), 200, start).await?) {
            if kind == ExportKind::Assignments {
                out.write(&assignment_record(a, now)).await?;
                continue;
            }
            if kind == ExportKind::Compliance && !(a.is_active && a.is_mandatory) {
                continue;
            }
            let mut row_pages = Pages::default();
            while let Some(rows_start) = row_pages.next_start() {
                let rows = row_pages.follow(store.progress_page(org, a.id, 500, rows_start).await?);
                let ids: Vec<_> = rows.iter().map(|r| r.user_id).collect();
                let users: std::collections::HashMap<_, _> =
                    store.get_users(org, &ids).await?.into_iter().map(|u| (u.user_id, u)).collect();
                for row in &rows {
                    let user = users.get(&row.user_id);
                    let team = match (kind, &row.source) {
                        (ExportKind::Compliance, _) => user.and_then(|u| u.team_id),
                        (_, Source::Team { team_id }) => Some(*team_id),
                        _ => None,
                    };
                    if let Some(team_id) = team.filter(|t| !team_names.contains_key(t)) {
                        let name = store.get_team(org, team_id).await?.map(|t| t.name).unwrap_or_default();
                        team_names.insert(team_id, name);
                    }
                    if kind == ExportKind::Compliance {
                        if row.removed_at.is_none() {
                            out.write(&compliance_record(a, row, user, &team_names, now)).await?;
                        }
                        continue;
                    }
                    out.write(&progress_record(a, row, user, &team_names, now)).await?;
                }
            }
        }
    }
    Ok(())
}

/// The export bucket and its client, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub client: aws_sdk_s3::Client,
    pub name: String,
}

impl Bucket {
    /// `EXPORT_BUCKET`; path-style addressing when a local endpoint (`AWS_ENDPOINT_URL_S3`) is set,
    /// since `bucket.127.0.0.1` does not resolve.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, String> {
        let name = std::env::var("EXPORT_BUCKET").map_err(|_| "environment variable EXPORT_BUCKET is not set")?;
        let local = std::env::var("AWS_ENDPOINT_URL_S3").is_ok();
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(local).build();
        Ok(Bucket { client: aws_sdk_s3::Client::from_conf(s3), name })
    }

    /// A presigned GET of `key` that works for `ttl`.
    pub async fn download_url(&self, key: &str, ttl: std::time::Duration) -> Result<String, ExportError> {
        let config =
            aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl).map_err(|e| ExportError::S3(e.to_string()))?;
        let presigned = self.client.get_object().bucket(&self.name).key(key).presigned(config).await.map_err(|e| {
            ExportError::S3(format!("presigning failed: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
        })?;
        Ok(presigned.uri().to_owned())
    }
}
