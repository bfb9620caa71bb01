//! Counters equal a recount of the rows after random sequences of changes (completions, joins and
//! leaves, extensions, exemptions, deadline moves), and the summary's clock-dependent figures
//! (overdue by each learner's own date) equal a brute-force count of the rows' statuses.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::{Activation, Assignment, Exemption, OrgId, ProgressRow, Recurrence, Source, TrackedItem, UserStatus};
use store::Store;
use testkit::Lcg;
use testkit::fixtures::*;
use testkit::stack::{created_org_wide, store_and_org};

async fn rows(store: &Store, org: &OrgId, a: &Assignment) -> Vec<ProgressRow> {
    store.progress_page(org, a.id, 500, None).await.unwrap().items
}

/// What the summary says on `day`, and what counting the rows' statuses says.
fn figures(a: &Assignment, rows: &[ProgressRow], day: NaiveDate) -> ([u64; 5], [u64; 5]) {
    let now: DateTime<Utc> = day.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let s = a.aggregates.summary(a.item_count, a.deadline, now.date_naive());
    let mut counted = [0; 5];
    for row in rows {
        match row.status(&a.units, a.item_count, a.deadline, now.date_naive()) {
            UserStatus::NotStarted => counted[0] += 1,
            UserStatus::InProgress => counted[1] += 1,
            UserStatus::Completed => counted[2] += 1,
            UserStatus::Overdue => counted[3] += 1,
            UserStatus::Expired => counted[4] += 1,
            _ => {}
        }
    }
    ([s.not_started_users, s.in_progress_users, s.completed_users, s.overdue_users, s.expired_users], counted)
}

#[tokio::test]
async fn counters_equal_a_recount_after_random_changes() {
    let monthly = Recurrence { every_months: 1, window_days: 7 };
    for (seed, recurrence) in [(1u64, None), (7, None), (2026, None), (3, Some(monthly)), (11, Some(monthly))] {
        let (store, org) = store_and_org().await;
        let (mut a, users) = match recurrence {
            None => {
                let (a, rows) = created_org_wide(&store, &org, 6).await;
                (a, rows.iter().map(|r| r.user_id).collect::<Vec<_>>())
            }
            Some(r) => {
                let mut a = org_wide(&org, in_days(10));
                a.recurrence = Some(r);
                let rows = roster(&a, 3);
                let a = store.create_assignment(&org, &a, &audit("assignment.created", "a"), &rows, &[]).await.unwrap();
                (a, rows.iter().map(|r| r.user_id).collect())
            }
        };
        let mut rng = Lcg(seed);
        let t0 = Utc::now();
        let today = t0.date_naive();
        let mut next_item = std::collections::HashMap::new();
        let (mut own_dates_seen, mut cycles_seen, mut expired_seen) = (false, false, 0);
        let steps = if recurrence.is_some() { 300 } else { 60 };
        for step in 1..=steps {
            // Recurring runs spread completions over months and take each learner's challenges in
            // turn, so cycles complete, open and lapse.
            let at = if recurrence.is_some() { t0 + Duration::hours(step * 7) } else { t0 + Duration::seconds(step) };
            let user = users[rng.below(users.len())];
            match rng.below(8) {
                0..=3 => {
                    let index = match recurrence {
                        Some(_) => {
                            let next = next_item.entry(user).or_insert(0usize);
                            *next += 1;
                            *next % 11
                        }
                        None => rng.below(11),
                    };
                    let item = TrackedItem::parse_key(&format!("c:sql-injection:{index}")).unwrap();
                    store
                        .record_completion(&org, &a, user, &item, Some(50.0), at, chrono::Utc::now().date_naive())
                        .await
                        .unwrap();
                }
                4 => {
                    let joined = rng.below(3) > 0;
                    store
                        .set_membership(
                            &org,
                            &a,
                            user,
                            Source::Organization,
                            joined,
                            at,
                            at,
                            chrono::Utc::now().date_naive(),
                            &store::announce_nothing,
                        )
                        .await
                        .unwrap();
                }
                5 | 6 => {
                    let before = store.progress_row(&org, a.id, user).await.unwrap().unwrap();
                    let mut after = before.clone();
                    if rng.below(3) > 0 {
                        let offset = rng.below(40) as i64 - 10;
                        after.extended_to = (offset > -5).then(|| today + Duration::days(offset));
                    } else {
                        after.exemption = match after.exemption {
                            Some(_) => None,
                            None => Some(Exemption { reason: "on leave".into(), at, by: "user:admin".into() }),
                        };
                    }
                    store
                        .apply_progress(
                            &org,
                            &a,
                            &before,
                            &after,
                            chrono::Utc::now().date_naive(),
                            &store::announce_nothing,
                        )
                        .await
                        .unwrap();
                }
                _ => {
                    let mut next = a.clone();
                    next.deadline = today + Duration::days(rng.below(30) as i64 - 5);
                    next.version += 1;
                    let audit = audit("assignment.updated", &a.id.to_string());
                    store.update_assignment(&org, &a, &next, Activation::Unchanged, &audit, &[]).await.unwrap();
                }
            }
            a = store.get_assignment(&org, a.id).await.unwrap().unwrap();
            if step % 20 != 0 {
                continue;
            }
            assert!(!store.repair_counters(&org, a.id).await.unwrap(), "seed {seed}, step {step}: counters differ");
            let rows = rows(&store, &org, &a).await;
            own_dates_seen |= rows.iter().any(|r| r.own_due_on().is_some());
            cycles_seen |= rows.iter().any(|r| r.cycles.len() > 1);
            for offset in [-1, 0, 3, 12, 25, 40, 70, 100, 130] {
                let day = today + Duration::days(offset);
                let (summary, counted) = figures(&a, &rows, day);
                assert_eq!(
                    summary, counted,
                    "seed {seed}, step {step}, {day}: [not started, in progress, completed, overdue, expired]"
                );
                expired_seen += counted[4];
            }
        }
        assert!(own_dates_seen, "seed {seed} exercised own dates");
        if recurrence.is_some() {
            assert!(cycles_seen && expired_seen > 0, "seed {seed} exercised recertification and expiry");
        }
    }
}

/// The recount writes only if no counter moved while it read the rows: every counter move increments
/// `countersRev`, and counters that drifted behind the service's back (no revision change) are
/// repaired once.
#[tokio::test]
async fn every_counter_move_increments_the_revision_the_recount_is_guarded_by() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (store, org) = store_and_org().await;
    let (a, rows) = created_org_wide(&store, &org, 3).await;
    let client = testkit::stack::raw_client().await;
    let key = |c: aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder| {
        c.table_name(store.table_name())
            .key("PK", AttributeValue::S(format!("ORG#{org}#ASG#{}", a.id)))
            .key("SK", AttributeValue::S("A".into()))
            .consistent_read(true)
    };
    let revision = || async {
        let item = key(client.get_item()).send().await.unwrap().item.unwrap();
        item.get("countersRev").map(|v| v.as_n().unwrap().parse::<u64>().unwrap()).unwrap_or(0)
    };
    let created = revision().await;
    assert!(created >= 1, "the first rows moved the counters: {created}");
    let done =
        domain::Completion { item: TrackedItem::parse_key("c:sql-injection:0").unwrap(), score: None, at: Utc::now() };
    store
        .record_completions(
            &org,
            &a,
            rows[0].user_id,
            &[done],
            chrono::Utc::now().date_naive(),
            &store::announce_nothing,
        )
        .await
        .unwrap();
    assert_eq!(revision().await, created + 1, "a completion moved them");

    // Drift behind the service's back: the counters change, the revision does not.
    client
        .update_item()
        .table_name(store.table_name())
        .key("PK", AttributeValue::S(format!("ORG#{org}#ASG#{}", a.id)))
        .key("SK", AttributeValue::S("A".into()))
        .update_expression("ADD totalUsers :five")
        .expression_attribute_values(":five", AttributeValue::N("5".into()))
        .send()
        .await
        .unwrap();
    assert!(store.repair_counters(&org, a.id).await.unwrap(), "repaired");
    assert!(!store.repair_counters(&org, a.id).await.unwrap(), "nothing left to repair");
    assert_eq!(store.get_assignment(&org, a.id).await.unwrap().unwrap().aggregates.total_users, 3);
}

/// One learner's date moved 1,000 times, each to a date no row had: the assignment item keeps one date
/// counter (the current date's), not one per date it ever counted, and its size stays where it began.
#[tokio::test]
async fn a_thousand_moves_to_new_dates_leave_the_assignment_item_its_size() {
    let (store, org) = store_and_org().await;
    let (a, rows) = created_org_wide(&store, &org, 1).await;
    let user = rows[0].user_id;
    let today = Utc::now().date_naive();
    let size = || async {
        let item = testkit::stack::raw_client()
            .await
            .get_item()
            .table_name(store.table_name())
            .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("ORG#{org}#ASG#{}", a.id)))
            .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("A".into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        let dates = item.keys().filter(|name| name.starts_with(domain::aggregates::DATED_PREFIX)).count();
        // Names and values as DynamoDB sizes them (numbers and strings: about their text).
        let bytes: usize = item.iter().map(|(name, value)| name.len() + format!("{value:?}").len()).sum();
        (dates, bytes)
    };
    let mut first = None;
    for day in 1..=1_000 {
        let before = store.progress_row(&org, a.id, user).await.unwrap().unwrap();
        let mut after = before.clone();
        after.extended_to = Some(today + Duration::days(day));
        store.apply_progress(&org, &a, &before, &after, today, &store::announce_nothing).await.unwrap();
        if day == 1 {
            first = Some(size().await);
        }
    }
    let (first_dates, first_bytes) = first.unwrap();
    let (dates, bytes) = size().await;
    assert_eq!((first_dates, dates), (1, 1), "one date counter, the learner's current date");
    assert!(bytes <= first_bytes + 16, "{first_bytes} bytes after one move, {bytes} after 1,000");
    let stored = store.get_assignment(&org, a.id).await.unwrap().unwrap().aggregates;
    assert_eq!(stored.dated.0.keys().map(|(date, _)| *date).collect::<Vec<_>>(), vec![today + Duration::days(1_000)]);
}
