use super::*;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn noon(s: &str) -> DateTime<Utc> {
    day(s).and_hms_opt(12, 0, 0).unwrap().and_utc()
}

fn due(on: &str) -> Obligation {
    Obligation { completed: false, due_on: Some(day(on)), valid_until: None, completed_at: None }
}

fn done(valid_until: Option<&str>) -> Obligation {
    Obligation {
        completed: true,
        due_on: None,
        valid_until: valid_until.map(day),
        completed_at: Some(noon("2026-01-10")),
    }
}

fn learner(obligations: &[Obligation]) -> LearnerCompliance {
    let mut l = LearnerCompliance::new(UserId(uuid::Uuid::now_v7()), None);
    for o in obligations {
        l.set(AssignmentId::new_v7(), Some(*o));
    }
    l
}

#[test]
fn a_learner_is_compliant_until_the_day_after_a_due_date() {
    let l = learner(&[due("2026-04-15"), done(None)]);
    assert!(l.compliant_on(day("2026-04-15")));
    assert!(!l.compliant_on(day("2026-04-16")));
    let f = l.figures(noon("2026-04-20"));
    assert_eq!((f.mandatory_assigned, f.completed, f.overdue, f.due_soon, f.expired), (2, 1, 1, 0, 0));
    assert_eq!(f.non_compliant_since, Some(day("2026-04-16")));
    assert_eq!(f.last_completed_at, Some(noon("2026-01-10")));
    let before = l.figures(noon("2026-03-20"));
    assert!(before.compliant && before.non_compliant_since.is_none());
    assert_eq!(before.due_soon, 1);
}

#[test]
fn an_expired_recertification_makes_a_learner_non_compliant() {
    let l = learner(&[done(Some("2026-06-30"))]);
    assert!(l.compliant_on(day("2026-06-30")));
    let f = l.figures(noon("2026-07-01"));
    assert_eq!((f.completed, f.expired, f.compliant), (0, 1, false));
    assert!(LearnerCompliance::new(l.user_id, None).figures(noon("2026-07-01")).compliant);
}

#[test]
fn rollups_count_learners_by_the_day_their_standing_changes() {
    let learners = [
        learner(&[due("2026-04-15")]),
        learner(&[due("2026-05-01"), done(Some("2026-04-20"))]),
        learner(&[done(None)]),
    ];
    let rollup = learners.iter().fold(ComplianceRollup::default(), |acc, l| acc + ComplianceRollup::of(l.standing()));
    for today in ["2026-04-10", "2026-04-16", "2026-04-21", "2026-05-02"] {
        let figures = rollup.figures(day(today));
        let compliant = learners.iter().filter(|l| l.compliant_on(day(today))).count() as u64;
        assert_eq!((figures.learners, figures.compliant_learners), (3, compliant), "{today}");
    }
    let f = rollup.figures(day("2026-05-02"));
    assert_eq!((f.overdue_learners, f.expired_learners), (2, 1));
    // Stored as top-level attributes and read back from among the item's others.
    let mut item = serde_json::to_value(&rollup).unwrap();
    item["PK"] = "x".into();
    assert_eq!(item["noncompliant#2026-04-16"], 1);
    assert_eq!(serde_json::from_value::<ComplianceRollup>(item).unwrap(), rollup);
}

#[test]
fn a_team_move_leaves_one_rollup_and_enters_the_other() {
    let (a, b) = (TeamId(uuid::Uuid::now_v7()), TeamId(uuid::Uuid::now_v7()));
    let mut before = learner(&[due("2026-04-15")]);
    before.team_id = Some(a);
    let mut after = before.clone();
    after.team_id = Some(b);
    let (org, teams) = rollup_deltas(&before, &after);
    assert!(org.is_zero());
    assert_eq!(teams.len(), 2);
    assert_eq!((teams[0].0, teams[0].1.learners, teams[1].0, teams[1].1.learners), (a, -1, b, 1));
    // A change of standing within one team moves that team and the org alike.
    after.team_id = Some(a);
    after.set(*after.obligations.keys().next().unwrap(), Some(done(None)));
    let (org, teams) = rollup_deltas(&before, &after);
    assert_eq!(teams, vec![(a, org.clone())]);
    assert_eq!(org.non_compliant_from.get(&day("2026-04-16")), Some(&-1));
}

#[test]
fn each_change_of_compliance_is_announced_once() {
    let mut l = learner(&[due("2026-04-15")]);
    assert_eq!(l.announce(day("2026-04-01")), None, "a learner starts compliant");
    assert_eq!(l.clock_flip_on(), Some(day("2026-04-16")));
    let flip = l.announce(day("2026-04-20")).unwrap();
    assert_eq!((flip.compliant, flip.since), (false, Some(day("2026-04-16"))));
    assert_eq!(l.announce(day("2026-04-21")), None);
    assert_eq!(l.clock_flip_on(), None, "announced: nothing left for the daily job");
    l.set(*l.obligations.keys().next().unwrap(), Some(done(None)));
    assert_eq!(l.announce(day("2026-04-22")).map(|t| (t.compliant, t.since)), Some((true, None)));
}

#[test]
fn folding_past_days_keeps_every_figure_from_that_day_on() {
    let learners = [learner(&[due("2026-03-01")]), learner(&[due("2026-03-20")]), learner(&[done(Some("2026-03-10"))])];
    let rollup = learners.iter().fold(ComplianceRollup::default(), |acc, l| acc + ComplianceRollup::of(l.standing()));
    let folded = rollup.folded_before(day("2026-03-15"));
    assert_eq!(folded.non_compliant_from.get(&PAST), Some(&2), "two learners fell out before the 15th");
    assert_eq!(folded.folded_before(day("2026-03-15")), folded, "folding is idempotent");
    for today in ["2026-03-15", "2026-03-21", "2026-06-01"] {
        assert_eq!(folded.figures(day(today)), rollup.figures(day(today)), "{today}");
    }
    let name = "noncompliant#2026-03-02";
    assert_eq!(ComplianceRollup::past_attribute(name, day("2026-03-15")), Some("noncompliant#"));
    assert_eq!(ComplianceRollup::past_attribute(name, day("2026-03-02")), None, "not before the day");
    assert_eq!(ComplianceRollup::past_attribute(&ComplianceRollup::past_name("overdue#"), day("2026-03-15")), None);
}
