//! `custom_course.updated`: the course's items decide what its assignments track.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use domain::{Assignment, Catalog, CourseId, CustomCourse, CustomCourseItem, OrgId};
use store::{Store, StoreError};

use crate::outbound::{self, DomainEvent};
use crate::{AppError, Applied, Ctx};

fn catalog() -> Result<&'static Catalog, StoreError> {
    static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
    CATALOG
        .get_or_init(|| Catalog::bundled().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| StoreError::Corrupt(format!("bundled catalog: {e}")))
}

/// Stores the course (newer wins), then re-resolves every active assignment on it against the course
/// as stored — so a late, older event changes nothing and a retried one finishes the job: adding an
/// item lowers percentages, removing one stops counting it, a learner who now has every item is
/// completed. Announces `assignment.completed` for them.
pub async fn apply_course_update(
    ctx: &Ctx<'_>,
    org: &OrgId,
    course_id: CourseId,
    name: String,
    is_active: bool,
    items: Vec<CustomCourseItem>,
    at: DateTime<Utc>,
) -> Result<Applied, AppError> {
    let store = ctx.store;
    let (units, unknown) = catalog()?.resolve_custom_course(&items);
    if !unknown.is_empty() {
        tracing::warn!(course = %course_id, ?unknown, "custom course names items the catalog does not have");
    }
    let course = CustomCourse { course_id, name, is_active, items, units, updated_at: at };
    store.put_custom_course(org, &course).await?;
    let Some(course) = store.get_custom_course(org, course_id).await? else { return Ok(Applied::default()) };

    let mut changed = 0;
    let mut events = Vec::new();
    for a in store.assignments_on_course(org, course_id).await?.into_iter().filter(|a| a.is_active) {
        let a = store.set_assignment_units(org, &a, course.units.clone()).await?.unwrap_or(a);
        changed += refresh_roster(store, org, &a, &mut events).await?;
    }
    Ok(ctx.applied(changed, &events).await)
}

/// Re-evaluates every row of `a` after what decides completion changed (tracked items, recurrence),
/// adding `assignment.completed` for each learner it completes. Returns how many rows changed.
pub(crate) async fn refresh_roster(
    store: &Store,
    org: &OrgId,
    a: &Assignment,
    events: &mut Vec<DomainEvent>,
) -> Result<usize, StoreError> {
    let mut changed = 0;
    for user in store.roster_user_ids(org, a.id).await? {
        let Some(change) = store.refresh_row(org, a, user).await? else { continue };
        changed += 1;
        if let Some(t) = change.compliance {
            events.extend(crate::compliance::changed_events(store, org, &[t], chrono::Utc::now()).await?);
        }
        if change.completed_now()
            && let Some(done) = change.after.completed_at
        {
            let profile = store.get_user(org, user).await?;
            events.push(outbound::completed(org, a, user, profile.as_ref(), done));
        }
    }
    Ok(changed)
}
