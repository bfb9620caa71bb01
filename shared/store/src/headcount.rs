//! Head counts of the directory projection: the org's active users and each team's active members,
//! the sets its indexes list (GSI1 `ORG#…#USERS`, GSI2 `…#TEAM#…#MEMBERS`). Every write of a user
//! moves them in its own transaction, so a dry run answers from two reads whatever the org's size.
//! A recount (the reconcile job, and the first read of a count that was never recounted, such as one
//! kept only since this count was introduced) sets a count from its index.

use aws_sdk_dynamodb::types::{AttributeValue, Select, Update};
use chrono::Utc;
use domain::{OrgId, TeamId, User};

use crate::dynamo::{classify, n, s};
use crate::partition::Partition;
use crate::{PageKey, Store, StoreError, keys};

/// Whose head count: the org's active users, or one team's active members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headcount {
    Org,
    Team(TeamId),
}

impl Headcount {
    fn sort_key(self) -> String {
        match self {
            Headcount::Org => "ORG".to_owned(),
            Headcount::Team(team) => format!("TEAM#{team}"),
        }
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
/// under a second): a recount sets a count only when its last move is older, so it cannot miss a user
/// the count already has.
const INDEX_SETTLE_MS: i64 = 10_000;

/// Queries one recount may send (Select COUNT reads up to 1 MB an answer: ~2,500 users of the
/// projection each, so 400 cover a million).
const MAX_COUNT_QUERIES: usize = 400;

/// What a user's write does to the head counts: ±1 for each set it enters or leaves (`before`: as
/// stored, `None` when not stored yet).
pub(crate) fn moves(before: Option<&User>, after: &User) -> Vec<(Headcount, i64)> {
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
    moves
}

/// The update that moves one head count by `delta` (in the transaction of the user's write).
pub(crate) fn move_update(
    org: &OrgId,
    count: Headcount,
    delta: i64,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    Update::builder()
        .key(keys::PK, s(keys::headcount_pk(org)))
        .key(keys::SK, s(count.sort_key()))
        .update_expression("ADD activeUsers :delta, rev :one SET lastMoveMs = :now")
        .expression_attribute_values(":delta", n(delta))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":now", n(Utc::now().timestamp_millis()))
}

/// A head count as stored.
struct Stored {
    active_users: i64,
    rev: Option<i64>,
    last_move_ms: Option<i64>,
    recounted: bool,
}

fn number(item: &crate::dynamo::Item, name: &str) -> Option<i64> {
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
    async fn stored_headcount(&self, org: &OrgId, count: Headcount) -> Result<Option<Stored>, StoreError> {
        let item = self.get_item(keys::headcount_pk(org), &count.sort_key(), true).await?;
        Ok(item.map(|item| Stored {
            active_users: number(&item, "activeUsers").unwrap_or(0),
            rev: number(&item, "rev"),
            last_move_ms: number(&item, "lastMoveMs"),
            recounted: item.get("recounted").is_some_and(|v| v.as_bool().is_ok_and(|b| *b)),
        }))
    }

    /// The org's active users or a team's active members, from its head count (one strongly
    /// consistent GetItem). A count never recounted is recounted first (see [`Store::recount`]).
    pub async fn headcount(&self, org: &OrgId, count: Headcount) -> Result<u64, StoreError> {
        match self.stored_headcount(org, count).await? {
            Some(stored) if stored.recounted => Ok(u64::try_from(stored.active_users).unwrap_or(0)),
            _ => Ok(self.recount(org, count).await?.counted),
        }
    }

    /// Counts the users a head count counts from its index and sets the count, unless a user's write
    /// moved it while counting or less than [`INDEX_SETTLE_MS`] before (the next recount looks again).
    pub async fn recount(&self, org: &OrgId, count: Headcount) -> Result<Recount, StoreError> {
        let stored = self.stored_headcount(org, count).await?;
        let started_ms = Utc::now().timestamp_millis();
        let counted = self.count_listed(&count.listing(org)).await?;
        let settled = stored.as_ref().and_then(|s| s.last_move_ms).is_none_or(|ms| started_ms - ms > INDEX_SETTLE_MS);
        let before = stored.as_ref().filter(|s| s.recounted).map(|s| s.active_users);
        if !settled || before == Some(counted as i64) {
            return Ok(Recount { counted, stored: before, written: false });
        }
        let request = self
            .update_request()
            .key(keys::PK, s(keys::headcount_pk(org)))
            .key(keys::SK, s(count.sort_key()))
            .update_expression("SET activeUsers = :counted, recounted = :yes")
            .expression_attribute_values(":counted", n(counted))
            .expression_attribute_values(":yes", AttributeValue::Bool(true));
        let request = match stored.and_then(|s| s.rev) {
            Some(rev) => request.condition_expression("rev = :rev").expression_attribute_values(":rev", n(rev)),
            None => request.condition_expression("attribute_not_exists(rev)"),
        };
        let written = match self.send_update(request).await {
            Ok(_) => true,
            Err(StoreError::ConditionFailed) => false,
            Err(other) => return Err(other),
        };
        Ok(Recount { counted, stored: before, written })
    }

    /// How many items an index partition lists (Select COUNT, page by page).
    async fn count_listed(&self, partition: &Partition) -> Result<u64, StoreError> {
        let mut counted = 0u64;
        let mut start: Option<PageKey> = None;
        for _ in 0..MAX_COUNT_QUERIES {
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
                None => return Ok(counted),
            }
        }
        Err(StoreError::Other(format!("more than {MAX_COUNT_QUERIES} pages to count")))
    }

    /// The teams with a head count (the reconcile job recounts them).
    pub async fn counted_teams(&self, org: &OrgId) -> Result<Vec<TeamId>, StoreError> {
        let items = self.query_all(|q| Partition::table(keys::headcount_pk(org)).prefixed("TEAM#").query(q)).await?;
        Ok(items
            .iter()
            .filter_map(|item| item.get(keys::SK).and_then(|v| v.as_s().ok()))
            .filter_map(|sk| sk.strip_prefix("TEAM#").and_then(|id| TeamId::parse(id).ok()))
            .collect())
    }
}
