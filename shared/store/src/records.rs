//! Item shapes: one record per entity that puts the keys beside the flattened domain type.

use domain::{
    ApiKey, Assignment, AuditEntry, CatalogNode, ComplianceRollup, CustomCourse, LearnerCompliance, ProgressRow,
    RowClass, Team, TeamId, User,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dynamo::{Item, from_item, s};
use crate::{Store, StoreError};

/// An item shape that holds one domain entity beside its keys: how every read turns items into
/// entities, so no query maps items by hand.
pub(crate) trait Record: DeserializeOwned {
    type Entity;

    fn into_entity(self) -> Self::Entity;

    /// The entity of a stored item; an item of another shape is `Corrupt`.
    fn entity_of(item: Item) -> Result<Self::Entity, StoreError> {
        Ok(from_item::<Self>(item)?.into_entity())
    }

    /// [`Record::entity_of`] for a job's read, which skips what it cannot read rather than stop: the
    /// item's key instead of an entity (ids only: the decoder's message may quote a field's value).
    fn entity_or_key(item: Item) -> Result<Self::Entity, CorruptItem> {
        let key = |name: &str| match item.get(name) {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(value)) => value.clone(),
            _ => String::new(),
        };
        let corrupt = CorruptItem { pk: key(crate::keys::PK), sk: key(crate::keys::SK) };
        Self::entity_of(item).map_err(|_| corrupt)
    }
}

/// A stored item a job's read could not turn into its entity, by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptItem {
    pub pk: String,
    pub sk: String,
}

impl std::fmt::Display for CorruptItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.pk, self.sk)
    }
}

macro_rules! record {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty = $attr:literal),* $(,)? } flatten $inner:ident : $inner_ty:ty) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, Deserialize)]
        pub(crate) struct $name {
            #[serde(rename = "PK")]
            pub pk: String,
            #[serde(rename = "SK")]
            pub sk: String,
            pub entity: String,
            $(
                #[serde(rename = $attr, default, skip_serializing_if = "Option::is_none")]
                pub $field: $ty,
            )*
            #[serde(flatten)]
            pub $inner: $inner_ty,
        }

        impl Record for $name {
            type Entity = $inner_ty;

            fn into_entity(self) -> $inner_ty {
                self.$inner
            }
        }
    };
}
pub(crate) use record;

record!(
    /// GSI2 and GSI3 are present only while the assignment is active (sparse indexes).
    AssignmentRecord {
        gsi1pk: Option<String> = "GSI1PK",
        gsi1sk: Option<String> = "GSI1SK",
        gsi2pk: Option<String> = "GSI2PK",
        gsi2sk: Option<String> = "GSI2SK",
        gsi3pk: Option<String> = "GSI3PK",
        gsi3sk: Option<String> = "GSI3SK",
    } flatten assignment: Assignment
);

record!(
    /// GSI3 only while the row is incomplete, in the rates and has its own due date (reminders), or
    /// holds a recertification (by the day it lapses); GSI1 only while it holds one (by the day the
    /// next cycle opens).
    ProgressRecord {
        gsi1pk: Option<String> = "GSI1PK",
        gsi1sk: Option<String> = "GSI1SK",
        gsi2pk: Option<String> = "GSI2PK",
        gsi2sk: Option<String> = "GSI2SK",
        gsi3pk: Option<String> = "GSI3PK",
        gsi3sk: Option<String> = "GSI3SK",
        phase: Option<RowClass> = "phase",
    } flatten row: ProgressRow
);

record!(
    /// GSI1 and GSI3 (by email) only while active; GSI2 only while active and in a team.
    UserRecord {
        gsi1pk: Option<String> = "GSI1PK",
        gsi1sk: Option<String> = "GSI1SK",
        gsi2pk: Option<String> = "GSI2PK",
        gsi2sk: Option<String> = "GSI2SK",
        gsi3pk: Option<String> = "GSI3PK",
        gsi3sk: Option<String> = "GSI3SK",
        updated_at_ms: Option<i64> = "updatedAtMs",
        revision: Option<u64> = "revision",
    } flatten user: User
);

record!(
    TeamRecord {
        gsi1pk: Option<String> = "GSI1PK",
        gsi1sk: Option<String> = "GSI1SK",
        updated_at_ms: Option<i64> = "updatedAtMs",
        revision: Option<u64> = "revision",
    } flatten team: Team
);

record!(
    CourseRecord {
        gsi1pk: Option<String> = "GSI1PK",
        gsi1sk: Option<String> = "GSI1SK",
        updated_at_ms: Option<i64> = "updatedAtMs",
    } flatten course: CustomCourse
);

record!(
    ApiKeyRecord {
        gsi1pk: Option<String> = "GSI1PK",
        gsi1sk: Option<String> = "GSI1SK",
        token_sha256: Option<String> = "tokenSha256",
    } flatten key: ApiKey
);

record!(AuditRecord {} flatten entry: AuditEntry);

record!(
    /// An export job (see `export_jobs`); expires by TTL long after its file.
    ExportRecord { expires_at: Option<i64> = "expiresAt" } flatten job: domain::ExportJob
);

record!(
    /// A SARIF upload (see `sarif`); expires by TTL.
    SarifUploadRecord { expires_at: Option<i64> = "expiresAt" } flatten upload: domain::SarifUpload
);

record!(
    /// GSI1 only while the learner has obligations (the learners listing, by team); GSI3 only while
    /// the clock alone will make them non-compliant (by that day, for the daily job).
    LearnerComplianceRecord {
        gsi1pk: Option<String> = "GSI1PK",
        gsi1sk: Option<String> = "GSI1SK",
        gsi3pk: Option<String> = "GSI3PK",
        gsi3sk: Option<String> = "GSI3SK",
        non_compliant_from: Option<chrono::NaiveDate> = "nonCompliantFrom",
    } flatten learner: LearnerCompliance
);

record!(
    /// The org's rollup has no `teamId`; each team's has its own.
    RollupRecord {
        team_id: Option<TeamId> = "teamId",
        mandatory_assignments: Option<i64> = "mandatoryAssignments",
    } flatten rollup: ComplianceRollup
);

record!(CatalogRecord {} flatten node: CatalogNode);

/// Marks "an active assignment for this target and assignee exists"; written and removed in the same
/// transaction as the assignment's activation changes, so duplicates are refused even under races.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LockRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub entity: String,
    #[serde(rename = "assignmentId")]
    pub assignment_id: domain::AssignmentId,
}

impl Store {
    /// The entities records hold, by (PK, SK); missing ones are left out, the rest in no particular order.
    pub(crate) async fn batch_get_entities<R: Record>(
        &self,
        keys: impl IntoIterator<Item = (String, &str)>,
    ) -> Result<Vec<R::Entity>, StoreError> {
        let keys = keys
            .into_iter()
            .map(|(pk, sk)| Item::from([(crate::keys::PK.to_owned(), s(pk)), (crate::keys::SK.to_owned(), s(sk))]))
            .collect();
        self.batch_get(keys).await?.into_iter().map(R::entity_of).collect()
    }

    /// The entity a record holds, by key (eventually consistent).
    pub(crate) async fn get_entity<R: Record>(&self, pk: String, sk: &str) -> Result<Option<R::Entity>, StoreError> {
        self.get(pk, sk).await?.map(R::entity_of).transpose()
    }
}
