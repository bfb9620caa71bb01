//! Creating an assignment: the dry run's preview, and the assignment itself with its audit entry and
//! roster rows (one transaction, then chunks; see `Store::create_assignment`).

use std::collections::HashSet;

use domain::{AssigneeType, AssignmentId, ItemCounts, NewAssignment, OrgId, ProgressRow, RosterStatus, Target, UserId};
use serde_json::{Value, json};
use store::{AssignmentFilter, Pages};

use crate::roster::{members_page, resolve_assignee, resolve_group, resolve_target, rows_of};
use crate::{Actor, AppError, Ctx, outbound};

/// What creating would do (`dryRun`).
#[derive(Debug, Clone)]
pub struct Preview {
    pub items: ItemCounts,
    pub learners: u32,
    pub assignee_name: String,
    /// Learners who already have an active assignment of the same target, through any assignee.
    pub already_assigned: usize,
    pub new_starters_only: bool,
}

impl Preview {
    /// "Will assign 3 challenges to 12 learners" ("… to each new starter").
    pub fn summary(&self) -> String {
        if self.new_starters_only {
            return domain::preview::new_starters_summary(self.items);
        }
        domain::preview::summary(self.items, self.learners)
    }
}

pub async fn preview(ctx: &Ctx<'_>, org: &OrgId, new: &NewAssignment) -> Result<Preview, AppError> {
    let resolved = resolve_target(ctx.store, org, &new.target).await?;
    let mut roster = resolve_assignee(ctx.store, org, &new.assignee).await?;
    if new.new_starters_only {
        roster.members.clear();
    }
    let learners: HashSet<_> = roster.members.iter().map(|m| m.user_id).collect();
    Ok(Preview {
        items: ItemCounts::of(&resolved.units),
        learners: u32::try_from(learners.len()).unwrap_or(u32::MAX),
        assignee_name: roster.assignee_name,
        already_assigned: already_assigned(ctx, org, &new.target, &learners).await?,
        new_starters_only: new.new_starters_only,
    })
}

/// Creates the assignment for everyone its assignee reaches now (nobody, for a new-starters
/// assignment: its learners arrive as they join) and announces `assignment.created`. A team or the
/// org with more members than one transaction's first rows ([`store::ROSTER_ROWS_PER_TRANSACTION`])
/// gets those rows now and the rest from the roster worker (`rosterStatus: building`, see
/// [`crate::roster_build`]), so creating costs the same whatever the roster's size.
/// `view` is how the audit entry shows the new assignment (the API's representation).
pub async fn create(
    ctx: &Ctx<'_>,
    org: &OrgId,
    new: NewAssignment,
    actor: &Actor,
    view: impl FnOnce(&domain::Assignment) -> Value,
) -> Result<domain::Assignment, AppError> {
    let store = ctx.store;
    let resolved = resolve_target(store, org, &new.target).await?;
    let id = AssignmentId::new_v7();
    let new_starters_only = new.new_starters_only;
    let (mut assignment, rows, rest) = if new.assignee.assignee_type == AssigneeType::User {
        let roster = resolve_assignee(store, org, &new.assignee).await?;
        let assignment = new.into_assignment(id, resolved, roster.assignee_name, actor.id.clone(), actor.now);
        let rows: Vec<ProgressRow> = roster
            .members
            .into_iter()
            .filter(|_| !new_starters_only)
            .map(|m| {
                let mut row = assignment.new_row(m.user_id, m.source, actor.now);
                row.membership_at = m.since;
                row
            })
            .collect();
        (assignment, rows, None)
    } else {
        let (name, source) = resolve_group(store, org, &new.assignee).await?;
        let assignment = new.into_assignment(id, resolved, name, actor.id.clone(), actor.now);
        if new_starters_only {
            (assignment, Vec::new(), None)
        } else {
            let first =
                members_page(store, org, &assignment.assignee, store::ROSTER_ROWS_PER_TRANSACTION, None).await?;
            let rows = rows_of(&assignment, &first.items, &source);
            (assignment, rows, first.next)
        }
    };
    let mut events = Vec::new();
    if let Some(rest) = &rest {
        assignment.roster_status = RosterStatus::Building;
        // An obliging assignment's first rows are written after its transaction (their compliance
        // items do not fit in it): the worker starts from the first page, so a failure there leaves
        // no gap (rows that exist are skipped).
        let obliges = assignment.is_active && assignment.is_mandatory;
        let run = uuid::Uuid::now_v7();
        assignment.roster_run = Some(run);
        let from = crate::roster_build::Position {
            resume: (!obliges).then(|| rest.clone()),
            ..crate::roster_build::Position::start(crate::roster_build::Mode::Build)
        };
        events.push(crate::roster_build::requested(org, id, &from, run, actor.now));
    }
    let audit = actor.audit(
        "assignment.created",
        ("assignment", id.to_string(), assignment.target_title.clone()),
        json!({"before": null, "after": view(&assignment), "learnerCount": rows.len(),
               "rosterStatus": assignment.roster_status.as_str()}),
    );
    events.insert(0, outbound::assignment_changed("assignment.created", org, &assignment, &actor.id, actor.now));
    let created = store.create_assignment(org, &assignment, &audit, &rows, &events).await?;
    tracing::info!(assignment_id = %id, learners = rows.len(), roster = assignment.roster_status.as_str(), "assignment created");
    Ok(created)
}

/// Learners of `learners` who already have an active assignment of the same target, through any
/// assignee. Reads only the org's active assignments of this target and their rosters.
async fn already_assigned(
    ctx: &Ctx<'_>,
    org: &OrgId,
    target: &Target,
    learners: &HashSet<UserId>,
) -> Result<usize, AppError> {
    let store = ctx.store;
    let mut covered = HashSet::new();
    let filter = AssignmentFilter { is_active: Some(true), ..Default::default() };
    let mut pages = Pages::default();
    while let Some(start) = pages.next_start() {
        let page = pages.follow(store.list_assignments(org, &filter, 200, start).await?);
        for a in
            page.iter().filter(|a| a.target.target_type == target.target_type && a.target.target_id == target.target_id)
        {
            let mut row_pages = Pages::default();
            while let Some(rows_start) = row_pages.next_start() {
                let rows = row_pages.follow(store.progress_page(org, a.id, 200, rows_start).await?);
                covered.extend(rows.iter().filter(|r| r.removed_at.is_none()).map(|r| r.user_id));
            }
        }
    }
    Ok(learners.intersection(&covered).count())
}
