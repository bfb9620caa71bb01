//! The service's projection of the platform's people and content it does not own (users, teams,
//! custom courses), plus API keys and audit entries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{CustomCourseItem, TrackedUnit};
use crate::ids::{CourseId, OrgId, TeamId, UserId};
use crate::vocabulary::Role;

/// A platform user as last reported by `platform.users` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<TeamId>,
    pub is_active: bool,
    /// `occurredAt` of the newest event applied.
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub team_id: TeamId,
    pub name: String,
    /// A deleted team keeps its assignments (history) but gains no new members.
    pub is_deleted: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomCourse {
    pub course_id: CourseId,
    pub name: String,
    pub is_active: bool,
    pub items: Vec<CustomCourseItem>,
    /// `items` resolved against the catalog when the course was last written.
    pub units: Vec<TrackedUnit>,
    pub updated_at: DateTime<Utc>,
}

/// An API key. The token itself is never stored: only its SHA-256 (the lookup key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub key_id: uuid::Uuid,
    pub org_id: OrgId,
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl ApiKey {
    /// Usable at `now`: not revoked and not expired.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none_or(|at| at > now) && self.expires_at.is_none_or(|at| at > now)
    }
}

/// One audit-log entry, written in the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    pub created_at: DateTime<Utc>,
    /// e.g. `assignment.created`, `assignment.updated`, `assignment.exported`.
    pub action: String,
    pub actor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    pub actor_role: Role,
    pub target_type: String,
    pub target_id: String,
    pub target_label: String,
    /// `{"before": …, "after": …}` and any context.
    pub metadata: serde_json::Value,
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn api_keys_stop_working_at_revocation_or_expiry() {
        let now = Utc::now();
        let mut key = ApiKey {
            key_id: uuid::Uuid::nil(),
            org_id: OrgId::parse("acme").unwrap(),
            name: "ci".into(),
            scopes: vec!["assignments:read".into()],
            expires_at: None,
            revoked_at: None,
            created_by: "user:x".into(),
            created_at: now,
        };
        assert!(key.is_usable(now));
        key.expires_at = Some(now + Duration::hours(1));
        assert!(key.is_usable(now));
        assert!(!key.is_usable(now + Duration::hours(1)));
        key.expires_at = None;
        key.revoked_at = Some(now);
        assert!(!key.is_usable(now), "revocation takes effect immediately");
    }
}
