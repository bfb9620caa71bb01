//! The platform's events this service consumes (design §4), parsed from EventBridge envelopes into
//! validated types. Anything that does not parse is a poison event: the consumer logs and drops it.

use chrono::{DateTime, Utc};
use domain::Event;
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

/// Longest user, team or course name kept; longer names are cut (they are only shown).
pub const MAX_NAME_CHARS: usize = 200;
/// Longest email accepted (RFC 5321); a longer one is a poison event, never a truncated address.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Most items a custom course may list.
pub const MAX_COURSE_ITEMS: usize = 500;
/// Scores are percentages.
pub const MAX_SCORE: f64 = 100.0;

/// `detail-type`s each source may send: the template's rules route exactly these (a template test holds
/// them together).
pub const DETAIL_TYPES: &[(&str, &[&str])] = &[
    ("platform.users", &[UserCreated::DETAIL_TYPE, UserUpdated::DETAIL_TYPE, UserDeactivated::DETAIL_TYPE]),
    (
        "platform.teams",
        &[MemberAdded::DETAIL_TYPE, MemberRemoved::DETAIL_TYPE, TeamRenamed::DETAIL_TYPE, TeamDeleted::DETAIL_TYPE],
    ),
    ("platform.training", &[ChallengeCompleted::DETAIL_TYPE, ScenarioCompleted::DETAIL_TYPE]),
    ("platform.content", &[CustomCourseUpdated::DETAIL_TYPE]),
];

/// The detail as `T`. The reason given for a detail that does not fit never quotes a value from it
/// (serde's messages do: `invalid type: string "ada@example.com"`), so poison events can be logged
/// without personal data; a missing field is named.
fn detail<T: serde::de::DeserializeOwned>(detail: &Value) -> Result<T, String> {
    domain::event::fields(detail).map_err(|e| e.to_string())
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
        UserCreated::DETAIL_TYPE => {
            let u: UserCreated = detail(d)?;
            let (user, team) = (user(&u.user_id)?, optional_team(u.team_id.as_deref())?);
            let (name, email) = (name(u.name), email(u.email)?);
            (u.occurred_at, EventKind::UserCreated { user, name, email, role: u.role, team })
        }
        UserUpdated::DETAIL_TYPE => {
            let u: UserUpdated = detail(d)?;
            let (user, team) = (user(&u.user_id)?, optional_team(u.team_id.as_deref())?);
            let (name, email) = (name(u.name), email(u.email)?);
            let previous_team = optional_team(u.previous_team_id.as_deref())?;
            (u.occurred_at, EventKind::UserUpdated { user, name, email, role: u.role, team, previous_team })
        }
        UserDeactivated::DETAIL_TYPE => {
            let u: UserDeactivated = detail(d)?;
            (u.occurred_at, EventKind::UserDeactivated { user: user(&u.user_id)? })
        }
        MemberAdded::DETAIL_TYPE => {
            let m: MemberAdded = detail(d)?;
            let (team, user, team_name) = (team(&m.team_id)?, user(&m.user_id)?, m.team_name.map(name));
            (m.occurred_at, EventKind::MemberAdded { team, team_name, user })
        }
        MemberRemoved::DETAIL_TYPE => {
            let m: MemberRemoved = detail(d)?;
            let (team, user, team_name) = (team(&m.team_id)?, user(&m.user_id)?, m.team_name.map(name));
            (m.occurred_at, EventKind::MemberRemoved { team, team_name, user })
        }
        TeamRenamed::DETAIL_TYPE => {
            let t: TeamRenamed = detail(d)?;
            let name = t
                .name
                .filter(|n| !n.trim().is_empty())
                .map(name)
                .ok_or_else(|| format!("{} without a name", TeamRenamed::DETAIL_TYPE))?;
            (t.occurred_at, EventKind::TeamRenamed { team: team(&t.team_id)?, name })
        }
        TeamDeleted::DETAIL_TYPE => {
            let t: TeamDeleted = detail(d)?;
            (t.occurred_at, EventKind::TeamDeleted { team: team(&t.team_id)? })
        }
        ChallengeCompleted::DETAIL_TYPE => {
            let c: ChallengeCompleted = detail(d)?;
            let topic_id = Slug::parse(&c.topic_id).map_err(|e| format!("topicId {e}"))?;
            let item = TrackedItem::Challenge { topic_id, index: c.challenge_index };
            (c.completed_at, EventKind::Completed { user: user(&c.user_id)?, item, score: score(c.score)? })
        }
        ScenarioCompleted::DETAIL_TYPE => {
            let c: ScenarioCompleted = detail(d)?;
            let scenario_id = Slug::parse(&c.scenario_id).map_err(|e| format!("scenarioId {e}"))?;
            let item = TrackedItem::Scenario { scenario_id };
            (c.completed_at, EventKind::Completed { user: user(&c.user_id)?, item, score: score(c.score)? })
        }
        CustomCourseUpdated::DETAIL_TYPE => {
            let c: CustomCourseUpdated = detail(d)?;
            let at = match c.occurred_at {
                Some(at) => at,
                None => event
                    .get("time")
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or_else(|| {
                        format!("{} without occurredAt or envelope time", CustomCourseUpdated::DETAIL_TYPE)
                    })?,
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

mod details;
pub use details::*;

#[cfg(test)]
mod tests;
