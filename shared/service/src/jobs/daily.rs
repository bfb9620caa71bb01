//! The daily job: deadline reminders, recertification notices, and the compliance changes the
//! clock alone makes.

use super::*;

/// How many days back the daily job looks for cycle windows that opened and completions that lapsed,
/// so missed runs are caught up; claims keep any rerun from sending twice.
pub(super) const CATCH_UP_DAYS: u64 = 7;

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
pub(super) async fn send_reminders(
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
    let yesterday = domain::deadline::last_passed(today).unwrap_or(today);
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

/// `compliance.changed` for `learners` (a page of the flips index) whom the clock alone made
/// non-compliant by `today` (a due date or a validity passed since their compliance was last
/// announced, however long ago); the learner's item records the announcement, so each change goes out
/// once.
pub(super) async fn announce_clock_flips(
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
pub(super) struct Notice {
    claim: String,
    event: NoticeEvent,
}

/// A notice's event of an org at a time, given what every notice says of its learner.
pub(super) type NoticeEvent = Box<dyn FnOnce(&OrgId, DateTime<Utc>, LearnerNotice) -> DomainEvent + Send>;

/// `due_soon` / `overdue` for an incomplete row in the rates, if `today` calls for one. The date is
/// part of the claim: a learner whose date moves is reminded of the new one.
pub(super) fn reminder(a: &Assignment, row: &ProgressRow, today: NaiveDate) -> Option<Notice> {
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
pub(super) fn recertification_due(row: &ProgressRow, today: NaiveDate) -> Option<Notice> {
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
pub(super) fn expired(row: &ProgressRow, today: NaiveDate) -> Option<Notice> {
    let lapsed = row.expires_on().filter(|day| domain::deadline::has_passed(*day, today))?;
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
pub(super) struct Assignments(HashMap<AssignmentId, Option<Assignment>>);

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
pub(super) async fn notify_once(
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
            assignment: a.summary(),
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
