//! Export jobs (`ORG#o#EXPORTS` / `EXPORT#<id>`): requested with the event that starts the worker,
//! finished with the audit entry and `export.ready` — each in one transaction.

use aws_sdk_dynamodb::types::Put;
use domain::{AuditEntry, DomainEvent, ExportJob, ExportStatus, OrgId};

use crate::dynamo::{s, to_item};
use crate::partition::Partition;
use crate::records::ExportRecord;
use crate::tx::{CancelReason, TxFailure};
use crate::{Page, PageKey, Store, StoreError, keys};

/// How long a job's record stays: well past its file's 30 days in the bucket.
const KEEP_DAYS: i64 = 90;

fn record(org: &OrgId, job: &ExportJob) -> Result<crate::dynamo::Item, StoreError> {
    to_item(&ExportRecord {
        pk: keys::exports_pk(org),
        sk: keys::export_sk(job.export_id),
        entity: "export".into(),
        expires_at: Some((job.created_at + chrono::Duration::days(KEEP_DAYS)).timestamp()),
        job: job.clone(),
    })
}

impl Store {
    /// Records a new (running) export job with `events` (the request the worker picks up).
    pub async fn request_export(&self, org: &OrgId, job: &ExportJob, events: &[DomainEvent]) -> Result<(), StoreError> {
        let mut tx = self.transaction();
        tx.put(record(org, job)?, Some("attribute_not_exists(PK)"))?;
        tx.outbox(org, events, job.created_at)?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that a run of the worker starts on `job` (its `attempts` already counted): `false` when
    /// the job is no longer running.
    pub async fn start_export_attempt(&self, org: &OrgId, job: &ExportJob) -> Result<bool, StoreError> {
        let request = self
            .put_request()
            .set_item(Some(record(org, job)?))
            .condition_expression("#status = :running")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(ExportStatus::Running.as_str()));
        match self.send_put(request).await {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Stores `finished` (ready or failed) in place of the running job, with its audit entry and
    /// events; `false` when the job is no longer running (another run finished it).
    pub async fn finish_export(
        &self,
        org: &OrgId,
        finished: &ExportJob,
        audit: Option<&AuditEntry>,
        events: &[DomainEvent],
    ) -> Result<bool, StoreError> {
        let mut tx = self.transaction();
        let job = tx.put_with(
            Put::builder()
                .set_item(Some(record(org, finished)?))
                .condition_expression("#status = :running")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":running", s(ExportStatus::Running.as_str())),
        )?;
        if let Some(entry) = audit {
            tx.audit(org, entry)?;
        }
        tx.outbox(org, events, finished.completed_at.unwrap_or(finished.created_at))?;
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(job).is_some_and(CancelReason::condition_failed) => {
                Ok(false)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// One export job of the org (strongly consistent: a client polls it).
    pub async fn export_job(&self, org: &OrgId, export_id: uuid::Uuid) -> Result<Option<ExportJob>, StoreError> {
        self.get_item(keys::exports_pk(org), &keys::export_sk(export_id), true)
            .await?
            .map(<ExportRecord as crate::records::Record>::entity_of)
            .transpose()
    }

    /// A page of the org's export jobs, newest first.
    pub async fn export_jobs_page(
        &self,
        org: &OrgId,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<ExportJob>, StoreError> {
        let jobs = Partition::table(keys::exports_pk(org)).prefixed(keys::EXPORT_SK_PREFIX);
        let (items, next) =
            self.query_bounded(|q| jobs.query(q).scan_index_forward(false), None, false, start, limit).await?;
        let items = items
            .into_iter()
            .map(<ExportRecord as crate::records::Record>::entity_of)
            .collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }
}
