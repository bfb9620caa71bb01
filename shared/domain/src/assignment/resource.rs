//! The assignment resource: how the API shows an assignment (`POST /assignments`' answer, the list,
//! the detail) and what `assignment.created` carries.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Assignment, AssignmentSummary, RosterStatus};
use crate::aggregates::ProgressSummary;

/// The assignment resource: its summary, the note, who made it and when, the version for
/// `If-Match`, and its learners' progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentResource {
    #[serde(flatten)]
    pub summary: AssignmentSummary,
    /// The admin's note; `null` if none.
    pub note: Option<String>,
    /// `building` while the rows of a large roster are still being written; `complete` once every
    /// learner the assignee had at creation has one.
    pub roster_status: RosterStatus,
    /// `syncing` while learners' obligations are being brought in line with a change of the rules
    /// (deadline, mandatory flag, active state); `synced` otherwise.
    pub compliance_sync: ComplianceSync,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it (a user id, or an API key's id as `apikey:<id>`).
    pub created_by: String,
    /// When an admin last changed it (its creation, if never).
    pub updated_at: DateTime<Utc>,
    /// Its version: the `If-Match` of its next change.
    pub version: u64,
    /// Its learners by status, as of the day it was read.
    pub progress: ProgressSummary,
}

/// Whether learners' obligations follow an assignment's rules yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ComplianceSync {
    /// A change of the rules is still reaching its learners.
    Syncing,
    /// Every learner's obligations follow the current rules.
    Synced,
}

impl Assignment {
    /// The resource as it stands on `today` (the org's date: it decides who is overdue).
    pub fn resource(&self, today: NaiveDate) -> AssignmentResource {
        AssignmentResource {
            summary: self.summary(),
            note: self.note.clone(),
            roster_status: self.roster_status,
            compliance_sync: if self.compliance_sync.is_some() {
                ComplianceSync::Syncing
            } else {
                ComplianceSync::Synced
            },
            created_at: self.created_at,
            created_by: self.created_by.clone(),
            updated_at: self.updated_at,
            version: self.version,
            progress: self.aggregates.summary(self.item_count, self.deadline, today),
        }
    }
}
