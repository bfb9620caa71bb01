//! Membership changes of a learner's row: a join or a leave, applied in the order the directory says they happened.

use super::*;

impl Store {
    /// Applies a membership change of `user` on `assignment` that occurred at `at`: `joined` brings the
    /// learner into scope (a returning learner gets their row and progress back), otherwise the row is
    /// marked removed (kept, excluded from rates). Order-safe: a change not newer than the last one
    /// applied is ignored. A leave with no row writes a removed row (a tombstone) so that an older join
    /// arriving later cannot add the learner. A new row's relative due date counts from `entered`, when
    /// the learner came into the assignment's scope (see [`Assignment::entered_scope`]). The change
    /// commits with the events `announce` gives for it ([`Written::Added`] for a new row).
    #[allow(clippy::too_many_arguments)]
    pub async fn set_membership(
        &self,
        org: &OrgId,
        assignment: &Assignment,
        user: UserId,
        source: Source,
        joined: bool,
        at: DateTime<Utc>,
        entered: DateTime<Utc>,
        today: NaiveDate,
        announce: Announce<'_>,
    ) -> Result<MembershipChange, StoreError> {
        if self.progress_row(org, assignment.id, user).await?.is_none() {
            let mut row = assignment.new_row(user, source, at);
            row.relative_due_on = assignment.relative_due_on(entered);
            if !joined {
                row.removed_at = Some(at);
            }
            let mut current = assignment.clone();
            let mut attempts = Retry::CONFLICT.attempts();
            loop {
                if !attempts.next().await {
                    return Err(StoreError::TransactionConflict(format!(
                        "tracked items of {} kept changing",
                        assignment.id
                    )));
                }
                match self.add_rows(org, &current, std::slice::from_ref(&row), true, today, announce).await {
                    Ok((added, transitions)) if added.len() == 1 => {
                        return Ok(MembershipChange::Created(transitions.first().copied()));
                    }
                    Ok(_) => break, // another writer created the row meanwhile: apply to it
                    Err(StoreError::AssignmentChanged) => {
                        current = self.get_assignment(org, current.id).await?.ok_or(StoreError::NotFound)?;
                        if joined && !current.is_active {
                            // Deactivated meanwhile: it gains nobody (a reactivation catches up).
                            return Ok(MembershipChange::Unchanged);
                        }
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        let changed = self
            .change_row(
                org,
                assignment,
                user,
                |row, _| if joined { row.join(at) } else { row.leave(at) },
                today,
                announce,
            )
            .await?;
        Ok(changed.map_or(MembershipChange::Unchanged, |c| MembershipChange::Changed(c.compliance)))
    }
}
