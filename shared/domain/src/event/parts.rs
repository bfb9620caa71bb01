//! What several events carry: an assignment's snapshot, a learner, an admin's override of a learner.

use super::*;

/// The learner an event is about, with their name and email as the service knows them. Unknown is
/// `null` in every event, never `""`: a team event about a user can arrive before the event that
/// creates the user, and the platform may send a user without a name or email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Learner {
    /// The learner's user id.
    pub user_id: UserId,
    /// Their name; `null` while unknown (never `""`).
    pub user_name: Option<String>,
    /// Their email; `null` while unknown (never `""`).
    pub user_email: Option<String>,
}

impl Learner {
    /// `user` with their projected `profile`'s name and email, an absent or empty one as unknown
    /// (`null`).
    pub fn known(user: UserId, profile: Option<&User>) -> Self {
        let known = |field: fn(&User) -> &str| profile.map(field).filter(|v| !v.is_empty()).map(str::to_owned);
        Learner { user_id: user, user_name: known(|u| u.name.as_str()), user_email: known(|u| u.email.as_str()) }
    }

    /// The same as [`Learner::known`]: every event sends an unknown name or email as `null`. (It once
    /// sent an empty one as `""`; kept for its callers.)
    pub fn projected(user: UserId, profile: Option<&User>) -> Self {
        Self::known(user, profile)
    }
}

/// One learner's own date and exemption on an assignment (an admin's change of them:
/// [`UserUpdated`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
