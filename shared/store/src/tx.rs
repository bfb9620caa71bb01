//! Transactions: the items that commit together (puts, updates, deletes, the audit entry, counter
//! updates), addressed to the table by the [`Transaction`] that holds them, and why one was cancelled.

use aws_sdk_dynamodb::types::builders::{DeleteBuilder, PutBuilder, UpdateBuilder};
use aws_sdk_dynamodb::types::{ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use domain::{Aggregates, Assignment, AuditEntry, DatedCounts, OrgId};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

use crate::dynamo::{Item, MAX_TRANSACTION_ITEMS, classify, n, s};
use crate::{Store, StoreError, keys};

/// The items of one `TransactWriteItems`, each addressed to the store's table as it is added. Items
/// keep their order, and cancellation reasons come back in it: every `add` returns the item's index.
pub(crate) struct Transaction<'s> {
    store: &'s Store,
    items: Vec<TransactWriteItem>,
}

impl Store {
    /// A new transaction on this table; [`Transaction::commit`] runs it.
    pub(crate) fn transaction(&self) -> Transaction<'_> {
        Transaction { store: self, items: Vec::new() }
    }
}

fn built(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Other(e.to_string())
}

impl Transaction<'_> {
    /// Puts `item` if `condition` (if any) holds.
    pub(crate) fn put(&mut self, item: Item, condition: Option<&str>) -> Result<usize, StoreError> {
        self.put_with(Put::builder().set_item(Some(item)).set_condition_expression(condition.map(str::to_owned)))
    }

    /// Puts an item as `put` (without a table) describes it.
    pub(crate) fn put_with(&mut self, put: PutBuilder) -> Result<usize, StoreError> {
        let put = put.table_name(&self.store.table).build().map_err(built)?;
        Ok(self.add(TransactWriteItem::builder().put(put).build()))
    }

    /// Updates an item as `update` (without a table) describes it.
    pub(crate) fn update(&mut self, update: UpdateBuilder) -> Result<usize, StoreError> {
        let update = update.table_name(&self.store.table).build().map_err(built)?;
        Ok(self.add(TransactWriteItem::builder().update(update).build()))
    }

    /// Deletes an item as `delete` (without a table) describes it.
    pub(crate) fn delete(&mut self, delete: DeleteBuilder) -> Result<usize, StoreError> {
        let delete = delete.table_name(&self.store.table).build().map_err(built)?;
        Ok(self.add(TransactWriteItem::builder().delete(delete).build()))
    }

    /// The audit entry of the change this transaction makes: committed with it or not at all.
    pub(crate) fn audit(&mut self, org: &OrgId, entry: &AuditEntry) -> Result<usize, StoreError> {
        self.put(crate::audit::audit_item(org, entry)?, Some("attribute_not_exists(PK)"))
    }

    /// Moves an assignment's counters by `delta`. The assignment must exist and still track the units
    /// the delta was computed with (else [`counter_failure`] says which).
    pub(crate) fn counters(
        &mut self,
        org: &OrgId,
        assignment: &Assignment,
        delta: &Aggregates,
    ) -> Result<usize, StoreError> {
        let mut update = Update::builder()
            .key(keys::PK, s(keys::assignment_pk(org, assignment.id)))
            .key(keys::SK, s(keys::ASSIGNMENT_SK))
            .condition_expression("attribute_exists(PK) AND unitsRev = :ur")
            .expression_attribute_values(":ur", n(assignment.units_rev))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_values(":dt", n(delta.total_users))
            .expression_attribute_values(":dc", n(delta.completed_users))
            .expression_attribute_values(":di", n(delta.in_progress_users))
            .expression_attribute_values(":dn", n(delta.not_started_users))
            .expression_attribute_values(":ds", n(delta.completed_items_sum))
            .expression_attribute_values(":moved", n(1));
        // `countersRev` only grows: a recount (`Store::repair_counters`) writes only if no counter
        // moved while it read the rows, even by moves that cancel out.
        let mut expression = String::from(
            "ADD totalUsers :dt, completedUsers :dc, inProgressUsers :di, notStartedUsers :dn, completedItemsSum :ds, \
             countersRev :moved",
        );
        if delta.dated_rows != 0 {
            expression.push_str(&format!(", {} :dd", keys::DATED_ROWS));
            update = update.expression_attribute_values(":dd", n(delta.dated_rows));
        }
        for (i, ((date, class), count)) in delta.dated.0.iter().enumerate() {
            expression.push_str(&format!(", #due{i} :due{i}"));
            update = update
                .expression_attribute_names(format!("#due{i}"), DatedCounts::attribute(*date, *class))
                .expression_attribute_values(format!(":due{i}"), n(*count));
        }
        self.update(update.update_expression(expression))
    }

    /// A condition on an item the transaction does not write.
    pub(crate) fn check(&mut self, check: ConditionCheck) -> usize {
        self.add(TransactWriteItem::builder().condition_check(check).build())
    }

    /// The table the transaction writes (for items built whole, like a [`ConditionCheck`]).
    pub(crate) fn table(&self) -> &str {
        &self.store.table
    }

    fn add(&mut self, item: TransactWriteItem) -> usize {
        self.items.push(item);
        self.items.len() - 1
    }

    /// Runs the transaction: all items or none.
    pub(crate) async fn commit(self) -> Result<(), TxFailure> {
        self.store.transact(self.items).await
    }
}

impl Store {
    /// Removes the date counters `delta` took down (as [`Transaction::counters`] committed it) that are
    /// now 0, each guarded by being 0 (one a concurrent write moved up again stays): the assignment item
    /// does not grow with every date its rows ever had. DynamoDB cannot remove an attribute that an `ADD`
    /// of the same write brings to 0, hence this write right after the commit. It is housekeeping: a
    /// failure is logged, and the counter (0, which every read skips) stays until its date is emptied
    /// again.
    pub(crate) async fn forget_emptied_dates(&self, org: &OrgId, id: domain::AssignmentId, delta: &Aggregates) {
        for ((date, class), _) in delta.dated.0.iter().filter(|(_, count)| **count < 0) {
            let update = self
                .update_request()
                .key(keys::PK, s(keys::assignment_pk(org, id)))
                .key(keys::SK, s(keys::ASSIGNMENT_SK))
                .update_expression("REMOVE #date")
                .condition_expression("#date = :zero")
                .expression_attribute_names("#date", DatedCounts::attribute(*date, *class))
                .expression_attribute_values(":zero", n(0));
            match self.send_update(update).await {
                Ok(_) | Err(StoreError::ConditionFailed) => {}
                Err(error) => {
                    tracing::warn!(org = %org, assignment_id = %id, %date, %error, "an emptied date counter is left")
                }
            }
        }
    }
}

/// Why a [`Transaction::counters`] item failed: the assignment is gone, or its tracked units changed.
pub(crate) fn counter_failure(reason: &CancelReason) -> StoreError {
    if reason.item.is_some() { StoreError::AssignmentChanged } else { StoreError::NotFound }
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

    /// Another transaction held the item at the same moment.
    pub fn conflicted(&self) -> bool {
        self.code.as_deref() == Some("TransactionConflict")
    }

    /// The item changed, or was being changed, since it was read: read it again and retry.
    pub fn lost_a_race(&self) -> bool {
        self.condition_failed() || self.conflicted()
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

impl Store {
    /// Runs a transaction, keeping per-item cancellation reasons (and the failing items, when
    /// `ReturnValuesOnConditionCheckFailure` asked for them).
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxFailure> {
        if items.len() > MAX_TRANSACTION_ITEMS {
            // A planning bug, not bad input: refused here with its size rather than by DynamoDB.
            return Err(TxFailure::Error(StoreError::Other(format!(
                "a transaction of {} items; DynamoDB takes at most {MAX_TRANSACTION_ITEMS}",
                items.len()
            ))));
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_return_consumed_capacity(self.capacity_mode())
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(|c| c.record_writes(out.consumed_capacity()));
                Ok(())
            }
            Err(SdkError::ServiceError(context)) => match context.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| CancelReason { code: r.code().map(str::to_owned), item: r.item().cloned() })
                        .collect();
                    Err(TxFailure::Cancelled(reasons))
                }
                _ => Err(TxFailure::Error(classify(SdkError::ServiceError(context)))),
            },
            Err(other) => Err(TxFailure::Error(classify(other))),
        }
    }
}
