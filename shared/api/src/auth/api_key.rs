//! API keys: `scs_live_` and 32 alphanumerics, looked up by the hash of the whole token; revocation and
//! expiry take effect on the next request.

use chrono::{DateTime, Utc};
use domain::Role;
use store::RateSubject;

use super::{Authenticator, Principal};
use crate::problem::ApiError;

pub const API_KEY_PREFIX: &str = "scs_live_";
const API_KEY_RANDOM_LEN: usize = 32;

/// Whether `token` has the shape of an API key: prefix + 32 ASCII alphanumerics.
pub fn looks_like_api_key(token: &str) -> bool {
    token
        .strip_prefix(API_KEY_PREFIX)
        .is_some_and(|rest| rest.len() == API_KEY_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Authenticator {
    /// The caller an API key names, while the key is neither revoked nor expired.
    pub(super) async fn api_key(&self, token: &str, now: DateTime<Utc>) -> Result<(Principal, RateSubject), ApiError> {
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
        let principal = Principal {
            org: key.org_id,
            actor_id: format!("apikey:{}", key.key_id),
            actor_email: None,
            role: Role::ApiKey,
            scopes: key.scopes,
            user_id: None,
        };
        Ok((principal, RateSubject::ApiKey(key.key_id)))
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
}
