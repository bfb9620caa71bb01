//! Authentication, called first by every route. Yields the [`Principal`], the only source of the org id.
//!
//! Not an API Gateway authorizer: an HTTP API authorizer can only refuse with a bare 403 and its result
//! cache would delay revocation, which takes effect on the very next request here.

use std::collections::HashMap;

use chrono::{DateTime, Timelike, Utc};
use domain::{OrgId, Role, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use store::{RateCounts, RateLimits, RateSubject, Store, StoreError};

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
/// Everything an org admin may do.
pub const ALL_SCOPES: &[&str] =
    &[ASSIGNMENTS_READ, ASSIGNMENTS_WRITE, PROGRESS_READ, AUDIT_LOG_READ, COMPLIANCE_READ, SARIF_INGEST];

pub const API_KEY_PREFIX: &str = "scs_live_";
const API_KEY_RANDOM_LEN: usize = 32;
/// v1's limits of one caller (an API key, or a user's session tokens): 60 in the calendar minute,
/// 1,000 in the sliding hour.
pub const CALLER_LIMITS: RateLimits = RateLimits { per_minute: 60, per_hour: 1_000 };
/// The default limits of an org's requests together, whatever key or user sends them: ten callers at
/// their limits. An operator may set an org's own (`Store::set_org_rate_limits`; README).
pub const ORG_LIMITS: RateLimits = RateLimits { per_minute: 600, per_hour: 10_000 };

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

/// Which window a rate limit is counted in (v1's `X-RateLimit-Window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateWindow {
    /// The calendar minute (UTC).
    PerMinute,
    /// The sliding 60 minutes.
    PerHour,
}

impl RateWindow {
    pub fn as_str(self) -> &'static str {
        match self {
            RateWindow::PerMinute => "per_minute",
            RateWindow::PerHour => "per_hour",
        }
    }

    fn of(self, limits: RateLimits) -> u32 {
        match self {
            RateWindow::PerMinute => limits.per_minute,
            RateWindow::PerHour => limits.per_hour,
        }
    }
}

/// Whose requests a limit counts (`X-RateLimit-Scope`): the API key's, the user's (session tokens),
/// or the whole org's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateScope {
    Key,
    User,
    Org,
}

impl RateScope {
    pub fn as_str(self) -> &'static str {
        match self {
            RateScope::Key => "key",
            RateScope::User => "user",
            RateScope::Org => "org",
        }
    }

    fn of(subject: RateSubject) -> Self {
        match subject {
            RateSubject::ApiKey(_) => RateScope::Key,
            RateSubject::User(_) => RateScope::User,
            RateSubject::Org => RateScope::Org,
        }
    }
}

/// Where a caller stands after a request that was let through: the tightest of its windows and scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    pub scope: RateScope,
    pub window: RateWindow,
    pub limit: u32,
    pub remaining: u32,
}

/// Applies `limits` to the counts of `scope` (this request included). Refused requests say how long
/// until one would be let through.
pub fn check_rate(
    counts: &RateCounts,
    limits: RateLimits,
    scope: RateScope,
    now: DateTime<Utc>,
) -> Result<RateStatus, ApiError> {
    let seconds_into_minute = u64::from(now.second());
    let refused = |retry_after_secs: u64, window: RateWindow| ApiError::RateLimited {
        retry_after_secs,
        scope,
        window,
        limit: window.of(limits),
    };
    if counts.hour() > limits.per_hour {
        // The window slides a minute at a time: wait until enough of its oldest minutes have left it
        // that one more request fits.
        let mut left = counts.hour();
        let mut minutes = 60u64;
        for (k, count) in counts.per_minute.iter().enumerate() {
            if left < limits.per_hour {
                minutes = k as u64;
                break;
            }
            left -= count;
        }
        return Err(refused((minutes.max(1) * 60).saturating_sub(seconds_into_minute).max(1), RateWindow::PerHour));
    }
    if counts.minute() > limits.per_minute {
        return Err(refused((60 - seconds_into_minute).max(1), RateWindow::PerMinute));
    }
    let minute_left = limits.per_minute - counts.minute();
    let hour_left = limits.per_hour - counts.hour();
    let (window, remaining) =
        if hour_left < minute_left { (RateWindow::PerHour, hour_left) } else { (RateWindow::PerMinute, minute_left) };
    Ok(RateStatus { scope, window, limit: window.of(limits), remaining })
}

/// Claims of the platform's web-app session tokens (HS256). The `role` claim is not trusted: the
/// user projection decides the role on every request.
#[derive(Debug, Deserialize)]
struct SessionClaims {
    sub: String,
    org: String,
    #[serde(default)]
    email: Option<String>,
}

/// A verified caller and where it stands against its rate limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub principal: Principal,
    pub rate: RateStatus,
}

/// An org's own limits (none: the default) and when they were read.
type ReadLimits = (Option<RateLimits>, std::time::Instant);

#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    /// What verifies session tokens (and keys the cursors): every version the container holds.
    secret: std::sync::Arc<crate::secret::SessionSecret>,
    validation: Validation,
    /// The orgs' own rate limits, as read in the last minute (a change takes effect within a minute).
    org_limits: std::sync::Arc<std::sync::Mutex<HashMap<OrgId, ReadLimits>>>,
    /// Local only (feature `local`): an org whose requests are counted but never refused.
    #[cfg(feature = "local")]
    unlimited: Option<OrgId>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(..)")
    }
}

/// The secret could not be read: the request is answered 503 and may be retried; the reason is logged.
fn unavailable(error: crate::secret::SecretError) -> ApiError {
    tracing::error!(%error, "session tokens cannot be verified");
    ApiError::Unavailable
}

/// Whether `token` has the shape of an API key: prefix + 32 ASCII alphanumerics.
pub fn looks_like_api_key(token: &str) -> bool {
    token
        .strip_prefix(API_KEY_PREFIX)
        .is_some_and(|rest| rest.len() == API_KEY_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl Authenticator {
    /// Verifies session tokens signed with `session_secret` (tests, the local gateway).
    pub fn new(store: Store, session_secret: &[u8]) -> Self {
        Self::with_secret(store, crate::secret::SessionSecret::fixed(session_secret))
    }

    /// Verifies session tokens with the versions of `secret` (Secrets Manager's, deployed).
    pub fn with_secret(store: Store, secret: crate::secret::SessionSecret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        // `aud` is checked only when configured ([`Authenticator::with_issuer_and_audience`]).
        validation.validate_aud = false;
        Self {
            store,
            secret: std::sync::Arc::new(secret),
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
    pub fn secret(&self) -> &crate::secret::SessionSecret {
        &self.secret
    }

    /// Also requires the session tokens' `iss` and/or `aud` claims to be these, as the platform's
    /// tokens carry them.
    pub fn with_issuer_and_audience(mut self, issuer: Option<&str>, audience: Option<&str>) -> Self {
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = issuer {
            self.validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = audience {
            self.validation.set_audience(&[audience]);
            self.validation.validate_aud = true;
            required.push("aud");
        }
        self.validation.set_required_spec_claims(&required);
        self
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
        const FRESH: std::time::Duration = std::time::Duration::from_secs(60);
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
            cache.insert(org.clone(), (limits, std::time::Instant::now()));
        }
        Ok(limits)
    }

    /// A limit's verdict, except for the local-only unlimited org, whose requests are let through.
    fn within(&self, checked: Result<RateStatus, ApiError>, org: &OrgId) -> Result<RateStatus, ApiError> {
        match checked {
            Err(ApiError::RateLimited { scope, window, limit, .. }) if self.is_unlimited(org) => {
                Ok(RateStatus { scope, window, limit, remaining: 0 })
            }
            checked => checked,
        }
    }

    async fn api_key(&self, token: &str, now: DateTime<Utc>) -> Result<(Principal, RateSubject), ApiError> {
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

    /// The claims of a session token whose signature — by any version of the secret the container
    /// holds, read again if none verifies and its copy is old enough — expiry (and issuer/audience when
    /// configured) check out.
    async fn session_claims(&self, token: &str) -> Result<SessionClaims, ApiError> {
        let versions = self.secret.versions().await.map_err(unavailable)?;
        match self.decode(&versions, token) {
            Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                match self.secret.reread(&versions).await.map_err(unavailable)? {
                    Some(fresh) => self.decode(&fresh, token),
                    None => Err(e),
                }
            }
            other => other,
        }
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                ApiError::Unauthorized("the session token has expired")
            }
            _ => ApiError::Unauthorized("invalid session token"),
        })
    }

    /// `token` checked with the current version, then with the previous one if its signature is not
    /// the current's.
    fn decode(
        &self,
        versions: &crate::secret::Versions,
        token: &str,
    ) -> jsonwebtoken::errors::Result<jsonwebtoken::TokenData<SessionClaims>> {
        let mut outcome = Err(jsonwebtoken::errors::ErrorKind::InvalidSignature.into());
        for secret in &versions.secrets {
            outcome = jsonwebtoken::decode::<SessionClaims>(token, &DecodingKey::from_secret(secret), &self.validation);
            match &outcome {
                Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => continue,
                _ => break,
            }
        }
        outcome
    }

    /// A session token: signature, expiry (and issuer/audience when configured), then the user as the
    /// projection has them now — one strongly consistent GetItem — so a role change or deactivation
    /// takes effect on the user's next request whatever the token's claims say.
    async fn session(&self, token: &str) -> Result<(Principal, RateSubject), ApiError> {
        let claims = self.session_claims(token).await?;
        let org = OrgId::parse(&claims.org).map_err(|_| ApiError::Unauthorized("invalid session token"))?;
        let user = UserId::parse(&claims.sub).map_err(|_| ApiError::Unauthorized("invalid session token"))?;
        let current = self
            .store
            .current_user(&org, user)
            .await?
            .filter(|u| u.is_active)
            .ok_or(ApiError::Unauthorized("the session's user is unknown or deactivated"))?;
        let (role, scopes) = match current.role {
            Role::OrgAdmin => (Role::OrgAdmin, ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect()),
            Role::Learner => (Role::Learner, vec![PROGRESS_READ.to_owned()]),
            Role::ApiKey => return Err(ApiError::Unauthorized("invalid session token")),
        };
        let principal = Principal {
            org,
            actor_id: format!("user:{user}"),
            actor_email: Some(current.email).filter(|e| !e.is_empty()).or(claims.email),
            role,
            scopes,
            user_id: Some(user),
        };
        Ok((principal, RateSubject::User(user)))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "jsonwebtoken checks a token's expiry by the system's clock")]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"unit-test-session-secret-0123456789abcdef";

    fn authenticator(issuer: Option<&str>, audience: Option<&str>) -> Authenticator {
        // Claims are checked before the store is touched; this client never sends a request.
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let store = Store::new(aws_sdk_dynamodb::Client::from_conf(config), "unused");
        Authenticator::new(store, SECRET).with_issuer_and_audience(issuer, audience)
    }

    fn token(extra: serde_json::Value) -> String {
        let mut claims = serde_json::json!({"sub": uuid::Uuid::new_v4(), "org": "acme", "role": "org_admin",
                                            "exp": (Utc::now() + chrono::Duration::hours(1)).timestamp()});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(SECRET))
            .unwrap()
    }

    #[tokio::test]
    async fn issuer_and_audience_are_checked_only_when_configured() {
        let open = authenticator(None, None);
        assert!(open.session_claims(&token(serde_json::json!({}))).await.is_ok());
        assert!(open.session_claims(&token(serde_json::json!({"iss": "anyone", "aud": "anything"}))).await.is_ok());

        let strict = authenticator(Some("https://platform.example"), Some("assignments"));
        let good = serde_json::json!({"iss": "https://platform.example", "aud": "assignments"});
        assert!(strict.session_claims(&token(good)).await.is_ok());
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"iss": "https://platform.example"}),
            serde_json::json!({"aud": "assignments"}),
            serde_json::json!({"iss": "https://evil.example", "aud": "assignments"}),
            serde_json::json!({"iss": "https://platform.example", "aud": "another-service"}),
        ] {
            let refused = strict.session_claims(&token(bad.clone())).await;
            assert!(matches!(refused, Err(ApiError::Unauthorized(_))), "{bad}");
        }

        let expired = token(serde_json::json!({"exp": (Utc::now() - chrono::Duration::hours(1)).timestamp()}));
        assert!(matches!(
            open.session_claims(&expired).await,
            Err(ApiError::Unauthorized("the session token has expired"))
        ));
    }

    /// Against the local stack's Secrets Manager (moto): both versions verify across a rotation, which
    /// a container picks up once its copy is old enough; `iss` and `aud` are required.
    #[tokio::test]
    async fn a_rotated_secret_verifies_by_both_versions_once_reread_and_a_weak_one_is_unavailable() {
        // Never AWS itself: the local stack's endpoint, or the test stops here.
        std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").expect("the local stack: run through infra/test.sh");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let client = aws_sdk_secretsmanager::Client::new(&config);
        let name = format!("session-token-test-{}", uuid::Uuid::new_v4().simple());
        let (old, new, other) = ("o".repeat(40), "n".repeat(40), "x".repeat(40));
        let arn = client.create_secret().name(&name).secret_string(&old).send().await.unwrap().arn.unwrap();
        let secret = crate::secret::SessionSecret::managed(client.clone(), &arn)
            .reread_after(std::time::Duration::from_millis(300));
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let store = Store::new(aws_sdk_dynamodb::Client::from_conf(config), "unused");
        let auth = Authenticator::with_secret(store.clone(), secret)
            .with_issuer_and_audience(Some("platform"), Some("assignments"));
        let signed = |secret: &str, claims: serde_json::Value| {
            let mut all = serde_json::json!({"sub": uuid::Uuid::new_v4(), "org": "acme",
                                             "exp": (Utc::now() + chrono::Duration::hours(1)).timestamp()});
            all.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
            let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
            jsonwebtoken::encode(&jsonwebtoken::Header::default(), &all, &key).unwrap()
        };
        let good = serde_json::json!({"iss": "platform", "aud": "assignments"});
        let verifies = async |token: String| auth.session_claims(&token).await.is_ok();

        assert!(verifies(signed(&old, good.clone())).await);
        assert!(!verifies(signed(&old, serde_json::json!({}))).await, "iss and aud are required");
        assert!(!verifies(signed(&new, good.clone())).await, "not a version of the secret yet");

        client.put_secret_value().secret_id(&arn).secret_string(&new).send().await.unwrap();
        assert!(!verifies(signed(&new, good.clone())).await, "the container's copy is fresh: not read again yet");
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert!(verifies(signed(&new, good.clone())).await, "read again once its copy is old enough");
        assert!(verifies(signed(&old, good.clone())).await, "AWSPREVIOUS still verifies");
        assert!(!verifies(signed(&other, good.clone())).await);

        let weak = client.create_secret().name(format!("{name}-weak")).secret_string("short").send().await.unwrap();
        let weak = crate::secret::SessionSecret::managed(client, weak.arn.unwrap());
        let refused = Authenticator::with_secret(store, weak).session_claims(&signed(&old, good)).await;
        assert!(matches!(refused, Err(ApiError::Unavailable)), "{refused:?}");
    }

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

    fn counts(per_minute: impl IntoIterator<Item = (usize, u32)>) -> RateCounts {
        let mut counts = RateCounts { per_minute: [0; 60] };
        for (slot, n) in per_minute {
            counts.per_minute[slot] = n;
        }
        counts
    }

    fn at_second(second: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-05-01T10:15:{second:02}Z")).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_minute_is_the_calendar_minute() {
        let ok = check_rate(&counts([(59, 60)]), CALLER_LIMITS, RateScope::Key, at_second(10)).unwrap();
        assert_eq!(ok, RateStatus { scope: RateScope::Key, window: RateWindow::PerMinute, limit: 60, remaining: 0 });
        let Err(ApiError::RateLimited { retry_after_secs, window, .. }) =
            check_rate(&counts([(59, 61)]), CALLER_LIMITS, RateScope::Key, at_second(10))
        else {
            panic!()
        };
        assert_eq!((retry_after_secs, window), (50, RateWindow::PerMinute));
    }

    #[test]
    fn the_hour_slides_and_says_when_a_request_fits_again() {
        // 990 requests 40 minutes ago, 10 now: the 1,000th is fine, the 1,001st waits for minute 19 → 20.
        let full = counts([(19, 990), (59, 10)]);
        let ok = check_rate(&full, CALLER_LIMITS, RateScope::User, at_second(0)).unwrap();
        assert_eq!(ok, RateStatus { scope: RateScope::User, window: RateWindow::PerHour, limit: 1_000, remaining: 0 });
        let over = counts([(19, 990), (59, 11)]);
        let Err(ApiError::RateLimited { retry_after_secs, window, .. }) =
            check_rate(&over, CALLER_LIMITS, RateScope::User, at_second(15))
        else {
            panic!()
        };
        assert_eq!(window, RateWindow::PerHour);
        assert_eq!(retry_after_secs, 20 * 60 - 15, "minute 19 leaves the window 20 minutes from this one");
        let spread = counts((0..60).map(|m| (m, 17)));
        let Err(ApiError::RateLimited { retry_after_secs, .. }) =
            check_rate(&spread, CALLER_LIMITS, RateScope::Key, at_second(30))
        else {
            panic!()
        };
        assert_eq!(retry_after_secs, 90, "1,020 in the window: its two oldest minutes must leave before one more fits");
    }

    #[test]
    fn an_orgs_limits_are_its_own_and_name_their_scope() {
        let raised = RateLimits { per_minute: 5_000, per_hour: 100_000 };
        let busy = counts([(59, 601)]);
        let Err(ApiError::RateLimited { scope, window, limit, .. }) =
            check_rate(&busy, ORG_LIMITS, RateScope::Org, at_second(5))
        else {
            panic!()
        };
        assert_eq!(
            (scope, window, limit),
            (RateScope::Org, RateWindow::PerMinute, 600),
            "the default: 10 callers' worth"
        );
        let ok = check_rate(&busy, raised, RateScope::Org, at_second(5)).unwrap();
        assert_eq!(
            ok,
            RateStatus { scope: RateScope::Org, window: RateWindow::PerMinute, limit: 5_000, remaining: 4_399 }
        );
    }
}
