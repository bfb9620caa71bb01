//! What an assignment is about and whom it reaches: the target resolved against the catalog or the
//! org's custom courses, the assignee against the directory. Create and the roster runs
//! list members here, a page at a time (the dry run counts them: see `create::preview`).

use std::sync::OnceLock;

use domain::{
    Assignee, AssigneeType, Catalog, CourseId, OrgId, ResolvedTarget, Source, Target, TargetType, TeamId, User, UserId,
};
use store::{Store, StoreError};

use crate::AppError;

/// The catalog this build ships (what the table's catalog nodes were loaded from), parsed once.
pub(crate) fn bundled_catalog() -> Result<&'static Catalog, StoreError> {
    static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
    CATALOG
        .get_or_init(|| Catalog::bundled().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| StoreError::Corrupt(format!("bundled catalog: {e}")))
}

/// The target's title, path and tracked units. Catalog targets cost one GetItem.
pub async fn resolve_target(store: &Store, org: &OrgId, target: &Target) -> Result<ResolvedTarget, AppError> {
    if target.target_type == TargetType::CustomCourse {
        if !store.has_custom_courses(org).await? {
            return Err(AppError::NoCustomCourses);
        }
        let id = CourseId::parse(&target.target_id)
            .map_err(|_| AppError::InvalidField { field: "targetId", message: "must be a course UUID" })?;
        let course = store
            .get_custom_course(org, id)
            .await?
            .filter(|c| c.is_active)
            .ok_or_else(|| AppError::UnknownTarget(format!("no active custom course '{}'", target.target_id)))?;
        return Ok(ResolvedTarget { title: course.name.clone(), path: course.name, units: course.units });
    }
    store
        .catalog_node(target.content_area, target.target_type, &target.target_id)
        .await?
        .map(ResolvedTarget::from)
        .ok_or_else(|| {
            AppError::UnknownTarget(format!(
                "no {} '{}' in content area '{}'",
                target.target_type, target.target_id, target.content_area
            ))
        })
}

/// The assignee's display name and the source of its rows; one that does not exist (or can no longer
/// be assigned) is [`AppError::UnknownAssignee`]. A user assignee is not one to list: see
/// [`resolve_user`].
pub async fn resolve_group(store: &Store, org: &OrgId, assignee: &Assignee) -> Result<(String, Source), AppError> {
    let invalid = || AppError::InvalidField { field: "assigneeId", message: "must be a UUID" };
    match assignee.assignee_type {
        AssigneeType::User => Err(AppError::InvalidField { field: "assigneeType", message: "must be team or org" }),
        AssigneeType::Team => {
            let id = TeamId::parse(&assignee.assignee_id).map_err(|_| invalid())?;
            let team = store.get_team(org, id).await?.filter(|t| !t.is_deleted);
            let team = team.ok_or_else(|| AppError::UnknownAssignee(format!("no team '{id}'")))?;
            Ok((team.name, Source::Team { team_id: id }))
        }
        AssigneeType::Org => {
            if assignee.assignee_id != org.as_str() {
                return Err(AppError::UnknownAssignee("assigneeId must be your organization's id".into()));
            }
            Ok(("Entire organization".to_owned(), Source::Organization))
        }
    }
}

/// A page of the users an assignee reaches according to the directory, by user id (its indexes are
/// eventually consistent: callers that write rows check each user with `Assignment::includes`). An id
/// that does not parse reaches nobody.
pub async fn members_page(
    store: &Store,
    org: &OrgId,
    assignee: &Assignee,
    limit: usize,
    start: Option<store::PageKey>,
) -> Result<store::Page<User>, StoreError> {
    match assignee.assignee_type {
        AssigneeType::Org => store.active_users_page(org, limit, start).await,
        AssigneeType::Team => match TeamId::parse(&assignee.assignee_id) {
            Ok(team) => store.team_members_page(org, team, limit, start).await,
            Err(_) => Ok(store::Page { items: Vec::new(), next: None }),
        },
        AssigneeType::User => {
            let user = match UserId::parse(&assignee.assignee_id) {
                Ok(user) => store.get_user(org, user).await?,
                Err(_) => None,
            };
            Ok(store::Page { items: user.into_iter().collect(), next: None })
        }
    }
}

/// The rows of `users` that `a` includes, as its roster has them: each from when the learner came into
/// its scope (its creation, for those already in it), its membership from the directory facts that
/// put the learner in scope — so a learner the roster worker reaches after they joined gets the
/// relative due date their join would have given them.
pub fn rows_of(a: &domain::Assignment, users: &[User], source: &Source) -> Vec<domain::ProgressRow> {
    users
        .iter()
        .filter(|u| a.includes(u))
        .map(|u| {
            let got_it = a.entered_scope(u).map_or(a.created_at, |entered| entered.max(a.created_at));
            let mut row = a.new_row(u.user_id, source.clone(), got_it);
            row.membership_at = u.membership_at();
            row
        })
        .collect()
}

/// The active user an individual assignment names; one that does not exist (or is deactivated) is
/// [`AppError::UnknownAssignee`].
pub async fn resolve_user(store: &Store, org: &OrgId, assignee: &Assignee) -> Result<User, AppError> {
    let id = UserId::parse(&assignee.assignee_id)
        .map_err(|_| AppError::InvalidField { field: "assigneeId", message: "must be a UUID" })?;
    let user = store.get_user(org, id).await?.filter(|u| u.is_active);
    user.ok_or_else(|| AppError::UnknownAssignee(format!("no active user '{id}'")))
}
