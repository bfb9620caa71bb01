use super::*;
use chrono::{TimeZone, Utc};

fn row(class: RowClass, completed_items: u32) -> Option<RowContribution> {
    Some(RowContribution { class, completed_items, due_on: None })
}

#[test]
fn classification_follows_progress() {
    assert_eq!(RowClass::of_progress(0, 11, false), RowClass::NotStarted);
    assert_eq!(RowClass::of_progress(0, 11, true), RowClass::InProgress);
    assert_eq!(RowClass::of_progress(3, 11, false), RowClass::InProgress);
    assert_eq!(RowClass::of_progress(11, 11, true), RowClass::Completed);
    assert_eq!(RowClass::of_progress(12, 11, true), RowClass::Completed);
    // An empty course is never "completed" by default.
    assert_eq!(RowClass::of_progress(0, 0, false), RowClass::NotStarted);
}

#[test]
fn deltas_move_exactly_one_user_between_buckets() {
    let added = Aggregates::delta(None, row(RowClass::NotStarted, 0));
    assert_eq!(added, Aggregates { total_users: 1, not_started_users: 1, ..Default::default() });

    let finished = Aggregates::delta(row(RowClass::InProgress, 10), row(RowClass::Completed, 11));
    assert_eq!(
        finished,
        Aggregates { in_progress_users: -1, completed_users: 1, completed_items_sum: 1, ..Default::default() }
    );

    let removed = Aggregates::delta(row(RowClass::Completed, 11), row(RowClass::Removed, 11));
    assert_eq!(
        removed,
        Aggregates { total_users: -1, completed_users: -1, completed_items_sum: -11, ..Default::default() }
    );
    assert!(Aggregates::delta(row(RowClass::Removed, 4), row(RowClass::Removed, 5)).is_zero());
    assert!(Aggregates::delta(row(RowClass::InProgress, 2), row(RowClass::InProgress, 2)).is_zero());
}

#[test]
fn summary_rates_and_overdue_switch_at_end_of_deadline_day() {
    let agg = Aggregates {
        total_users: 4,
        completed_users: 1,
        in_progress_users: 2,
        not_started_users: 1,
        completed_items_sum: 11 + 5 + 3,
        ..Default::default()
    };
    let deadline = NaiveDate::from_ymd_opt(2026, 4, 15).unwrap();
    let last_moment = Utc.with_ymd_and_hms(2026, 4, 15, 23, 59, 59).unwrap();
    let before = agg.summary(11, deadline, last_moment.date_naive());
    assert_eq!((before.in_progress_users, before.not_started_users, before.overdue_users), (2, 1, 0));
    assert_eq!(before.completion_rate, 0.25);
    assert!((before.average_progress - 19.0 / 44.0).abs() < 1e-12);

    let after = agg.summary(11, deadline, Utc.with_ymd_and_hms(2026, 4, 16, 0, 0, 0).unwrap().date_naive());
    assert_eq!((after.in_progress_users, after.not_started_users, after.overdue_users), (0, 0, 3));
    assert_eq!(after.completed_users, 1);
}

#[test]
fn rows_with_their_own_date_turn_overdue_on_that_date() {
    let deadline = NaiveDate::from_ymd_opt(2026, 4, 15).unwrap();
    let extended = NaiveDate::from_ymd_opt(2026, 4, 20).unwrap();
    let early = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
    let dated = |class, date| Some(RowContribution { class, completed_items: 0, due_on: Some(date) });
    let agg = [
        row(RowClass::NotStarted, 0),
        dated(RowClass::NotStarted, extended),
        dated(RowClass::InProgress, early),
        Some(RowContribution { class: RowClass::Completed, completed_items: 11, due_on: None }),
        Some(RowContribution { class: RowClass::Exempt, completed_items: 0, due_on: Some(early) }),
    ]
    .into_iter()
    .fold(Aggregates::default(), |acc, r| acc + Aggregates::delta(None, r));
    assert_eq!(agg.total_users, 4, "the exempt learner is not counted");
    assert_eq!(agg.dated.total(), 2, "only incomplete rows are counted by date");
    let on = |y, m, d| {
        let s = agg.summary(11, deadline, Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap().date_naive());
        (s.not_started_users, s.in_progress_users, s.overdue_users, s.completed_users)
    };
    assert_eq!(on(2026, 4, 10), (2, 1, 0, 1));
    assert_eq!(on(2026, 4, 11), (2, 0, 1, 1), "the early learner's own date passed");
    assert_eq!(on(2026, 4, 16), (1, 0, 2, 1), "the deadline passed; the extended learner is not overdue");
    assert_eq!(on(2026, 4, 21), (0, 0, 3, 1));

    let moved = Aggregates::delta(dated(RowClass::NotStarted, extended), row(RowClass::NotStarted, 0));
    assert!((agg.clone() + moved.clone()).dated.0.keys().all(|(d, _)| *d == early), "zero entries are dropped");
    assert_eq!(moved.not_started_users, 0);
}

#[test]
fn recertified_learners_expire_on_their_date() {
    let lapses = NaiveDate::from_ymd_opt(2027, 1, 12).unwrap();
    let recertified = Some(RowContribution { class: RowClass::Completed, completed_items: 11, due_on: Some(lapses) });
    let agg = Aggregates::delta(None, recertified) + Aggregates::delta(None, row(RowClass::Completed, 11));
    let on = |y, m, d| {
        let s = agg.summary(
            11,
            NaiveDate::from_ymd_opt(2026, 4, 15).unwrap(),
            Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap().date_naive(),
        );
        (s.completed_users, s.expired_users, s.overdue_users, s.completion_rate)
    };
    assert_eq!(on(2027, 1, 12), (2, 0, 0, 1.0), "valid through its last day");
    assert_eq!(on(2027, 1, 13), (1, 1, 0, 0.5), "then expired, out of the completion rate");
    let json = serde_json::to_value(&agg).unwrap();
    assert_eq!(json["due#2027-01-12#completed"], 1);
    assert_eq!(serde_json::from_value::<Aggregates>(json).unwrap(), agg);
}

#[test]
fn dated_counts_are_stored_as_one_attribute_per_entry() {
    let mut agg = Aggregates { total_users: 1, not_started_users: 1, ..Default::default() };
    agg.dated.0.insert((NaiveDate::from_ymd_opt(2026, 4, 20).unwrap(), RowClass::NotStarted), 1);
    let json = serde_json::to_value(&agg).unwrap();
    assert_eq!(json["due#2026-04-20#not_started"], 1);
    let mut with_other = json.clone();
    with_other["unrelated"] = serde_json::json!("x");
    with_other["due#2026-04-21#in_progress"] = serde_json::json!(0);
    assert_eq!(serde_json::from_value::<Aggregates>(with_other).unwrap(), agg);
}

#[test]
fn empty_assignment_has_zero_rates_not_nan() {
    let s = Aggregates::default().summary(
        0,
        NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
        chrono::DateTime::UNIX_EPOCH.date_naive(),
    );
    assert_eq!((s.completion_rate, s.average_progress), (0.0, 0.0));
}
