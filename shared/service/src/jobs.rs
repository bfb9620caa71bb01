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

/// A continuation whose phase belongs to another job: a message no run can take.
fn not_a_phase_of(job: &'static str, phase: Phase) -> AppError {
    tracing::error!(job, ?phase, "a continuation with another job's phase");
    AppError::InvalidField { field: "resume.phase", message: "is not a phase of this job" }
}

mod daily;
mod reconcile;

use daily::*;
use reconcile::*;
