//! `custom_course.updated`: the course's items decide what its assignments track.

use chrono::{DateTime, Utc};
use domain::{Assignment, CourseId, CustomCourse, CustomCourseItem, OrgId, RosterStatus};

use crate::reach::bundled_catalog as catalog;
use crate::roster::{INLINE_PAGES, Mode, run_here};
use crate::{AppError, Applied, Ctx};

/// Stores the course (newer wins), then re-resolves every active assignment on it against the course
/// as stored — so a late, older event changes nothing and a retried one finishes the job: adding an
/// item lowers percentages, removing one stops counting it, a learner who now has every item is
/// completed (announced with `assignment.completed`). Rows are derived again by a roster run per
/// assignment ([`INLINE_PAGES`] here, the rest by the roster worker), not one by one in this event.
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
        changed += re_derive_rows(ctx, org, &a).await?;
    }
    Ok(Applied { rows: changed })
}

/// Derives every row of `a` again after its tracked items changed, by a new roster run that takes
/// over from any other (a repair; a catch-up for a roster still building). Returns the rows changed here.
async fn re_derive_rows(ctx: &Ctx<'_>, org: &OrgId, a: &Assignment) -> Result<usize, AppError> {
    let mode = match a.roster_status {
        RosterStatus::Building => Mode::CatchUp,
        RosterStatus::Complete => Mode::Repair,
    };
    let run = uuid::Uuid::now_v7();
    if !ctx.store.take_over_roster(org, a.id, a.roster_run, run).await? {
        // Another run took over since `a` was read: it reads the new items before each page.
        return Ok(0);
    }
    Ok(run_here(ctx, org, a.id, mode, INLINE_PAGES, run).await?.rows)
}
