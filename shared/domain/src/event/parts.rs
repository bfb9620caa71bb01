//! What several events carry: an assignment's snapshot, a learner, an admin's override of a learner.

use super::*;

/// An assignment as an event shows it: what it is, whom it is for and its rules, as of the event
/// (the fields of [`crate::AssignmentSummary`], owned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentSnapshot {
    /// The assignment's id.
    pub id: AssignmentId,
    /// What is assigned: `contentArea`, `targetType` and `targetId`.
    #[serde(flatten)]
    pub target: Target,
    /// The assigned content's title.
    pub target_title: String,
    /// Where the content sits in the catalog (its breadcrumb).
    pub target_path: String,
    /// Whom it is assigned to: `assigneeType` (`user`, `team` or `org`) and `assigneeId`.
    #[serde(flatten)]
    pub assignee: Assignee,
    /// The assignee's name.
    pub assignee_name: String,
    /// The due date of learners without one of their own.
    pub deadline: NaiveDate,
    /// A relative deadline: each learner is due this many days after they got the assignment. Absent
    /// for a fixed deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_in_days: Option<u32>,
    /// Only learners who joined the scope after the assignment was created get it. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_starters_only: bool,
    /// Recertification: how long each completion is valid. Absent for a one-off assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Recurrence>,
    /// Whether the assignment counts towards compliance.
    pub is_mandatory: bool,
    /// Whether the assignment is active (an inactive one records no progress and sends no reminders).
    pub is_active: bool,
    /// How many tracked items completing it takes.
    pub item_count: u32,
}

impl From<&Assignment> for AssignmentSnapshot {
    fn from(a: &Assignment) -> Self {
        let s = a.summary();
        AssignmentSnapshot {
            id: s.id,
            target: s.target.clone(),
            target_title: s.target_title.to_owned(),
            target_path: s.target_path.to_owned(),
            assignee: s.assignee.clone(),
            assignee_name: s.assignee_name.to_owned(),
            deadline: s.deadline,
            due_in_days: s.due_in_days,
            new_starters_only: s.new_starters_only,
            recurrence: s.recurrence,
            is_mandatory: s.is_mandatory,
            is_active: s.is_active,
            item_count: s.item_count,
        }
    }
}

/// The learner an event is about, with their name and email as the service knows them (`null` while
/// unknown: a team event about a user can arrive before the event that creates the user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Learner {
    /// The learner's user id.
    pub user_id: UserId,
    /// Their name; `null` while unknown.
    pub user_name: Option<String>,
    /// Their email; `null` while unknown.
    pub user_email: Option<String>,
}

impl Learner {
    /// `user` with their projected `profile`'s name and email, an empty one as unknown.
    pub fn known(user: UserId, profile: Option<&User>) -> Self {
        let known = |field: fn(&User) -> &str| profile.map(field).filter(|v| !v.is_empty()).map(str::to_owned);
        Learner { user_id: user, user_name: known(|u| u.name.as_str()), user_email: known(|u| u.email.as_str()) }
    }

    /// `user` with their projected `profile`'s name and email as they are (an empty one stays empty).
    pub fn projected(user: UserId, profile: Option<&User>) -> Self {
        Learner {
            user_id: user,
            user_name: profile.map(|u| u.name.clone()),
            user_email: profile.map(|u| u.email.clone()),
        }
    }
}

/// One learner's own date and exemption on an assignment (an admin's change of them:
/// [`UserUpdated`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LearnerOverride {
    /// The learner's due date.
    pub due_on: NaiveDate,
    /// The date an admin extended them to; `null` if none.
    pub extended_to: Option<NaiveDate>,
    /// Whether an admin exempted them.
    pub exempt: bool,
    /// The exemption's reason; `null` if not exempt.
    pub reason: Option<String>,
    /// The learner's row's revision (the `If-Match` of their next change).
    pub version: u64,
}

impl LearnerOverride {
    /// `row`'s, on an assignment due on `deadline` (the audit entry's `before`/`after`:
    /// [`ProgressRow::override_snapshot`]).
    pub fn of(row: &ProgressRow, deadline: NaiveDate) -> Self {
        LearnerOverride {
            due_on: row.due_on(deadline),
            extended_to: row.extended_to,
            exempt: row.exemption.is_some(),
            reason: row.exemption.as_ref().map(|e| e.reason.clone()),
            version: row.revision,
        }
    }
}
