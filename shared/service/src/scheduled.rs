//! The scheduled jobs: deadline reminders (daily) and roster reconcile (the safety net for lost
//! membership events). Both walk the orgs that have assignments and page through any volume.

use std::collections::HashMap;

use chrono::NaiveDate;
use domain::reminders::{latest_reminded_deadline, reminder_on};
use domain::{AssigneeType, OrgId};
use serde_json::json;
use store::{Pages, StoreError};

use crate::membership::reconcile_assignment;
use crate::outbound::{self, DomainEvent};
use crate::{AppError, Ctx};

/// Reminders announced per call, so a run holds at most this many claimed-but-unsent reminders (the
/// publisher makes PutEvents calls of ten itself).
const ANNOUNCE_BATCH: usize = 10;

/// What a run did, for its log line and its result.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub orgs: usize,
    pub assignments: usize,
    /// Reminders sent (reminders) or rows and counters repaired (reconcile).
    pub count: usize,
}

/// The orgs to visit: `only` those, or every org that has assignments.
async fn each_org(ctx: &Ctx<'_>, only: Option<&[OrgId]>) -> Result<Vec<OrgId>, StoreError> {
    if let Some(only) = only {
        return Ok(only.to_vec());
    }
    let mut orgs = Vec::new();
    let mut pages = Pages::default();
    while let Some(start) = pages.next_start() {
        orgs.extend(pages.follow(ctx.store.orgs_page(start).await?));
    }
    Ok(orgs)
}

/// Emits `assignment.due_soon` / `assignment.overdue` for `today` to every incomplete, in-scope learner
/// of every active assignment whose deadline calls for one, each at most once per (assignment,
/// learner, reminder) however often the job runs: the claim is written before the event is sent.
pub async fn send_reminders(ctx: &Ctx<'_>, today: NaiveDate, only: Option<&[OrgId]>) -> Result<RunReport, AppError> {
    let store = ctx.store;
    let mut report = RunReport::default();
    for org in each_org(ctx, only).await? {
        report.orgs += 1;
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let page = pages.follow(store.due_assignments_page(&org, latest_reminded_deadline(today), start).await?);
            for a in &page {
                let Some(reminder) = reminder_on(a.deadline, today) else { continue };
                report.assignments += 1;
                let mut row_pages = Pages::default();
                while let Some(rows_start) = row_pages.next_start() {
                    let rows = row_pages.follow(store.progress_page(&org, a.id, 100, rows_start).await?);
                    let due: Vec<_> =
                        rows.iter().filter(|r| r.removed_at.is_none() && r.completed_at.is_none()).collect();
                    let ids: Vec<_> = due.iter().map(|r| r.user_id).collect();
                    let users: HashMap<_, _> =
                        store.get_users(&org, &ids).await?.into_iter().map(|u| (u.user_id, u)).collect();
                    let mut events: Vec<DomainEvent> = Vec::new();
                    for row in due {
                        if !store.claim_reminder(&org, a.id, row.user_id, &reminder.key).await? {
                            continue;
                        }
                        let user = users.get(&row.user_id);
                        let detail = json!({
                            "assignment": outbound::summary(a),
                            "userId": row.user_id,
                            "userName": user.map(|u| u.name.as_str()),
                            "userEmail": user.map(|u| u.email.as_str()),
                            "deadline": a.deadline,
                            "status": row.status(&a.units, a.item_count, a.deadline, today.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc()),
                            "progress": row.progress(&a.units, a.item_count),
                            "days": reminder.days,
                        });
                        events.push(outbound::other(reminder.detail_type, &org, chrono::Utc::now(), detail));
                        if events.len() == ANNOUNCE_BATCH {
                            report.count += events.len();
                            ctx.events.announce(&std::mem::take(&mut events)).await;
                        }
                    }
                    report.count += events.len();
                    ctx.events.announce(&events).await;
                }
            }
        }
    }
    tracing::info!(orgs = report.orgs, assignments = report.assignments, reminders = report.count, %today, "reminders sent");
    Ok(report)
}

/// Compares the roster of every active team and org-wide assignment with the membership projection
/// and repairs missing or stale rows, then the counters if rows were changed behind the service's
/// back. Logs and returns the number of repairs.
pub async fn reconcile_rosters(ctx: &Ctx<'_>, only: Option<&[OrgId]>) -> Result<RunReport, AppError> {
    let store = ctx.store;
    let mut report = RunReport::default();
    let far_future = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX);
    for org in each_org(ctx, only).await? {
        report.orgs += 1;
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let page = pages.follow(store.due_assignments_page(&org, far_future, start).await?);
            for a in page.iter().filter(|a| a.assignee.assignee_type != AssigneeType::User) {
                report.assignments += 1;
                let reconciled = reconcile_assignment(store, &org, a, false).await?;
                report.count += reconciled.repairs;
                if store.repair_counters(&org, a.id).await? {
                    report.count += 1;
                    tracing::warn!(org = %org, assignment_id = %a.id, "counters repaired");
                }
                ctx.events.announce(&reconciled.events).await;
            }
        }
    }
    tracing::info!(orgs = report.orgs, assignments = report.assignments, repairs = report.count, "reconcile finished");
    Ok(report)
}
