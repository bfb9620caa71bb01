//! Roster runs: the run that holds an assignment's roster while it is built or brought in line hands it over, and finishes it.

use super::*;

impl Store {
    /// Marks the roster of `id` complete (`run`, if given, is the run that may go on; without one, it
    /// was building): `false` when it was not (another run finished it or took over) or the assignment
    /// is gone.
    pub async fn finish_roster(
        &self,
        org: &OrgId,
        id: AssignmentId,
        run: Option<uuid::Uuid>,
    ) -> Result<bool, StoreError> {
        let (condition, run) = roster_run_condition(run);
        let mut update = self
            .update_request()
            .key(keys::PK, s(keys::assignment_pk(org, id)))
            .key(keys::SK, s(keys::ASSIGNMENT_SK))
            .update_expression("SET rosterStatus = :complete REMOVE rosterRun")
            .condition_expression(condition)
            .expression_attribute_values(":complete", s(domain::RosterStatus::Complete.as_str()));
        update = match run {
            Some(run) => update.expression_attribute_values(":run", s(run)),
            None => update.expression_attribute_values(":building", s(domain::RosterStatus::Building.as_str())),
        };
        match self.send_update(update).await {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Hands the roster of `id` over from run `from` (if given: only if it is still the run that may go
    /// on; without one, only while it is building) to run `to`, with `events` (the next run's request)
    /// in the same transaction: `false` when `from` no longer may go on (another run took over or
    /// finished).
    pub async fn hand_over_roster(
        &self,
        org: &OrgId,
        id: AssignmentId,
        from: Option<uuid::Uuid>,
        to: uuid::Uuid,
        events: &[domain::DomainEvent],
    ) -> Result<bool, StoreError> {
        let (condition, from) = roster_run_condition(from);
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .key(keys::PK, s(keys::assignment_pk(org, id)))
            .key(keys::SK, s(keys::ASSIGNMENT_SK))
            .update_expression("SET rosterRun = :to")
            .condition_expression(condition)
            .expression_attribute_values(":to", s(to.to_string()));
        update = match from {
            Some(from) => update.expression_attribute_values(":run", s(from)),
            None => update.expression_attribute_values(":building", s(domain::RosterStatus::Building.as_str())),
        };
        let mut tx = self.transaction();
        let handed = tx.update(update)?;
        tx.outbox(org, events)?;
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(TxFailure::Cancelled(reasons)) if reasons.get(handed).is_some_and(CancelReason::condition_failed) => {
                Ok(false)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Makes `to` the run that may go on with the roster of `id`, taking over from `seen` (the run the
    /// caller read: one that stopped) or from no run at all: `false` when another run took over first
    /// or the assignment is gone. The roster's status is left as it is.
    pub async fn take_over_roster(
        &self,
        org: &OrgId,
        id: AssignmentId,
        seen: Option<uuid::Uuid>,
        to: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .update_request()
            .key(keys::PK, s(keys::assignment_pk(org, id)))
            .key(keys::SK, s(keys::ASSIGNMENT_SK))
            .update_expression("SET rosterRun = :to")
            .expression_attribute_values(":to", s(to.to_string()));
        update = match seen {
            Some(seen) => update
                .condition_expression("rosterRun = :seen")
                .expression_attribute_values(":seen", s(seen.to_string())),
            None => update.condition_expression("attribute_exists(PK) AND attribute_not_exists(rosterRun)"),
        };
        match self.send_update(update).await {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        }
    }
}
