use super::*;
use crate::ids::Slug;
use crate::recurrence::Recurrence;
use chrono::TimeZone;

fn units() -> Vec<TrackedUnit> {
    vec![
        TrackedUnit::Topic { topic_id: Slug::parse("sql-injection").unwrap(), challenges: 2 },
        TrackedUnit::Scenario { scenario_id: Slug::parse("idor").unwrap() },
    ]
}

fn row_with(keys: &[(&str, Option<f64>)]) -> ProgressRow {
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let mut row = ProgressRow::new(AssignmentId::new_v7(), UserId(uuid::Uuid::nil()), Source::Individual, at);
    for (key, score) in keys {
        row.completed.insert((*key).to_owned(), CompletedItem { score: *score, completed_at: at });
    }
    if !keys.is_empty() {
        row.started_at = Some(at);
    }
    row
}

#[test]
fn deadline_day_counts_until_midnight_utc() {
    let deadline = NaiveDate::from_ymd_opt(2026, 4, 15).unwrap();
    assert!(!crate::deadline::has_passed(deadline, Utc.with_ymd_and_hms(2026, 4, 15, 0, 0, 0).unwrap().date_naive()));
    assert!(!crate::deadline::has_passed(
        deadline,
        Utc.with_ymd_and_hms(2026, 4, 15, 23, 59, 59).unwrap().date_naive()
    ));
    assert!(crate::deadline::has_passed(deadline, Utc.with_ymd_and_hms(2026, 4, 16, 0, 0, 0).unwrap().date_naive()));
}

#[test]
fn statuses_follow_progress_deadline_and_removal() {
    let deadline = NaiveDate::from_ymd_opt(2026, 4, 15).unwrap();
    let before = Utc.with_ymd_and_hms(2026, 4, 10, 0, 0, 0).unwrap();
    let after = Utc.with_ymd_and_hms(2026, 4, 16, 0, 0, 0).unwrap();
    let u = units();

    let fresh = row_with(&[]);
    assert_eq!(fresh.status(&u, 3, deadline, before.date_naive()), UserStatus::NotStarted);
    assert_eq!(fresh.status(&u, 3, deadline, after.date_naive()), UserStatus::Overdue);

    let partial = row_with(&[("c:sql-injection:0", Some(80.0))]);
    assert_eq!(partial.status(&u, 3, deadline, before.date_naive()), UserStatus::InProgress);
    assert_eq!(partial.status(&u, 3, deadline, after.date_naive()), UserStatus::Overdue);

    let done = row_with(&[("c:sql-injection:0", None), ("c:sql-injection:1", None), ("s:idor", None)]);
    assert_eq!(
        done.status(&u, 3, deadline, after.date_naive()),
        UserStatus::Completed,
        "completion beats the deadline"
    );

    let mut gone = done.clone();
    gone.removed_at = Some(before);
    assert_eq!(gone.status(&u, 3, deadline, before.date_naive()), UserStatus::Removed);

    let mut extended = partial.clone();
    extended.extended_to = Some(NaiveDate::from_ymd_opt(2026, 4, 20).unwrap());
    assert_eq!(extended.status(&u, 3, deadline, after.date_naive()), UserStatus::InProgress, "their own date counts");
    assert_eq!(extended.contribution(&u, 3).due_on, extended.extended_to);
    extended.relative_due_on = Some(NaiveDate::from_ymd_opt(2026, 4, 12).unwrap());
    assert_eq!(extended.due_on(deadline), NaiveDate::from_ymd_opt(2026, 4, 20).unwrap(), "an extension wins");

    let mut exempt = partial.clone();
    exempt.exemption = Some(Exemption { reason: "on leave".into(), at: before, by: "user:x".into() });
    assert_eq!(exempt.status(&u, 3, deadline, after.date_naive()), UserStatus::Exempt);
    assert_eq!(exempt.contribution(&u, 3).due_on, None);
    assert_eq!(done.contribution(&u, 3).due_on, None, "complete rows are not counted by date");
}

#[test]
fn overrides_extend_exempt_and_repeat_as_no_ops() {
    let now = Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).unwrap();
    let row = row_with(&[]);
    let date = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    let extend = LearnerPatch { due_on: Some(Some(date)), exempt: None };
    let extended = row.overridden(&extend, "user:a", now).unwrap();
    assert_eq!(extended.extended_to, Some(date));
    assert!(extended.overridden(&extend, "user:a", now).is_none(), "a repeat changes nothing");

    let exempt = LearnerPatch { due_on: None, exempt: Some(Some("joined after the audit".into())) };
    let exempted = extended.overridden(&exempt, "user:a", now).unwrap();
    assert_eq!(exempted.exemption.as_ref().map(|e| (e.by.as_str(), e.at)), Some(("user:a", now)));
    let later = now + chrono::Duration::hours(1);
    assert!(exempted.overridden(&exempt, "user:b", later).is_none(), "same reason: kept as first made");

    let back = LearnerPatch { due_on: Some(None), exempt: Some(None) };
    let restored = exempted.overridden(&back, "user:a", later).unwrap();
    assert_eq!((restored.extended_to, restored.exemption), (None, None));
    let snapshot = exempted.override_snapshot(NaiveDate::from_ymd_opt(2026, 4, 15).unwrap());
    assert_eq!((snapshot["dueOn"].as_str(), snapshot["exempt"].as_bool()), (Some("2026-05-01"), Some(true)));
}

#[test]
fn a_recertified_row_is_completed_until_it_lapses_then_expired() {
    let topic = vec![TrackedUnit::Topic { topic_id: Slug::parse("sql-injection").unwrap(), challenges: 2 }];
    let yearly = Recurrence { every_months: 12, window_days: 30 };
    let t = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap();
    let deadline = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
    let mut row = row_with(&[]);
    for (i, at) in [(0, t(2026, 1, 10)), (1, t(2026, 1, 12))] {
        let item = TrackedItem::parse_key(&format!("c:sql-injection:{i}")).unwrap();
        assert!(row.record_recurring_completion(&item, Some(70.0), at, &topic, 2, yearly));
    }
    let lapses = NaiveDate::from_ymd_opt(2027, 1, 12).unwrap();
    assert_eq!((row.cycles.len(), row.valid_until, row.completed_at), (1, Some(lapses), Some(t(2026, 1, 12))));
    assert_eq!(row.window_opens_on, NaiveDate::from_ymd_opt(2026, 12, 13));
    assert_eq!(row.due_on(deadline), lapses, "a recertified learner is due when their completion lapses");
    let contribution = row.contribution(&topic, 2);
    assert_eq!(
        (contribution.class, contribution.due_on, contribution.completed_items),
        (RowClass::Completed, Some(lapses), 2)
    );
    assert_eq!(row.status(&topic, 2, deadline, t(2027, 1, 12).date_naive()), UserStatus::Completed);
    assert_eq!(row.status(&topic, 2, deadline, t(2027, 1, 13).date_naive()), UserStatus::Expired);

    // One item of the new cycle: still expired, with the new cycle's progress.
    let item = TrackedItem::parse_key("c:sql-injection:0").unwrap();
    row.record_recurring_completion(&item, None, t(2027, 2, 1), &topic, 2, yearly);
    assert_eq!(
        (row.status(&topic, 2, deadline, t(2027, 2, 2).date_naive()), row.completed_tracked(&topic)),
        (UserStatus::Expired, 1)
    );
    // An extension can only move the lapse later.
    row.extended_to = NaiveDate::from_ymd_opt(2026, 6, 1);
    assert_eq!(row.expires_on(), Some(lapses));
    row.extended_to = NaiveDate::from_ymd_opt(2027, 3, 1);
    assert_eq!(row.status(&topic, 2, deadline, t(2027, 2, 2).date_naive()), UserStatus::Completed);

    // No longer recurring: completed once and for all; the cycles stay as history.
    row.refresh(&topic, 2, None);
    assert_eq!((row.valid_until, row.cycles.len()), (None, 1));
    assert_eq!(row.status(&topic, 2, deadline, t(2030, 1, 1).date_naive()), UserStatus::Completed);
}

#[test]
fn only_currently_tracked_items_count() {
    let u = units();
    // index 5 is beyond the topic's 2 challenges; another topic is not tracked at all.
    let row = row_with(&[("c:sql-injection:0", Some(50.0)), ("c:sql-injection:5", Some(0.0)), ("c:xxe:0", None)]);
    assert_eq!(row.completed_tracked(&u), 1);
    assert!((row.progress(&u, 3) - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(row.average_score(&u), Some(50.0));
    assert_eq!(row_with(&[]).average_score(&u), None);
}

#[test]
fn completions_are_idempotent_order_free_and_keep_the_best_score() {
    let u = units();
    let t = |h| Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap();
    let events = [
        (TrackedItem::parse_key("c:sql-injection:0").unwrap(), Some(40.0), t(9)),
        (TrackedItem::parse_key("c:sql-injection:0").unwrap(), Some(90.0), t(11)),
        (TrackedItem::parse_key("s:idor").unwrap(), None, t(10)),
        (TrackedItem::parse_key("c:sql-injection:1").unwrap(), Some(70.0), t(12)),
        (TrackedItem::parse_key("c:xxe:0").unwrap(), Some(10.0), t(8)),
    ];
    let assignment_id = AssignmentId::new_v7();
    let apply = |order: &[usize]| {
        let mut row = row_with(&[]);
        row.assignment_id = assignment_id;
        for &i in order {
            let (item, score, at) = &events[i];
            row.record_completion(item, *score, *at, &u, 3);
        }
        row
    };
    let forward = apply(&[0, 1, 2, 3, 4]);
    for order in [[4, 3, 2, 1, 0], [1, 3, 0, 4, 2], [2, 0, 4, 1, 3]] {
        assert_eq!(apply(&order), forward, "{order:?}");
    }
    let twice = apply(&[0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    assert_eq!(twice, forward, "duplicates change nothing");

    let sql0 = &forward.completed["c:sql-injection:0"];
    assert_eq!((sql0.score, sql0.completed_at), (Some(90.0), t(9)), "best score, first completion");
    assert!(!forward.completed.contains_key("c:xxe:0"), "untracked items are ignored");
    assert_eq!(forward.started_at, Some(t(9)));
    assert_eq!(forward.completed_at, Some(t(12)), "when the last item was first done");
    assert_eq!(forward.class(&u, 3), RowClass::Completed);

    let mut partial = row_with(&[]);
    assert!(partial.record_completion(&events[2].0, None, t(10), &u, 3));
    assert!(!partial.record_completion(&events[2].0, None, t(10), &u, 3), "a duplicate is not a change");
    assert_eq!((partial.completed_at, partial.class(&u, 3)), (None, RowClass::InProgress));
}

#[test]
fn membership_changes_are_order_safe_and_keep_progress() {
    let u = units();
    let t = |h| Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap();
    let mut row = row_with(&[("c:sql-injection:0", Some(50.0))]);
    row.membership_at = t(8);

    assert!(row.leave(t(10)));
    assert_eq!((row.class(&u, 3), row.removed_at), (RowClass::Removed, Some(t(10))));
    assert!(!row.leave(t(10)), "a repeated event changes nothing");
    assert!(!row.join(t(9)), "an older join arriving late does not undo the leave");
    assert_eq!(row.class(&u, 3), RowClass::Removed);

    assert!(row.join(t(11)), "a returning learner comes back");
    assert_eq!(row.class(&u, 3), RowClass::InProgress);
    assert_eq!(row.completed.len(), 1, "with their old progress");

    // Every delivery order of the same three events ends in the same row.
    let events: [(bool, u32); 3] = [(false, 10), (true, 11), (false, 12)];
    let run = |order: [usize; 3]| {
        let mut r = row_with(&[]);
        r.assignment_id = row.assignment_id;
        r.membership_at = t(8);
        for i in order {
            let (joins, hour) = events[i];
            if joins {
                r.join(t(hour))
            } else {
                r.leave(t(hour))
            };
        }
        r
    };
    let ordered = run([0, 1, 2]);
    for order in [[2, 1, 0], [1, 0, 2], [1, 2, 0], [0, 2, 1], [2, 0, 1]] {
        assert_eq!(run(order), ordered, "{order:?}");
    }
    assert_eq!(ordered.removed_at, Some(t(12)));
}

#[test]
fn source_serialises_with_a_kind_tag() {
    let team = Source::Team { team_id: TeamId(uuid::Uuid::nil()) };
    let json = serde_json::to_value(&team).unwrap();
    assert_eq!(json["kind"], "team");
    assert_eq!(serde_json::from_value::<Source>(json).unwrap(), team);
}

/// A row whose membership time (and every other time) was stored ahead of the clock: a real leave
/// after it is ignored until the row forgets them; then it applies, and the completion stays, dated
/// when the service knew of it at the latest.
#[test]
fn a_row_forgets_times_ahead_of_the_clock_and_a_real_change_then_applies() {
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
    let far = Utc.with_ymd_and_hms(2999, 1, 1, 0, 0, 0).unwrap();
    let mut row = ProgressRow::new(AssignmentId::new_v7(), UserId(uuid::Uuid::nil()), Source::Individual, far);
    row.completed.insert("scenario:idor".into(), CompletedItem { score: Some(90.0), completed_at: far });
    (row.started_at, row.completed_at) = (Some(far), Some(far));
    assert!(!row.clone().leave(now), "frozen by the stored time");
    assert!(row.forget_future(now));
    assert_eq!(row.membership_at, DateTime::UNIX_EPOCH);
    assert_eq!((row.added_at, row.started_at, row.completed_at), (now, Some(now), Some(now)));
    assert_eq!(row.completed["scenario:idor"].completed_at, now);
    assert!(!row.forget_future(now), "nothing left ahead");
    assert!(row.leave(now - chrono::Duration::minutes(1)));
    assert!(row.join(now));

    // A recurring row's completions follow its log, which is left as it is: the next derivation would
    // put them back, and every reconcile would find the row stale again.
    let mut recurring = ProgressRow::new(AssignmentId::new_v7(), UserId(uuid::Uuid::nil()), Source::Individual, now);
    let done = CompletedItem { score: Some(90.0), completed_at: far };
    recurring.completed.insert("scenario:idor".into(), done.clone());
    recurring.log.insert("scenario:idor".into(), vec![done]);
    recurring.completed_at = Some(far);
    recurring.membership_at = far;
    assert!(recurring.forget_future(now));
    assert_eq!((recurring.membership_at, recurring.completed_at), (DateTime::UNIX_EPOCH, Some(far)));
    assert_eq!(recurring.completed["scenario:idor"].completed_at, far);
}
