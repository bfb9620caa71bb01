//! The scheduled jobs: deadline reminders (daily) and roster reconcile (the safety net for lost
//! membership events). Both walk the orgs that have assignments and page through any volume.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use domain::reminders::{latest_reminded_deadline, reminder_on};
use domain::{AssigneeType, Assignment, AssignmentId, OrgId, ProgressRow, RowClass};
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

/// Emits `assignment.due_soon` / `assignment.overdue` for `today` to every incomplete learner in the
/// rates of every active assignment whose due date calls for one — the assignment's deadline, or the
/// learner's own date (a relative deadline, an extension) — each at most once per (assignment,
/// learner, due date, reminder) however often the job runs: the claim is written before the event is
/// sent. Both kinds of row are found by date index (the assignments' and the rows' own), never by a
/// scan.
pub async fn send_reminders(ctx: &Ctx<'_>, today: NaiveDate, only: Option<&[OrgId]>) -> Result<RunReport, AppError> {
    let store = ctx.store;
    let until = latest_reminded_deadline(today);
    let mut report = RunReport::default();
    for org in each_org(ctx, only).await? {
        report.orgs += 1;
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            for a in &pages.follow(store.due_assignments_page(&org, until, start).await?) {
                if reminder_on(a.deadline, today).is_none() {
                    continue;
                }
                report.assignments += 1;
                let mut row_pages = Pages::default();
                while let Some(rows_start) = row_pages.next_start() {
                    let rows = row_pages.follow(store.progress_page(&org, a.id, 100, rows_start).await?);
                    let following: Vec<_> = rows.into_iter().filter(|r| r.own_due_on().is_none()).collect();
                    report.count += remind(ctx, &org, a, &following, today).await?;
                }
            }
        }
        // Rows with their own date; the index holds only incomplete ones in the rates.
        let mut assignments: HashMap<AssignmentId, Option<Assignment>> = HashMap::new();
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let rows = pages.follow(store.own_dated_rows_page(&org, until, start).await?);
            let mut by_assignment: BTreeMap<AssignmentId, Vec<ProgressRow>> = BTreeMap::new();
            for row in rows.into_iter().filter(|r| r.own_due_on().is_some_and(|d| reminder_on(d, today).is_some())) {
                by_assignment.entry(row.assignment_id).or_default().push(row);
            }
            let unknown: Vec<_> = by_assignment.keys().filter(|id| !assignments.contains_key(id)).copied().collect();
            let found = store.get_assignments(&org, &unknown).await?;
            assignments.extend(unknown.iter().map(|id| (*id, None)));
            assignments.extend(found.into_iter().map(|a| (a.id, Some(a))));
            for (id, rows) in by_assignment {
                let Some(a) = assignments.get(&id).and_then(Option::as_ref).filter(|a| a.is_active) else { continue };
                report.count += remind(ctx, &org, a, &rows, today).await?;
            }
        }
    }
    tracing::info!(orgs = report.orgs, assignments = report.assignments, reminders = report.count, %today, "reminders sent");
    Ok(report)
}

/// Claims and announces the reminders `today` calls for on `rows` of `a` (incomplete rows in the
/// rates only). Returns how many were sent.
async fn remind(
    ctx: &Ctx<'_>,
    org: &OrgId,
    a: &Assignment,
    rows: &[ProgressRow],
    today: NaiveDate,
) -> Result<usize, AppError> {
    let store = ctx.store;
    let noon = today.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
    let due: Vec<_> = rows
        .iter()
        .filter(|r| matches!(r.class(&a.units, a.item_count), RowClass::NotStarted | RowClass::InProgress))
        .filter_map(|r| reminder_on(r.due_on(a.deadline), today).map(|reminder| (r, reminder)))
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let ids: Vec<_> = due.iter().map(|(r, _)| r.user_id).collect();
    let users: HashMap<_, _> = store.get_users(org, &ids).await?.into_iter().map(|u| (u.user_id, u)).collect();
    let mut sent = 0;
    let mut events: Vec<DomainEvent> = Vec::new();
    for (row, reminder) in due {
        let due_on = row.due_on(a.deadline);
        // The date is part of the claim: a learner whose date moves is reminded of the new one.
        if !store.claim_reminder(org, a.id, row.user_id, &format!("{}@{due_on}", reminder.key)).await? {
            continue;
        }
        let user = users.get(&row.user_id);
        let detail = json!({
            "assignment": outbound::summary(a),
            "userId": row.user_id,
            "userName": user.map(|u| u.name.as_str()),
            "userEmail": user.map(|u| u.email.as_str()),
            "deadline": a.deadline,
            "dueOn": due_on,
            "status": row.status(&a.units, a.item_count, a.deadline, noon),
            "progress": row.progress(&a.units, a.item_count),
            "days": reminder.days,
        });
        events.push(outbound::other(reminder.detail_type, org, chrono::Utc::now(), detail));
        if events.len() == ANNOUNCE_BATCH {
            sent += events.len();
            ctx.events.announce(&std::mem::take(&mut events)).await;
        }
    }
    sent += events.len();
    ctx.events.announce(&events).await;
    Ok(sent)
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
