//! A validated create request and the assignment it becomes.

use super::*;

/// A validated create request (see [`crate::validation::validate_create`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssignment {
    pub target: Target,
    pub assignee: Assignee,
    /// With `due_in_days`, today plus that many days.
    pub deadline: NaiveDate,
    pub due_in_days: Option<u32>,
    pub new_starters_only: bool,
    pub recurrence: Option<Recurrence>,
    pub is_mandatory: bool,
    pub note: Option<String>,
}

impl NewAssignment {
    /// The assignment to store, before any roster row is counted.
    pub fn into_assignment(
        self,
        id: AssignmentId,
        resolved: ResolvedTarget,
        assignee_name: String,
        created_by: String,
        now: DateTime<Utc>,
    ) -> Assignment {
        let item_count = ItemCounts::of(&resolved.units).total();
        Assignment {
            id,
            target: self.target,
            target_title: resolved.title,
            target_path: resolved.path,
            assignee: self.assignee,
            assignee_name,
            deadline: self.deadline,
            due_in_days: self.due_in_days,
            new_starters_only: self.new_starters_only,
            recurrence: self.recurrence,
            is_mandatory: self.is_mandatory,
            note: self.note,
            is_active: true,
            units: resolved.units,
            item_count,
            units_rev: 0,
            compliance_sync: None,
            compliance_sync_at: None,
            roster_status: RosterStatus::Complete,
            roster_run: None,
            created_at: now,
            created_by,
            updated_at: now,
            version: 1,
            aggregates: Aggregates::default(),
        }
    }
}
