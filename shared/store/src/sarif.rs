//! SARIF uploads: what a presigned upload is about (the scan and who asked), until its object is
//! ingested, and then what the ingestion answered. One item per upload in the org's partition space;
//! expires by TTL.

use chrono::Duration;
use domain::{OrgId, SarifUpload, UploadStatus};

use crate::dynamo::{s, to_item};
use crate::records::{Record, SarifUploadRecord};
use crate::{Store, StoreError, keys};

/// How long an upload and its outcome stay readable.
const KEEP_DAYS: i64 = 7;

fn record(org: &OrgId, upload: &SarifUpload) -> Result<crate::dynamo::Item, StoreError> {
    to_item(&SarifUploadRecord {
        pk: keys::sarif_upload_pk(org, upload.upload_id),
        sk: keys::SARIF_UPLOAD_SK.into(),
        entity: "sarif-upload".into(),
        expires_at: Some((upload.created_at + Duration::days(KEEP_DAYS)).timestamp()),
        upload: upload.clone(),
    })
}

impl Store {
    /// Records a new upload (its id is fresh: an existing one is never overwritten).
    pub async fn put_sarif_upload(&self, org: &OrgId, upload: &SarifUpload) -> Result<(), StoreError> {
        self.send_put(
            self.put_request().set_item(Some(record(org, upload)?)).condition_expression("attribute_not_exists(PK)"),
        )
        .await?;
        Ok(())
    }

    pub async fn sarif_upload(&self, org: &OrgId, upload_id: uuid::Uuid) -> Result<Option<SarifUpload>, StoreError> {
        self.get_item(keys::sarif_upload_pk(org, upload_id), keys::SARIF_UPLOAD_SK, true)
            .await?
            .map(SarifUploadRecord::entity_of)
            .transpose()
    }

    /// Records how a pending upload ended. `false` if it had already ended (a redelivered S3 event):
    /// the first outcome stays.
    pub async fn finish_sarif_upload(&self, org: &OrgId, upload: &SarifUpload) -> Result<bool, StoreError> {
        if upload.status == UploadStatus::Pending {
            return Err(StoreError::Other("an upload ends ingested or failed".into()));
        }
        let result = self
            .send_put(
                self.put_request()
                    .set_item(Some(record(org, upload)?))
                    .condition_expression("#status = :pending")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":pending", s("pending")),
            )
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
