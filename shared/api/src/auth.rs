//! Authentication, called first by every route. Yields the [`Principal`], the only source of the org id.
//!
//! Not an API Gateway authorizer: an HTTP API authorizer can only refuse with a bare 403 and its result
//! cache would delay revocation, which takes effect on the very next request here.

use chrono::{DateTime, Timelike, Utc};
use domain::{OrgId, Role, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use store::Store;

use crate::problem::ApiError;

pub const ASSIGNMENTS_READ: &str = "assignments:read";
pub const ASSIGNMENTS_WRITE: &str = "assignments:write";
pub const PROGRESS_READ: &str = "progress:read";
pub const AUDIT_LOG_READ: &str = "audit-log:read";
/// Everything an org admin may do.
pub const ALL_SCOPES: &[&str] = &[ASSIGNMENTS_READ, ASSIGNMENTS_WRITE, PROGRESS_READ, AUDIT_LOG_READ];

pub const API_KEY_PREFIX: &str = "scs_live_";
const API_KEY_RANDOM_LEN: usize = 32;
pub const PER_MINUTE_LIMIT: u32 = 60;
pub const PER_HOUR_LIMIT: u32 = 1_000;

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

/// Claims of the platform's web-app session tokens (HS256).
#[derive(Debug, Deserialize)]
struct SessionClaims {
    sub: String,
    org: String,
    role: String,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    session_key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(..)")
    }
}

/// Whether `token` has the shape of an API key: prefix + 32 ASCII alphanumerics.
pub fn looks_like_api_key(token: &str) -> bool {
    token
        .strip_prefix(API_KEY_PREFIX)
        .is_some_and(|rest| rest.len() == API_KEY_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Authenticator {
    pub fn new(store: Store, session_secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        Self { store, session_key: DecodingKey::from_secret(session_secret), validation }
    }

    /// Verifies the `Authorization` header value and, for API keys, counts the request against the
    /// key's limits.
    pub async fn authenticate(&self, authorization: Option<&str>, now: DateTime<Utc>) -> Result<Principal, ApiError> {
        let header = authorization.ok_or(ApiError::Unauthorized("missing Authorization: Bearer token"))?;
        let (scheme, token) =
            header.trim().split_once(' ').ok_or(ApiError::Unauthorized("malformed Authorization header"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized("Authorization must use the Bearer scheme"));
        }
        let token = token.trim();
        if token.starts_with(API_KEY_PREFIX) { self.api_key(token, now).await } else { self.session(token) }
    }

    async fn api_key(&self, token: &str, now: DateTime<Utc>) -> Result<Principal, ApiError> {
        if !looks_like_api_key(token) {
            return Err(ApiError::Unauthorized("malformed API key"));
        }
        let key = self.store.api_key_by_token(token).await?.ok_or(ApiError::Unauthorized("unknown API key"))?;
        if key.revoked_at.is_some_and(|at| at <= now) {
            return Err(ApiError::Unauthorized("this API key has been revoked"));
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::Unauthorized("this API key has expired"));
        }
        let counts = self.store.count_request(&key.org_id, key.key_id, now).await?;
        if counts.minute > PER_MINUTE_LIMIT {
            return Err(ApiError::RateLimited { retry_after_secs: u64::from(60 - now.second()), limit: "60/minute" });
        }
        if counts.hour > PER_HOUR_LIMIT {
            let left = 3600 - (now.minute() * 60 + now.second());
            return Err(ApiError::RateLimited { retry_after_secs: u64::from(left), limit: "1000/hour" });
        }
        Ok(Principal {
            org: key.org_id,
            actor_id: format!("apikey:{}", key.key_id),
            actor_email: None,
            role: Role::ApiKey,
            scopes: key.scopes,
            user_id: None,
        })
    }

    fn session(&self, token: &str) -> Result<Principal, ApiError> {
        let claims = jsonwebtoken::decode::<SessionClaims>(token, &self.session_key, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::Unauthorized("the session token has expired")
                }
                _ => ApiError::Unauthorized("invalid session token"),
            })?
            .claims;
        let org = OrgId::parse(&claims.org).map_err(|_| ApiError::Unauthorized("invalid session token"))?;
        let user = UserId::parse(&claims.sub).map_err(|_| ApiError::Unauthorized("invalid session token"))?;
        let (role, scopes) = match claims.role.as_str() {
            "org_admin" => (Role::OrgAdmin, ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect()),
            "learner" => (Role::Learner, vec![PROGRESS_READ.to_owned()]),
            _ => return Err(ApiError::Unauthorized("invalid session token")),
        };
        Ok(Principal {
            org,
            actor_id: format!("user:{user}"),
            actor_email: claims.email,
            role,
            scopes,
            user_id: Some(user),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_shape_is_prefix_and_32_alphanumerics() {
        assert!(looks_like_api_key(&format!("scs_live_{}", "a".repeat(32))));
        assert!(!looks_like_api_key(&format!("scs_live_{}", "a".repeat(31))));
        assert!(!looks_like_api_key(&format!("scs_live_{}-", "a".repeat(31))));
        assert!(!looks_like_api_key(&format!("scs_test_{}", "a".repeat(32))));
    }

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
