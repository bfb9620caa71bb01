//! Completions: logged under the learner, then recorded on every active assignment that tracks them.

use domain::{Completion, OrgId, UserId};

use crate::outbound;
use crate::{AppError, Applied, Ctx};

/// Applies a completion: rows changed (0 for a duplicate), each with `assignment.completed` when the
/// learner reached 100 % (or completed another cycle) with it, and `compliance.changed`.
pub async fn apply_completion(
    ctx: &Ctx<'_>,
    org: &OrgId,
    user: UserId,
    completion: &Completion,
) -> Result<Applied, AppError> {
    let store = ctx.store;
    // Logged first: a row created after this point catches up from the log; a row created before it
    // is found below. Either way the completion counts.
    store.log_completion(org, user, completion).await?;
    let rows = store.user_progress_rows(org, user).await?;
    // Removed rows included: their progress is kept (and counts again if the learner returns).
    let ids: Vec<_> = rows.iter().map(|r| r.assignment_id).collect();
    let assignments = store.get_assignments(org, &ids).await?;
    let now = ctx.now(org);
    let mut applied = 0;
    for a in assignments.iter().filter(|a| a.is_active && domain::catalog::tracks(&a.units, &completion.item)) {
        let announce = outbound::row_events(org, a, true, now);
        let completions = std::slice::from_ref(completion);
        if store.record_completions(org, a, user, completions, now.date_naive(), &announce).await?.is_some() {
            applied += 1;
        }
    }
    Ok(Applied { rows: applied })
}
