//! Who is calling, and the scopes that decide what it may do.

use domain::{OrgId, Role, UserId};

use crate::problem::ApiError;

pub const ASSIGNMENTS_READ: &str = "assignments:read";
pub const ASSIGNMENTS_WRITE: &str = "assignments:write";
pub const PROGRESS_READ: &str = "progress:read";
pub const AUDIT_LOG_READ: &str = "audit-log:read";
/// The compliance dashboard and learners listing (the compliance export is `assignments:read`, as
/// every export).
pub const COMPLIANCE_READ: &str = "compliance:read";
/// Posting code-scanning results (`POST /sarif`, uploads): the scope a CI pipeline's key holds.
pub const SARIF_INGEST: &str = "sarif:ingest";
/// Reading webhook endpoints, the event catalog and the delivery log.
pub const WEBHOOKS_READ: &str = "webhooks:read";
/// Managing webhook endpoints: create, change, delete, rotate a secret, test, redeliver, recover.
pub const WEBHOOKS_WRITE: &str = "webhooks:write";
/// Everything an org admin may do.
pub const ALL_SCOPES: &[&str] = &[
    ASSIGNMENTS_READ,
    ASSIGNMENTS_WRITE,
    PROGRESS_READ,
    AUDIT_LOG_READ,
    COMPLIANCE_READ,
    SARIF_INGEST,
    WEBHOOKS_READ,
    WEBHOOKS_WRITE,
];

/// Who is calling, as established by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub org: OrgId,
    /// Audit actor: `apikey:<keyId>` or `user:<userId>`.
    pub actor_id: String,
    pub actor_email: Option<String>,
    pub role: Role,
    pub scopes: Vec<String>,
    /// Set for session tokens: the user behind them.
    pub user_id: Option<UserId>,
}

impl Principal {
    /// Deny by default: the scope must be granted explicitly.
    pub fn require_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope { required: scope.to_owned(), present: self.scopes.clone() })
        }
    }

    /// Admin routes: learners are refused whatever their scopes.
    pub fn require_admin_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.role == Role::Learner {
            return Err(ApiError::Forbidden("learners can only read their own assignments"));
        }
        self.require_scope(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_deny_by_default_and_learners_never_reach_admin_routes() {
        let learner = Principal {
            org: OrgId::parse("acme").unwrap(),
            actor_id: "user:x".into(),
            actor_email: None,
            role: Role::Learner,
            scopes: vec![PROGRESS_READ.into()],
            user_id: None,
        };
        assert!(learner.require_scope(PROGRESS_READ).is_ok());
        assert!(matches!(learner.require_scope(ASSIGNMENTS_READ), Err(ApiError::InsufficientScope { .. })));
        let mut elevated = learner.clone();
        elevated.scopes = ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        assert!(matches!(elevated.require_admin_scope(ASSIGNMENTS_READ), Err(ApiError::Forbidden(_))));
    }
}
