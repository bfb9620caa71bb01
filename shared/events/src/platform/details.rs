//! The platform's events, one type per detail type (the detail's fields this service reads; `orgId`,
//! which every detail carries, is read first).

use super::*;

/// `user.created`: a user joined the org.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// Their team; absent, `null` or empty for none.
    #[serde(default)]
    pub team_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl Event for UserCreated {
    const DETAIL_TYPE: &'static str = "user.created";
}

/// `user.updated`: a user's profile, role or team changed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdated {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// Their team now; absent, `null` or empty for none.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Their team before, when the change moved them.
    #[serde(default)]
    pub previous_team_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl Event for UserUpdated {
    const DETAIL_TYPE: &'static str = "user.updated";
}

/// `user.deactivated`: a user left the org.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDeactivated {
    pub user_id: String,
    pub occurred_at: DateTime<Utc>,
}

impl Event for UserDeactivated {
    const DETAIL_TYPE: &'static str = "user.deactivated";
}

/// `team.member_added`: a user joined a team.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberAdded {
    pub team_id: String,
    #[serde(default)]
    pub team_name: Option<String>,
    pub user_id: String,
    pub occurred_at: DateTime<Utc>,
}

impl Event for MemberAdded {
    const DETAIL_TYPE: &'static str = "team.member_added";
}

/// `team.member_removed`: a user left a team.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRemoved {
    pub team_id: String,
    #[serde(default)]
    pub team_name: Option<String>,
    pub user_id: String,
    pub occurred_at: DateTime<Utc>,
}

impl Event for MemberRemoved {
    const DETAIL_TYPE: &'static str = "team.member_removed";
}

/// `team.renamed`: a team's new name (an event without one is refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamRenamed {
    pub team_id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl Event for TeamRenamed {
    const DETAIL_TYPE: &'static str = "team.renamed";
}

/// `team.deleted`: a team is gone.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamDeleted {
    pub team_id: String,
    /// Its name, if given (not kept).
    #[serde(default)]
    pub name: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl Event for TeamDeleted {
    const DETAIL_TYPE: &'static str = "team.deleted";
}

/// `challenge.completed`: a user completed a challenge of a topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeCompleted {
    pub user_id: String,
    pub topic_id: String,
    pub challenge_index: u16,
    #[serde(default)]
    pub score: Option<f64>,
    pub completed_at: DateTime<Utc>,
}

impl Event for ChallengeCompleted {
    const DETAIL_TYPE: &'static str = "challenge.completed";
}

/// `scenario.completed`: a user completed a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioCompleted {
    pub user_id: String,
    pub scenario_id: String,
    #[serde(default)]
    pub score: Option<f64>,
    pub completed_at: DateTime<Utc>,
}

impl Event for ScenarioCompleted {
    const DETAIL_TYPE: &'static str = "scenario.completed";
}

/// `custom_course.updated`: a custom course was created or changed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomCourseUpdated {
    pub course_id: String,
    pub name: String,
    pub is_active: bool,
    pub items: Vec<CustomCourseItem>,
    /// Not in the v1 detail; the envelope's `time` stands in when absent.
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
}

impl Event for CustomCourseUpdated {
    const DETAIL_TYPE: &'static str = "custom_course.updated";
}
