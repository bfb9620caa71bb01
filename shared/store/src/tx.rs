//! Transaction items: puts, the audit entry and counter updates that commit together with the change
//! they belong to.

use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use domain::{Aggregates, Assignment, AuditEntry, OrgId};

use crate::dynamo::{Item, n, s};
use crate::{Store, StoreError, keys};

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
pub(crate) const TABLE_PLACEHOLDER: &str = "__table__";

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
}

/// Why one item of a cancelled transaction failed.
#[derive(Debug, Clone)]
pub(crate) struct CancelReason {
    pub code: Option<String>,
    pub item: Option<Item>,
}

impl CancelReason {
    pub fn condition_failed(&self) -> bool {
        self.code.as_deref() == Some("ConditionalCheckFailed")
    }
}

/// The outcome of a transaction that did not commit.
#[derive(Debug)]
pub(crate) enum TxFailure {
    /// Cancelled; one reason per item, in request order.
    Cancelled(Vec<CancelReason>),
    Error(StoreError),
}

impl From<TxFailure> for StoreError {
    fn from(failure: TxFailure) -> Self {
        match failure {
            TxFailure::Error(e) => e,
            TxFailure::Cancelled(reasons) => {
                let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code.as_deref()).collect();
                if codes.contains(&"ThrottlingError") || codes.contains(&"ProvisionedThroughputExceeded") {
                    StoreError::Throttled(codes.join(","))
                } else if codes.contains(&"TransactionConflict") {
                    StoreError::TransactionConflict(codes.join(","))
                } else if codes.contains(&"ConditionalCheckFailed") {
                    StoreError::ConditionFailed
                } else {
                    StoreError::Other(format!("transaction cancelled: {}", codes.join(",")))
                }
            }
        }
    }
}
