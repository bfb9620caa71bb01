//! Maintained compliance equals a brute-force recount from the rows: after random sequences of
//! assignment creates and patches (deadline, mandatory, active), joins and leaves, completions,
//! extensions and exemptions, team moves and clock days, every learner's obligations, the org's and
//! teams' rollups (past days folded by the daily job's compaction), their figures on many days and
//! the learners listing equal what counting the rows' statuses says.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate, Utc};
use domain::{
    Activation, AssigneeType, Assignment, ComplianceRollup, Exemption, LearnerCompliance, Obligation, OrgId,
    ProgressRow, Recurrence, Role, Source, TeamId, TrackedItem, User, UserFacets, UserId, UserStatus,
};
use store::{LearnerFilter, Store};
use testkit::Lcg;
use testkit::fixtures::*;
use testkit::stack::store_and_org;

const TOPICS: [&str; 4] = ["sql-injection", "xss", "xxe", "csrf"];

fn user(id: UserId, team: Option<TeamId>, at: chrono::DateTime<Utc>) -> User {
    User {
        user_id: id,
        name: format!("Learner {id}"),
        email: format!("{id}@example.com"),
        role: Role::Learner,
        team_id: team,
        is_active: true,
        updated_at: at,
        facets: UserFacets::default(),
    }
}

async fn all_rows(store: &Store, org: &OrgId, a: &Assignment) -> Vec<ProgressRow> {
    store.progress_page(org, a.id, 500, None).await.unwrap().items
}

/// The figures of one group of learners on `day`, counted from the rows' statuses alone:
/// [learners with obligations, compliant, with an overdue one, with an expired one].
fn recount(rows: &[(Assignment, ProgressRow)], day: NaiveDate) -> [u64; 4] {
    let now = day.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let mut by_user: BTreeMap<UserId, Vec<UserStatus>> = BTreeMap::new();
    for (a, row) in rows.iter().filter(|(a, _)| a.is_active && a.is_mandatory) {
        let status = row.status(&a.units, a.item_count, a.deadline, now.date_naive());
        if !matches!(status, UserStatus::Removed | UserStatus::Exempt) {
            by_user.entry(row.user_id).or_default().push(status);
        }
    }
    let has = |s: &[UserStatus], x: UserStatus| s.contains(&x);
    let learners = by_user.len() as u64;
    let overdue = by_user.values().filter(|s| has(s, UserStatus::Overdue)).count() as u64;
    let expired = by_user.values().filter(|s| has(s, UserStatus::Expired)).count() as u64;
    let compliant =
        by_user.values().filter(|s| !has(s, UserStatus::Overdue) && !has(s, UserStatus::Expired)).count() as u64;
    [learners, compliant, overdue, expired]
}

fn figures_of(rollup: &ComplianceRollup, day: NaiveDate) -> [u64; 4] {
    let f = rollup.figures(day);
    [f.learners, f.compliant_learners, f.overdue_learners, f.expired_learners]
}

#[tokio::test]
async fn maintained_compliance_equals_a_recount_from_the_rows() {
    for seed in [5u64, 17, 2026] {
        let (store, org) = store_and_org().await;
        let mut rng = Lcg(seed);
        let t0 = Utc::now();
        let today = t0.date_naive();
        let teams = [Some(TeamId(uuid::Uuid::now_v7())), Some(TeamId(uuid::Uuid::now_v7())), None];
        let users: Vec<UserId> = (0..7).map(|_| UserId(uuid::Uuid::now_v7())).collect();
        let mut team_of: HashMap<UserId, Option<TeamId>> = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            let team = teams[i % 3];
            store.put_user(&org, &user(*u, team, t0), chrono::Utc::now()).await.unwrap();
            store.place_learner(&org, *u, t0, &store::announce_nothing).await.unwrap();
            team_of.insert(*u, team);
        }
        let mut assignments: Vec<Assignment> = Vec::new();
        let mut next_item: HashMap<UserId, usize> = HashMap::new();
        let (mut non_compliant_seen, mut expired_seen, mut optional_seen) = (0, 0, false);
        for step in 1..=300i64 {
            let at = t0 + Duration::hours(step * 7);
            let now = Utc::now();
            let pick = if assignments.is_empty() { 9 } else { rng.below(12) };
            match pick {
                0..=5 | 11 => {
                    // Half the completions go to two learners of the recurring assignment.
                    let recurring = assignments.iter().find(|a| a.recurrence.is_some()).filter(|_| rng.below(2) == 0);
                    let a = recurring.unwrap_or(&assignments[rng.below(assignments.len())]);
                    if a.is_active {
                        let u = if recurring.is_some() { users[rng.below(2)] } else { users[rng.below(users.len())] };
                        let topic = a.target.target_id.clone();
                        // A recurring assignment's learners take its challenges in turn, so cycles
                        // complete and lapse.
                        let index = match a.recurrence {
                            Some(_) => {
                                let next = next_item.entry(u).or_insert(0usize);
                                *next += 1;
                                *next % 11
                            }
                            None => rng.below(11),
                        };
                        let item = TrackedItem::parse_key(&format!("c:{topic}:{index}")).unwrap();
                        store
                            .record_completion(&org, a, u, &item, Some(70.0), at, chrono::Utc::now().date_naive())
                            .await
                            .unwrap();
                    }
                }
                6 => {
                    let a = &assignments[rng.below(assignments.len())];
                    let u = users[rng.below(users.len())];
                    let joined = rng.below(3) > 0;
                    store
                        .set_membership(
                            &org,
                            a,
                            u,
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
                7 => {
                    let a = &assignments[rng.below(assignments.len())];
                    let u = users[rng.below(users.len())];
                    if let Some(before) = store.progress_row(&org, a.id, u).await.unwrap() {
                        let mut after = before.clone();
                        if rng.below(3) > 0 {
                            let offset = rng.below(40) as i64 - 15;
                            after.extended_to = (offset > -10).then(|| today + Duration::days(offset));
                        } else {
                            after.exemption = match after.exemption {
                                Some(_) => None,
                                None => Some(Exemption { reason: "on leave".into(), at, by: "user:admin".into() }),
                            };
                        }
                        store
                            .apply_progress(
                                &org,
                                a,
                                &before,
                                &after,
                                chrono::Utc::now().date_naive(),
                                &store::announce_nothing,
                            )
                            .await
                            .unwrap();
                    }
                }
                8 => {
                    let i = rng.below(assignments.len());
                    let before = store.get_assignment(&org, assignments[i].id).await.unwrap().unwrap();
                    let mut after = before.clone();
                    let activation = match rng.below(3) {
                        0 => {
                            after.deadline = today + Duration::days(rng.below(30) as i64 - 10);
                            Activation::Unchanged
                        }
                        1 => {
                            after.is_mandatory = !after.is_mandatory;
                            Activation::Unchanged
                        }
                        _ => {
                            after.is_active = !after.is_active;
                            if after.is_active { Activation::Reactivated } else { Activation::Deactivated }
                        }
                    };
                    after.version += 1;
                    let audit = audit("assignment.updated", &after.id.to_string());
                    store.update_assignment(&org, &before, &after, activation, &audit, &[]).await.unwrap();
                    let stored = store.get_assignment(&org, after.id).await.unwrap().unwrap();
                    store.sync_compliance(&org, &stored, now, &store::announce_nothing).await.unwrap();
                }
                9 if assignments.len() < TOPICS.len() => {
                    let topic = TOPICS[assignments.len()];
                    let mut a = assignment(AssigneeType::Org, org.as_str(), topic, today + Duration::days(3));
                    if assignments.len() == 1 {
                        a.recurrence = Some(Recurrence { every_months: 1, window_days: 7 });
                    }
                    a.is_mandatory = assignments.len() != 2;
                    let rows: Vec<ProgressRow> =
                        users.iter().map(|u| ProgressRow::new(a.id, *u, Source::Organization, t0)).collect();
                    let created =
                        store.create_assignment(&org, &a, &audit("assignment.created", "a"), &rows, &[]).await.unwrap();
                    assignments.push(created);
                }
                _ => {
                    let u = users[rng.below(users.len())];
                    let team = teams[rng.below(3)];
                    store.put_user(&org, &user(u, team, at), chrono::Utc::now()).await.unwrap();
                    store.place_learner(&org, u, now, &store::announce_nothing).await.unwrap();
                    team_of.insert(u, team);
                }
            }
            for a in assignments.iter_mut() {
                *a = store.get_assignment(&org, a.id).await.unwrap().unwrap();
            }
            if step % 20 != 0 {
                continue;
            }

            // Every learner's obligations are what their rows say.
            let mut rows: Vec<(Assignment, ProgressRow)> = Vec::new();
            for a in &assignments {
                rows.extend(all_rows(&store, &org, a).await.into_iter().map(|r| (a.clone(), r)));
            }
            let mut org_rollup = ComplianceRollup::default();
            let mut team_rollups: BTreeMap<TeamId, ComplianceRollup> = BTreeMap::new();
            for u in &users {
                let mut expected = LearnerCompliance::new(*u, team_of[u]);
                for (a, row) in rows.iter().filter(|(_, r)| r.user_id == *u) {
                    expected.set(a.id, Obligation::of(row, a));
                }
                let stored = store.learner_compliance(&org, *u).await.unwrap().unwrap();
                assert_eq!(stored.obligations, expected.obligations, "seed {seed}, step {step}: obligations of {u}");
                assert_eq!(stored.team_id, team_of[u], "seed {seed}, step {step}: team of {u}");
                let counted = ComplianceRollup::of(expected.standing());
                org_rollup.merge(&counted, 1);
                if let Some(team) = team_of[u] {
                    team_rollups.entry(team).or_default().merge(&counted, 1);
                }
            }
            // The rollups are what the learners' standings add up to …
            // (The daily job folds past days into one counter: compared folded, as of today.)
            store.compact_rollups(&org, today).await.unwrap();
            let stored = store.compliance_rollups(&org).await.unwrap();
            assert_eq!(
                stored.org.folded_before(today),
                org_rollup.folded_before(today),
                "seed {seed}, step {step}: org"
            );
            let stored_teams: BTreeMap<_, _> =
                stored.teams.iter().map(|(t, r)| (*t, r.folded_before(today))).filter(|(_, r)| !r.is_zero()).collect();
            let team_rollups: BTreeMap<_, _> = team_rollups
                .into_iter()
                .map(|(t, r)| (t, r.folded_before(today)))
                .filter(|(_, r)| !r.is_zero())
                .collect();
            assert_eq!(stored_teams, team_rollups, "seed {seed}, step {step}: team rollups");
            assert_eq!(stored.org, stored.org.folded_before(today), "seed {seed}, step {step}: nothing left to fold");
            let obliging = assignments.iter().filter(|a| a.is_active && a.is_mandatory).count() as i64;
            assert_eq!(stored.mandatory_assignments, obliging, "seed {seed}, step {step}");
            optional_seen |= assignments.iter().any(|a| !a.is_mandatory);

            // … and on every day say what the rows' statuses say, for the org and each team.
            for offset in [0i64, 2, 5, 12, 25, 40, 70, 100, 130, 160] {
                let day = today + Duration::days(offset);
                let counted = recount(&rows, day);
                assert_eq!(figures_of(&stored.org, day), counted, "seed {seed}, step {step}, {day}: org");
                non_compliant_seen += counted[0] - counted[1];
                expired_seen += counted[3];
                for team in teams.iter().flatten() {
                    let members: Vec<_> =
                        rows.iter().filter(|(_, r)| team_of[&r.user_id] == Some(*team)).cloned().collect();
                    let stored_team = stored_teams.get(team).cloned().unwrap_or_default();
                    assert_eq!(
                        figures_of(&stored_team, day),
                        recount(&members, day),
                        "seed {seed}, step {step}, {day}: team"
                    );
                }
            }
            // The listing of non-compliant learners is the recount's.
            let listed = store
                .compliance_learners_page(
                    &org,
                    &LearnerFilter { team: None, compliant_on: Some((false, today)) },
                    200,
                    None,
                )
                .await
                .unwrap();
            let now = today.and_hms_opt(12, 0, 0).unwrap().and_utc();
            let mut expected: Vec<UserId> = users
                .iter()
                .filter(|u| {
                    rows.iter().any(|(a, r)| {
                        r.user_id == **u
                            && a.is_active
                            && a.is_mandatory
                            && matches!(
                                r.status(&a.units, a.item_count, a.deadline, now.date_naive()),
                                UserStatus::Overdue | UserStatus::Expired
                            )
                    })
                })
                .copied()
                .collect();
            expected.sort();
            let mut got: Vec<UserId> = listed.items.iter().map(|l| l.user_id).collect();
            got.sort();
            assert_eq!(got, expected, "seed {seed}, step {step}: non-compliant learners listed");
        }
        assert!(
            non_compliant_seen > 0 && expired_seen > 0 && optional_seen,
            "seed {seed} exercised every state: {non_compliant_seen} non-compliant, {expired_seen} expired, optional {optional_seen}"
        );
    }
}
