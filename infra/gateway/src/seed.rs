//! Local seed data: orgs with an admin, a dozen learners in teams, a custom course, an admin and a
//! read-only API key, and session tokens — the `orgs` part of `.local/env.json`.

use chrono::{DateTime, Duration, Utc};
use domain::{
    ApiKey, Catalog, CourseId, CustomCourse, CustomCourseItem, CustomItemType, OrgId, Role, Slug, Team, TeamId, User,
    UserId,
};
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

/// An HS256 session token with the platform's claims.
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
    });
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(secret))
        .expect("HS256 encoding of a JSON object cannot fail")
}

/// Loads the bundled catalog into the table (idempotent).
pub async fn load_catalog(store: &Store) -> Result<usize, StoreError> {
    let catalog = Catalog::bundled().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.put_catalog(catalog.nodes()).await
}

/// Creates one org with an admin, 12 learners (5 + 5 in two teams, 2 without a team), a custom course
/// and two API keys.
pub async fn seed_org(
    store: &Store,
    secret: &[u8],
    org_id: OrgId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<SeededOrg, StoreError> {
    let slug = name.to_ascii_lowercase().replace(' ', "");
    let teams = vec![
        SeededTeam { team_id: TeamId(uuid::Uuid::new_v4()), name: "Payments Platform".into() },
        SeededTeam { team_id: TeamId(uuid::Uuid::new_v4()), name: "Mobile Apps".into() },
    ];
    for team in &teams {
        store
            .put_team(
                &org_id,
                &Team { team_id: team.team_id, name: team.name.clone(), is_deleted: false, updated_at: now },
            )
            .await?;
    }
    let token_expiry = now + Duration::days(7);
    let mut users = Vec::new();
    for i in 0..13 {
        let role = if i == 0 { Role::OrgAdmin } else { Role::Learner };
        let team_id = match i {
            1..=5 => Some(teams[0].team_id),
            6..=10 => Some(teams[1].team_id),
            _ => None,
        };
        let user_id = UserId(uuid::Uuid::new_v4());
        let name = format!("{} {}", FIRST_NAMES[i], LAST_NAMES[i]);
        let email = format!(
            "{}.{}@{slug}.example",
            FIRST_NAMES[i].to_lowercase(),
            LAST_NAMES[i].to_lowercase().replace(' ', "")
        );
        store
            .put_user(
                &org_id,
                &User {
                    user_id,
                    name: name.clone(),
                    email: email.clone(),
                    role,
                    team_id,
                    is_active: true,
                    updated_at: now,
                },
            )
            .await?;
        let token = session_token(secret, user_id, &org_id, role, &email, token_expiry);
        users.push(SeededUser { user_id, name, email, role, team_id, token });
    }

    let catalog = Catalog::bundled().map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let items = vec![
        CustomCourseItem { item_type: CustomItemType::Topic, item_id: slug_of("sql-injection"), order_index: 1 },
        CustomCourseItem { item_type: CustomItemType::Topic, item_id: slug_of("idor"), order_index: 2 },
        CustomCourseItem { item_type: CustomItemType::Scenario, item_id: slug_of("secrets-in-env"), order_index: 3 },
    ];
    let (units, _) = catalog.resolve_custom_course(&items);
    let course = CustomCourse {
        course_id: CourseId(uuid::Uuid::new_v4()),
        name: "Secure Payments Onboarding".into(),
        is_active: true,
        items,
        units,
        updated_at: now,
    };
    store.put_custom_course(&org_id, &course).await?;

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
        custom_courses: vec![SeededCourse { course_id: course.course_id, name: course.name }],
    })
}

fn slug_of(raw: &str) -> Slug {
    Slug::parse(raw).expect("seed slugs are valid")
}
