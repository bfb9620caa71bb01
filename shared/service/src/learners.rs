//! An admin's change of one learner on one assignment: an extension of their due date, or an
//! exemption with its reason. Optimistic concurrency on the row's revision, the audit entry in the
//! same transaction as the row, the counters and `assignment.user_updated`.

use domain::event::LearnerOverride;
use domain::{AssignmentId, LearnerPatch, OrgId, User, UserId};
use serde_json::json;
use store::retry::Retry;
use store::{StoreError, Written};

use crate::reads::{AssignmentLearner, learner_with_names};
use crate::{Actor, AppError, Ctx, outbound};

/// Applies `patch` to `user`'s row and returns it as it now is (unchanged if the patch changes
/// nothing). With `expected` (the client's `If-Match`), another current revision is
/// [`AppError::VersionMismatch`]; without it, concurrent changes (a completion arriving meanwhile)
/// are re-read and the patch applied again.
pub async fn change(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: AssignmentId,
    user: UserId,
    patch: &LearnerPatch,
    expected: Option<u64>,
    actor: &Actor,
) -> Result<AssignmentLearner, AppError> {
    let store = ctx.store;
    let mut attempts = Retry::CONFLICT.attempts();
    while attempts.next().await {
        let assignment = store.get_assignment(org, id).await?.ok_or(AppError::NotFound)?;
        let row = store.progress_row(org, id, user).await?.ok_or(AppError::NotFound)?;
        if expected.is_some_and(|v| v != row.revision) {
            return Err(AppError::VersionMismatch { current_version: row.revision });
        }
        let Some(mut next) = row.overridden(patch, &actor.id, actor.now) else {
            return learner_with_names(store, org, assignment, row).await;
        };
        next.revision = row.revision + 1;
        let before = LearnerOverride::of(&row, assignment.deadline);
        let audit = actor.audit(
            "assignment.user_updated",
            ("assignment", id.to_string(), assignment.target_title.clone()),
            json!({"userId": user, "before": before, "after": LearnerOverride::of(&next, assignment.deadline)}),
        );
        let announce = |written: &Written<'_>, profile: Option<&User>| {
            let Written::Row(change) = written else { return Vec::new() };
            let updated =
                outbound::user_updated(org, &assignment, &change.after, profile, &actor.id, before.clone(), actor.now);
            std::iter::once(updated).chain(outbound::compliance_changed(org, written, profile, actor.now)).collect()
        };
        match store.override_row(org, &assignment, &row, &next, &audit, actor.now.date_naive(), &announce).await {
            Ok(change) => return learner_with_names(store, org, assignment, change.after).await,
            Err(StoreError::VersionConflict) if expected.is_some() => {
                let current = store.progress_row(org, id, user).await?.map_or(row.revision, |r| r.revision);
                return Err(AppError::VersionMismatch { current_version: current });
            }
            Err(StoreError::VersionConflict | StoreError::AssignmentChanged | StoreError::TransactionConflict(_)) => {
                continue;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(AppError::Contended)
}
