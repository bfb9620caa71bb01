//! Changing an assignment (deadline, isMandatory, note, isActive): optimistic concurrency on its
//! version, the audit entry in the same write, and on reactivation the roster catches up with the
//! joins, leaves and completions that happened while it was inactive (a roster run: a bounded share
//! here, the rest by the roster worker).

use domain::{Activation, Assignment, AssignmentId, OrgId, Patch};
use serde_json::json;
use store::StoreError;
use store::retry::Retry;

use crate::compliance::{ShareSize, sync_share};
use crate::roster::{INLINE_PAGES, Mode, Position, requested, run_here};
use crate::{Actor, AppError, Ctx, outbound};

/// Applies `patch` and returns the assignment as it now is (unchanged if the patch changes nothing).
/// With `expected` (the client's `If-Match`), a different current version is
/// [`AppError::VersionMismatch`]; without it, concurrent edits are re-read and the patch applied again
/// until the conflict policy runs out ([`AppError::Contended`]).
pub async fn change(
    ctx: &Ctx<'_>,
    org: &OrgId,
    id: AssignmentId,
    patch: &Patch,
    expected: Option<u64>,
    actor: &Actor,
) -> Result<Assignment, AppError> {
    let store = ctx.store;
    let mut attempts = Retry::CONFLICT.attempts();
    while attempts.next().await {
        let current = store.get_assignment(org, id).await?.ok_or(AppError::NotFound)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(AppError::VersionMismatch { current_version: current.version });
        }
        if patch.deadline.is_some() && current.due_in_days.is_some() {
            return Err(AppError::InvalidField {
                field: "deadline",
                message: "cannot change: each learner's date is relative (dueInDays); extend learners one by one",
            });
        }
        let Some((mut next, activation)) = current.patched(patch, actor.now) else {
            // A repeat (a client retrying) changes nothing, and restarts nothing: a sync its first
            // request started goes on in the roster worker (or, interrupted, the hourly reconcile's).
            return Ok(current);
        };
        let action = match activation {
            Activation::Deactivated => "assignment.deactivated",
            Activation::Reactivated => "assignment.reactivated",
            Activation::Unchanged => "assignment.updated",
        };
        let audit = actor.audit(
            action,
            ("assignment", id.to_string(), current.target_title.clone()),
            json!({"before": current.editable_snapshot(), "after": next.editable_snapshot()}),
        );
        let mut events = Vec::new();
        // A reactivated roster catches up with what happened while it was inactive; under a new
        // recurrence every row's cycles are derived again (a repair's pass over the rows; a roster
        // still building also catches up).
        let roster_mode = match activation {
            Activation::Reactivated => Some(Mode::CatchUp),
            Activation::Unchanged if next.recurrence != current.recurrence && next.is_active => {
                Some(if current.roster_status == domain::RosterStatus::Building { Mode::CatchUp } else { Mode::Repair })
            }
            _ => None,
        };
        if let Some(mode) = roster_mode {
            // The roster is brought in line by a new run, named in this write (so no older run goes
            // on) with its request (so it finishes whatever happens to this request); until it
            // finishes the assignment says its roster is building.
            let run = uuid::Uuid::now_v7();
            next.roster_status = domain::RosterStatus::Building;
            next.roster_run = Some(run);
            events.push(requested(org, id, &Position::start(mode), run, actor.now));
        }
        events.insert(0, outbound::assignment_changed(activation, org, &next, &actor.id, actor.now));
        match store.update_assignment(org, &current, &next, activation, &audit, &events).await {
            Ok(()) => {
                // The learners' obligations follow the new rules: a share here (a roster of up to two
                // pages is in line when this answers), the rest by the roster worker. A failure here is
                // the hourly reconcile's to finish, not the client's: the change stands.
                let mut next = next;
                if next.obligations_differ(&current) {
                    let synced = match sync_share(ctx, org, id, None, None, ShareSize::INLINE, actor.now).await {
                        Ok(share) => share.done,
                        Err(error) => {
                            tracing::warn!(assignment_id = %id, %error, "compliance sync left to reconcile");
                            false
                        }
                    };
                    // What the answer says of the sync; the store holds the marker's own value.
                    next.compliance_sync = (!synced).then_some(next.units_rev);
                }
                let (Some(mode), Some(run)) = (roster_mode, next.roster_run) else {
                    return Ok(next);
                };
                // Members who joined, left or completed items while it was inactive, or rows derived
                // under the old recurrence: a share here (a small roster is in line when this
                // answers), the rest by the worker, which the request committed above starts anyway (a
                // run that finds the roster handed over or complete stops). A failure here is the
                // worker's to finish, not the client's.
                match run_here(ctx, org, id, mode, INLINE_PAGES, run).await {
                    Ok(done) => tracing::info!(assignment_id = %id, rows = done.rows, complete = done.complete,
                                               mode = ?mode, "roster run after the patch"),
                    Err(error) => tracing::warn!(assignment_id = %id, %error, "roster run left to the worker"),
                }
                return Ok(store.get_assignment(org, id).await.ok().flatten().unwrap_or(next));
            }
            Err(StoreError::VersionConflict) if expected.is_none() => continue,
            Err(StoreError::VersionConflict) => {
                let version = store.get_assignment(org, id).await?.map_or(current.version, |a| a.version);
                return Err(AppError::VersionMismatch { current_version: version });
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(AppError::Contended)
}
