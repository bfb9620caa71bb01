//! Access patterns 1–4: assignments, their progress rows, the duplicate lock.

use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::NaiveDate;
use domain::{
    Activation, Aggregates, AssigneeType, Assignment, AssignmentId, AuditEntry, ContentArea, CourseId, ItemCounts,
    OrgId, ProgressRow, TargetType, TrackedUnit, UserId,
};

use crate::dynamo::{CancelReason, Item, Partition, TxFailure, from_item, n, s, to_item};
use crate::records::{AssignmentRecord, LockRecord, ProgressRecord, Record};
use crate::retry::Retry;
use crate::{Page, PageKey, Store, StoreError, keys};

/// Progress rows written in the transaction that creates an assignment (100 minus the assignment, its
/// duplicate lock, its audit entry and the org's registry entry). Larger rosters continue in chunks of
/// [`ROSTER_CHUNK`].
pub const ROSTER_ROWS_PER_TRANSACTION: usize = 96;
/// Rows per roster transaction after creation (100 minus the assignment's counter update).
const ROSTER_CHUNK: usize = 99;

/// Filters of the list route; all optional and combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentFilter {
    pub is_active: Option<bool>,
    pub assignee_type: Option<AssigneeType>,
    pub assignee_id: Option<String>,
    pub content_area: Option<ContentArea>,
    /// Only assignments overdue as of this date: active, deadline before it, someone not done.
    pub overdue_on: Option<NaiveDate>,
}

fn assignment_record(org: &OrgId, assignment: &Assignment) -> Result<AssignmentRecord, StoreError> {
    let active = assignment.is_active;
    let assignee = &assignment.assignee;
    Ok(AssignmentRecord {
        pk: keys::assignment_pk(org, assignment.id),
        sk: keys::ASSIGNMENT_SK.into(),
        entity: "assignment".into(),
        gsi1pk: Some(keys::org_assignments(org)),
        gsi1sk: Some(assignment.id.to_string()),
        gsi2pk: active.then(|| keys::assignee_index(org, assignee.assignee_type, &assignee.assignee_id)).transpose()?,
        gsi2sk: active.then(|| assignment.id.to_string()),
        gsi3pk: active.then(|| keys::due_index(org)),
        gsi3sk: active.then(|| keys::due_sort(assignment.deadline, assignment.id)),
        assignment: assignment.clone(),
    })
}

fn lock_pk(org: &OrgId, a: &Assignment) -> Result<String, StoreError> {
    keys::active_lock_pk(
        org,
        a.assignee.assignee_type,
        &a.assignee.assignee_id,
        a.target.target_type,
        &a.target.target_id,
    )
}

/// The stored form of a row; records what the counters count for it (see [`ProgressRow::counted`]).
pub(crate) fn progress_item(org: &OrgId, row: &ProgressRow, assignment: &Assignment) -> Result<Item, StoreError> {
    let mut row = row.clone();
    row.counted = Some(row.contribution(&assignment.units, assignment.item_count));
    to_item(&ProgressRecord {
        pk: keys::assignment_pk(org, row.assignment_id),
        sk: keys::progress_sk(row.user_id),
        entity: "progress".into(),
        gsi2pk: Some(keys::user_assignments_index(org, row.user_id)),
        gsi2sk: Some(keys::assignment_ref(row.assignment_id)),
        phase: Some(row.class(&assignment.units, assignment.item_count)),
        row,
    })
}

pub(crate) fn audit_put(org: &OrgId, entry: &AuditEntry) -> Result<TransactWriteItem, StoreError> {
    let item = crate::audit::audit_item(org, entry)?;
    Ok(TransactWriteItem::builder().put(put(item, Some("attribute_not_exists(PK)"))?).build())
}

pub(crate) fn put(item: Item, condition: Option<&str>) -> Result<Put, StoreError> {
    Put::builder()
        .set_item(Some(item))
        .table_name(TABLE_PLACEHOLDER)
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(|e| StoreError::Other(e.to_string()))
}

/// Transaction items are built before the table name is known to the helper; [`Store::tx`] fills it.
const TABLE_PLACEHOLDER: &str = "__table__";

/// The transaction item that moves an assignment's counters by `delta`. The assignment must exist and
/// still track the units the delta was computed with (else [`counter_failure`] says which).
pub(crate) fn counter_update(
    org: &OrgId,
    assignment: &Assignment,
    delta: &Aggregates,
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(TABLE_PLACEHOLDER)
        .key(keys::PK, s(keys::assignment_pk(org, assignment.id)))
        .key(keys::SK, s(keys::ASSIGNMENT_SK))
        .update_expression(
            "ADD totalUsers :dt, completedUsers :dc, inProgressUsers :di, notStartedUsers :dn, completedItemsSum :ds",
        )
        .condition_expression("attribute_exists(PK) AND unitsRev = :ur")
        .expression_attribute_values(":ur", n(assignment.units_rev))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .expression_attribute_values(":dt", n(delta.total_users))
        .expression_attribute_values(":dc", n(delta.completed_users))
        .expression_attribute_values(":di", n(delta.in_progress_users))
        .expression_attribute_values(":dn", n(delta.not_started_users))
        .expression_attribute_values(":ds", n(delta.completed_items_sum))
        .build()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Why a [`counter_update`] failed: the assignment is gone, or its tracked units changed.
pub(crate) fn counter_failure(reason: &CancelReason) -> StoreError {
    if reason.item.is_some() { StoreError::AssignmentChanged } else { StoreError::NotFound }
}

fn roster_delta(assignment: &Assignment, rows: &[ProgressRow]) -> Aggregates {
    rows.iter().fold(Aggregates::default(), |acc, row| {
        acc + Aggregates::delta(None, Some(row.contribution(&assignment.units, assignment.item_count)))
    })
}

impl Store {
    /// Fills in the table name of transaction items built with [`put`] and friends, then runs them.
    pub(crate) async fn tx(&self, items: Vec<TransactWriteItem>) -> Result<(), TxFailure> {
        let items = items.into_iter().map(|item| self.with_table(item)).collect();
        self.transact(items).await
    }

    fn with_table(&self, mut item: TransactWriteItem) -> TransactWriteItem {
        if let Some(p) = item.put.as_mut() {
            p.table_name = self.table.clone();
        }
        if let Some(u) = item.update.as_mut() {
            u.table_name = self.table.clone();
        }
        if let Some(d) = item.delete.as_mut() {
            d.table_name = self.table.clone();
        }
        if let Some(c) = item.condition_check.as_mut() {
            c.table_name = self.table.clone();
        }
        item
    }

    /// Creates an assignment with its audit entry and its initial roster.
    ///
    /// The assignment, its duplicate lock, its audit entry and the first
    /// [`ROSTER_ROWS_PER_TRANSACTION`] rows commit in one transaction, with counters that match those
    /// rows. Further rows follow in transactions that each move the counters with the rows they add,
    /// so counters always equal the rows present. Returns the assignment with its final counters.
    pub async fn create_assignment(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        audit: &AuditEntry,
        roster: &[ProgressRow],
    ) -> Result<Assignment, StoreError> {
        let (first, rest) = roster.split_at(roster.len().min(ROSTER_ROWS_PER_TRANSACTION));
        let mut created = assignment.clone();
        created.aggregates = assignment.aggregates + roster_delta(assignment, first);

        let lock = to_item(&LockRecord {
            pk: lock_pk(org, assignment)?,
            sk: keys::LOCK_SK.into(),
            entity: "active-lock".into(),
            assignment_id: assignment.id,
        })?;
        let mut items = vec![
            TransactWriteItem::builder()
                .put(put(to_item(&assignment_record(org, &created)?)?, Some("attribute_not_exists(PK)"))?)
                .build(),
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .set_item(Some(lock))
                        .table_name(TABLE_PLACEHOLDER)
                        .condition_expression("attribute_not_exists(PK)")
                        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                        .build()
                        .map_err(|e| StoreError::Other(e.to_string()))?,
                )
                .build(),
            audit_put(org, audit)?,
            // Scheduled jobs (reminders, reconcile) find the orgs that have assignments here.
            TransactWriteItem::builder()
                .put(put(
                    Item::from([
                        (keys::PK.to_owned(), s(keys::ORGS_PK)),
                        (keys::SK.to_owned(), s(org.as_str())),
                        ("entity".to_owned(), s("org")),
                    ]),
                    None,
                )?)
                .build(),
        ];
        for row in first {
            items.push(
                TransactWriteItem::builder()
                    .put(put(progress_item(org, row, &created)?, Some("attribute_not_exists(PK)"))?)
                    .build(),
            );
        }
        match self.tx(items).await {
            Ok(()) => {}
            Err(TxFailure::Cancelled(reasons)) if reasons.get(1).is_some_and(CancelReason::condition_failed) => {
                return Err(self.duplicate_of(org, assignment, &reasons[1]).await);
            }
            Err(other) => return Err(other.into()),
        }
        if !rest.is_empty() {
            self.add_roster_rows(org, &created, rest).await?;
            created.aggregates = created.aggregates + roster_delta(&created, rest);
        }
        Ok(created)
    }

    async fn duplicate_of(&self, org: &OrgId, assignment: &Assignment, reason: &CancelReason) -> StoreError {
        let existing = match &reason.item {
            Some(item) => from_item::<LockRecord>(item.clone()).ok(),
            // Older DynamoDB versions do not return the item; read the lock instead.
            None => match lock_pk(org, assignment) {
                Ok(pk) => match self.get(pk, keys::LOCK_SK).await {
                    Ok(Some(item)) => from_item::<LockRecord>(item).ok(),
                    _ => None,
                },
                Err(e) => return e,
            },
        };
        match existing {
            Some(lock) => StoreError::DuplicateAssignment { existing_id: lock.assignment_id },
            None => StoreError::TransactionConflict("duplicate lock changed concurrently".into()),
        }
    }

    /// Adds new rows to an assignment's roster, each chunk in one transaction with the counter update.
    /// Rows that already exist are skipped (so a retried call is harmless). Returns how many were added.
    pub async fn add_roster_rows(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        rows: &[ProgressRow],
    ) -> Result<usize, StoreError> {
        let mut added = 0;
        for chunk in rows.chunks(ROSTER_CHUNK) {
            let mut pending: Vec<&ProgressRow> = chunk.iter().collect();
            while !pending.is_empty() {
                let owned: Vec<ProgressRow> = pending.iter().map(|r| (*r).clone()).collect();
                let delta = roster_delta(assignment, &owned);
                let mut items = vec![counter_update(org, assignment, &delta)?];
                for row in &pending {
                    items.push(
                        TransactWriteItem::builder()
                            .put(put(progress_item(org, row, assignment)?, Some("attribute_not_exists(PK)"))?)
                            .build(),
                    );
                }
                match self.tx(items).await {
                    Ok(()) => {
                        added += pending.len();
                        pending.clear();
                    }
                    Err(TxFailure::Cancelled(reasons))
                        if reasons.first().is_some_and(CancelReason::condition_failed) =>
                    {
                        return Err(counter_failure(&reasons[0]));
                    }
                    Err(TxFailure::Cancelled(reasons))
                        if reasons.iter().skip(1).any(CancelReason::condition_failed) =>
                    {
                        let existing: Vec<bool> = reasons.iter().skip(1).map(CancelReason::condition_failed).collect();
                        pending =
                            pending.into_iter().zip(existing).filter(|(_, exists)| !exists).map(|(r, _)| r).collect();
                    }
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok(added)
    }

    /// Pattern 1: an assignment by id, within the org.
    pub async fn get_assignment(&self, org: &OrgId, id: AssignmentId) -> Result<Option<Assignment>, StoreError> {
        self.get_entity::<AssignmentRecord>(keys::assignment_pk(org, id), keys::ASSIGNMENT_SK).await
    }

    /// Several assignments by id (missing ones are left out), in no particular order.
    pub async fn get_assignments(&self, org: &OrgId, ids: &[AssignmentId]) -> Result<Vec<Assignment>, StoreError> {
        self.batch_get_entities::<AssignmentRecord>(
            ids.iter().map(|id| (keys::assignment_pk(org, *id), keys::ASSIGNMENT_SK)),
        )
        .await
    }

    /// Pattern 2: the org's assignments, newest first, filtered, up to `limit`.
    pub async fn list_assignments(
        &self,
        org: &OrgId,
        filter: &AssignmentFilter,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<Assignment>, StoreError> {
        let mut conditions = Vec::new();
        let mut values = vec![(":org".to_owned(), s(keys::org_assignments(org)))];
        if let Some(active) = filter.is_active {
            conditions.push("isActive = :active");
            values.push((":active".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(active)));
        }
        if let Some(t) = filter.assignee_type {
            conditions.push("assigneeType = :atype");
            values.push((":atype".into(), s(t.as_str())));
        }
        if let Some(id) = &filter.assignee_id {
            conditions.push("assigneeId = :aid");
            values.push((":aid".into(), s(id.as_str())));
        }
        if let Some(area) = filter.content_area {
            conditions.push("contentArea = :area");
            values.push((":area".into(), s(area.as_str())));
        }
        if let Some(today) = filter.overdue_on {
            conditions.push("isActive = :overdueActive AND deadline < :today AND (inProgressUsers > :zero OR notStartedUsers > :zero)");
            values.push((":overdueActive".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(true)));
            values.push((":today".into(), s(today.to_string())));
            values.push((":zero".into(), n(0)));
        }
        let filter_expression = (!conditions.is_empty()).then(|| conditions.join(" AND "));
        let (items, next) = self
            .query_bounded(
                |q| {
                    q.index_name(keys::GSI1)
                        .key_condition_expression("GSI1PK = :org")
                        .set_filter_expression(filter_expression.clone())
                        .set_expression_attribute_values(Some(values.iter().cloned().collect()))
                        .scan_index_forward(false)
                },
                Some(keys::GSI1),
                filter_expression.is_some(),
                start,
                limit,
            )
            .await?;
        let items = items.into_iter().map(AssignmentRecord::entity_of).collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }

    /// Pattern 1 (rows): a page of an assignment's progress rows, by user id.
    pub async fn progress_page(
        &self,
        org: &OrgId,
        id: AssignmentId,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<ProgressRow>, StoreError> {
        let rows = Partition::table(keys::assignment_pk(org, id)).prefixed(keys::PROGRESS_SK_PREFIX);
        self.page_of::<ProgressRecord>(&rows, start, limit).await
    }

    /// One learner's row on one assignment.
    pub async fn progress_row(
        &self,
        org: &OrgId,
        id: AssignmentId,
        user: UserId,
    ) -> Result<Option<ProgressRow>, StoreError> {
        self.get_entity::<ProgressRecord>(keys::assignment_pk(org, id), &keys::progress_sk(user)).await
    }

    /// Pattern 3: every progress row of a user (their assignments, active or not).
    pub async fn user_progress_rows(&self, org: &OrgId, user: UserId) -> Result<Vec<ProgressRow>, StoreError> {
        self.all_of::<ProgressRecord>(&user_rows(org, user)).await
    }

    /// Pattern 3, paged: up to `limit` of a user's progress rows (the learner view).
    pub async fn user_progress_page(
        &self,
        org: &OrgId,
        user: UserId,
        limit: usize,
        start: Option<PageKey>,
    ) -> Result<Page<ProgressRow>, StoreError> {
        self.page_of::<ProgressRecord>(&user_rows(org, user), start, limit).await
    }

    /// Pattern 4: the active assignments aimed at one assignee (a team, the org, a user).
    pub async fn active_assignments_for(
        &self,
        org: &OrgId,
        assignee_type: AssigneeType,
        assignee_id: &str,
    ) -> Result<Vec<Assignment>, StoreError> {
        let aimed_at = Partition::index(keys::GSI2, keys::assignee_index(org, assignee_type, assignee_id)?);
        self.all_of::<AssignmentRecord>(&aimed_at).await
    }

    /// A page of the orgs that have assignments (the scheduled jobs' starting point).
    pub async fn orgs_page(&self, start: Option<PageKey>) -> Result<Page<OrgId>, StoreError> {
        let (items, next) = self
            .query_page(
                |q| q.key_condition_expression("PK = :pk").expression_attribute_values(":pk", s(keys::ORGS_PK)),
                start,
                Some(100),
            )
            .await?;
        let items = items
            .into_iter()
            .filter_map(|item| match item.get(keys::SK) {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(org)) => OrgId::parse(org).ok(),
                _ => None,
            })
            .collect();
        Ok(Page { items, next })
    }

    /// Pattern 6: a page of the org's active assignments with a deadline on or before `until`,
    /// earliest first (the sparse deadline index holds only active assignments).
    pub async fn due_assignments_page(
        &self,
        org: &OrgId,
        until: NaiveDate,
        start: Option<PageKey>,
    ) -> Result<Page<Assignment>, StoreError> {
        let pk = keys::due_index(org);
        let (items, next) = self
            .query_page(
                |q| {
                    q.index_name(keys::GSI3)
                        .key_condition_expression("GSI3PK = :pk AND GSI3SK <= :until")
                        .expression_attribute_values(":pk", s(pk.as_str()))
                        .expression_attribute_values(":until", s(format!("{until}#~")))
                },
                start,
                Some(100),
            )
            .await?;
        let items = items.into_iter().map(AssignmentRecord::entity_of).collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }

    /// Records that a reminder `kind` went to `user` on `assignment`; `false` if it already had.
    pub async fn claim_reminder(
        &self,
        org: &OrgId,
        assignment: AssignmentId,
        user: UserId,
        kind: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(keys::PK, s(keys::reminder_pk(org, assignment)))
            .item(keys::SK, s(format!("{user}#{kind}")))
            .item("entity", s("reminder"))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(crate::dynamo::classify);
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Makes the assignment's counters equal the sum of what its rows count (the reconcile job's repair
    /// for rows changed behind the service's back). Guarded: if the counters move while the rows are
    /// read, nothing is written (the next run repairs). Returns whether counters were corrected.
    pub async fn repair_counters(&self, org: &OrgId, id: AssignmentId) -> Result<bool, StoreError> {
        let Some(before) = self.get_assignment(org, id).await? else { return Ok(false) };
        let rows = Partition::table(keys::assignment_pk(org, id)).prefixed(keys::PROGRESS_SK_PREFIX).consistent();
        let rows = self.all_of::<ProgressRecord>(&rows).await?;
        let counted = rows.iter().fold(Aggregates::default(), |acc, row| {
            let contribution = row.counted.unwrap_or_else(|| row.contribution(&before.units, before.item_count));
            acc + Aggregates::delta(None, Some(contribution))
        });
        let stored = before.aggregates;
        if counted == stored {
            return Ok(false);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::assignment_pk(org, id)))
            .key(keys::SK, s(keys::ASSIGNMENT_SK))
            .update_expression(
                "SET totalUsers = :t, completedUsers = :c, inProgressUsers = :i, notStartedUsers = :n, completedItemsSum = :s",
            )
            .condition_expression(
                "totalUsers = :t0 AND completedUsers = :c0 AND inProgressUsers = :i0 AND notStartedUsers = :n0 AND completedItemsSum = :s0",
            )
            .expression_attribute_values(":t", n(counted.total_users))
            .expression_attribute_values(":c", n(counted.completed_users))
            .expression_attribute_values(":i", n(counted.in_progress_users))
            .expression_attribute_values(":n", n(counted.not_started_users))
            .expression_attribute_values(":s", n(counted.completed_items_sum))
            .expression_attribute_values(":t0", n(stored.total_users))
            .expression_attribute_values(":c0", n(stored.completed_users))
            .expression_attribute_values(":i0", n(stored.in_progress_users))
            .expression_attribute_values(":n0", n(stored.not_started_users))
            .expression_attribute_values(":s0", n(stored.completed_items_sum))
            .send()
            .await
            .map_err(crate::dynamo::classify);
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// The org's assignments on one custom course, active or not.
    pub async fn assignments_on_course(&self, org: &OrgId, course: CourseId) -> Result<Vec<Assignment>, StoreError> {
        let pk = keys::org_assignments(org);
        self.query_all(|q| {
            q.index_name(keys::GSI1)
                .key_condition_expression("GSI1PK = :pk")
                .filter_expression("targetType = :type AND targetId = :id")
                .expression_attribute_values(":pk", s(pk.as_str()))
                .expression_attribute_values(":type", s(TargetType::CustomCourse.as_str()))
                .expression_attribute_values(":id", s(course.to_string()))
        })
        .await?
        .into_iter()
        .map(AssignmentRecord::entity_of)
        .collect()
    }

    /// Replaces the tracked units of an assignment (its custom course changed) and bumps `unitsRev`, so
    /// progress writes computed against the old units are refused and redone. Rows are re-evaluated
    /// afterwards with [`Store::refresh_row`]. Returns the updated assignment, or `None` when the
    /// units are unchanged.
    pub async fn set_assignment_units(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        units: Vec<TrackedUnit>,
    ) -> Result<Option<Assignment>, StoreError> {
        let mut current = assignment.clone();
        let mut attempts = Retry::CONFLICT.attempts();
        while attempts.next().await {
            if current.units == units {
                return Ok(None);
            }
            let mut next = current.clone();
            next.item_count = ItemCounts::of(&units).total();
            next.units = units.clone();
            next.units_rev = current.units_rev + 1;
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(keys::PK, s(keys::assignment_pk(org, current.id)))
                .key(keys::SK, s(keys::ASSIGNMENT_SK))
                .update_expression("SET #units = :units, itemCount = :count, unitsRev = :next")
                .condition_expression("unitsRev = :rev")
                .expression_attribute_names("#units", "units")
                .expression_attribute_values(
                    ":units",
                    serde_dynamo::to_attribute_value(&next.units).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
                .expression_attribute_values(":count", n(next.item_count))
                .expression_attribute_values(":next", n(next.units_rev))
                .expression_attribute_values(":rev", n(current.units_rev))
                .send()
                .await
                .map_err(crate::dynamo::classify);
            match result {
                Ok(_) => return Ok(Some(next)),
                Err(StoreError::ConditionFailed) => {
                    current = self.get_assignment(org, current.id).await?.ok_or(StoreError::NotFound)?;
                }
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::TransactionConflict("tracked items kept changing".into()))
    }

    /// Every user id with a row on the assignment (removed included), strongly consistent.
    pub async fn roster_user_ids(&self, org: &OrgId, id: AssignmentId) -> Result<Vec<UserId>, StoreError> {
        let rows = Partition::table(keys::assignment_pk(org, id)).prefixed(keys::PROGRESS_SK_PREFIX).consistent();
        self.query_all(|q| rows.query(q).projection_expression("userId"))
            .await?
            .into_iter()
            .map(|item| match item.get("userId") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(id)) => {
                    UserId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string()))
                }
                _ => Err(StoreError::Corrupt("progress row without userId".into())),
            })
            .collect()
    }

    /// Applies an admin's change (`before` → `after`) with its audit entry in one transaction.
    /// Fails with [`StoreError::VersionConflict`] if the stored version is not `before.version`, and
    /// with [`StoreError::DuplicateAssignment`] when reactivating while another active duplicate exists.
    pub async fn update_assignment(
        &self,
        org: &OrgId,
        before: &Assignment,
        after: &Assignment,
        activation: Activation,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let record = assignment_record(org, after)?;
        let mut set = vec![
            "deadline = :deadline",
            "isMandatory = :mandatory",
            "isActive = :active",
            "version = :version",
            "updatedAt = :updated",
        ];
        let mut remove = Vec::new();
        let mut update = Update::builder()
            .table_name(TABLE_PLACEHOLDER)
            .key(keys::PK, s(record.pk.as_str()))
            .key(keys::SK, s(keys::ASSIGNMENT_SK))
            .condition_expression("version = :expected")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_values(":deadline", s(after.deadline.to_string()))
            .expression_attribute_values(
                ":mandatory",
                aws_sdk_dynamodb::types::AttributeValue::Bool(after.is_mandatory),
            )
            .expression_attribute_values(":active", aws_sdk_dynamodb::types::AttributeValue::Bool(after.is_active))
            .expression_attribute_values(":version", n(after.version))
            .expression_attribute_values(
                ":updated",
                s(after.updated_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            )
            .expression_attribute_values(":expected", n(before.version));
        match &after.note {
            Some(note) => {
                set.push("note = :note");
                update = update.expression_attribute_values(":note", s(note.as_str()));
            }
            None => remove.push("note"),
        }
        match (&record.gsi2pk, &record.gsi2sk, &record.gsi3pk, &record.gsi3sk) {
            (Some(g2pk), Some(g2sk), Some(g3pk), Some(g3sk)) => {
                set.extend(["GSI2PK = :g2pk", "GSI2SK = :g2sk", "GSI3PK = :g3pk", "GSI3SK = :g3sk"]);
                update = update
                    .expression_attribute_values(":g2pk", s(g2pk.as_str()))
                    .expression_attribute_values(":g2sk", s(g2sk.as_str()))
                    .expression_attribute_values(":g3pk", s(g3pk.as_str()))
                    .expression_attribute_values(":g3sk", s(g3sk.as_str()));
            }
            _ => remove.extend(["GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK"]),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = update.update_expression(expression).build().map_err(|e| StoreError::Other(e.to_string()))?;

        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        let lock_index = match activation {
            Activation::Unchanged => None,
            Activation::Deactivated => {
                let delete = aws_sdk_dynamodb::types::Delete::builder()
                    .table_name(TABLE_PLACEHOLDER)
                    .key(keys::PK, s(lock_pk(org, after)?))
                    .key(keys::SK, s(keys::LOCK_SK))
                    // Only our own lock; a missing one (written before locks existed) is fine.
                    .condition_expression("attribute_not_exists(PK) OR assignmentId = :id")
                    .expression_attribute_values(":id", s(after.id.to_string()))
                    .build()
                    .map_err(|e| StoreError::Other(e.to_string()))?;
                items.push(TransactWriteItem::builder().delete(delete).build());
                None
            }
            Activation::Reactivated => {
                let lock = to_item(&LockRecord {
                    pk: lock_pk(org, after)?,
                    sk: keys::LOCK_SK.into(),
                    entity: "active-lock".into(),
                    assignment_id: after.id,
                })?;
                items.push(
                    TransactWriteItem::builder()
                        .put(
                            Put::builder()
                                .set_item(Some(lock))
                                .table_name(TABLE_PLACEHOLDER)
                                .condition_expression("attribute_not_exists(PK)")
                                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                                .build()
                                .map_err(|e| StoreError::Other(e.to_string()))?,
                        )
                        .build(),
                );
                Some(items.len() - 1)
            }
        };
        items.push(audit_put(org, audit)?);

        match self.tx(items).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(reasons)) => {
                if let Some(reason) = reasons.first().filter(|r| r.condition_failed()) {
                    return Err(if reason.item.is_some() { StoreError::VersionConflict } else { StoreError::NotFound });
                }
                if let Some(reason) = lock_index.and_then(|i| reasons.get(i)).filter(|r| r.condition_failed()) {
                    return Err(self.duplicate_of(org, after, reason).await);
                }
                Err(TxFailure::Cancelled(reasons).into())
            }
            Err(other) => Err(other.into()),
        }
    }
}

/// Progress rows out of their stored items.
/// Pattern 3: a user's progress rows, one per assignment they have (or had).
fn user_rows(org: &OrgId, user: UserId) -> Partition {
    Partition::index(keys::GSI2, keys::user_assignments_index(org, user)).prefixed("ASG#")
}
