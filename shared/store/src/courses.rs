//! Assignments on custom courses: which assignments a course change touches and their tracked units.

use domain::{Assignment, CourseId, ItemCounts, OrgId, TargetType, TrackedUnit};

use crate::dynamo::{n, s};
use crate::records::{AssignmentRecord, Record};
use crate::retry::Retry;
use crate::{Store, StoreError, keys};

impl Store {
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
                .send_update(
                    self.update_request()
                        .key(keys::PK, s(keys::assignment_pk(org, current.id)))
                        .key(keys::SK, s(keys::ASSIGNMENT_SK))
                        .update_expression("SET #units = :units, itemCount = :count, unitsRev = :next")
                        .condition_expression("unitsRev = :rev")
                        .expression_attribute_names("#units", "units")
                        .expression_attribute_values(
                            ":units",
                            serde_dynamo::to_attribute_value(&next.units)
                                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        )
                        .expression_attribute_values(":count", n(next.item_count))
                        .expression_attribute_values(":next", n(next.units_rev))
                        .expression_attribute_values(":rev", n(current.units_rev)),
                )
                .await;
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
}
