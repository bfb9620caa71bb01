//! Head counts of the directory: the org's active users and each team's active members,
//! the sets its indexes list (GSI1 `ORG#…#USERS`, GSI2 `…#TEAM#…#MEMBERS`). Every write of a user
//! moves them in its own transaction, so a dry run answers from two reads whatever the org's size.
//! A recount (the reconcile job, and the first read of a count that was never recounted, such as one
//! kept only since this count was introduced) sets a count from its index.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Select, Update};
use chrono::{DateTime, Utc};
use domain::{OrgId, TeamId, User};

use crate::dynamo::{Item, classify, n, s};
use crate::partition::Partition;
use crate::tx::{CancelReason, TxFailure};
use crate::{PageKey, Store, StoreError, keys};

/// Whose head count: the org's active users, or one team's active members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headcount {
    Org,
    Team(TeamId),
}

/// Items a head count is spread over: each user's moves go to one of them (by user id), so users
/// written at the same moment (a bulk import's events, consumed concurrently) rarely hold the same item
/// in their transactions. A count is the sum of its shards.
const SHARDS: u128 = 16;

impl Headcount {
    /// The sort keys of this count's shards start with this.
    fn prefix(self) -> String {
        match self {
            Headcount::Org => "ORG#".to_owned(),
            Headcount::Team(team) => format!("TEAM#{team}#"),
        }
    }

    fn shard_key(self, shard: u128) -> String {
        format!("{}{shard:02}", self.prefix())
    }

    /// The index partition this count counts.
    fn listing(self, org: &OrgId) -> Partition {
        match self {
            Headcount::Org => Partition::index(keys::GSI1, keys::org_users(org)),
            Headcount::Team(team) => Partition::index(keys::GSI2, keys::team_members(org, team)),
        }
    }
}

/// How long a change may take to show in an index (GSIs are eventually consistent, usually well
/// under a second; this leaves room for index throttling and for the writers' clocks): a recount sets
/// a count only when its last move is older, so it cannot miss a user the count already has.
const INDEX_SETTLE_MS: i64 = 60_000;

/// Queries the reconcile job's recount may send (Select COUNT reads up to 1 MB of the index an answer,
/// ~1,000 users of the directory: 2,000 cover two million).
const MAX_COUNT_QUERIES: usize = 2_000;

/// Queries a read may send to count a head count never checked yet (users written before counts
/// existed, until the reconcile job's first run): ~20,000 users, and no longer than
/// [`MAX_INLINE_COUNT_TIME`] (a request has API Gateway's 30 s; on DynamoDB Local a query of a large
/// index takes over a second).
const MAX_INLINE_COUNT_QUERIES: usize = 20;
const MAX_INLINE_COUNT_TIME: std::time::Duration = std::time::Duration::from_secs(3);

/// What one count of an index may take: queries, and time (a request's).
#[derive(Debug, Clone, Copy)]
struct Budget {
    queries: usize,
    until: Option<Instant>,
}

/// One user's write moving one head count by ±1, on the user's shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Move {
    count: Headcount,
    shard: u128,
    delta: i64,
    /// When the write was made (ms since the epoch): a recount waits [`INDEX_SETTLE_MS`] after it.
    at_ms: i64,
}

/// What a user's write does to the head counts: ±1 for each set it enters or leaves (`before`: as
/// stored, `None` when not stored yet), written at `now`.
pub(crate) fn moves(before: Option<&User>, after: &User, now: DateTime<Utc>) -> Vec<Move> {
    let (was, is) = (before.filter(|u| u.is_active), Some(after).filter(|u| u.is_active));
    let mut moves = Vec::new();
    match (was.is_some(), is.is_some()) {
        (false, true) => moves.push((Headcount::Org, 1)),
        (true, false) => moves.push((Headcount::Org, -1)),
        _ => {}
    }
    let (from, to) = (was.and_then(|u| u.team_id), is.and_then(|u| u.team_id));
    if from != to {
        moves.extend(from.map(|team| (Headcount::Team(team), -1)));
        moves.extend(to.map(|team| (Headcount::Team(team), 1)));
    }
    let shard = after.user_id.0.as_u128() % SHARDS;
    let at_ms = now.timestamp_millis();
    moves.into_iter().map(|(count, delta)| Move { count, shard, delta, at_ms }).collect()
}

/// The update that makes one move (in the transaction of the user's write).
pub(crate) fn move_update(org: &OrgId, m: &Move) -> UpdateBuilder {
    Update::builder()
        .key(keys::PK, s(keys::headcount_pk(org)))
        .key(keys::SK, s(m.count.shard_key(m.shard)))
        .update_expression("ADD activeUsers :delta, rev :one SET lastMoveMs = :now")
        .expression_attribute_values(":delta", n(m.delta))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":now", n(m.at_ms))
}

/// A head count as stored: the sum of its shards.
struct Stored {
    active_users: i64,
    /// Each stored shard's revision, if a move made one (a recount writes only if none moved).
    revs: HashMap<String, Option<i64>>,
    last_move_ms: Option<i64>,
    /// Set by a recount (on the first shard): the count has been checked against its index once.
    recounted: bool,
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

/// What a recount found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recount {
    pub counted: u64,
    /// The count as stored before (`None`: never recounted).
    pub stored: Option<i64>,
    /// Whether the count was set (not when a user changed while counting, or too recently).
    pub written: bool,
}

impl Store {
    async fn stored_headcount(&self, org: &OrgId, count: Headcount) -> Result<Stored, StoreError> {
        let prefix = count.prefix();
        let shards = self
            .query_all(|q| {
                Partition::table(keys::headcount_pk(org))
                    .consistent()
                    .query(q)
                    .key_condition_expression("PK = :pk AND begins_with(SK, :shards)")
                    .expression_attribute_values(":shards", s(prefix.as_str()))
            })
            .await?;
        let mut stored = Stored { active_users: 0, revs: HashMap::new(), last_move_ms: None, recounted: false };
        for shard in &shards {
            let Some(key) = shard.get(keys::SK).and_then(|v| v.as_s().ok()) else { continue };
            stored.active_users += number(shard, "activeUsers").unwrap_or(0);
            stored.revs.insert(key.clone(), number(shard, "rev"));
            stored.last_move_ms = stored.last_move_ms.max(number(shard, "lastMoveMs"));
            stored.recounted |= shard.get("recounted").is_some_and(|v| v.as_bool().is_ok_and(|b| *b));
        }
        Ok(stored)
    }

    /// The org's active users or a team's active members, from its head count (one strongly
    /// consistent Query of its shards). A count never checked against its index is recounted first,
    /// within `MAX_INLINE_COUNT_QUERIES` and `MAX_INLINE_COUNT_TIME`: `None` when that is not enough
    /// (the reconcile job's recount establishes it).
    pub async fn headcount(
        &self,
        org: &OrgId,
        count: Headcount,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let stored = self.stored_headcount(org, count).await?;
        if stored.recounted {
            return Ok(Some(u64::try_from(stored.active_users).unwrap_or(0)));
        }
        let budget = Budget { queries: MAX_INLINE_COUNT_QUERIES, until: Some(Instant::now() + MAX_INLINE_COUNT_TIME) };
        Ok(self.recount_within(org, count, budget, now).await?.map(|r| r.counted))
    }

    /// Counts the users a head count counts from its index and sets the count, unless a user's write
    /// moved it while counting or less than `INDEX_SETTLE_MS` before (the next recount looks again).
    /// Writes every shard in one transaction (the first holds the count, the others 0), each only if it
    /// has not moved since it was read.
    pub async fn recount(&self, org: &OrgId, count: Headcount, now: DateTime<Utc>) -> Result<Recount, StoreError> {
        self.recount_within(org, count, Budget { queries: MAX_COUNT_QUERIES, until: None }, now)
            .await?
            .ok_or_else(|| StoreError::Other(format!("more than {MAX_COUNT_QUERIES} pages to count")))
    }

    /// [`Store::recount`] within `budget` (`None`: counting the index takes more).
    async fn recount_within(
        &self,
        org: &OrgId,
        count: Headcount,
        budget: Budget,
        now: DateTime<Utc>,
    ) -> Result<Option<Recount>, StoreError> {
        let stored = self.stored_headcount(org, count).await?;
        let started_ms = now.timestamp_millis();
        let Some(counted) = self.count_listed(&count.listing(org), budget).await? else {
            return Ok(None);
        };
        let settled = stored.last_move_ms.is_none_or(|ms| started_ms - ms > INDEX_SETTLE_MS);
        let before = stored.recounted.then_some(stored.active_users);
        if !settled || before == Some(counted as i64) {
            return Ok(Some(Recount { counted, stored: before, written: false }));
        }
        let mut tx = self.transaction();
        for shard in 0..SHARDS {
            let key = count.shard_key(shard);
            let update = Update::builder()
                .key(keys::PK, s(keys::headcount_pk(org)))
                .key(keys::SK, s(key.as_str()))
                .update_expression("SET activeUsers = :counted, recounted = :first")
                .expression_attribute_values(":counted", n(if shard == 0 { counted } else { 0 }))
                .expression_attribute_values(":first", AttributeValue::Bool(shard == 0));
            tx.update(match stored.revs.get(&key).copied().flatten() {
                Some(rev) => update.condition_expression("rev = :rev").expression_attribute_values(":rev", n(rev)),
                None => update.condition_expression("attribute_not_exists(rev)"),
            })?;
        }
        let written = match tx.commit().await {
            Ok(()) => true,
            Err(TxFailure::Cancelled(reasons)) if reasons.iter().any(CancelReason::lost_a_race) => false,
            Err(other) => return Err(other.into()),
        };
        Ok(Some(Recount { counted, stored: before, written }))
    }

    /// How many items an index partition lists (Select COUNT, page by page; `None` when it takes more
    /// than `budget`).
    async fn count_listed(&self, partition: &Partition, budget: Budget) -> Result<Option<u64>, StoreError> {
        let mut counted = 0u64;
        let mut start: Option<PageKey> = None;
        for _ in 0..budget.queries {
            if budget.until.is_some_and(|until| Instant::now() > until) {
                return Ok(None);
            }
            let out = partition
                .query(self.client.query().table_name(&self.table))
                .select(Select::Count)
                .set_exclusive_start_key(start.take().map(|k| k.0))
                .set_return_consumed_capacity(self.capacity_mode())
                .send()
                .await
                .map_err(classify)?;
            self.count(|c| c.record(out.consumed_capacity()));
            counted += u64::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(next) => start = Some(PageKey(next)),
                None => return Ok(Some(counted)),
            }
        }
        Ok(None)
    }

    /// The teams with a head count (the reconcile job recounts them).
    pub async fn counted_teams(&self, org: &OrgId) -> Result<Vec<TeamId>, StoreError> {
        let items = self
            .query_all(|q| {
                Partition::table(keys::headcount_pk(org)).prefixed("TEAM#").query(q).projection_expression("SK")
            })
            .await?;
        let mut teams: Vec<TeamId> = items
            .iter()
            .filter_map(|item| item.get(keys::SK).and_then(|v| v.as_s().ok()))
            .filter_map(|sk| sk.strip_prefix("TEAM#").and_then(|rest| rest.split('#').next()))
            .filter_map(|id| TeamId::parse(id).ok())
            .collect();
        teams.dedup();
        Ok(teams)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn user(active: bool, team: Option<TeamId>) -> User {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        User { is_active: active, team_id: team, ..User::unknown(domain::UserId(uuid::Uuid::from_u128(0x2a)), at) }
    }

    fn deltas(before: Option<&User>, after: &User) -> Vec<(Headcount, i64)> {
        let moves = moves(before, after, chrono::DateTime::UNIX_EPOCH);
        assert!(moves.iter().all(|m| m.shard == 0x2a % SHARDS), "every move on the user's shard");
        moves.into_iter().map(|m| (m.count, m.delta)).collect()
    }

    #[test]
    fn each_write_moves_the_sets_the_user_enters_or_leaves() {
        let (a, b) = (TeamId(uuid::Uuid::from_u128(1)), TeamId(uuid::Uuid::from_u128(2)));
        use Headcount::{Org, Team};
        type Case = (Option<User>, User, Vec<(Headcount, i64)>);
        let cases: Vec<Case> = vec![
            // Not stored before: a new active user, in a team or not; a new inactive one moves nothing.
            (None, user(true, None), vec![(Org, 1)]),
            (None, user(true, Some(a)), vec![(Org, 1), (Team(a), 1)]),
            (None, user(false, Some(a)), vec![]),
            // Profile changes that keep the sets.
            (Some(user(true, Some(a))), user(true, Some(a)), vec![]),
            (Some(user(false, Some(a))), user(false, Some(b)), vec![]),
            // Joining, leaving and moving between teams while active.
            (Some(user(true, None)), user(true, Some(a)), vec![(Team(a), 1)]),
            (Some(user(true, Some(a))), user(true, None), vec![(Team(a), -1)]),
            (Some(user(true, Some(a))), user(true, Some(b)), vec![(Team(a), -1), (Team(b), 1)]),
            // Deactivation leaves both; reactivation (into another team) enters both.
            (Some(user(true, Some(a))), user(false, Some(a)), vec![(Org, -1), (Team(a), -1)]),
            (Some(user(false, Some(a))), user(true, Some(b)), vec![(Org, 1), (Team(b), 1)]),
            (Some(user(false, None)), user(true, None), vec![(Org, 1)]),
        ];
        for (before, after, expected) in cases {
            assert_eq!(deltas(before.as_ref(), &after), expected, "{before:?} → {after:?}");
        }
    }
}
