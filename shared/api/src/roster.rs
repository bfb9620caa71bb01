//! Resolving what is assigned and to whom: the reads behind create and its dry run. (Reactivation and
//! joiners go through `events::membership`.)

use chrono::{DateTime, Utc};
use domain::{
    Assignee, AssigneeType, CourseId, OrgId, ResolvedTarget, Source, Target, TargetType, TeamId, User, UserId,
};
use store::Store;

use crate::problem::ApiError;

/// Who an assignment reaches now.
#[derive(Debug, Clone)]
pub struct Roster {
    pub assignee_name: String,
    pub members: Vec<Member>,
}

/// A learner on a roster, with the time of the projection facts that put them there: their row's
/// membership starts then, so a membership event older than the assignment but newer than those
/// facts (a leave still in flight) is still applied.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: UserId,
    pub source: Source,
    pub since: DateTime<Utc>,
}

impl Member {
    fn of(user: &User, source: Source) -> Self {
        Member { user_id: user.user_id, source, since: user.membership_at() }
    }
}

/// The target's title, path and tracked units. Catalog targets cost one GetItem.
pub async fn resolve_target(store: &Store, org: &OrgId, target: &Target) -> Result<ResolvedTarget, ApiError> {
    if target.target_type == TargetType::CustomCourse {
        if !store.has_custom_courses(org).await? {
            return Err(ApiError::NoCustomCourses);
        }
        let id =
            CourseId::parse(&target.target_id).map_err(|_| ApiError::field("targetId", "must be a course UUID"))?;
        let course = store
            .get_custom_course(org, id)
            .await?
            .filter(|c| c.is_active)
            .ok_or_else(|| ApiError::UnknownTarget(format!("no active custom course '{}'", target.target_id)))?;
        return Ok(ResolvedTarget { title: course.name.clone(), path: course.name, units: course.units });
    }
    store
        .catalog_node(target.content_area, target.target_type, &target.target_id)
        .await?
        .map(ResolvedTarget::from)
        .ok_or_else(|| {
            ApiError::UnknownTarget(format!(
                "no {} '{}' in content area '{}'",
                target.target_type, target.target_id, target.content_area
            ))
        })
}

/// The assignee's display name and current members.
pub async fn resolve_assignee(store: &Store, org: &OrgId, assignee: &Assignee) -> Result<Roster, ApiError> {
    match assignee.assignee_type {
        AssigneeType::User => {
            let id =
                UserId::parse(&assignee.assignee_id).map_err(|_| ApiError::field("assigneeId", "must be a UUID"))?;
            let user = store
                .get_user(org, id)
                .await?
                .filter(|u| u.is_active)
                .ok_or_else(|| ApiError::UnknownAssignee(format!("no active user '{id}'")))?;
            let members = vec![Member::of(&user, Source::Individual)];
            Ok(Roster { assignee_name: user.name, members })
        }
        AssigneeType::Team => {
            let id =
                TeamId::parse(&assignee.assignee_id).map_err(|_| ApiError::field("assigneeId", "must be a UUID"))?;
            let team = store
                .get_team(org, id)
                .await?
                .filter(|t| !t.is_deleted)
                .ok_or_else(|| ApiError::UnknownAssignee(format!("no team '{id}'")))?;
            let members = store.team_members(org, id).await?;
            Ok(Roster {
                assignee_name: team.name,
                members: members.iter().map(|u| Member::of(u, Source::Team { team_id: id })).collect(),
            })
        }
        AssigneeType::Org => {
            if assignee.assignee_id != org.as_str() {
                return Err(ApiError::UnknownAssignee("assigneeId must be your organization's id".into()));
            }
            let users = store.active_users(org).await?;
            Ok(Roster {
                assignee_name: "Entire organization".into(),
                members: users.iter().map(|u| Member::of(u, Source::Organization)).collect(),
            })
        }
    }
}
