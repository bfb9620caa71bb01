//! Pattern 5 and the directory of platform data: users, teams, team members, custom courses.
//!
//! Writes are order-safe: each carries the `occurredAt` of the event behind it (as epoch millis, which
//! compare correctly where RFC 3339 strings with varying fractions would not), and an older write
//! never replaces a newer one.

use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::{CourseId, CustomCourse, OrgId, Team, TeamChange, TeamId, User, UserChange, UserId};

use aws_sdk_dynamodb::types::Put;

use crate::dynamo::{Item, from_item, n, to_item};
use crate::headcount::{self, Move};
use crate::partition::Partition;
use crate::records::{CourseRecord, Record, TeamRecord, UserRecord};
use crate::retry::Retry;
use crate::tx::{CancelReason, TxFailure};
use crate::{Page, PageKey, Store, StoreError, keys};

const NEWER_WINS: &str = "attribute_not_exists(PK) OR updatedAtMs <= :ms";

/// GSI1 and GSI3 (by email) only while active; GSI2 (team members) only while active and in a team.
fn user_record(org: &OrgId, user: &User, revision: Option<u64>) -> UserRecord {
    let listed = user.is_active;
    UserRecord {
        pk: keys::user_pk(org, user.user_id),
        sk: keys::PROFILE_SK.into(),
        entity: "user".into(),
        gsi1pk: listed.then(|| keys::org_users(org)),
        gsi1sk: listed.then(|| user.user_id.to_string()),
        gsi2pk: user.team_id.filter(|_| listed).map(|team| keys::team_members(org, team)),
        gsi2sk: user.team_id.filter(|_| listed).map(|_| user.user_id.to_string()),
        gsi3pk: (listed && !user.email.trim().is_empty()).then(|| keys::user_email_index(org, &user.email)),
        gsi3sk: (listed && !user.email.trim().is_empty()).then(|| user.user_id.to_string()),
        updated_at_ms: Some(user.updated_at.timestamp_millis()),
        revision,
        user: user.clone(),
    }
}

fn team_record(org: &OrgId, team: &Team, revision: Option<u64>) -> TeamRecord {
    TeamRecord {
        pk: keys::team_pk(org, team.team_id),
        sk: keys::PROFILE_SK.into(),
        entity: "team".into(),
        gsi1pk: Some(keys::org_teams(org)),
        gsi1sk: Some(team.team_id.to_string()),
        updated_at_ms: Some(team.updated_at.timestamp_millis()),
        revision,
        team: team.clone(),
    }
}

impl Store {
    /// Puts `item` unless the stored one is newer. Returns whether it was written.
    async fn put_if_not_older(&self, item: Item, updated_ms: i64) -> Result<bool, StoreError> {
        let result = self
            .send_put(
                self.put_request()
                    .set_item(Some(item))
                    .condition_expression(NEWER_WINS)
                    .expression_attribute_values(":ms", n(updated_ms)),
            )
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores a user unless a newer version is stored (moving the head counts with it). Returns
    /// whether it was written. `now`: when the write is made (the head counts' last move).
    pub async fn put_user(&self, org: &OrgId, user: &User, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let written = AtomicBool::new(false);
        self.revise(
            org,
            keys::user_pk(org, user.user_id),
            |stored: Option<UserRecord>| match stored {
                Some(record) => (record.user, Some(record.revision)),
                None => (User::unknown(user.user_id, user.updated_at), None),
            },
            |stored| {
                let newer = stored.updated_at <= user.updated_at;
                if newer {
                    *stored = user.clone();
                }
                written.store(newer, Ordering::Relaxed);
                newer
            },
            |before, after| headcount::moves(before, after, now),
            |user, revision| to_item(&user_record(org, user, Some(revision))),
            || format!("user {}", user.user_id),
        )
        .await?;
        Ok(written.load(Ordering::Relaxed))
    }

    /// Applies what a platform event says about a user at `at` to the directory (order-safe, see
    /// [`User::apply`]; times stored ahead of `clock`, the org's clock, are forgotten first, see
    /// [`User::forget_future`]); a user not seen before starts as [`User::unknown`]. Read-modify-write
    /// under a revision condition, retried on concurrent changes. Returns the user as stored afterwards.
    /// `now`: when the write is made (the head counts' last move, by the wall clock).
    pub async fn change_user(
        &self,
        org: &OrgId,
        user_id: UserId,
        change: &UserChange,
        at: DateTime<Utc>,
        clock: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        self.revise(
            org,
            keys::user_pk(org, user_id),
            |stored: Option<UserRecord>| match stored {
                Some(record) => (record.user, Some(record.revision)),
                None => (User::unknown(user_id, at), None),
            },
            |user| user.forget_future(clock) | user.apply(change, at),
            |before, after| headcount::moves(before, after, now),
            |user, revision| to_item(&user_record(org, user, Some(revision))),
            || format!("user {user_id}"),
        )
        .await
    }

    /// Forgets the user's times stored ahead of `now`, the org's clock ([`User::forget_future`]), if
    /// there are any. Returns the user as stored afterwards when it did.
    pub async fn forget_future_of_user(
        &self,
        org: &OrgId,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        let written = AtomicBool::new(false);
        let stored = self
            .revise(
                org,
                keys::user_pk(org, user_id),
                |stored: Option<UserRecord>| match stored {
                    Some(record) => (record.user, Some(record.revision)),
                    // Nothing stored, nothing to forget: `forget_future` of a fresh user changes nothing.
                    None => (User::unknown(user_id, now), None),
                },
                |user| {
                    let forgot = user.forget_future(now);
                    written.store(forgot, Ordering::Relaxed);
                    forgot
                },
                |before, after| headcount::moves(before, after, now),
                |user, revision| to_item(&user_record(org, user, Some(revision))),
                || format!("user {user_id}"),
            )
            .await?;
        Ok(written.load(Ordering::Relaxed).then_some(stored))
    }

    /// Like [`Store::change_user`], for a team.
    pub async fn change_team(
        &self,
        org: &OrgId,
        team_id: TeamId,
        change: &TeamChange,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Team, StoreError> {
        self.revise(
            org,
            keys::team_pk(org, team_id),
            |stored: Option<TeamRecord>| match stored {
                Some(record) => (record.team, Some(record.revision)),
                None => (Team::unknown(team_id, at), None),
            },
            |team| team.forget_future(now) | team.apply(change, at),
            |_, _| Vec::new(),
            |team, revision| to_item(&team_record(org, team, Some(revision))),
            || format!("team {team_id}"),
        )
        .await
    }

    /// Read-modify-write of one directory item (`pk`, profile) under its revision: `open` makes the
    /// entity of the stored record (or of none) and says which revision the write must still find;
    /// `change` applies the event (`false`: nothing to write); `moves` says how the change moves the
    /// org's head counts (from the entity as stored, `None` if it was not); `item` is the record to
    /// write at the next revision. Re-read and re-applied on concurrent changes, as the conflict policy
    /// allows.
    #[allow(clippy::too_many_arguments)]
    async fn revise<R: serde::de::DeserializeOwned, T: Clone>(
        &self,
        org: &OrgId,
        pk: String,
        open: impl Fn(Option<R>) -> (T, Option<Option<u64>>),
        change: impl Fn(&mut T) -> bool,
        moves: impl Fn(Option<&T>, &T) -> Vec<Move>,
        item: impl Fn(&T, u64) -> Result<Item, StoreError>,
        what: impl FnOnce() -> String,
    ) -> Result<T, StoreError> {
        let mut attempts = Retry::CONFLICT.attempts();
        while attempts.next().await {
            let stored = self.get(pk.clone(), keys::PROFILE_SK).await?.map(from_item::<R>).transpose()?;
            let (mut entity, condition) = open(stored);
            let before = condition.is_some().then(|| entity.clone());
            if !change(&mut entity) {
                return Ok(entity);
            }
            let revision = condition.flatten().map_or(1, |r| r + 1);
            let moves = moves(before.as_ref(), &entity);
            match self.put_on_revision(org, item(&entity, revision)?, condition, &moves).await {
                Ok(()) => return Ok(entity),
                Err(StoreError::ConditionFailed) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::TransactionConflict(format!("{} kept changing", what())))
    }

    /// Puts `item` if the stored one is still as read: absent (`None`), at a revision, or written
    /// without one (`Some(None)`); with the head count `moves` in the same transaction.
    async fn put_on_revision(
        &self,
        org: &OrgId,
        item: Item,
        read: Option<Option<u64>>,
        moves: &[Move],
    ) -> Result<(), StoreError> {
        let (condition, revision) = match read {
            None => ("attribute_not_exists(PK)", None),
            Some(None) => ("attribute_not_exists(revision)", None),
            Some(Some(rev)) => ("revision = :rev", Some(n(rev))),
        };
        if moves.is_empty() {
            let request = self.put_request().set_item(Some(item)).condition_expression(condition);
            let request = match revision {
                Some(rev) => request.expression_attribute_values(":rev", rev),
                None => request,
            };
            self.send_put(request).await?;
            return Ok(());
        }
        let mut tx = self.transaction();
        let put = Put::builder().set_item(Some(item)).condition_expression(condition);
        tx.put_with(match revision {
            Some(rev) => put.expression_attribute_values(":rev", rev),
            None => put,
        })?;
        for m in moves {
            tx.update(headcount::move_update(org, m))?;
        }
        match tx.commit().await {
            Ok(()) => Ok(()),
            // The user changed since it was read, or another write held a count: read again.
            Err(TxFailure::Cancelled(reasons)) if reasons.iter().any(CancelReason::lost_a_race) => {
                Err(StoreError::ConditionFailed)
            }
            Err(other) => Err(other.into()),
        }
    }

    pub async fn get_user(&self, org: &OrgId, user: UserId) -> Result<Option<User>, StoreError> {
        self.get_entity::<UserRecord>(keys::user_pk(org, user), keys::PROFILE_SK).await
    }

    /// The user as last projected, read strongly consistent: what authenticating a session relies on,
    /// so a role change or deactivation applies to the very next request. One GetItem, 1 RCU.
    pub async fn current_user(&self, org: &OrgId, user: UserId) -> Result<Option<User>, StoreError> {
        self.get_item(keys::user_pk(org, user), keys::PROFILE_SK, true).await?.map(UserRecord::entity_of).transpose()
    }

    /// Several users by id (unknown ids are left out).
    pub async fn get_users(&self, org: &OrgId, users: &[UserId]) -> Result<Vec<User>, StoreError> {
        self.batch_get_entities::<UserRecord>(users.iter().map(|u| (keys::user_pk(org, *u), keys::PROFILE_SK))).await
    }

    /// Pattern 5: a page of the org's active users.
    pub async fn active_users_page(
        &self,
        org: &OrgId,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<User>, StoreError> {
        self.page_of::<UserRecord>(&Partition::index(keys::GSI1, keys::org_users(org)), start, limit).await
    }

    /// Pattern 5: every active user of the org (roster of an org-wide assignment).
    pub async fn active_users(&self, org: &OrgId) -> Result<Vec<User>, StoreError> {
        self.all_of::<UserRecord>(&Partition::index(keys::GSI1, keys::org_users(org))).await
    }

    /// Pattern 5, paged: up to `limit` of a team's active members, by user id.
    pub async fn team_members_page(
        &self,
        org: &OrgId,
        team: TeamId,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<User>, StoreError> {
        self.page_of::<UserRecord>(&Partition::index(keys::GSI2, keys::team_members(org, team)), start, limit).await
    }

    /// Pattern 5: a team's active members.
    pub async fn team_members(&self, org: &OrgId, team: TeamId) -> Result<Vec<User>, StoreError> {
        self.all_of::<UserRecord>(&Partition::index(keys::GSI2, keys::team_members(org, team))).await
    }

    /// Stores a team unless a newer version is stored. Returns whether it was written.
    pub async fn put_team(&self, org: &OrgId, team: &Team) -> Result<bool, StoreError> {
        let ms = team.updated_at.timestamp_millis();
        self.put_if_not_older(to_item(&team_record(org, team, None))?, ms).await
    }

    /// The ids of the org's teams in the directory (jobs that go through every team).
    pub async fn team_ids(&self, org: &OrgId) -> Result<Vec<TeamId>, StoreError> {
        let teams = self.all_of::<TeamRecord>(&Partition::index(keys::GSI1, keys::org_teams(org))).await?;
        Ok(teams.into_iter().map(|team| team.team_id).collect())
    }

    /// Several teams by id (missing ones are left out), in no particular order.
    pub async fn get_teams(&self, org: &OrgId, teams: &[TeamId]) -> Result<Vec<Team>, StoreError> {
        self.batch_get_entities::<TeamRecord>(teams.iter().map(|t| (keys::team_pk(org, *t), keys::PROFILE_SK))).await
    }

    pub async fn get_team(&self, org: &OrgId, team: TeamId) -> Result<Option<Team>, StoreError> {
        self.get_entity::<TeamRecord>(keys::team_pk(org, team), keys::PROFILE_SK).await
    }

    /// Stores a custom course unless a newer version is stored. Returns whether it was written.
    pub async fn put_custom_course(&self, org: &OrgId, course: &CustomCourse) -> Result<bool, StoreError> {
        let ms = course.updated_at.timestamp_millis();
        let record = CourseRecord {
            pk: keys::course_pk(org, course.course_id),
            sk: keys::COURSE_SK.into(),
            entity: "custom-course".into(),
            gsi1pk: Some(keys::org_courses(org)),
            gsi1sk: Some(course.course_id.to_string()),
            updated_at_ms: Some(ms),
            course: course.clone(),
        };
        self.put_if_not_older(to_item(&record)?, ms).await
    }

    pub async fn get_custom_course(&self, org: &OrgId, course: CourseId) -> Result<Option<CustomCourse>, StoreError> {
        self.get_entity::<CourseRecord>(keys::course_pk(org, course), keys::COURSE_SK).await
    }

    /// Whether the org has any custom course (`no_custom_courses` otherwise). One key-only read.
    pub async fn has_custom_courses(&self, org: &OrgId) -> Result<bool, StoreError> {
        let pk = keys::org_courses(org);
        let (items, _) = self
            .query_page(
                |q| {
                    q.index_name(keys::GSI1)
                        .key_condition_expression("GSI1PK = :pk")
                        .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                        .projection_expression("PK")
                },
                None,
                Some(1),
            )
            .await?;
        Ok(!items.is_empty())
    }
}

mod emails;
