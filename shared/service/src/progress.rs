//! Completions: logged under the learner, then recorded on every active assignment that tracks them.

use domain::{Completion, OrgId, UserId};

use crate::outbound;
use crate::{AppError, Applied, Ctx};

/// Applies a completion: rows changed (0 for a duplicate), and `assignment.completed` announced for
/// learners who reached 100 % with it.
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
    let mut applied = 0;
    let mut events = Vec::new();
    let mut profile = None;
    let mut transitions = Vec::new();
    for a in assignments.iter().filter(|a| a.is_active && domain::catalog::tracks(&a.units, &completion.item)) {
        let Some(change) = store.record_completions(org, a, user, std::slice::from_ref(completion)).await? else {
            continue;
        };
        applied += 1;
        if let Some(t) = change.compliance {
            transitions.push(t);
        }
        if (change.completed_now() || change.recertified_now())
            && let Some(at) = change.after.completed_at
        {
            if profile.is_none() {
                profile = Some(store.get_user(org, user).await?);
            }
            events.push(outbound::completed(org, a, user, profile.as_ref().and_then(Option::as_ref), at));
        }
    }
    events.extend(crate::compliance::changed_events(store, org, &transitions, chrono::Utc::now()).await?);
    Ok(ctx.applied(applied, &events).await)
}
