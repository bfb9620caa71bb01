//! The platform's events this service consumes (design §4), parsed from EventBridge envelopes into
//! validated types. Anything that does not parse is a poison event: the consumer logs and drops it.

use chrono::{DateTime, Utc};
use domain::skew::MAX_CLOCK_AHEAD;
use domain::{CourseId, CustomCourseItem, OrgId, Role, Slug, TeamId, TrackedItem, UserId};
use serde::Deserialize;
use serde_json::Value;

/// One consumed event, validated. Every variant carries the org it belongs to and when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformEvent {
    pub org: OrgId,
    pub occurred_at: DateTime<Utc>,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    UserCreated {
        user: UserId,
        name: String,
        email: String,
        role: Role,
        team: Option<TeamId>,
    },
    UserUpdated {
        user: UserId,
        name: String,
        email: String,
        role: Role,
        team: Option<TeamId>,
        previous_team: Option<TeamId>,
    },
    UserDeactivated {
        user: UserId,
    },
    MemberAdded {
        team: TeamId,
        team_name: Option<String>,
        user: UserId,
    },
    MemberRemoved {
        team: TeamId,
        team_name: Option<String>,
        user: UserId,
    },
    TeamRenamed {
        team: TeamId,
        name: String,
    },
    TeamDeleted {
        team: TeamId,
    },
    Completed {
        user: UserId,
        item: TrackedItem,
        score: Option<f64>,
    },
    CustomCourseUpdated {
        course: CourseId,
        name: String,
        is_active: bool,
        items: Vec<CustomCourseItem>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserDetail {
    user_id: String,
    name: String,
    email: String,
    role: Role,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    previous_team_id: Option<String>,
    occurred_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserRef {
    user_id: String,
    occurred_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberDetail {
    team_id: String,
    #[serde(default)]
    team_name: Option<String>,
    user_id: String,
    occurred_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TeamDetail {
    team_id: String,
    #[serde(default)]
    name: Option<String>,
    occurred_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChallengeCompleted {
    user_id: String,
    topic_id: String,
    challenge_index: u16,
    #[serde(default)]
    score: Option<f64>,
    completed_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScenarioCompleted {
    user_id: String,
    scenario_id: String,
    #[serde(default)]
    score: Option<f64>,
    completed_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CourseDetail {
    course_id: String,
    name: String,
    is_active: bool,
    items: Vec<CustomCourseItem>,
    /// Not in the v1 detail; the envelope's `time` stands in when absent.
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
}

/// Longest user, team or course name kept; longer names are cut (they are only shown).
pub const MAX_NAME_CHARS: usize = 200;
/// Longest email accepted (RFC 5321); a longer one is a poison event, never a truncated address.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Most items a custom course may list.
pub const MAX_COURSE_ITEMS: usize = 500;
/// Scores are percentages.
pub const MAX_SCORE: f64 = 100.0;

/// `detail-type`s each source may send; used by the parser and mirrored by the template's rules.
pub const DETAIL_TYPES: &[(&str, &[&str])] = &[
    ("platform.users", &["user.created", "user.updated", "user.deactivated"]),
    ("platform.teams", &["team.member_added", "team.member_removed", "team.renamed", "team.deleted"]),
    ("platform.training", &["challenge.completed", "scenario.completed"]),
    ("platform.content", &["custom_course.updated"]),
];

/// The detail as `T`. The reason given for a detail that does not fit never quotes a value from it
/// (serde's messages do: `invalid type: string "ada@example.com"`), so poison events can be logged
/// without personal data; a missing field is named.
fn detail<T: serde::de::DeserializeOwned>(detail: &Value) -> Result<T, String> {
    serde_json::from_value(detail.clone()).map_err(|e| {
        let message = e.to_string();
        match message.strip_prefix("missing field ") {
            Some(field) if !field.contains('"') => format!("detail is missing the field {field}"),
            _ => "a detail field has the wrong type or value".to_owned(),
        }
    })
}

/// A display name, cut to [`MAX_NAME_CHARS`] characters.
fn name(raw: String) -> String {
    match raw.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => raw[..cut].to_owned(),
        None => raw,
    }
}

fn email(raw: String) -> Result<String, String> {
    if raw.chars().count() > MAX_EMAIL_CHARS {
        return Err(format!("email longer than {MAX_EMAIL_CHARS} characters"));
    }
    Ok(raw)
}

fn user(raw: &str) -> Result<UserId, String> {
    UserId::parse(raw).map_err(|e| format!("userId {e}"))
}

fn team(raw: &str) -> Result<TeamId, String> {
    TeamId::parse(raw).map_err(|e| format!("teamId {e}"))
}

fn optional_team(raw: Option<&str>) -> Result<Option<TeamId>, String> {
    raw.filter(|t| !t.is_empty()).map(team).transpose()
}

/// Parses an EventBridge envelope; `Err` says what is wrong (a poison event).
pub fn parse(event: &Value) -> Result<PlatformEvent, String> {
    let d = event.get("detail").filter(|d| d.is_object()).ok_or("no detail object")?;
    let org = d.get("orgId").and_then(Value::as_str).ok_or("detail.orgId missing")?;
    let org = OrgId::parse(org).map_err(|e| format!("orgId {e}"))?;
    let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    let (occurred_at, kind) = match detail_type {
        "user.created" | "user.updated" => {
            let u: UserDetail = detail(d)?;
            let (user, team) = (user(&u.user_id)?, optional_team(u.team_id.as_deref())?);
            let (name, email) = (name(u.name), email(u.email)?);
            let kind = if detail_type == "user.created" {
                EventKind::UserCreated { user, name, email, role: u.role, team }
            } else {
                let previous_team = optional_team(u.previous_team_id.as_deref())?;
                EventKind::UserUpdated { user, name, email, role: u.role, team, previous_team }
            };
            (u.occurred_at, kind)
        }
        "user.deactivated" => {
            let u: UserRef = detail(d)?;
            (u.occurred_at, EventKind::UserDeactivated { user: user(&u.user_id)? })
        }
        "team.member_added" | "team.member_removed" => {
            let m: MemberDetail = detail(d)?;
            let (team, user, team_name) = (team(&m.team_id)?, user(&m.user_id)?, m.team_name.map(name));
            let kind = if detail_type == "team.member_added" {
                EventKind::MemberAdded { team, team_name, user }
            } else {
                EventKind::MemberRemoved { team, team_name, user }
            };
            (m.occurred_at, kind)
        }
        "team.renamed" => {
            let t: TeamDetail = detail(d)?;
            let name = t.name.filter(|n| !n.trim().is_empty()).map(name).ok_or("team.renamed without a name")?;
            (t.occurred_at, EventKind::TeamRenamed { team: team(&t.team_id)?, name })
        }
        "team.deleted" => {
            let t: TeamDetail = detail(d)?;
            (t.occurred_at, EventKind::TeamDeleted { team: team(&t.team_id)? })
        }
        "challenge.completed" => {
            let c: ChallengeCompleted = detail(d)?;
            let topic_id = Slug::parse(&c.topic_id).map_err(|e| format!("topicId {e}"))?;
            let item = TrackedItem::Challenge { topic_id, index: c.challenge_index };
            (c.completed_at, EventKind::Completed { user: user(&c.user_id)?, item, score: score(c.score)? })
        }
        "scenario.completed" => {
            let c: ScenarioCompleted = detail(d)?;
            let scenario_id = Slug::parse(&c.scenario_id).map_err(|e| format!("scenarioId {e}"))?;
            let item = TrackedItem::Scenario { scenario_id };
            (c.completed_at, EventKind::Completed { user: user(&c.user_id)?, item, score: score(c.score)? })
        }
        "custom_course.updated" => {
            let c: CourseDetail = detail(d)?;
            let at = match c.occurred_at {
                Some(at) => at,
                None => event
                    .get("time")
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or("custom_course.updated without occurredAt or envelope time")?,
            };
            let course = CourseId::parse(&c.course_id).map_err(|e| format!("courseId {e}"))?;
            if c.items.len() > MAX_COURSE_ITEMS {
                return Err(format!("a custom course lists at most {MAX_COURSE_ITEMS} items"));
            }
            let kind =
                EventKind::CustomCourseUpdated { course, name: name(c.name), is_active: c.is_active, items: c.items };
            (at, kind)
        }
        other => return Err(format!("unexpected detail-type {:?}", other.chars().take(64).collect::<String>())),
    };
    Ok(PlatformEvent { org, occurred_at, kind })
}

/// Why `event` cannot be applied at `now` (the consumer's clock at receipt): its own time
/// (`completedAt`, else `occurredAt` — or a course update's envelope time, which the producer sets
/// too) is more than [`MAX_CLOCK_AHEAD`] later ([`domain::skew`]): it changes nothing and is parked.
/// `None` when it may be applied.
pub fn ahead_of(event: &PlatformEvent, now: DateTime<Utc>) -> Option<String> {
    let field = match event.kind {
        EventKind::Completed { .. } => "completedAt",
        _ => "occurredAt",
    };
    domain::skew::is_ahead(event.occurred_at, now).then(|| {
        format!(
            "{field} {} is more than {} minutes ahead of the service's clock ({})",
            event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            MAX_CLOCK_AHEAD.num_minutes(),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    })
}

fn score(score: Option<f64>) -> Result<Option<f64>, String> {
    match score {
        Some(s) if !(0.0..=MAX_SCORE).contains(&s) => Err(format!("score must be a number from 0 to {MAX_SCORE}")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests;
