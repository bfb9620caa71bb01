//! Export jobs: an admin asks for a CSV audit pack, the export worker writes it off the request path,
//! the job says where it stands.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::Role;

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    Running,
    Ready,
    Failed,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Running => "running",
            ExportStatus::Ready => "ready",
            ExportStatus::Failed => "failed",
        }
    }
}

/// One requested export: who asked, what, where the file goes, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportJob {
    pub export_id: uuid::Uuid,
    /// `assignments`, `progress` or `compliance` (the `exports` crate's kinds).
    pub kind: String,
    pub status: ExportStatus,
    /// The object the worker writes (known from the start, so a retried run writes the same one).
    pub key: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why a failed export failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Runs of the worker started on it (a run that fails to write the file is retried until
    /// [`ExportJob::MAX_ATTEMPTS`]).
    #[serde(default)]
    pub attempts: u32,
    /// Who asked (the audit entry of the finished export names them).
    pub actor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    pub actor_role: Role,
    pub request_id: String,
}

impl ExportJob {
    /// Worker runs that may fail to write the file before the export is failed.
    pub const MAX_ATTEMPTS: u32 = 3;
    /// Days a written file stays in the bucket (its lifecycle rule expires `exports/` objects then).
    pub const FILE_DAYS: i64 = 30;

    /// How long a job may stay `running`: the worker's runs (15 minutes each at most) must end within
    /// it, and one that starts later gives up (its request waited too long: see `run`).
    pub fn running_at_most() -> Duration {
        Duration::hours(1)
    }

    /// Until when a ready export's file can be downloaded (`None` while it is not ready).
    pub fn downloadable_until(&self) -> Option<DateTime<Utc>> {
        (self.status == ExportStatus::Ready)
            .then(|| self.completed_at.unwrap_or(self.created_at) + Duration::days(Self::FILE_DAYS))
    }

    /// The job as a new run of the worker starts it.
    pub fn attempted(&self) -> ExportJob {
        ExportJob { attempts: self.attempts + 1, ..self.clone() }
    }

    /// The status as of `now`: a job running for longer than [`ExportJob::running_at_most`] failed.
    pub fn status_at(&self, now: DateTime<Utc>) -> ExportStatus {
        match self.status {
            ExportStatus::Running if now - self.created_at > Self::running_at_most() => ExportStatus::Failed,
            status => status,
        }
    }

    /// The job written: `rows` rows, `bytes` bytes, at `at`.
    pub fn ready(&self, rows: u64, bytes: u64, at: DateTime<Utc>) -> ExportJob {
        ExportJob {
            status: ExportStatus::Ready,
            row_count: Some(rows),
            bytes: Some(bytes),
            completed_at: Some(at),
            ..self.clone()
        }
    }

    /// The job given up, with the reason.
    pub fn failed(&self, reason: &str, at: DateTime<Utc>) -> ExportJob {
        ExportJob {
            status: ExportStatus::Failed,
            failure: Some(reason.to_owned()),
            completed_at: Some(at),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(created_at: DateTime<Utc>) -> ExportJob {
        ExportJob {
            export_id: uuid::Uuid::now_v7(),
            kind: "progress".into(),
            status: ExportStatus::Running,
            key: "exports/acme/x.csv".into(),
            created_at,
            completed_at: None,
            row_count: None,
            bytes: None,
            failure: None,
            attempts: 0,
            actor_id: "key-1".into(),
            actor_email: None,
            actor_role: Role::OrgAdmin,
            request_id: "r".into(),
        }
    }

    #[test]
    fn a_job_running_past_its_time_counts_as_failed_and_finished_ones_keep_their_status() {
        let now: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
        assert_eq!(job(now - Duration::minutes(59)).status_at(now), ExportStatus::Running);
        assert_eq!(job(now - Duration::minutes(61)).status_at(now), ExportStatus::Failed);
        let done = job(now - Duration::hours(5)).ready(10, 200, now);
        assert_eq!((done.status_at(now), done.row_count, done.bytes), (ExportStatus::Ready, Some(10), Some(200)));
        let failed = job(now).failed("S3 refused", now);
        assert_eq!((failed.status_at(now), failed.failure.as_deref()), (ExportStatus::Failed, Some("S3 refused")));
    }

    #[test]
    fn a_ready_file_can_be_downloaded_for_thirty_days_after_it_was_written() {
        let now: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
        assert_eq!(job(now).downloadable_until(), None);
        let ready = job(now - Duration::hours(2)).ready(1, 2, now - Duration::hours(1));
        assert_eq!(ready.downloadable_until(), Some(now - Duration::hours(1) + Duration::days(30)));
        assert_eq!(job(now).attempted().attempted().attempts, 2);
    }
}
