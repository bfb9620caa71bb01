//! The scheduled jobs: the daily job (deadline reminders, recertification notices) and roster
//! reconcile (the safety net for lost membership events and unfinished re-derivations). Both walk the
//! orgs that have assignments and page through any volume.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Days, NaiveDate};
use domain::reminders::{latest_reminded_deadline, reminder_on};
use domain::{AssigneeType, Assignment, AssignmentId, OrgId, ProgressRow, RowClass};
use serde_json::{Value, json};
use store::{Headcount, Pages, StoreError};

use crate::outbound;
use crate::{AppError, Ctx};

/// What a run did, for its log line and its result.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub orgs: usize,
    pub assignments: usize,
    /// Reminders sent (reminders) or rows and counters repaired (reconcile).
    pub count: usize,
    /// The days the daily job ran for (each org's today, or the day it was given); none for reconcile.
    pub days: BTreeSet<NaiveDate>,
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

/// How many days back the daily job looks for cycle windows that opened and completions that lapsed,
/// so missed runs are caught up; claims keep any rerun from sending twice.
const CATCH_UP_DAYS: u64 = 7;

/// The daily job. Emits, for `date` (each org's today by its clock when `None`):
/// - `assignment.due_soon` / `assignment.overdue` to every incomplete learner in the rates of every
///   active assignment whose due date calls for one — the assignment's deadline, or the learner's own
///   date (a relative deadline, an extension);
/// - `assignment.recertification_due` when a recertified learner's next cycle opens, and
///   `assignment.expired` when their completion lapsed without renewal;
/// - `compliance.changed` when the clock alone made a learner non-compliant.
///
/// Each at most once per (assignment, learner, date, kind) however often the job runs: the claim is
/// written before the event is sent. Rows are found by date index (the assignments' deadline index and
/// the rows' own sparse indexes), never by a scan, a page of 100 at a time.
pub async fn send_reminders(
    ctx: &Ctx<'_>,
    date: Option<NaiveDate>,
    only: Option<&[OrgId]>,
) -> Result<RunReport, AppError> {
    let store = ctx.store;
    let mut report = RunReport::default();
    for org in each_org(ctx, only).await? {
        let today = date.unwrap_or_else(|| ctx.today(&org));
        let until = latest_reminded_deadline(today);
        let catch_up = today.checked_sub_days(Days::new(CATCH_UP_DAYS)).unwrap_or(today);
        let yesterday = today.pred_opt().unwrap_or(today);
        report.orgs += 1;
        report.days.insert(today);
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            for a in &pages.follow(store.due_assignments_page(&org, until, start).await?) {
                // A relative deadline's rows all have their own dates: the rows' index finds them.
                if a.due_in_days.is_some() || reminder_on(a.deadline, today).is_none() {
                    continue;
                }
                report.assignments += 1;
                let mut row_pages = Pages::default();
                while let Some(rows_start) = row_pages.next_start() {
                    let rows = row_pages.follow(store.progress_page(&org, a.id, 100, rows_start).await?);
                    let following: Vec<_> = rows.into_iter().filter(|r| r.own_due_on().is_none()).collect();
                    report.count += notify_once(ctx, &org, a, &following, today, |r| reminder(a, r, today)).await?;
                }
            }
        }
        let mut assignments = Assignments::default();
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let rows = pages.follow(store.own_dated_rows_page(&org, until, start).await?);
            for (a, rows) in assignments.of(ctx, &org, rows).await? {
                report.count += notify_once(ctx, &org, &a, &rows, today, |r| reminder(&a, r, today)).await?;
            }
        }
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let rows = pages.follow(store.recert_opening_page(&org, catch_up, today, start).await?);
            for (a, rows) in assignments.of(ctx, &org, rows).await? {
                report.count += notify_once(ctx, &org, &a, &rows, today, |r| recertification_due(r, today)).await?;
            }
        }
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let rows = pages.follow(store.expiring_rows_page(&org, catch_up, yesterday, start).await?);
            for (a, rows) in assignments.of(ctx, &org, rows).await? {
                report.count += notify_once(ctx, &org, &a, &rows, today, |r| expired(r, today)).await?;
            }
        }
        report.count += announce_clock_flips(ctx, &org, today).await?;
        // The rollups' past days fold into one counter (never past the org's date: a run for a
        // future day must not change what today's figures read).
        let fold_before = today.min(ctx.today(&org));
        match store.compact_rollups(&org, fold_before).await {
            Ok(folded) if folded > 0 => tracing::info!(org = %org, folded, "compliance rollups compacted"),
            Ok(_) => {}
            Err(error) => tracing::error!(org = %org, %error, "compliance rollups not compacted"),
        }
    }
    tracing::info!(orgs = report.orgs, assignments = report.assignments, sent = report.count, days = ?report.days, "daily job done");
    Ok(report)
}

/// `compliance.changed` for learners whom the clock alone made non-compliant by `today` (a due date
/// or a validity passed since their compliance was last announced, however long ago); the learner's
/// item records the announcement, so each change goes out once.
async fn announce_clock_flips(ctx: &Ctx<'_>, org: &OrgId, today: NaiveDate) -> Result<usize, AppError> {
    let store = ctx.store;
    let mut sent = 0;
    let mut pages = Pages::default();
    while let Some(start) = pages.next_start() {
        let learners = pages.follow(store.compliance_flips_page(org, today, start).await?);
        let announce = crate::outbound::compliance_only(org, ctx.now(org));
        for learner in learners.iter().filter(|l| l.clock_flip_on().is_some_and(|day| day <= today)) {
            if store.announce_clock_flip(org, learner.user_id, today, &announce).await?.is_some() {
                sent += 1;
            }
        }
    }
    Ok(sent)
}

/// One event the daily job owes a learner: its type, the claim that makes it once-only, and what it
/// adds to the common detail.
struct Notice {
    detail_type: &'static str,
    claim: String,
    detail: Value,
}

/// `due_soon` / `overdue` for an incomplete row in the rates, if `today` calls for one. The date is
/// part of the claim: a learner whose date moves is reminded of the new one.
fn reminder(a: &Assignment, row: &ProgressRow, today: NaiveDate) -> Option<Notice> {
    if !matches!(row.class(&a.units, a.item_count), RowClass::NotStarted | RowClass::InProgress) {
        return None;
    }
    let due_on = row.due_on(a.deadline);
    let reminder = reminder_on(due_on, today)?;
    Some(Notice {
        detail_type: reminder.detail_type,
        claim: format!("{}@{due_on}", reminder.key),
        detail: json!({"days": reminder.days}),
    })
}

/// `recertification_due` once the row's next cycle has opened (once per cycle: the claim names the
/// validity it renews).
fn recertification_due(row: &ProgressRow, today: NaiveDate) -> Option<Notice> {
    let (opens, valid_until) = (row.window_opens_on?, row.valid_until?);
    (opens <= today).then(|| Notice {
        detail_type: "assignment.recertification_due",
        claim: format!("recertification_due@{valid_until}"),
        detail: json!({"windowOpensOn": opens, "validUntil": valid_until, "cycles": row.cycles.len()}),
    })
}

/// `expired` once the row's completion has lapsed (once per cycle).
fn expired(row: &ProgressRow, today: NaiveDate) -> Option<Notice> {
    let lapsed = row.expires_on().filter(|day| *day < today)?;
    Some(Notice {
        detail_type: "assignment.expired",
        claim: format!("expired@{lapsed}"),
        detail: json!({"validUntil": lapsed, "cycles": row.cycles.len()}),
    })
}

/// The assignments of the rows a date index returned, read once per run in batches; only active
/// ones get notices.
#[derive(Default)]
struct Assignments(HashMap<AssignmentId, Option<Assignment>>);

impl Assignments {
    async fn of(
        &mut self,
        ctx: &Ctx<'_>,
        org: &OrgId,
        rows: Vec<ProgressRow>,
    ) -> Result<Vec<(Assignment, Vec<ProgressRow>)>, AppError> {
        let mut by_assignment: BTreeMap<AssignmentId, Vec<ProgressRow>> = BTreeMap::new();
        for row in rows {
            by_assignment.entry(row.assignment_id).or_default().push(row);
        }
        let unknown: Vec<_> = by_assignment.keys().filter(|id| !self.0.contains_key(id)).copied().collect();
        let found = ctx.store.get_assignments(org, &unknown).await?;
        self.0.extend(unknown.iter().map(|id| (*id, None)));
        self.0.extend(found.into_iter().map(|a| (a.id, Some(a))));
        Ok(by_assignment
            .into_iter()
            .filter_map(|(id, rows)| {
                let a = self.0.get(&id)?.as_ref().filter(|a| a.is_active)?;
                Some((a.clone(), rows))
            })
            .collect())
    }
}

/// Claims and announces what `notice` says each of `rows` of `a` is owed. Returns how many were sent.
async fn notify_once(
    ctx: &Ctx<'_>,
    org: &OrgId,
    a: &Assignment,
    rows: &[ProgressRow],
    today: NaiveDate,
    notice: impl Fn(&ProgressRow) -> Option<Notice>,
) -> Result<usize, AppError> {
    let store = ctx.store;
    let owed: Vec<_> = rows.iter().filter_map(|r| notice(r).map(|n| (r, n))).collect();
    if owed.is_empty() {
        return Ok(0);
    }
    let ids: Vec<_> = owed.iter().map(|(r, _)| r.user_id).collect();
    let users: HashMap<_, _> = store.get_users(org, &ids).await?.into_iter().map(|u| (u.user_id, u)).collect();
    let now = ctx.now(org);
    // Statuses as of the job's day (a rerun for a past day says what that day said).
    let as_of = today.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
    let mut sent = 0;
    for (row, notice) in owed {
        let user = users.get(&row.user_id);
        let mut detail = json!({
            "assignment": outbound::summary(a),
            "userId": row.user_id,
            "userName": user.map(|u| u.name.as_str()),
            "userEmail": user.map(|u| u.email.as_str()),
            "deadline": a.deadline,
            "dueOn": row.due_on(a.deadline),
            "status": row.status(&a.units, a.item_count, a.deadline, as_of),
            "progress": row.progress(&a.units, a.item_count),
        });
        if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), notice.detail) {
            detail.extend(extra);
        }
        // The claim and the event commit together: once per claim, and never claimed but unsent.
        let event = outbound::other(notice.detail_type, org, now, detail);
        if store.claim_reminder(org, a.id, row.user_id, &notice.claim, std::slice::from_ref(&event)).await? {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Checks the org's head counts (what the dry run answers from) against their indexes and sets those
/// that drifted. A failure is logged and leaves the other counts, orgs and repairs to go on. Returns
/// the number of counts repaired.
async fn recount_headcounts(ctx: &Ctx<'_>, org: &OrgId) -> usize {
    let store = ctx.store;
    // Teams with a count, and the projection's teams (one whose members were all written before
    // counts existed has none yet).
    let teams = match (store.counted_teams(org).await, store.team_ids(org).await) {
        (Ok(counted), Ok(projected)) => counted.into_iter().chain(projected).collect::<std::collections::BTreeSet<_>>(),
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(org = %org, %error, "head counts not listed");
            Default::default()
        }
    };
    let mut repaired = 0;
    for count in std::iter::once(Headcount::Org).chain(teams.into_iter().map(Headcount::Team)) {
        match store.recount(org, count, ctx.clock.wall()).await {
            Ok(recount) if recount.written && recount.stored.is_some() => {
                repaired += 1;
                tracing::warn!(org = %org, ?count, counted = recount.counted, stored = ?recount.stored, "head count repaired");
            }
            Ok(recount) if !recount.written && recount.stored != Some(recount.counted as i64) => {
                tracing::info!(org = %org, ?count, counted = recount.counted, stored = ?recount.stored, "head count moved too recently to check; next run");
            }
            Ok(_) => {}
            Err(error) => tracing::error!(org = %org, ?count, %error, "head count not checked"),
        }
    }
    repaired
}

/// Users read per org and run by the email index's one-off backfill (users written before the index
/// existed): a 100,000-user org is done in a day of hourly runs.
const EMAIL_INDEX_USERS_PER_RUN: usize = 5_000;

/// The email index's backfill for one org, a bounded share per run, resumed from where it stopped
/// (the index itself is written with every user write since it exists). Errors are logged: the next
/// run goes on. Returns the users read.
async fn index_user_emails(store: &store::Store, org: &OrgId) -> usize {
    let after = match store.email_index_progress(org).await {
        Ok(Some(None)) => return 0,
        Ok(Some(after)) => after,
        Ok(None) => None,
        Err(error) => {
            tracing::error!(org = %org, %error, "email index progress not read");
            return 0;
        }
    };
    let mut last = after;
    let mut read = 0;
    while read < EMAIL_INDEX_USERS_PER_RUN {
        match store.index_user_emails(org, last, 500).await {
            Ok(Some(user)) => {
                last = Some(user);
                read += 500;
            }
            Ok(None) => {
                last = None;
                break;
            }
            Err(error) => {
                tracing::error!(org = %org, %error, "email index not written");
                return read;
            }
        }
    }
    if let Err(error) = store.set_email_index_progress(org, last).await {
        tracing::error!(org = %org, %error, "email index progress not recorded");
    }
    read
}

/// Compares the roster of every active team and org-wide assignment with the membership projection
/// and repairs missing or stale rows (a roster run: a bounded share here, the rest by the roster
/// worker; a stopped run is started again), then, once the roster is complete, the counters if rows
/// were changed behind the service's back. Logs and returns the number of repairs.
pub async fn reconcile_rosters(ctx: &Ctx<'_>, only: Option<&[OrgId]>) -> Result<RunReport, AppError> {
    let store = ctx.store;
    let mut report = RunReport::default();
    let far_future = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX);
    for org in each_org(ctx, only).await? {
        report.orgs += 1;
        report.count += recount_headcounts(ctx, &org).await;
        index_user_emails(store, &org).await;
        let stored_obliging = store.compliance_rollups(&org).await?.mandatory_assignments;
        let mut obliging = 0;
        let mut pages = Pages::default();
        while let Some(start) = pages.next_start() {
            let page = pages.follow(store.due_assignments_page(&org, far_future, start).await?);
            obliging += page.iter().filter(|a| a.is_mandatory).count() as i64;
            // Team and org rosters, and an individual one whose catch-up after a reactivation stopped.
            for a in page.iter().filter(|a| {
                a.assignee.assignee_type != AssigneeType::User || a.roster_status == domain::RosterStatus::Building
            }) {
                report.assignments += 1;
                // A roster run (a bounded share here, the rest by the roster worker; a run going on is
                // left to finish, a stopped one is started again), which compares the counters with
                // the rows once they are in line.
                let repaired = crate::roster_build::reconcile(ctx, &org, a).await?;
                report.count += repaired.rows;
            }
        }
        // Rule changes (deadline, activity, mandatory flag) an interrupted patch did not bring to
        // every learner, active assignments or not.
        for a in store.assignments_awaiting_compliance_sync(&org).await? {
            match crate::compliance::sync_assignment(ctx, &org, a.id, ctx.now(&org)).await {
                Ok(changed) => {
                    report.count += changed.max(1);
                    tracing::warn!(org = %org, assignment_id = %a.id, changed, "learners' compliance synced");
                }
                Err(error) => tracing::error!(org = %org, assignment_id = %a.id, %error, "compliance not synced"),
            }
        }
        // Counted before this count existed, or drifted: set from the assignments (guarded by the
        // stored value, so a concurrent create or patch wins and the next run looks again).
        if obliging != stored_obliging && store.repair_obliging_assignments(&org, stored_obliging, obliging).await? {
            report.count += 1;
            tracing::warn!(org = %org, obliging, stored_obliging, "count of mandatory assignments repaired");
        }
    }
    tracing::info!(orgs = report.orgs, assignments = report.assignments, repairs = report.count, "reconcile finished");
    Ok(report)
}
