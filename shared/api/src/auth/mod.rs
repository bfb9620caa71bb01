//! Authentication, called first by every route. Yields the [`Principal`], the only source of the org id,
//! once the request is counted against its caller's and its org's rate limits ([`crate::rate`]).
//!
//! Not an API Gateway authorizer: an HTTP API authorizer can only refuse with a bare 403 and its result
//! cache would delay revocation, which takes effect on the very next request here.
//!
//! - `principal`: who is calling and the scopes;
//! - `api_key`: API keys;
//! - `session`: the platform's session tokens.

mod api_key;
mod principal;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::OrgId;
use jsonwebtoken::{Algorithm, Validation};
use store::{RateLimits, RateSubject, Store, StoreError};

pub use api_key::{API_KEY_PREFIX, looks_like_api_key};
pub use principal::{
    ALL_SCOPES, ASSIGNMENTS_READ, ASSIGNMENTS_WRITE, AUDIT_LOG_READ, COMPLIANCE_READ, PROGRESS_READ, Principal,
    SARIF_INGEST, WEBHOOKS_READ, WEBHOOKS_WRITE,
};

use crate::problem::ApiError;
use crate::rate::{CALLER_LIMITS, ORG_LIMITS, RateLimited, RateScope, RateStatus, check_rate};
use crate::secret::SessionSecret;

/// A verified caller and where it stands against its rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub principal: Principal,
    pub rate: RateStatus,
}

/// An org's own limits (none: the default) and when they were read.
type ReadLimits = (Option<RateLimits>, Instant);

#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    /// What verifies session tokens (and keys the cursors): every version the container holds.
    secret: Arc<SessionSecret>,
    validation: Validation,
    /// The orgs' own rate limits, as read in the last minute (a change takes effect within a minute).
    org_limits: Arc<Mutex<HashMap<OrgId, ReadLimits>>>,
    /// Local only (feature `local`): an org whose requests are counted but never refused.
    #[cfg(feature = "local")]
    unlimited: Option<OrgId>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(..)")
    }
}

impl Authenticator {
    /// Verifies session tokens signed with `session_secret` (tests, the local gateway).
    pub fn new(store: Store, session_secret: &[u8]) -> Self {
        Self::with_secret(store, SessionSecret::fixed(session_secret))
    }

    /// Verifies session tokens with the versions of `secret` (Secrets Manager's, deployed).
    pub fn with_secret(store: Store, secret: SessionSecret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        // `aud` is checked only when configured ([`Authenticator::with_issuer_and_audience`]).
        validation.validate_aud = false;
        Self {
            store,
            secret: Arc::new(secret),
            validation,
            org_limits: Default::default(),
            #[cfg(feature = "local")]
            unlimited: None,
        }
    }

    /// Local only: `org`'s requests are still counted, but never refused for their rate, so a fuzzer
    /// sending thousands of requests reaches the handlers instead of 429s. Compiled only with the
    /// `local` feature, which only the local gateway enables.
    #[cfg(feature = "local")]
    pub fn unlimited_for(mut self, org: OrgId) -> Self {
        self.unlimited = Some(org);
        self
    }

    fn is_unlimited(&self, _org: &OrgId) -> bool {
        #[cfg(feature = "local")]
        if self.unlimited.as_ref() == Some(_org) {
            return true;
        }
        false
    }

    /// The secret's versions this container holds (read on its first authenticated request).
    pub fn secret(&self) -> &SessionSecret {
        &self.secret
    }

    /// Verifies the `Authorization` header value and counts the request against the caller's limits
    /// (per API key, or per user for session tokens).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, ApiError> {
        let header = authorization.ok_or(ApiError::Unauthorized("missing Authorization: Bearer token"))?;
        let (scheme, token) =
            header.trim().split_once(' ').ok_or(ApiError::Unauthorized("malformed Authorization header"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized("Authorization must use the Bearer scheme"));
        }
        let token = token.trim();
        let (principal, subject) = if token.starts_with(API_KEY_PREFIX) {
            self.api_key(token, now).await?
        } else {
            self.session(token).await?
        };
        let org = &principal.org;
        let counts = self.store.count_request(org, subject, now).await?;
        let caller = self.within(check_rate(&counts, CALLER_LIMITS, RateScope::of(subject), now), org)?;
        // Only what the caller's own limit lets through counts against its org's: one runaway key does
        // not use up its org's requests.
        let (org_counts, org_limits) =
            tokio::join!(self.store.count_request(org, RateSubject::Org, now), self.org_limits(org));
        let org_limits = org_limits?.unwrap_or(ORG_LIMITS);
        let org_rate = self.within(check_rate(&org_counts?, org_limits, RateScope::Org, now), org)?;
        let rate = if org_rate.remaining < caller.remaining { org_rate } else { caller };
        Ok(Authenticated { principal, rate })
    }

    /// The org's own limits, read at most once a minute per container.
    async fn org_limits(&self, org: &OrgId) -> Result<Option<RateLimits>, ApiError> {
        const FRESH: Duration = Duration::from_secs(60);
        /// Orgs remembered per container at most (then it starts again: a read each).
        const REMEMBERED: usize = 10_000;
        let cached = self.org_limits.lock().ok().and_then(|cache| cache.get(org).copied());
        if let Some((limits, _)) = cached.filter(|(_, read_at)| read_at.elapsed() < FRESH) {
            return Ok(limits);
        }
        // An unreadable setting is the default, not every request of the org refused.
        let limits = match self.store.org_rate_limits(org).await {
            Ok(limits) => limits,
            Err(StoreError::Corrupt(_)) => {
                tracing::error!(org = %org, "the org's rate limits are not readable: the default applies");
                None
            }
            Err(other) => return Err(other.into()),
        };
        if let Ok(mut cache) = self.org_limits.lock() {
            if cache.len() >= REMEMBERED {
                cache.clear();
            }
            cache.insert(org.clone(), (limits, Instant::now()));
        }
        Ok(limits)
    }

    /// A limit's verdict, except for the local-only unlimited org, whose requests are let through.
    fn within(&self, checked: Result<RateStatus, RateLimited>, org: &OrgId) -> Result<RateStatus, ApiError> {
        match checked {
            Err(RateLimited { scope, window, limit, .. }) if self.is_unlimited(org) => {
                Ok(RateStatus { scope, window, limit, remaining: 0 })
            }
            checked => Ok(checked?),
        }
    }
}
