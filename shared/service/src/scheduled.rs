//! The scheduled jobs, one org at a time: the daily job (deadline reminders, recertification notices)
//! and roster reconcile (the safety net for lost membership events and unfinished re-derivations).
//!
//! A schedule only dispatches: one [`OrgJob`] per org of the registry, each its own queue message
//! (see the `reminders`, `reconcile` and `org-jobs` functions). An org's run works until its
//! [`Budget`] is spent, then hands back where it stopped ([`OrgRun::next`]: the phase and the page
//! key), which goes back on the queue as the next part. So one large org never holds the others'
//! runs, and one org whose run fails is retried and parked on its own. An item a run cannot read is
//! skipped, logged by its key and counted ([`RunReport::corrupt`]); the run goes on. Claims keep every
//! notice once across parts, retries and reruns.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Days, NaiveDate, Utc};
use domain::event::{DueSoon, Event, Expired, Learner, LearnerNotice, Overdue, RecertificationDue};
use domain::reminders::{latest_reminded_deadline, reminder_on};
use domain::{AssigneeType, Assignment, AssignmentId, DomainEvent, OrgId, ProgressRow, RowClass};
use serde_json::Value;
use store::{CorruptItem, Headcount, PageKey};

use crate::outbound;
use crate::{AppError, Ctx};

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// The daily job: reminders, recertification notices, compliance the clock changed.
    Reminders,
    /// The hourly roster reconcile.
    Reconcile,
}

/// One org's run of a job, as its queue message carries it. Unknown fields are ignored, so that a
/// message a newer version wrote still runs on an older one during a deployment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgJob {
    pub job: Job,
    pub org_id: OrgId,
    /// The day the daily job runs for: the org's today when the schedule fired (a message that waits
    /// or is retried still runs for its day). None for reconcile, and then the org's today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Where a continuation goes on; none for a run's first part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
    /// How many parts ran before this one.
    #[serde(default)]
    pub part: u32,
}

impl OrgJob {
    /// The first part of `job` for `org` (on `date`, for the daily job).
    pub fn first(job: Job, org: OrgId, date: Option<NaiveDate>) -> Self {
        Self { job, org_id: org, date, resume: None, part: 0 }
    }
}

/// Where a run stopped: the phase, and within it where its listing goes on (a store resume point: the
/// key of the last item done, so the next part starts at the item it stopped at, wherever that item
/// went meanwhile); and, if it stopped inside an assignment's rows, that assignment and its rows' page.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<AssignmentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Value>,
    /// Reconcile: an assignment item could not be read, so the count of mandatory ones is not repaired.
    #[serde(default)]
    pub unreadable: bool,
}

impl Resume {
    fn at(phase: Phase) -> Self {
        Self { phase, page: None, assignment: None, rows: None, unreadable: false }
    }

    /// On to the page after this one, or to `then` after the last.
    fn next_page(&mut self, next: Option<PageKey>, then: Phase) {
        self.assignment = None;
        self.rows = None;
        match next {
            Some(next) => self.page = Some(next.resume_point()),
            None => {
                self.phase = then;
                self.page = None;
            }
        }
    }

    fn start(&self, org: &OrgId) -> Result<Option<PageKey>, AppError> {
        Ok(self.page.as_ref().map(|page| PageKey::resume_at(org, page)).transpose()?)
    }
}

/// The phases of a run, in order: the daily job's, then reconcile's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Rows that follow their assignment's deadline (the deadline index, then each assignment's rows).
    Deadlines,
    /// Rows with a due date of their own.
    OwnDates,
    RecertificationsOpening,
    Expiries,
    ClockFlips,
    CompactRollups,
    Headcounts,
    Rosters,
    ComplianceSyncs,
    ObligingCount,
}

/// When a run stops and hands the rest to a next part: a monotonic deadline, set by the entry point
/// below the function's timeout.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    until: std::time::Instant,
}

impl Budget {
    /// A budget of `time` from now.
    pub fn of(time: std::time::Duration) -> Self {
        Self { until: std::time::Instant::now() + time }
    }

    pub fn spent(&self) -> bool {
        std::time::Instant::now() >= self.until
    }
}

/// What a run (or one part of it) did, for its log line and its result.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub assignments: usize,
    /// Notices sent (the daily job) or rows and counters repaired (reconcile).
    pub count: usize,
    /// Items it could not read: skipped, each logged by its key.
    pub corrupt: usize,
    /// The day the daily job ran for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
}

impl RunReport {
    /// The entities of a lenient page; each item that could not be read is logged and counted.
    fn readable<T>(&mut self, org: &OrgId, items: Vec<Result<T, CorruptItem>>) -> Vec<T> {
        items
            .into_iter()
            .filter_map(|item| {
                item.map_err(|corrupt| {
                    self.corrupt += 1;
                    tracing::error!(org = %org, pk = corrupt.pk, sk = corrupt.sk, "item not readable: skipped");
                })
                .ok()
            })
            .collect()
    }
}

/// A part of an org's run: what it did, and the part that goes on from where it stopped (none: the
/// run is done).
#[derive(Debug)]
pub struct OrgRun {
    pub report: RunReport,
    pub next: Option<OrgJob>,
}

/// Runs `job` until it is done or `budget` is spent.
pub async fn run(ctx: &Ctx<'_>, job: &OrgJob, budget: Budget) -> Result<OrgRun, AppError> {
    let org = &job.org_id;
    let mut report = RunReport::default();
    let stopped = match job.job {
        Job::Reminders => {
            let today = job.date.unwrap_or_else(|| ctx.today(org));
            report.date = Some(today);
            let at = job.resume.clone().unwrap_or_else(|| Resume::at(Phase::Deadlines));
            send_reminders(ctx, org, today, at, budget, &mut report).await?
        }
        Job::Reconcile => {
            let at = job.resume.clone().unwrap_or_else(|| Resume::at(Phase::Headcounts));
            reconcile_rosters(ctx, org, at, budget, &mut report).await?
        }
    };
    // A continuation runs for the same day, even after midnight.
    let next =
        stopped.map(|resume| OrgJob { resume: Some(resume), part: job.part + 1, date: report.date, ..job.clone() });
    tracing::info!(org = %org, job = ?job.job, part = job.part, assignments = report.assignments,
                   count = report.count, corrupt = report.corrupt, done = next.is_none(), "org run");
    Ok(OrgRun { report, next })
}

/// How many days back the daily job looks for cycle windows that opened and completions that lapsed,
/// so missed runs are caught up; claims keep any rerun from sending twice.
const CATCH_UP_DAYS: u64 = 7;

/// The daily job for one org, for `today`, from `at`. Emits:
/// - `assignment.due_soon` / `assignment.overdue` to every incomplete learner in the rates of every
///   active assignment whose due date calls for one — the assignment's deadline, or the learner's own
///   date (a relative deadline, an extension);
/// - `assignment.recertification_due` when a recertified learner's next cycle opens, and
///   `assignment.expired` when their completion lapsed without renewal;
/// - `compliance.changed` when the clock alone made a learner non-compliant.
///
/// Each at most once per (assignment, learner, date, kind) however often the job runs: the claim is
/// written with the event. Rows are found by date index (the assignments' deadline index and the
/// rows' own sparse indexes), never by a scan, a page of 100 at a time; the budget is checked after
/// each page. Returns where it stopped, if it did.
async fn send_reminders(
    ctx: &Ctx<'_>,
    org: &OrgId,
    today: NaiveDate,
    mut at: Resume,
    budget: Budget,
    report: &mut RunReport,
) -> Result<Option<Resume>, AppError> {
    let store = ctx.store;
    let until = latest_reminded_deadline(today);
    let catch_up = today.checked_sub_days(Days::new(CATCH_UP_DAYS)).unwrap_or(today);
    let yesterday = today.pred_opt().unwrap_or(today);
    let mut assignments = Assignments::default();
    // Every part does at least one page, however small its budget: a run always gets on.
    let mut progressed = false;
    loop {
        if progressed && budget.spent() {
            return Ok(Some(at));
        }
        progressed = true;
        let start = at.start(org)?;
        match at.phase {
            Phase::Deadlines => {
                let page = store.due_assignments_page(org, until, start.clone()).await?;
                // A part that stopped inside an assignment's rows left its place as the key before
                // that assignment: its rows go on only if it is still the first one there.
                let (resumed, mut rows_at) = (at.assignment.take(), at.rows.take());
                let mut before = start;
                for (i, listed) in page.items.into_iter().enumerate() {
                    if i > 0 && budget.spent() {
                        // Between assignments: the next part starts at this one.
                        return Ok(Some(Resume { page: before.as_ref().map(PageKey::resume_point), ..at }));
                    }
                    let a = match listed.item {
                        Ok(a) => a,
                        Err(corrupt) => {
                            report.readable::<Assignment>(org, vec![Err(corrupt)]);
                            before = Some(listed.after);
                            continue;
                        }
                    };
                    let mut rows_start = match rows_at.take() {
                        Some(rows) if i == 0 && resumed == Some(a.id) => Some(PageKey::resume_at(org, &rows)?),
                        _ => None,
                    };
                    // A relative deadline's rows all have their own dates: the rows' index finds them.
                    if a.due_in_days.is_none() && reminder_on(a.deadline, today).is_some() {
                        report.assignments += 1;
                        loop {
                            let rows = store.progress_page_for_job(org, a.id, rows_start).await?;
                            let following: Vec<_> = report
                                .readable(org, rows.items)
                                .into_iter()
                                .filter(|r| r.own_due_on().is_none())
                                .collect();
                            report.count +=
                                notify_once(ctx, org, &a, &following, today, |r| reminder(&a, r, today)).await?;
                            let Some(next) = rows.next else { break };
                            if budget.spent() {
                                return Ok(Some(Resume {
                                    page: before.as_ref().map(PageKey::resume_point),
                                    assignment: Some(a.id),
                                    rows: Some(next.resume_point()),
                                    ..at
                                }));
                            }
                            rows_start = Some(next);
                        }
                    }
                    before = Some(listed.after);
                }
                at.next_page(page.next, Phase::OwnDates);
            }
            Phase::OwnDates => {
                let page = store.own_dated_rows_page(org, until, start).await?;
                for (a, rows) in assignments.of(ctx, org, report.readable(org, page.items)).await? {
                    report.count += notify_once(ctx, org, &a, &rows, today, |r| reminder(&a, r, today)).await?;
                }
                at.next_page(page.next, Phase::RecertificationsOpening);
            }
            Phase::RecertificationsOpening => {
                let page = store.recert_opening_page(org, catch_up, today, start).await?;
                for (a, rows) in assignments.of(ctx, org, report.readable(org, page.items)).await? {
                    report.count += notify_once(ctx, org, &a, &rows, today, |r| recertification_due(r, today)).await?;
                }
                at.next_page(page.next, Phase::Expiries);
            }
            Phase::Expiries => {
                let page = store.expiring_rows_page(org, catch_up, yesterday, start).await?;
                for (a, rows) in assignments.of(ctx, org, report.readable(org, page.items)).await? {
                    report.count += notify_once(ctx, org, &a, &rows, today, |r| expired(r, today)).await?;
                }
                at.next_page(page.next, Phase::ClockFlips);
            }
            Phase::ClockFlips => {
                let page = store.compliance_flips_page(org, today, start).await?;
                let learners = report.readable(org, page.items);
                report.count += announce_clock_flips(ctx, org, today, &learners).await?;
                at.next_page(page.next, Phase::CompactRollups);
            }
            Phase::CompactRollups => {
                // The rollups' past days fold into one counter (never past the org's date: a run for a
                // future day must not change what today's figures read).
                let fold_before = today.min(ctx.today(org));
                match store.compact_rollups(org, fold_before).await {
                    Ok(folded) if folded > 0 => tracing::info!(org = %org, folded, "compliance rollups compacted"),
                    Ok(_) => {}
                    Err(error) => tracing::error!(org = %org, %error, "compliance rollups not compacted"),
                }
                return Ok(None);
            }
            other => return Err(not_a_phase_of("the daily job", other)),
        }
    }
}

/// A continuation whose phase belongs to another job: a message no run can take.
fn not_a_phase_of(job: &'static str, phase: Phase) -> AppError {
    tracing::error!(job, ?phase, "a continuation with another job's phase");
    AppError::InvalidField { field: "resume.phase", message: "is not a phase of this job" }
}

/// `compliance.changed` for `learners` (a page of the flips index) whom the clock alone made
/// non-compliant by `today` (a due date or a validity passed since their compliance was last
/// announced, however long ago); the learner's item records the announcement, so each change goes out
/// once.
async fn announce_clock_flips(
    ctx: &Ctx<'_>,
    org: &OrgId,
    today: NaiveDate,
    learners: &[domain::LearnerCompliance],
) -> Result<usize, AppError> {
    let announce = crate::outbound::compliance_only(org, ctx.now(org));
    let mut sent = 0;
    for learner in learners.iter().filter(|l| l.clock_flip_on().is_some_and(|day| day <= today)) {
        if ctx.store.announce_clock_flip(org, learner.user_id, today, &announce).await?.is_some() {
            sent += 1;
        }
    }
    Ok(sent)
}

/// One event the daily job owes a learner: the claim that makes it once-only, and the event, made of
/// what every notice says of the learner.
struct Notice {
    claim: String,
    event: NoticeEvent,
}

/// A notice's event of an org at a time, given what every notice says of its learner.
type NoticeEvent = Box<dyn FnOnce(&OrgId, DateTime<Utc>, LearnerNotice) -> DomainEvent + Send>;

/// `due_soon` / `overdue` for an incomplete row in the rates, if `today` calls for one. The date is
/// part of the claim: a learner whose date moves is reminded of the new one.
fn reminder(a: &Assignment, row: &ProgressRow, today: NaiveDate) -> Option<Notice> {
    if !matches!(row.class(&a.units, a.item_count), RowClass::NotStarted | RowClass::InProgress) {
        return None;
    }
    let due_on = row.due_on(a.deadline);
    let reminder = reminder_on(due_on, today)?;
    let days = reminder.days;
    let event: NoticeEvent = if reminder.detail_type == Overdue::DETAIL_TYPE {
        Box::new(move |org, at, notice| outbound::event(org, at, &Overdue { notice, days }))
    } else {
        Box::new(move |org, at, notice| outbound::event(org, at, &DueSoon { notice, days }))
    };
    Some(Notice { claim: format!("{}@{due_on}", reminder.key), event })
}

/// `recertification_due` once the row's next cycle has opened (once per cycle: the claim names the
/// validity it renews).
fn recertification_due(row: &ProgressRow, today: NaiveDate) -> Option<Notice> {
    let (opens, valid_until) = (row.window_opens_on?, row.valid_until?);
    let cycles = row.cycles.len();
    (opens <= today).then(|| Notice {
        claim: format!("recertification_due@{valid_until}"),
        event: Box::new(move |org, at, notice| {
            outbound::event(org, at, &RecertificationDue { notice, window_opens_on: opens, valid_until, cycles })
        }),
    })
}

/// `expired` once the row's completion has lapsed (once per cycle).
fn expired(row: &ProgressRow, today: NaiveDate) -> Option<Notice> {
    let lapsed = row.expires_on().filter(|day| *day < today)?;
    let cycles = row.cycles.len();
    Some(Notice {
        claim: format!("expired@{lapsed}"),
        event: Box::new(move |org, at, notice| {
            outbound::event(org, at, &Expired { notice, valid_until: lapsed, cycles })
        }),
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
    // Statuses are the job's day's: a rerun for a past day says what that day said.
    let mut sent = 0;
    for (row, notice) in owed {
        let learner = LearnerNotice {
            assignment: a.into(),
            // The name and email as projected (an empty one stays empty).
            learner: Learner::projected(row.user_id, users.get(&row.user_id)),
            deadline: a.deadline,
            due_on: row.due_on(a.deadline),
            status: row.status(&a.units, a.item_count, a.deadline, today),
            progress: row.progress(&a.units, a.item_count),
        };
        // The claim and the event commit together: once per claim, and never claimed but unsent.
        let event = (notice.event)(org, now, learner);
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

/// Reconcile for one org, from `at`: hands on stuck worker lanes (`lanes::revive`), checks the head
/// counts and backfills the email index (a bounded
/// share), compares the roster of every active team and org-wide assignment with the membership
/// projection and repairs missing or stale rows (a roster run: a bounded share here, the rest by the
/// roster worker; a stopped run is started again) and then, once the roster is complete, the counters
/// if rows were changed behind the service's back; finishes rule changes an interrupted patch did not
/// bring to every learner; sets the count of mandatory assignments if it drifted. The budget is
/// checked after each assignment. Returns where it stopped, if it did.
async fn reconcile_rosters(
    ctx: &Ctx<'_>,
    org: &OrgId,
    mut at: Resume,
    budget: Budget,
    report: &mut RunReport,
) -> Result<Option<Resume>, AppError> {
    let store = ctx.store;
    let far_future = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX);
    // Every part does at least one step, however small its budget: a run always gets on.
    let mut progressed = false;
    loop {
        if progressed && budget.spent() {
            return Ok(Some(at));
        }
        match at.phase {
            Phase::Headcounts => {
                // A worker lane whose holder never finished, with requests in line, is handed on; a lane
                // that cannot be is logged, and the run goes on.
                match crate::lanes::revive(ctx, org).await {
                    Ok(revived) => report.count += revived,
                    Err(error) => tracing::error!(org = %org, %error, "a worker lane not handed on"),
                }
                report.count += recount_headcounts(ctx, org).await;
                index_user_emails(store, org).await;
                progressed = true;
                at = Resume::at(Phase::Rosters);
            }
            Phase::Rosters => {
                let start = at.start(org)?;
                let page = store.due_assignments_page(org, far_future, start.clone()).await?;
                let mut before = start;
                for listed in page.items {
                    let a = match listed.item {
                        Ok(a) => a,
                        Err(corrupt) => {
                            report.readable::<Assignment>(org, vec![Err(corrupt)]);
                            // What it would count is unknown: the count is left as it is.
                            at.unreadable = true;
                            before = Some(listed.after);
                            continue;
                        }
                    };
                    // Team and org rosters, and an individual one whose catch-up after a reactivation
                    // stopped.
                    let rostered = a.assignee.assignee_type != AssigneeType::User
                        || a.roster_status == domain::RosterStatus::Building;
                    if rostered {
                        if progressed && budget.spent() {
                            // The next part starts at this assignment.
                            return Ok(Some(Resume { page: before.as_ref().map(PageKey::resume_point), ..at }));
                        }
                        progressed = true;
                        report.assignments += 1;
                        // A roster run (a bounded share here, the rest by the roster worker; a run going
                        // on is left to finish, a stopped one is started again), which compares the
                        // counters with the rows once they are in line.
                        report.count += crate::roster_build::reconcile(ctx, org, &a).await?.rows;
                    }
                    before = Some(listed.after);
                }
                at.next_page(page.next, Phase::ComplianceSyncs);
                progressed = true;
            }
            Phase::ComplianceSyncs => {
                // Rule changes (deadline, activity, mandatory flag) whose sync has not moved for a while
                // (an interrupted patch, a request that ended in the failed-events queue), active
                // assignments or not: each started again from its first page, a share here and the rest
                // by the roster worker. A sync that goes on is left to go on.
                let now = ctx.now(org);
                let stalled = |a: &Assignment| {
                    a.compliance_sync_at.is_none_or(|at| ctx.clock.wall() - at > crate::roster_build::STOPPED_AFTER)
                };
                let awaiting = store.assignments_awaiting_compliance_sync(org).await?;
                for a in awaiting.iter().filter(|a| stalled(a)) {
                    if progressed && budget.spent() {
                        return Ok(Some(Resume { page: None, ..at }));
                    }
                    progressed = true;
                    let share = crate::compliance::sync_share(
                        ctx,
                        org,
                        a.id,
                        None,
                        None,
                        crate::compliance::ShareSize::INLINE,
                        now,
                    );
                    match share.await {
                        Ok(share) => {
                            report.count += share.changed.max(1);
                            tracing::warn!(org = %org, assignment_id = %a.id, changed = share.changed, done = share.done,
                                           "learners' compliance sync started again");
                        }
                        Err(error) => {
                            tracing::error!(org = %org, assignment_id = %a.id, %error, "compliance not synced")
                        }
                    }
                }
                progressed = true;
                at.phase = Phase::ObligingCount;
            }
            Phase::ObligingCount => {
                // Counted before this count existed, or drifted: set from a count of the assignments,
                // guarded by the value read before counting (so a create or patch meanwhile wins and
                // the next run looks again).
                let (_, stored) = store.org_rollup(org).await?;
                let obliging = store.count_obliging_assignments(org).await?;
                if !at.unreadable
                    && obliging != stored
                    && store.repair_obliging_assignments(org, stored, obliging).await?
                {
                    report.count += 1;
                    tracing::warn!(org = %org, obliging, stored, "count of mandatory assignments repaired");
                }
                return Ok(None);
            }
            other => return Err(not_a_phase_of("reconcile", other)),
        }
    }
}
