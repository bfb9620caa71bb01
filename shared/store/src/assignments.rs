//! Access patterns 1, 2 and 4: assignments (create, read, list, patch) and their duplicate lock. Their
//! progress rows are in `roster`, the transaction items they commit with in `tx`.

use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValuesOnConditionCheckFailure, Update};
use chrono::NaiveDate;
use domain::assignment::{PATCH_ALSO_WRITES, PATCHABLE_FIELDS};
use domain::{
    Activation, AssigneeType, Assignment, AssignmentId, AuditEntry, ContentArea, DomainEvent, OrgId, ProgressRow,
};

use crate::changes::FieldUpdate;
use crate::dynamo::{Item, from_item, n, s, to_item};
use crate::partition::Partition;
use crate::records::{AssignmentRecord, LockRecord, Record};
use crate::roster::{ROSTER_ROWS_PER_TRANSACTION, progress_item, roster_delta};
use crate::tx::{CancelReason, TxFailure};
use crate::{IdempotencyKey, Page, PageKey, Store, StoreError, StoredResponse, keys};

pub(crate) fn assignment_record(org: &OrgId, assignment: &Assignment) -> Result<AssignmentRecord, StoreError> {
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

/// The duplicate lock of an active assignment: one per (target, assignee), so a second active one is
/// refused in the same transaction; a refusal returns the holder (`AllOld`) to name it in the 409.
fn lock_put(org: &OrgId, assignment: &Assignment) -> Result<PutBuilder, StoreError> {
    let lock = to_item(&LockRecord {
        pk: lock_pk(org, assignment)?,
        sk: keys::LOCK_SK.into(),
        entity: "active-lock".into(),
        assignment_id: assignment.id,
    })?;
    Ok(Put::builder()
        .set_item(Some(lock))
        .condition_expression("attribute_not_exists(PK)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld))
}

/// The index keys only an active assignment has (see [`assignment_record`]).
const ACTIVE_INDEX_KEYS: [&str; 4] = [keys::GSI2PK, keys::GSI2SK, keys::GSI3PK, keys::GSI3SK];

/// Scheduled jobs (reminders, reconcile) find the orgs that have assignments here.
fn org_marker(org: &OrgId) -> Item {
    Item::from([
        (keys::PK.to_owned(), s(keys::ORGS_PK)),
        (keys::SK.to_owned(), s(org.as_str())),
        ("entity".to_owned(), s("org")),
    ])
}

/// One assignment of [`Store::create_individual_assignments`]: the assignment, its audit entry and its
/// learner's row.
#[derive(Debug, Clone)]
pub struct IndividualAssignment {
    pub assignment: Assignment,
    pub audit: AuditEntry,
    pub row: ProgressRow,
}

/// Most assignments [`Store::create_individual_assignments`] writes at once: each is 4 items of a
/// transaction (assignment, lock, audit entry, row), which also holds the outbox batch and the
/// idempotency record (100 items at most).
pub const MAX_INDIVIDUAL_ASSIGNMENTS: usize = 24;

pub(crate) fn lock_pk(org: &OrgId, a: &Assignment) -> Result<String, StoreError> {
    keys::active_lock_pk(
        org,
        a.assignee.assignee_type,
        &a.assignee.assignee_id,
        a.target.target_type,
        &a.target.target_id,
    )
}

impl Store {
    /// Creates an assignment with its audit entry and its initial roster.
    ///
    /// The assignment, its duplicate lock, its audit entry and (unless it obliges: active and
    /// mandatory) the first [`ROSTER_ROWS_PER_TRANSACTION`] rows commit in one transaction, with
    /// counters that match those rows. Further rows follow in transactions that each move the counters with the rows they add,
    /// so counters always equal the rows present. Returns the assignment with its final counters.
    pub async fn create_assignment(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        audit: &AuditEntry,
        roster: &[ProgressRow],
        events: &[DomainEvent],
    ) -> Result<Assignment, StoreError> {
        self.create_assignment_answering(org, assignment, audit, roster, events, None).await
    }

    /// [`Store::create_assignment`], with the response that answers the request's retries in the same
    /// transaction (`completes`: the request's idempotency key, and the answer to the assignment as it
    /// commits): a create whose answer was lost is replayed on a retry, never made again (nor refused as
    /// a duplicate of itself).
    pub async fn create_assignment_answering(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        audit: &AuditEntry,
        roster: &[ProgressRow],
        events: &[DomainEvent],
        completes: Option<crate::CreateAnswer<'_>>,
    ) -> Result<Assignment, StoreError> {
        // An obliging assignment's rows come with their learners' compliance, which the roster
        // transactions keep (there is no room for it beside the assignment's own items).
        let obliges = assignment.obliges();
        let first_rows = if obliges { 0 } else { roster.len().min(ROSTER_ROWS_PER_TRANSACTION) };
        let (first, rest) = roster.split_at(first_rows);
        let mut created = assignment.clone();
        created.aggregates = assignment.aggregates.clone() + roster_delta(assignment, first);

        let mut tx = self.transaction();
        tx.put(to_item(&assignment_record(org, &created)?)?, Some("attribute_not_exists(PK)"))?;
        let lock = tx.put_with(lock_put(org, assignment)?)?;
        tx.audit(org, audit)?;
        tx.outbox(org, events)?;
        tx.put(org_marker(org), None)?;
        if obliges {
            tx.obliging_assignments(org, 1)?;
        }
        for row in first {
            tx.put(progress_item(org, row, &created)?, Some("attribute_not_exists(PK)"))?;
        }
        if let Some((key, respond)) = completes {
            tx.update(crate::access::idempotency_completion(org, key, &respond(&created))?)?;
        }
        match tx.commit().await {
            Ok(()) => {}
            Err(TxFailure::Cancelled(reasons)) if reasons.get(lock).is_some_and(CancelReason::condition_failed) => {
                return Err(self.duplicate_of(org, assignment, &reasons[lock]).await);
            }
            Err(other) => return Err(other.into()),
        }
        if !rest.is_empty() {
            self.add_roster_rows(org, &created, rest, audit.created_at.date_naive()).await?;
            let added = roster_delta(&created, rest);
            created.aggregates = created.aggregates.clone() + added;
        }
        Ok(created)
    }

    /// Creates individual, non-obliging assignments, each with its learner's row, its lock and its audit
    /// entry, the `events`, and (if given) the response that answers the request's retries — one
    /// transaction: all of it or nothing. An active assignment of the same target for the same learner
    /// refuses the lot ([`StoreError::DuplicateAssignment`], naming it).
    pub async fn create_individual_assignments(
        &self,
        org: &OrgId,
        created: &[IndividualAssignment],
        events: &[DomainEvent],
        completes: Option<(&IdempotencyKey, &StoredResponse)>,
    ) -> Result<(), StoreError> {
        if created.len() > MAX_INDIVIDUAL_ASSIGNMENTS {
            return Err(StoreError::Other(format!(
                "{} assignments exceed one transaction's {MAX_INDIVIDUAL_ASSIGNMENTS}",
                created.len()
            )));
        }
        // Before the transaction and only if absent: every ingestion of every org would otherwise
        // write the registry's item of its org in its transaction, and concurrent ones conflict. Even
        // with nothing created: the reconcile job then visits the org, whose users written before the
        // email index existed it indexes (an unknown author may be one of them).
        let registered = self.send_put(
            self.put_request().set_item(Some(org_marker(org))).condition_expression("attribute_not_exists(PK)"),
        );
        match registered.await {
            Ok(_) | Err(StoreError::ConditionFailed) => {}
            Err(e) => return Err(e),
        }
        let mut tx = self.transaction();
        let mut locks = Vec::with_capacity(created.len());
        for IndividualAssignment { assignment, audit, row } in created {
            if assignment.assignee.assignee_type != AssigneeType::User || assignment.obliges() {
                return Err(StoreError::Other(format!("assignment {} is not individual and optional", assignment.id)));
            }
            let mut stored = assignment.clone();
            stored.aggregates = assignment.aggregates.clone() + roster_delta(assignment, std::slice::from_ref(row));
            tx.put(to_item(&assignment_record(org, &stored)?)?, Some("attribute_not_exists(PK)"))?;
            locks.push((tx.put_with(lock_put(org, assignment)?)?, assignment));
            tx.audit(org, audit)?;
            tx.put(progress_item(org, row, &stored)?, Some("attribute_not_exists(PK)"))?;
        }
        tx.outbox(org, events)?;
        if let Some((key, response)) = completes {
            tx.update(crate::access::idempotency_completion(org, key, response)?)?;
        }
        match tx.commit().await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(reasons)) => {
                for (index, assignment) in locks {
                    if let Some(reason) = reasons.get(index).filter(|r| r.condition_failed()) {
                        return Err(self.duplicate_of(org, assignment, reason).await);
                    }
                }
                Err(TxFailure::Cancelled(reasons).into())
            }
            Err(other) => Err(other.into()),
        }
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

    /// Pattern 1: an assignment by id, within the org.
    pub async fn get_assignment(&self, org: &OrgId, id: AssignmentId) -> Result<Option<Assignment>, StoreError> {
        self.get_entity::<AssignmentRecord>(keys::assignment_pk(org, id), keys::ASSIGNMENT_SK).await
    }

    /// [`Store::get_assignment`], strongly consistent: what a use case reads right after its own write.
    pub async fn current_assignment(&self, org: &OrgId, id: AssignmentId) -> Result<Option<Assignment>, StoreError> {
        self.get_item(keys::assignment_pk(org, id), keys::ASSIGNMENT_SK, true)
            .await?
            .map(AssignmentRecord::entity_of)
            .transpose()
    }

    /// Several assignments by id (missing ones are left out), in no particular order.
    pub async fn get_assignments(&self, org: &OrgId, ids: &[AssignmentId]) -> Result<Vec<Assignment>, StoreError> {
        self.batch_get_entities::<AssignmentRecord>(
            ids.iter().map(|id| (keys::assignment_pk(org, *id), keys::ASSIGNMENT_SK)),
        )
        .await
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
        events: &[DomainEvent],
    ) -> Result<(), StoreError> {
        let before_item = to_item(&assignment_record(org, before)?)?;
        let after_item = to_item(&assignment_record(org, after)?)?;
        // The patchable fields and what moves with them, as the serialised assignment has them.
        let fields: Vec<&str> = PATCHABLE_FIELDS.iter().chain(PATCH_ALSO_WRITES).copied().collect();
        let mut changes = FieldUpdate::between(&before_item, &after_item, &fields);
        // The index keys follow the state written, whatever `before` had (an inactive assignment
        // leaves the assignee and due indexes; an item missing them gets them back).
        changes.write(&after_item, &ACTIVE_INDEX_KEYS);
        if after.roster_run != before.roster_run {
            // A new run takes the roster over (reactivation, a new recurrence: it catches up off the
            // request path). Its status is written with it whatever `before` said: the worker may have
            // finished the previous run since it was read (that moves no version).
            changes.write(&after_item, &[keys::ROSTER_STATUS, keys::ROSTER_RUN]);
        }
        if after.units_rev != before.units_rev {
            // Relative to the stored values: a concurrent change of the tracked items (which bumps
            // `unitsRev` too) is not undone, and the sync marker is the new `unitsRev` (operands are
            // the old values).
            let rev = changes.name(keys::UNITS_REV);
            let delta = changes.value(n(after.units_rev.saturating_sub(before.units_rev)));
            changes.set(keys::UNITS_REV, format!("{rev} + {delta}"));
            if after.compliance_sync != before.compliance_sync && after.compliance_sync.is_some() {
                changes.set(keys::COMPLIANCE_SYNC, format!("{rev} + {delta}"));
                changes.remove(keys::COMPLIANCE_SYNC_AT);
            }
        }
        let update = changes.apply(
            Update::builder()
                .key(keys::PK, s(keys::assignment_pk(org, after.id)))
                .key(keys::SK, s(keys::ASSIGNMENT_SK))
                .condition_expression("version = :expected")
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .expression_attribute_values(":expected", n(before.version)),
        );
        let mut tx = self.transaction();
        let assignment_index = tx.update(update)?;
        let lock_index = match activation {
            Activation::Unchanged => None,
            Activation::Deactivated => {
                tx.delete(
                    Delete::builder()
                        .key(keys::PK, s(lock_pk(org, after)?))
                        .key(keys::SK, s(keys::LOCK_SK))
                        // Only our own lock; a missing one (written before locks existed) is fine.
                        .condition_expression("attribute_not_exists(PK) OR assignmentId = :id")
                        .expression_attribute_values(":id", s(after.id.to_string())),
                )?;
                None
            }
            Activation::Reactivated => Some(tx.put_with(lock_put(org, after)?)?),
        };
        tx.audit(org, audit)?;
        tx.outbox(org, events)?;
        if after.obliges() != before.obliges() {
            tx.obliging_assignments(org, i64::from(after.obliges()) - i64::from(before.obliges()))?;
        }

        match tx.commit().await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled(reasons)) => {
                if let Some(reason) = reasons.get(assignment_index).filter(|r| r.condition_failed()) {
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

mod listing;
pub use listing::AssignmentFilter;
