//! `custom_course.updated`: the course's items decide what its assignments track.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use domain::{Assignment, Catalog, CourseId, CustomCourse, CustomCourseItem, OrgId};
use store::{Store, StoreError};

use crate::outbound;
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
/// completed (announced with `assignment.completed`).
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
    for a in store.assignments_on_course(org, course_id).await?.into_iter().filter(|a| a.is_active) {
        let a = store.set_assignment_units(org, &a, course.units.clone()).await?.unwrap_or(a);
        changed += refresh_roster(store, org, &a).await?;
    }
    Ok(Applied { rows: changed })
}

/// Re-evaluates every row of `a` after what decides completion changed (tracked items, recurrence),
/// each with `assignment.completed` for a learner it completes. Returns how many rows changed.
pub(crate) async fn refresh_roster(store: &Store, org: &OrgId, a: &Assignment) -> Result<usize, StoreError> {
    let announce = outbound::row_events(org, a, false);
    let mut changed = 0;
    for user in store.roster_user_ids(org, a.id).await? {
        if store.refresh_row(org, a, user, &announce).await?.is_some() {
            changed += 1;
        }
    }
    Ok(changed)
}
