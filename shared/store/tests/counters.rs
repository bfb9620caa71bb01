//! Counters equal a recount of the rows after random sequences of changes (completions, joins and
//! leaves, extensions, exemptions, deadline moves), and the summary's clock-dependent figures
//! (overdue by each learner's own date) equal a brute-force count of the rows' statuses.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::{Activation, Assignment, Exemption, OrgId, ProgressRow, Source, TrackedItem, UserStatus};
use store::Store;
use testkit::Lcg;
use testkit::fixtures::*;
use testkit::stack::{created_org_wide, store_and_org};

async fn rows(store: &Store, org: &OrgId, a: &Assignment) -> Vec<ProgressRow> {
    store.progress_page(org, a.id, 500, None).await.unwrap().items
}

/// What the summary says on `day`, and what counting the rows' statuses says.
fn figures(a: &Assignment, rows: &[ProgressRow], day: NaiveDate) -> ([u64; 4], [u64; 4]) {
    let now: DateTime<Utc> = day.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let s = a.aggregates.summary(a.item_count, a.deadline, now);
    let mut counted = [0; 4];
    for row in rows {
        match row.status(&a.units, a.item_count, a.deadline, now) {
            UserStatus::NotStarted => counted[0] += 1,
            UserStatus::InProgress => counted[1] += 1,
            UserStatus::Completed => counted[2] += 1,
            UserStatus::Overdue => counted[3] += 1,
            _ => {}
        }
    }
    ([s.not_started_users, s.in_progress_users, s.completed_users, s.overdue_users], counted)
}

#[tokio::test]
async fn counters_equal_a_recount_after_random_changes() {
    for seed in [1u64, 7, 2026] {
        let (store, org) = store_and_org().await;
        let (mut a, initial) = created_org_wide(&store, &org, 6).await;
        let users: Vec<_> = initial.iter().map(|r| r.user_id).collect();
        let mut rng = Lcg(seed);
        let t0 = Utc::now();
        let today = t0.date_naive();
        for step in 0..60i64 {
            let at = t0 + Duration::seconds(step);
            let user = users[rng.below(users.len())];
            match rng.below(6) {
                0 | 1 => {
                    let item = TrackedItem::parse_key(&format!("c:sql-injection:{}", rng.below(11))).unwrap();
                    store.record_completion(&org, &a, user, &item, Some(50.0), at).await.unwrap();
                }
                2 => {
                    let joined = rng.below(2) == 0;
                    store.set_membership(&org, &a, user, Source::Organization, joined, at).await.unwrap();
                }
                3 | 4 => {
                    let before = store.progress_row(&org, a.id, user).await.unwrap().unwrap();
                    let mut after = before.clone();
                    if rng.below(2) == 0 {
                        let offset = rng.below(40) as i64 - 10;
                        after.extended_to = (offset > -5).then(|| today + Duration::days(offset));
                    } else {
                        after.exemption = match after.exemption {
                            Some(_) => None,
                            None => Some(Exemption { reason: "on leave".into(), at, by: "user:admin".into() }),
                        };
                    }
                    store.apply_progress(&org, &a, &before, &after).await.unwrap();
                }
                _ => {
                    let mut next = a.clone();
                    next.deadline = today + Duration::days(rng.below(30) as i64 - 5);
                    next.version += 1;
                    let audit = audit("assignment.updated", &a.id.to_string());
                    store.update_assignment(&org, &a, &next, Activation::Unchanged, &audit).await.unwrap();
                }
            }
            a = store.get_assignment(&org, a.id).await.unwrap().unwrap();
        }
        assert!(!store.repair_counters(&org, a.id).await.unwrap(), "seed {seed}: counters differ from a recount");
        let rows = rows(&store, &org, &a).await;
        assert!(rows.iter().any(|r| r.own_due_on().is_some()), "seed {seed} exercised own dates");
        for offset in [-1, 0, 3, 12, 25, 40] {
            let day = today + Duration::days(offset);
            let (summary, counted) = figures(&a, &rows, day);
            assert_eq!(summary, counted, "seed {seed}, {day}: [not started, in progress, completed, overdue]");
        }
    }
}
