//! Published events: the daily job's notices (each once per learner, assignment and occasion).

use super::*;

/// What every notice of the daily job says of its learner on the assignment, as of the job's day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LearnerNotice {
    /// The assignment.
    pub assignment: AssignmentSummary,
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
    /// The assignment's deadline.
    pub deadline: NaiveDate,
    /// The learner's own due date.
    pub due_on: NaiveDate,
    /// The learner's status on the job's day.
    pub status: UserStatus,
    /// The share of the tracked items they completed, from 0 to 1.
    pub progress: f64,
}

/// `assignment.due_soon`: a learner who has not completed the assignment is due in `days` days (7,
/// then 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DueSoon {
    #[serde(flatten)]
    pub notice: LearnerNotice,
    /// Days until the learner's due date.
    pub days: i64,
}

impl Event for DueSoon {
    const DETAIL_TYPE: &'static str = "assignment.due_soon";
}

/// `assignment.overdue`: a learner who has not completed the assignment is past their due date (the
/// first overdue day, then weekly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overdue {
    #[serde(flatten)]
    pub notice: LearnerNotice,
    /// How many days overdue (1 on the first overdue day).
    pub days: i64,
}

impl Event for Overdue {
    const DETAIL_TYPE: &'static str = "assignment.overdue";
}

/// `assignment.recertification_due`: a recertified learner's next cycle has opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecertificationDue {
    #[serde(flatten)]
    pub notice: LearnerNotice,
    /// The first day of the next cycle.
    pub window_opens_on: NaiveDate,
    /// The last day their last completion is valid.
    pub valid_until: NaiveDate,
    /// How many cycles they completed.
    pub cycles: usize,
}

impl Event for RecertificationDue {
    const DETAIL_TYPE: &'static str = "assignment.recertification_due";
}

/// `assignment.expired`: a recertified learner's last completion lapsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Expired {
    #[serde(flatten)]
    pub notice: LearnerNotice,
    /// The last day their last completion was valid.
    pub valid_until: NaiveDate,
    /// How many cycles they completed.
    pub cycles: usize,
}

impl Event for Expired {
    const DETAIL_TYPE: &'static str = "assignment.expired";
}
