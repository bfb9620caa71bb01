//! Published events about an assignment and its learners: an admin's changes, a learner added, completed or changed, compliance.

use super::*;

/// `assignment.created`: an admin (or a SARIF ingestion) created an assignment. Its data is the
/// assignment resource as created (what `POST /assignments` answers), and who created it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentCreated {
    /// The assignment as created (its fields beside `actorId`).
    #[serde(flatten)]
    pub assignment: AssignmentResource,
    /// Who created it (a user id, or an API key's id).
    pub actor_id: String,
}

impl Event for AssignmentCreated {
    const DETAIL_TYPE: &'static str = "assignment.created";
}

/// `assignment.updated`: an admin changed an assignment (its deadline, mandatory flag, note or
/// recurrence) without deactivating or reactivating it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentUpdated {
    /// The assignment as changed.
    pub assignment: AssignmentSummary,
    /// Who changed it.
    pub actor_id: String,
}

impl Event for AssignmentUpdated {
    const DETAIL_TYPE: &'static str = "assignment.updated";
}

/// `assignment.deactivated`: an admin deactivated an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentDeactivated {
    /// The assignment as changed.
    pub assignment: AssignmentSummary,
    /// Who changed it.
    pub actor_id: String,
}

impl Event for AssignmentDeactivated {
    const DETAIL_TYPE: &'static str = "assignment.deactivated";
}

/// `assignment.reactivated`: an admin reactivated an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentReactivated {
    /// The assignment as changed.
    pub assignment: AssignmentSummary,
    /// Who changed it.
    pub actor_id: String,
}

impl Event for AssignmentReactivated {
    const DETAIL_TYPE: &'static str = "assignment.reactivated";
}

/// `assignment.user_added`: a learner came into the assignment's scope after it was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAdded {
    /// The assignment they got.
    pub assignment: AssignmentSummary,
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
}

impl Event for UserAdded {
    const DETAIL_TYPE: &'static str = "assignment.user_added";
}

/// `assignment.completed`: a learner completed every tracked item of the assignment (again, for
/// another cycle of a recertification). Its data is the assignment's summary, and the learner and
/// when they completed it beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentCompleted {
    /// The assignment they completed (its fields beside the learner's).
    #[serde(flatten)]
    pub assignment: AssignmentSummary,
    /// When they completed its last item (also the event's `occurredAt`).
    pub completed_at: DateTime<Utc>,
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
}

impl Event for AssignmentCompleted {
    const DETAIL_TYPE: &'static str = "assignment.completed";
}

/// `assignment.user_updated`: an admin extended or exempted one learner (`before`/`after` as in the
/// audit entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdated {
    /// The assignment.
    pub assignment: AssignmentSummary,
    /// Who changed the learner.
    pub actor_id: String,
    /// The learner's date and exemption before the change.
    pub before: LearnerOverride,
    /// The learner's date and exemption after it.
    pub after: LearnerOverride,
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
}

impl Event for UserUpdated {
    const DETAIL_TYPE: &'static str = "assignment.user_updated";
}

/// `compliance.changed`: a learner became compliant or non-compliant (with every mandatory
/// assignment they have).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceChanged {
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
    /// Their team; `null` if none.
    pub team_id: Option<TeamId>,
    /// Whether they are compliant now.
    pub compliant: bool,
    /// For a learner who became non-compliant: the first day they were; otherwise `null`.
    pub non_compliant_since: Option<NaiveDate>,
}

impl Event for ComplianceChanged {
    const DETAIL_TYPE: &'static str = "compliance.changed";
}
