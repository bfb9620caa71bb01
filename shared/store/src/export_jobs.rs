//! Export jobs (`ORG#o#EXPORTS` / `EXPORT#<id>`): requested with the event that starts the worker,
//! finished with the audit entry and `export.ready` — each in one transaction.

use aws_sdk_dynamodb::types::Put;
use domain::{AuditEntry, DomainEvent, ExportJob, ExportStatus, OrgId};

use crate::dynamo::{n, s, to_item};
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

/// Exports an org may have running at once: each running job holds one of these slots (`SLOT#<n>` in
/// the jobs' partition) until it finishes or its hour is over.
pub const EXPORT_SLOTS: usize = 3;

fn slot_sk(slot: usize) -> String {
    format!("{}{slot}", keys::EXPORT_SLOT_SK_PREFIX)
}

impl Store {
    /// Records a new (running) export job with `events` (the request the worker picks up), in a free
    /// slot taken in the same transaction: `false` when all [`EXPORT_SLOTS`] are held by running jobs
    /// (nothing is written). Concurrent requests cannot share a slot (its condition).
    pub async fn request_export(
        &self,
        org: &OrgId,
        job: &ExportJob,
        events: &[DomainEvent],
    ) -> Result<bool, StoreError> {
        let now = job.created_at.timestamp();
        let slots = Partition::table(keys::exports_pk(org)).prefixed(keys::EXPORT_SLOT_SK_PREFIX).consistent();
        let held: Vec<String> = self
            .query_all(|q| slots.query(q))
            .await?
            .into_iter()
            .filter(|slot| {
                slot.get("runningUntil").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()) > Some(now)
            })
            .filter_map(|slot| slot.get(keys::SK).and_then(|v| v.as_s().ok()).cloned())
            .collect();
        for slot in (0..EXPORT_SLOTS).map(slot_sk).filter(|sk| !held.contains(sk)) {
            let mut tx = self.transaction();
            let taken = tx.put_with(
                Put::builder()
                    .item(keys::PK, s(keys::exports_pk(org)))
                    .item(keys::SK, s(slot.as_str()))
                    .item("exportId", s(job.export_id.to_string()))
                    .item("runningUntil", n((job.created_at + ExportJob::running_at_most()).timestamp()))
                    .condition_expression("attribute_not_exists(PK) OR runningUntil <= :now")
                    .expression_attribute_values(":now", n(now)),
            )?;
            tx.put(record(org, job)?, Some("attribute_not_exists(PK)"))?;
            tx.outbox(org, events)?;
            match tx.commit().await {
                Ok(()) => return Ok(true),
                // Another request took this slot first: try the next.
                Err(TxFailure::Cancelled(reasons)) if reasons.get(taken).is_some_and(CancelReason::lost_a_race) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(false)
    }

    /// Frees the slot a finished job `export_id` holds, for the org's next export. A slot not freed
    /// (this failed) frees itself when the job's hour is over.
    pub async fn release_export_slot(&self, org: &OrgId, export_id: uuid::Uuid) -> Result<(), StoreError> {
        let slots = Partition::table(keys::exports_pk(org)).prefixed(keys::EXPORT_SLOT_SK_PREFIX).consistent();
        let id = export_id.to_string();
        for slot in self.query_all(|q| slots.query(q)).await? {
            if slot.get("exportId").and_then(|v| v.as_s().ok()) != Some(&id) {
                continue;
            }
            let Some(sk) = slot.get(keys::SK).cloned() else { continue };
            let request = self
                .update_request()
                .key(keys::PK, s(keys::exports_pk(org)))
                .key(keys::SK, sk)
                .update_expression("SET runningUntil = :free")
                .condition_expression("exportId = :id")
                .expression_attribute_values(":free", n(0))
                .expression_attribute_values(":id", s(id.as_str()));
            match self.send_update(request).await {
                Ok(_) | Err(StoreError::ConditionFailed) => {}
                Err(other) => return Err(other),
            }
        }
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
        tx.outbox(org, events)?;
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
