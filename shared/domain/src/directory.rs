//! The service's projection of the platform's people and content it does not own (users, teams,
//! custom courses), plus API keys and audit entries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{CustomCourseItem, TrackedUnit};
use crate::ids::{CourseId, OrgId, TeamId, UserId};
use crate::skew;
use crate::vocabulary::Role;

/// A platform user as last reported by `platform.users` / `platform.teams` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<TeamId>,
    pub is_active: bool,
    /// `occurredAt` of the newest event applied.
    pub updated_at: DateTime<Utc>,
    /// When each part was last changed: events about different parts (profile, team, activity) are
    /// ordered separately, so a late event about one part cannot undo a newer one about another.
    #[serde(default)]
    pub facets: UserFacets,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserFacets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_at: Option<DateTime<Utc>>,
    /// The earliest `user.created` seen: when the account began (the minimum, so any delivery order
    /// gives the same). New-starter assignments of the org admit users created after them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// The earliest time each team was stated as the user's (by any event, applied or late): new-
    /// starter assignments of a team admit users first seen in it after them. Minimums, so any
    /// delivery order gives the same; one entry per team the user was ever in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub first_in_team: BTreeMap<TeamId, DateTime<Utc>>,
}

/// What one platform event says about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// `user.created` (`active: Some(true)`) or `user.updated` (`active: None`): the whole profile and
    /// team membership as of the event.
    Snapshot { name: String, email: String, role: Role, team_id: Option<TeamId>, active: Option<bool> },
    /// `team.member_added`.
    JoinedTeam(TeamId),
    /// `team.member_removed`: leaves that team (a user already moved elsewhere stays there).
    LeftTeam(TeamId),
    /// `user.deactivated`.
    Deactivated,
}

/// The newest event's time, forgotten (the epoch) when it is ahead of `now`.
fn forget_newest(updated_at: &mut DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let ahead = skew::is_ahead(*updated_at, now);
    if ahead {
        *updated_at = DateTime::UNIX_EPOCH;
    }
    ahead
}

fn newer(at: DateTime<Utc>, last: Option<DateTime<Utc>>) -> bool {
    last.is_none_or(|last| at > last)
}

impl User {
    /// A user known only from an event that does not carry the profile (e.g. `team.member_added`
    /// before `user.created`): active, nameless until a profile arrives.
    pub fn unknown(user_id: UserId, at: DateTime<Utc>) -> Self {
        User {
            user_id,
            name: String::new(),
            email: String::new(),
            role: Role::Learner,
            team_id: None,
            is_active: true,
            updated_at: at,
            facets: UserFacets::default(),
        }
    }

    /// Applies what an event at `at` says. Order-safe per part: a part changes only when `at` is newer
    /// than its last change, so any delivery order of the same events ends in the same user. Returns
    /// whether anything changed.
    pub fn apply(&mut self, change: &UserChange, at: DateTime<Utc>) -> bool {
        let before = self.clone();
        // A user projected before teams were remembered: their current team counts from when it was
        // last stated, not from this event (else every member would look new to the team).
        if self.facets.first_in_team.is_empty()
            && let Some(team) = self.team_id
        {
            self.seen_in(team, self.facets.team_at.unwrap_or(self.updated_at));
        }
        match change {
            UserChange::Snapshot { name, email, role, team_id, active } => {
                if newer(at, self.facets.profile_at) {
                    self.facets.profile_at = Some(at);
                    (self.name, self.email, self.role) = (name.clone(), email.clone(), *role);
                }
                if let Some(team) = team_id {
                    self.seen_in(*team, at);
                }
                if newer(at, self.facets.team_at) {
                    self.facets.team_at = Some(at);
                    self.team_id = *team_id;
                }
                if *active == Some(true) {
                    self.facets.created_at = Some(self.facets.created_at.map_or(at, |first| first.min(at)));
                }
                if let Some(active) = active
                    && newer(at, self.facets.active_at)
                {
                    self.facets.active_at = Some(at);
                    self.is_active = *active;
                }
            }
            UserChange::JoinedTeam(team) => {
                self.seen_in(*team, at);
                if newer(at, self.facets.team_at) {
                    self.facets.team_at = Some(at);
                    self.team_id = Some(*team);
                }
            }
            UserChange::LeftTeam(team) if newer(at, self.facets.team_at) => {
                self.facets.team_at = Some(at);
                if self.team_id == Some(*team) {
                    self.team_id = None;
                }
            }
            UserChange::Deactivated if newer(at, self.facets.active_at) => {
                self.facets.active_at = Some(at);
                self.is_active = false;
            }
            _ => {}
        }
        if *self != before {
            self.updated_at = self.updated_at.max(at);
        }
        *self != before
    }

    /// Times stored ahead of `now` (by a producer whose clock was ahead, before consumed events were
    /// bounded; see [`crate::skew`]) stop ordering anything: each part's last change is forgotten, so
    /// the next real change applies, and so is the newest event's time (the epoch: [`User::membership_at`]
    /// then orders nothing either); first times become `now`. The values such an event set stay until
    /// a real change replaces them. Applied before each change and by the reconcile job. Returns
    /// whether anything changed.
    pub fn forget_future(&mut self, now: DateTime<Utc>) -> bool {
        let facets = &mut self.facets;
        let mut changed = false;
        for last in [&mut facets.profile_at, &mut facets.team_at, &mut facets.active_at] {
            changed |= skew::forget_if_ahead(last, now);
        }
        if let Some(created) = facets.created_at.as_mut() {
            changed |= skew::clamp_if_ahead(created, now);
        }
        for first in facets.first_in_team.values_mut() {
            changed |= skew::clamp_if_ahead(first, now);
        }
        changed | forget_newest(&mut self.updated_at, now)
    }

    fn seen_in(&mut self, team: TeamId, at: DateTime<Utc>) {
        let first = self.facets.first_in_team.entry(team).or_insert(at);
        *first = (*first).min(at);
    }

    /// When the facts that decide the user's assignments (team, activity) were last changed; the time
    /// at which membership changes derived from this directory are applied to progress rows.
    pub fn membership_at(&self) -> DateTime<Utc> {
        match (self.facets.team_at, self.facets.active_at) {
            (None, None) => self.updated_at,
            (a, b) => a.max(b).unwrap_or(self.updated_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub team_id: TeamId,
    pub name: String,
    /// A deleted team keeps its assignments (history) but gains no new members.
    pub is_deleted: bool,
    pub updated_at: DateTime<Utc>,
    /// When the name was last set; an older name never replaces a newer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_at: Option<DateTime<Utc>>,
}

/// What one platform event says about a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamChange {
    /// `team.renamed`, or the `teamName` of `team.member_added` / `team.member_removed`.
    Named(String),
    /// `team.deleted`: final.
    Deleted,
}

impl Team {
    pub fn unknown(team_id: TeamId, at: DateTime<Utc>) -> Self {
        Team { team_id, name: String::new(), is_deleted: false, updated_at: at, name_at: None }
    }

    /// Like [`User::forget_future`]: a name's time ahead of `now` is forgotten.
    pub fn forget_future(&mut self, now: DateTime<Utc>) -> bool {
        skew::forget_if_ahead(&mut self.name_at, now) | forget_newest(&mut self.updated_at, now)
    }

    /// Order-safe like [`User::apply`]; deletion is final whatever arrives later. Returns whether
    /// anything changed.
    pub fn apply(&mut self, change: &TeamChange, at: DateTime<Utc>) -> bool {
        let before = self.clone();
        match change {
            TeamChange::Named(name) if newer(at, self.name_at) => {
                self.name_at = Some(at);
                self.name = name.clone();
            }
            TeamChange::Deleted => self.is_deleted = true,
            _ => {}
        }
        if *self != before {
            self.updated_at = self.updated_at.max(at);
        }
        *self != before
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomCourse {
    pub course_id: CourseId,
    pub name: String,
    pub is_active: bool,
    pub items: Vec<CustomCourseItem>,
    /// `items` resolved against the catalog when the course was last written.
    pub units: Vec<TrackedUnit>,
    pub updated_at: DateTime<Utc>,
}

/// An API key. The token itself is never stored: only its SHA-256 (the lookup key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub key_id: uuid::Uuid,
    pub org_id: OrgId,
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl ApiKey {
    /// Usable at `now`: not revoked and not expired.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none_or(|at| at > now) && self.expires_at.is_none_or(|at| at > now)
    }
}

/// One audit-log entry, written in the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    pub created_at: DateTime<Utc>,
    /// e.g. `assignment.created`, `assignment.updated`, `assignment.exported`.
    pub action: String,
    pub actor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    pub actor_role: Role,
    pub target_type: String,
    pub target_id: String,
    pub target_label: String,
    /// `{"before": …, "after": …}` and any context.
    pub metadata: serde_json::Value,
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }

    #[test]
    fn a_member_projected_before_first_in_team_existed_is_not_new_to_their_team() {
        let at = |h| Utc.with_ymd_and_hms(2026, 5, 1, h, 0, 0).unwrap();
        let team = TeamId(uuid::Uuid::from_u128(2));
        let mut legacy = User::unknown(UserId(uuid::Uuid::from_u128(7)), at(1));
        legacy.team_id = Some(team);
        legacy.facets.team_at = Some(at(1));
        let restated = UserChange::Snapshot {
            name: "A".into(),
            email: "a@x.example".into(),
            role: Role::Learner,
            team_id: Some(team),
            active: None,
        };
        legacy.apply(&restated, at(9));
        assert_eq!(legacy.facets.first_in_team.get(&team), Some(&at(1)));
    }

    /// The case: an admin's profile stored with a time in 2999 (before consumed events were
    /// bounded) would keep every real demotion older; once forgotten, the demotion applies. A team's
    /// name likewise; first times become `now`, times already behind the clock stay.
    #[test]
    fn times_ahead_of_the_clock_are_forgotten_and_real_changes_then_apply() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap();
        let far = Utc.with_ymd_and_hms(2999, 1, 1, 0, 0, 0).unwrap();
        let team = TeamId(uuid::Uuid::from_u128(2));
        let mut admin = User::unknown(UserId(uuid::Uuid::from_u128(7)), now - Duration::days(1));
        let demotion = |role| UserChange::Snapshot {
            name: "A".into(),
            email: "a@x.example".into(),
            role,
            team_id: Some(team),
            active: Some(true),
        };
        assert!(admin.apply(&demotion(Role::OrgAdmin), far));
        let mut frozen = admin.clone();
        frozen.apply(&demotion(Role::Learner), now);
        assert_eq!(frozen.role, Role::OrgAdmin, "frozen by the stored time");
        assert!(admin.forget_future(now));
        let facets = &admin.facets;
        assert_eq!((facets.profile_at, facets.team_at, facets.active_at), (None, None, None));
        assert_eq!((facets.created_at, facets.first_in_team[&team]), (Some(now), now));
        assert_eq!((admin.updated_at, admin.membership_at()), (DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH));
        assert!(!admin.forget_future(now), "nothing left ahead");
        assert!(admin.apply(&demotion(Role::Learner), now - Duration::minutes(1)));
        assert_eq!(admin.role, Role::Learner);

        let mut named = Team::unknown(team, now);
        named.apply(&TeamChange::Named("Later".into()), far);
        assert!(named.forget_future(now));
        assert!(named.apply(&TeamChange::Named("Now".into()), now));
        assert_eq!((named.name.as_str(), named.updated_at), ("Now", now));
    }

    #[test]
    fn user_projection_is_the_same_in_every_delivery_order() {
        let t = |m| Utc.with_ymd_and_hms(2026, 5, 1, 9, m, 0).unwrap();
        let (a, b) = (TeamId(uuid::Uuid::from_u128(1)), TeamId(uuid::Uuid::from_u128(2)));
        let snapshot = |name: &str, team, active| UserChange::Snapshot {
            name: name.into(),
            email: format!("{name}@x.example"),
            role: Role::Learner,
            team_id: team,
            active,
        };
        let events = [
            (snapshot("Ada", Some(a), Some(true)), t(0)),
            (UserChange::LeftTeam(a), t(1)),
            (UserChange::JoinedTeam(b), t(2)),
            (snapshot("Ada L.", Some(b), None), t(3)),
            (UserChange::Deactivated, t(4)),
        ];
        let id = UserId(uuid::Uuid::from_u128(7));
        let run = |order: &[usize]| {
            let mut user = User::unknown(id, t(0));
            for &i in order {
                user.apply(&events[i].0, events[i].1);
            }
            user
        };
        let ordered = run(&[0, 1, 2, 3, 4]);
        assert_eq!((ordered.name.as_str(), ordered.team_id, ordered.is_active), ("Ada L.", Some(b), false));
        assert_eq!(ordered.membership_at(), t(4));
        for order in permutations(events.len()) {
            assert_eq!(run(&order), ordered, "{order:?}");
        }
        let mut twice = ordered.clone();
        assert!(!twice.apply(&events[2].0, events[2].1), "a duplicate changes nothing");
    }

    #[test]
    fn a_late_leave_of_an_old_team_keeps_the_new_team() {
        let t = |m| Utc.with_ymd_and_hms(2026, 5, 1, 9, m, 0).unwrap();
        let (a, b) = (TeamId(uuid::Uuid::from_u128(1)), TeamId(uuid::Uuid::from_u128(2)));
        let mut user = User::unknown(UserId(uuid::Uuid::from_u128(7)), t(0));
        user.apply(&UserChange::JoinedTeam(b), t(2));
        assert!(!user.apply(&UserChange::LeftTeam(a), t(1)), "older");
        assert_eq!(user.team_id, Some(b));
        user.apply(&UserChange::LeftTeam(a), t(3));
        assert_eq!(user.team_id, Some(b), "leaving another team does not remove the user from theirs");
    }

    #[test]
    fn team_names_are_newest_wins_and_deletion_is_final() {
        let t = |m| Utc.with_ymd_and_hms(2026, 5, 1, 9, m, 0).unwrap();
        let events = [
            (TeamChange::Named("Payments".into()), t(0)),
            (TeamChange::Named("Payments Platform".into()), t(2)),
            (TeamChange::Deleted, t(1)),
        ];
        let run = |order: &[usize]| {
            let mut team = Team::unknown(TeamId(uuid::Uuid::nil()), t(0));
            for &i in order {
                team.apply(&events[i].0, events[i].1);
            }
            team
        };
        let ordered = run(&[0, 1, 2]);
        assert_eq!((ordered.name.as_str(), ordered.is_deleted), ("Payments Platform", true));
        for order in permutations(3) {
            assert_eq!(run(&order), ordered, "{order:?}");
        }
    }

    #[test]
    fn api_keys_stop_working_at_revocation_or_expiry() {
        let now: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
        let mut key = ApiKey {
            key_id: uuid::Uuid::nil(),
            org_id: OrgId::parse("acme").unwrap(),
            name: "ci".into(),
            scopes: vec!["assignments:read".into()],
            expires_at: None,
            revoked_at: None,
            created_by: "user:x".into(),
            created_at: now,
        };
        assert!(key.is_usable(now));
        key.expires_at = Some(now + Duration::hours(1));
        assert!(key.is_usable(now));
        assert!(!key.is_usable(now + Duration::hours(1)));
        key.expires_at = None;
        key.revoked_at = Some(now);
        assert!(!key.is_usable(now), "revocation takes effect immediately");
    }
}
