//! The hourly reconcile: head counts and the email index checked against their sources, and rosters
//! brought in line with the directory (the safety net for lost membership events and unfinished
//! re-derivations).

use super::*;

/// Checks the org's head counts (what the dry run answers from) against their indexes and sets those
/// that drifted. A failure is logged and leaves the other counts, orgs and repairs to go on. Returns
/// the number of counts repaired.
pub(super) async fn recount_headcounts(ctx: &Ctx<'_>, org: &OrgId) -> usize {
    let store = ctx.store;
    // Teams with a count, and the directory's teams (one whose members were all written before
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
pub(super) const EMAIL_INDEX_USERS_PER_RUN: usize = 5_000;

/// The email index's backfill for one org, a bounded share per run, resumed from where it stopped
/// (the index itself is written with every user write since it exists). Errors are logged: the next
/// run goes on. Returns the users read.
pub(super) async fn index_user_emails(store: &store::Store, org: &OrgId) -> usize {
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
/// share), compares the roster of every active team and org-wide assignment with the
/// directory and repairs missing or stale rows (a roster run: a bounded share here, the rest by the
/// roster worker; a stopped run is started again) and then, once the roster is complete, the counters
/// if rows were changed behind the service's back; finishes rule changes an interrupted patch did not
/// bring to every learner; sets the count of mandatory assignments if it drifted. The budget is
/// checked after each assignment. Returns where it stopped, if it did.
pub(super) async fn reconcile_rosters(
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
                        report.count += crate::roster::reconcile(ctx, org, &a).await?.rows;
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
                    a.compliance_sync_at.is_none_or(|at| ctx.clock.wall() - at > crate::roster::STOPPED_AFTER)
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
