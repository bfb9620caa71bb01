//! Local seed data: orgs with an admin, a dozen learners in teams, a custom course, an admin and a
//! read-only API key, and session tokens — the `orgs` part of `.local/env.json`.

use chrono::{DateTime, Duration, Utc};
use domain::{ApiKey, Catalog, CourseId, Event, OrgId, Role, TeamId, UserId};
use events::platform;
use serde::Serialize;
use store::{Store, StoreError};

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Tim",
    "Radia",
    "Guido",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Johnson",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Berners-Lee",
    "Perlman",
    "van Rossum",
];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeededUser {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub team_id: Option<TeamId>,
    /// A session token (HS256 JWT) as the platform's web app would send it.
    pub token: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeededTeam {
    pub team_id: TeamId,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeededCourse {
    pub course_id: CourseId,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeededKeys {
    pub admin: String,
    pub read_only: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeededOrg {
    pub org_id: OrgId,
    pub name: String,
    pub api_keys: SeededKeys,
    pub users: Vec<SeededUser>,
    pub teams: Vec<SeededTeam>,
    pub custom_courses: Vec<SeededCourse>,
}

impl SeededOrg {
    pub fn admin(&self) -> &SeededUser {
        self.users.iter().find(|u| u.role == Role::OrgAdmin).expect("seeded orgs have an admin")
    }

    pub fn learners(&self) -> impl Iterator<Item = &SeededUser> {
        self.users.iter().filter(|u| u.role == Role::Learner)
    }
}

/// `scs_live_` + 32 random alphanumerics (lowercase hex of a random UUID: 122 random bits).
pub fn new_api_key_token() -> String {
    format!("{}{}", api::auth::API_KEY_PREFIX, uuid::Uuid::new_v4().simple())
}

/// The `iss` of the local platform's session tokens (the local gateway requires it, as deployed).
pub const LOCAL_ISSUER: &str = "local-platform";
/// The `aud` of the local platform's session tokens.
pub const LOCAL_AUDIENCE: &str = "training-assignments";
/// The local Secrets Manager secret that holds the session tokens' key (moto's, as deployed).
pub const LOCAL_SECRET_NAME: &str = "local-session-token";

/// Stores `secret` as the current version of the local session token secret (made on first use; a
/// value stored before becomes its previous version) and returns its ARN.
pub async fn store_session_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret: &str,
) -> Result<String, aws_sdk_secretsmanager::Error> {
    match client.create_secret().name(LOCAL_SECRET_NAME).secret_string(secret).send().await {
        Ok(created) => Ok(created.arn.unwrap_or_default()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => {
            let put = client.put_secret_value().secret_id(LOCAL_SECRET_NAME).secret_string(secret).send().await?;
            Ok(put.arn.unwrap_or_default())
        }
        Err(e) => Err(e.into()),
    }
}

/// An HS256 session token with the platform's claims (`iss` and `aud` the local platform's).
#[allow(clippy::disallowed_methods, reason = "the platform's web app issues its tokens by its own clock")]
pub fn session_token(
    secret: &[u8],
    user: UserId,
    org: &OrgId,
    role: Role,
    email: &str,
    expires: DateTime<Utc>,
) -> String {
    let claims = serde_json::json!({
        "sub": user.to_string(),
        "org": org.as_str(),
        "role": role.as_str(),
        "email": email,
        "exp": expires.timestamp(),
        "iat": Utc::now().timestamp(),
        "iss": LOCAL_ISSUER,
        "aud": LOCAL_AUDIENCE,
    });
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(secret))
        .expect("HS256 encoding of a JSON object cannot fail")
}

/// Loads the bundled catalog into the table (idempotent).
pub async fn load_catalog(store: &Store) -> Result<usize, StoreError> {
    let catalog = Catalog::bundled().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.put_catalog(catalog.nodes()).await
}

/// How seed events reach the consumers.
#[derive(Clone, Copy)]
pub enum Delivery<'a> {
    /// In-process, through the consumers' own handler (tests that need an org, not the bus).
    Direct(&'a events::Consumer),
    /// Published to the local default bus; the local gateway delivers them through the template's rules.
    Bus(&'a aws_sdk_eventbridge::Client),
}

/// A platform event as the platform's services would publish it.
#[derive(Debug, Clone)]
pub struct PlatformEvent {
    pub source: &'static str,
    pub detail_type: &'static str,
    pub detail: serde_json::Value,
}

impl PlatformEvent {
    /// The EventBridge envelope a rule delivers to a function.
    #[allow(clippy::disallowed_methods, reason = "EventBridge stamps an event by its own clock")]
    pub fn envelope(&self) -> serde_json::Value {
        serde_json::json!({
            "version": "0",
            "id": uuid::Uuid::new_v4(),
            "source": self.source,
            "detail-type": self.detail_type,
            "account": "000000000000",
            "region": "us-east-1",
            "time": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "resources": [],
            "detail": self.detail,
        })
    }
}

pub fn user_created(org: &OrgId, user: &SeededUser, at: DateTime<Utc>) -> PlatformEvent {
    PlatformEvent {
        source: "platform.users",
        detail_type: platform::UserCreated::DETAIL_TYPE,
        detail: serde_json::json!({"orgId": org.as_str(), "userId": user.user_id, "name": user.name,
            "email": user.email, "role": user.role.as_str(), "occurredAt": at}),
    }
}

pub fn member_event(added: bool, org: &OrgId, team: &SeededTeam, user: UserId, at: DateTime<Utc>) -> PlatformEvent {
    PlatformEvent {
        source: "platform.teams",
        detail_type: if added { platform::MemberAdded::DETAIL_TYPE } else { platform::MemberRemoved::DETAIL_TYPE },
        detail: serde_json::json!({"orgId": org.as_str(), "teamId": team.team_id, "teamName": team.name,
            "userId": user, "occurredAt": at}),
    }
}

pub fn challenge_completed(
    org: &OrgId,
    user: UserId,
    topic: &str,
    index: u16,
    score: f64,
    at: DateTime<Utc>,
) -> PlatformEvent {
    PlatformEvent {
        source: "platform.training",
        detail_type: platform::ChallengeCompleted::DETAIL_TYPE,
        detail: serde_json::json!({"orgId": org.as_str(), "userId": user, "topicId": topic,
            "challengeIndex": index, "score": score, "completedAt": at}),
    }
}

/// Sends platform events: in order, in-process, or in batches of ten to the local default bus.
pub async fn send(delivery: Delivery<'_>, events: &[PlatformEvent]) -> Result<(), StoreError> {
    match delivery {
        Delivery::Direct(consumer) => {
            for event in events {
                consumer.handle(event.envelope()).await.map_err(|e| match e {
                    events::ConsumerError::Store(e) => e,
                    other => StoreError::Other(other.to_string()),
                })?;
            }
        }
        Delivery::Bus(client) => {
            for batch in events.chunks(events::BATCH) {
                let entries = batch
                    .iter()
                    .map(|e| {
                        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                            .source(e.source)
                            .detail_type(e.detail_type)
                            .detail(e.detail.to_string())
                            .build()
                    })
                    .collect();
                let out =
                    client.put_events().set_entries(Some(entries)).send().await.map_err(|e| {
                        StoreError::Other(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
                    })?;
                if out.failed_entry_count() > 0 {
                    return Err(StoreError::Other(format!("{} seed events not accepted", out.failed_entry_count())));
                }
            }
        }
    }
    Ok(())
}

/// Creates one org with an admin, 12 learners (5 + 5 in two teams, 2 without a team), a custom course
/// and two API keys. Users, teams and the course are built by the platform events the consumers take
/// (`user.created`, `team.member_added`, `custom_course.updated`); with [`Delivery::Bus`] this waits
/// until the consumers have applied them.
pub async fn seed_org(
    store: &Store,
    secret: &[u8],
    org_id: OrgId,
    name: &str,
    now: DateTime<Utc>,
    delivery: Delivery<'_>,
) -> Result<SeededOrg, StoreError> {
    let slug = name.to_ascii_lowercase().replace(' ', "");
    let teams = vec![
        SeededTeam { team_id: TeamId(uuid::Uuid::new_v4()), name: "Payments Platform".into() },
        SeededTeam { team_id: TeamId(uuid::Uuid::new_v4()), name: "Mobile Apps".into() },
    ];
    let token_expiry = now + Duration::days(7);
    let mut users = Vec::new();
    let mut platform_events = Vec::new();
    for i in 0..13 {
        let role = if i == 0 { Role::OrgAdmin } else { Role::Learner };
        let team = match i {
            1..=5 => Some(&teams[0]),
            6..=10 => Some(&teams[1]),
            _ => None,
        };
        let user_id = UserId(uuid::Uuid::new_v4());
        let name = format!("{} {}", FIRST_NAMES[i], LAST_NAMES[i]);
        let email = format!(
            "{}.{}@{slug}.example",
            FIRST_NAMES[i].to_lowercase(),
            LAST_NAMES[i].to_lowercase().replace(' ', "")
        );
        let token = session_token(secret, user_id, &org_id, role, &email, token_expiry);
        let user = SeededUser { user_id, name, email, role, team_id: team.map(|t| t.team_id), token };
        platform_events.push(user_created(&org_id, &user, now));
        if let Some(team) = team {
            // After the user exists: events about the same part of a user at the same instant are a tie.
            platform_events.push(member_event(true, &org_id, team, user_id, now + Duration::milliseconds(1)));
        }
        users.push(user);
    }

    let course_id = CourseId(uuid::Uuid::new_v4());
    let course_name = "Secure Payments Onboarding";
    platform_events.push(PlatformEvent {
        source: "platform.content",
        detail_type: platform::CustomCourseUpdated::DETAIL_TYPE,
        detail: serde_json::json!({"orgId": org_id.as_str(), "courseId": course_id, "name": course_name,
            "isActive": true, "occurredAt": now, "items": [
                {"itemType": "topic", "itemId": "sql-injection", "orderIndex": 1},
                {"itemType": "topic", "itemId": "idor", "orderIndex": 2},
                {"itemType": "scenario", "itemId": "secrets-in-env", "orderIndex": 3}]}),
    });
    send(delivery, &platform_events).await?;
    if let Delivery::Bus(_) = delivery {
        wait_for_projection(store, &org_id, &users, course_id).await?;
    }

    let admin_key = new_api_key_token();
    let read_only_key = new_api_key_token();
    for (token, name, scopes) in [
        (&admin_key, "local admin", api::auth::ALL_SCOPES.to_vec()),
        (&read_only_key, "local read-only", vec![api::auth::ASSIGNMENTS_READ]),
    ] {
        let key = ApiKey {
            key_id: uuid::Uuid::new_v4(),
            org_id: org_id.clone(),
            name: name.into(),
            scopes: scopes.into_iter().map(str::to_owned).collect(),
            expires_at: None,
            revoked_at: None,
            created_by: format!("user:{}", users[0].user_id),
            created_at: now,
        };
        store.put_api_key(&key, token).await?;
    }

    Ok(SeededOrg {
        org_id,
        name: name.into(),
        api_keys: SeededKeys { admin: admin_key, read_only: read_only_key },
        users,
        teams,
        custom_courses: vec![SeededCourse { course_id, name: course_name.into() }],
    })
}

/// Waits (up to a minute) until every seeded user, their team membership and the course are projected.
async fn wait_for_projection(
    store: &Store,
    org: &OrgId,
    users: &[SeededUser],
    course: CourseId,
) -> Result<(), StoreError> {
    let ids: Vec<_> = users.iter().map(|u| u.user_id).collect();
    for _ in 0..240 {
        let projected = store.get_users(org, &ids).await?;
        let complete = projected.len() == users.len()
            && users.iter().all(|u| {
                projected.iter().any(|p| p.user_id == u.user_id && p.team_id == u.team_id && p.name == u.name)
            });
        if complete && store.get_custom_course(org, course).await?.is_some() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Err(StoreError::Other(format!(
        "seed events for {org} were not applied within a minute: is the local gateway delivering?"
    )))
}
