//! The platform's web-app session tokens (HS256 JWTs): verified by any version of the secret the
//! container holds, then resolved to the user as the directory has them now.

use domain::{OrgId, Role, UserId};
use jsonwebtoken::{DecodingKey, errors::ErrorKind};
use serde::Deserialize;
use service::AppError;
use store::RateSubject;

use super::{ALL_SCOPES, Authenticator, PROGRESS_READ, Principal};
use crate::problem::ApiError;
use crate::secret::{SecretError, Versions};

/// Claims of the platform's web-app session tokens (HS256). The `role` claim is not trusted: the
/// directory decides the role on every request.
#[derive(Debug, Deserialize)]
pub(super) struct SessionClaims {
    sub: String,
    org: String,
    #[serde(default)]
    email: Option<String>,
}

/// The secret could not be read: the request is answered 503 and may be retried; the reason is logged.
fn unavailable(error: SecretError) -> ApiError {
    tracing::error!(%error, "session tokens cannot be verified");
    AppError::Unavailable(error.to_string()).into()
}

impl Authenticator {
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

    /// The claims of a session token whose signature — by any version of the secret the container
    /// holds, read again if none verifies and its copy is old enough — expiry (and issuer/audience when
    /// configured) check out.
    pub(super) async fn session_claims(&self, token: &str) -> Result<SessionClaims, ApiError> {
        let versions = self.secret.versions().await.map_err(unavailable)?;
        match self.decode(&versions, token) {
            Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                match self.secret.reread(&versions).await.map_err(unavailable)? {
                    Some(fresh) => self.decode(&fresh, token),
                    None => Err(e),
                }
            }
            other => other,
        }
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => ApiError::Unauthorized("the session token has expired"),
            _ => ApiError::Unauthorized("invalid session token"),
        })
    }

    /// `token` checked with the current version, then with the previous one if its signature is not
    /// the current's.
    fn decode(
        &self,
        versions: &Versions,
        token: &str,
    ) -> jsonwebtoken::errors::Result<jsonwebtoken::TokenData<SessionClaims>> {
        let mut outcome = Err(ErrorKind::InvalidSignature.into());
        for secret in &versions.secrets {
            outcome = jsonwebtoken::decode::<SessionClaims>(token, &DecodingKey::from_secret(secret), &self.validation);
            match &outcome {
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
                _ => break,
            }
        }
        outcome
    }

    /// A session token: signature, expiry (and issuer/audience when configured), then the user as the
    /// directory has them now — one strongly consistent GetItem — so a role change or deactivation
    /// takes effect on the user's next request whatever the token's claims say.
    pub(super) async fn session(&self, token: &str) -> Result<(Principal, RateSubject), ApiError> {
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
    use chrono::Utc;
    use store::Store;

    use super::*;
    use crate::secret::SessionSecret;

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
        let secret = SessionSecret::managed(client.clone(), &arn).reread_after(std::time::Duration::from_millis(300));
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
        let weak = SessionSecret::managed(client, weak.arn.unwrap());
        let refused = Authenticator::with_secret(store, weak).session_claims(&signed(&old, good)).await;
        assert!(matches!(refused, Err(ApiError::App(AppError::Unavailable(_)))), "{refused:?}");
        assert_eq!(refused.unwrap_err().status(), http::StatusCode::SERVICE_UNAVAILABLE);
    }
}
