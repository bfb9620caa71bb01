use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::assignment::NewAssignment;
use crate::assignment::{Assignee, Assignment, Target};
use crate::catalog::{ResolvedTarget, TrackedUnit};
use crate::progress::{Exemption, Source};
use crate::recurrence::Recurrence;
use crate::vocabulary::{AssigneeType, ContentArea, Role, TargetType};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
}

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

fn assignment(recurring: bool) -> Assignment {
    NewAssignment {
        target: Target {
            content_area: ContentArea::Practice,
            target_type: TargetType::Topic,
            target_id: "sql-injection".into(),
        },
        assignee: Assignee { assignee_type: AssigneeType::Org, assignee_id: "acme".into() },
        deadline: day(4, 15),
        due_in_days: recurring.then_some(30),
        new_starters_only: recurring,
        recurrence: recurring.then_some(Recurrence { every_months: 12, window_days: 30 }),
        is_mandatory: true,
        note: Some("PCI 6.2.2".into()),
    }
    .into_assignment(
        AssignmentId::new_v7(),
        ResolvedTarget {
            title: "SQL Injection".into(),
            path: "Practice / Web".into(),
            units: vec![TrackedUnit::Topic { topic_id: crate::Slug::parse("sql-injection").unwrap(), challenges: 11 }],
        },
        "Acme".into(),
        "apikey:k1".into(),
        at(),
    )
}

fn user(name: &str) -> User {
    User {
        user_id: UserId(Uuid::now_v7()),
        name: name.into(),
        email: if name.is_empty() { String::new() } else { format!("{name}@example.com") },
        role: Role::Learner,
        team_id: None,
        is_active: true,
        updated_at: at(),
        facets: Default::default(),
    }
}

fn org() -> OrgId {
    OrgId::parse("acme").unwrap()
}

/// The common fields as the service has always added them.
fn with_envelope(id: Uuid, mut detail: Value) -> Value {
    detail["eventId"] = json!(id);
    detail["orgId"] = json!("acme");
    detail["occurredAt"] = json!(at());
    detail
}

/// `event` goes out with `detail_type` and exactly `expected` (plus the common fields), and reads back
/// as itself.
fn check<E>(event: E, detail_type: &str, expected: Value)
where
    E: Event + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let id = Uuid::now_v7();
    let out = DomainEvent::new(id, &org(), at(), &event);
    assert_eq!(E::DETAIL_TYPE, detail_type);
    assert_eq!(out.detail_type, detail_type);
    assert_eq!((out.id, out.time), (id, at()));
    assert_eq!(out.detail, with_envelope(id, expected), "{detail_type}");
    assert!(out.is::<E>());
    let back = out.detail_as::<E>().unwrap();
    assert_eq!((back.event_id, &back.org_id, back.occurred_at), (id, &org(), at()));
    assert_eq!(back.event, event, "{detail_type} round-trips");
    // Through storage (the outbox keeps the detail as a string) too.
    let stored: Value = serde_json::from_str(&out.detail.to_string()).unwrap();
    assert_eq!(parse::<E>(detail_type, &stored).unwrap().event, event);
}

fn notice(a: &Assignment, u: &User) -> (LearnerNotice, Value) {
    let notice = LearnerNotice {
        assignment: a.summary(),
        learner: Learner::known(u.user_id, Some(u)),
        deadline: a.deadline,
        due_on: day(4, 20),
        status: UserStatus::InProgress,
        progress: 0.25,
    };
    let json = json!({
        "assignment": json!(a.summary()),
        "userId": u.user_id,
        "userName": u.name,
        "userEmail": u.email,
        "deadline": a.deadline,
        "dueOn": day(4, 20),
        "status": "in_progress",
        "progress": 0.25,
    });
    (notice, json)
}

fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

#[test]
fn every_outgoing_event_has_its_detail_type_and_its_v1_detail_and_round_trips() {
    for recurring in [false, true] {
        let a = assignment(recurring);
        let summary = json!(a.summary());
        let ada = user("ada");

        let changed = json!({"assignment": summary, "actorId": "u-1"});
        let snapshot = a.summary();
        // The resource as `POST /assignments` answers it (api::views holds its fields to the API's),
        // flattened beside the actor.
        let resource = merged(
            summary.clone(),
            json!({
                "note": "PCI 6.2.2",
                "rosterStatus": "complete",
                "complianceSync": "synced",
                "createdAt": at(),
                "createdBy": "apikey:k1",
                "updatedAt": at(),
                "version": 1,
                "progress": {
                    "totalUsers": 0, "completedUsers": 0, "inProgressUsers": 0, "notStartedUsers": 0,
                    "overdueUsers": 0, "expiredUsers": 0, "completionRate": 0.0, "averageProgress": 0.0,
                },
            }),
        );
        check(
            AssignmentCreated { assignment: a.resource(day(3, 1)), actor_id: "u-1".into() },
            "assignment.created",
            merged(resource, json!({"actorId": "u-1"})),
        );
        check(
            AssignmentUpdated { assignment: snapshot.clone(), actor_id: "u-1".into() },
            "assignment.updated",
            changed.clone(),
        );
        check(
            AssignmentDeactivated { assignment: snapshot.clone(), actor_id: "u-1".into() },
            "assignment.deactivated",
            changed.clone(),
        );
        check(
            AssignmentReactivated { assignment: snapshot.clone(), actor_id: "u-1".into() },
            "assignment.reactivated",
            changed,
        );

        // An unknown name or email is `null` in every event: no profile yet, or an empty one.
        for profile in [Some(&ada), Some(&user("")), None] {
            let known = |field: fn(&User) -> &str| profile.map(field).filter(|v| !v.is_empty());
            let learner = Learner::known(ada.user_id, profile);
            let with_user = |mut detail: Value| {
                detail["userId"] = json!(ada.user_id);
                detail["userName"] = json!(known(|u| u.name.as_str()));
                detail["userEmail"] = json!(known(|u| u.email.as_str()));
                detail
            };
            check(
                UserAdded { assignment: snapshot.clone(), learner: learner.clone() },
                "assignment.user_added",
                with_user(json!({"assignment": summary})),
            );
            check(
                AssignmentCompleted { assignment: snapshot.clone(), completed_at: at(), learner: learner.clone() },
                "assignment.completed",
                with_user(merged(summary.clone(), json!({"completedAt": at()}))),
            );

            let mut row = a.new_row(ada.user_id, Source::Individual, at());
            let before = LearnerOverride::of(&row, a.deadline);
            let before_json = row.override_snapshot(a.deadline);
            row.extended_to = Some(day(5, 1));
            row.exemption = Some(Exemption { reason: "on leave".into(), at: at(), by: "u-1".into() });
            row.revision = 3;
            let after = LearnerOverride::of(&row, a.deadline);
            check(
                UserUpdated { assignment: snapshot.clone(), actor_id: "u-1".into(), before, after, learner },
                "assignment.user_updated",
                with_user(json!({
                    "assignment": summary,
                    "actorId": "u-1",
                    "before": before_json,
                    "after": row.override_snapshot(a.deadline),
                })),
            );

            let team = crate::TeamId(Uuid::now_v7());
            for (team_id, compliant, since) in [(Some(team), false, Some(day(4, 16))), (None, true, None)] {
                check(
                    ComplianceChanged {
                        learner: Learner::projected(ada.user_id, profile),
                        team_id,
                        compliant,
                        non_compliant_since: since,
                    },
                    "compliance.changed",
                    json!({
                        "userId": ada.user_id,
                        "userName": known(|u| u.name.as_str()),
                        "userEmail": known(|u| u.email.as_str()),
                        "teamId": team_id,
                        "compliant": compliant,
                        "nonCompliantSince": since,
                    }),
                );
            }
        }

        let (common, common_json) = notice(&a, &ada);
        check(
            DueSoon { notice: common.clone(), days: 7 },
            "assignment.due_soon",
            merged(common_json.clone(), json!({"days": 7})),
        );
        check(
            Overdue { notice: common.clone(), days: 8 },
            "assignment.overdue",
            merged(common_json.clone(), json!({"days": 8})),
        );
        check(
            RecertificationDue {
                notice: common.clone(),
                window_opens_on: day(3, 1),
                valid_until: day(3, 31),
                cycles: 2,
            },
            "assignment.recertification_due",
            merged(common_json.clone(), json!({"windowOpensOn": day(3, 1), "validUntil": day(3, 31), "cycles": 2})),
        );
        check(
            Expired { notice: common, valid_until: day(3, 31), cycles: 1 },
            "assignment.expired",
            merged(common_json, json!({"validUntil": day(3, 31), "cycles": 1})),
        );
    }

    for (author, reason) in [(Some(UserId(Uuid::now_v7())), None), (None, Some("unknown author".to_owned()))] {
        let covered = AssignmentId::new_v7();
        let ingestion = SarifIngested {
            ingestion_id: Uuid::now_v7(),
            source: "jenkins".into(),
            repo: "acme/monolith".into(),
            branch: author.map(|_| "main".to_owned()),
            commit_sha: "10b5afe0".into(),
            author_user_id: author,
            tools: vec!["semgrep".into()],
            results: 3,
            cwes: vec!["CWE-79".into(), "CWE-89".into()],
            created: Vec::new(),
            already_covered: vec![TopicAssignment {
                assignment_id: Some(covered),
                topic_id: "xss".into(),
                cwes: vec!["CWE-79".into()],
            }],
            not_created: vec![TopicAssignment {
                assignment_id: None,
                topic_id: "sql-injection".into(),
                cwes: vec!["CWE-89".into()],
            }],
            unmapped_cwes: Vec::new(),
            reason: reason.clone(),
            ingested_at: at(),
        };
        let mut expected = json!({
            "ingestionId": ingestion.ingestion_id,
            "source": "jenkins",
            "repo": "acme/monolith",
            "branch": ingestion.branch,
            "commitSha": "10b5afe0",
            "authorUserId": author,
            "tools": ["semgrep"],
            "results": 3,
            "cwes": ["CWE-79", "CWE-89"],
            "created": [],
            "alreadyCovered": [{"assignmentId": covered, "topicId": "xss", "cwes": ["CWE-79"]}],
            "notCreated": [{"topicId": "sql-injection", "cwes": ["CWE-89"]}],
            "unmappedCwes": [],
            "ingestedAt": at(),
        });
        if let Some(reason) = reason {
            expected["reason"] = json!(reason);
        }
        check(ingestion, "sarif.ingested", expected);
    }

    let export_id = Uuid::now_v7();
    check(
        ExportRequested { export_id, kind: "progress".into() },
        "export.requested",
        json!({"exportId": export_id, "kind": "progress"}),
    );
    check(
        ExportReady {
            export_id,
            kind: "progress".into(),
            row_count: 12,
            bytes: 3456,
            key: "exports/acme/x.csv".into(),
        },
        "export.ready",
        json!({"exportId": export_id, "kind": "progress", "rowCount": 12, "bytes": 3456, "key": "exports/acme/x.csv"}),
    );

    let (id, run) = (AssignmentId::new_v7(), Uuid::now_v7());
    let point = json!({"pk": "ORG#acme", "sk": "USER#1"});
    for (mode, phase, resume) in
        [(RosterMode::Build, RosterPhase::Members, None), (RosterMode::CatchUp, RosterPhase::Rows, Some(point.clone()))]
    {
        check(
            RosterRequested { assignment_id: id, run, from: RosterFrom { mode, phase, resume: resume.clone() } },
            "assignment.roster_requested",
            json!({"assignmentId": id, "run": run, "mode": mode, "phase": phase,
                   "resume": resume.unwrap_or(Value::Null)}),
        );
    }
    for resume in [None, Some(point)] {
        check(
            ComplianceSyncRequested { assignment_id: id, rev: 4, resume: resume.clone() },
            "assignment.compliance_sync_requested",
            json!({"assignmentId": id, "rev": 4, "resume": resume.unwrap_or(Value::Null)}),
        );
    }
}

#[test]
fn an_unknown_name_or_email_is_null_in_every_event_never_empty() {
    let nameless = user("");
    for profile in [Some(&nameless), None] {
        for learner in [Learner::known(nameless.user_id, profile), Learner::projected(nameless.user_id, profile)] {
            let wire = json!(learner);
            assert_eq!((&wire["userName"], &wire["userEmail"]), (&Value::Null, &Value::Null), "{profile:?}");
        }
    }
}

#[test]
fn work_requests_have_lanes_and_published_events_none() {
    assert_eq!(Lane::of(RosterRequested::DETAIL_TYPE), Some(Lane::Roster));
    assert_eq!(Lane::of(ComplianceSyncRequested::DETAIL_TYPE), Some(Lane::Roster));
    assert_eq!(Lane::of(ExportRequested::DETAIL_TYPE), Some(Lane::Export));
    for published in [
        AssignmentCreated::DETAIL_TYPE,
        AssignmentUpdated::DETAIL_TYPE,
        AssignmentDeactivated::DETAIL_TYPE,
        AssignmentReactivated::DETAIL_TYPE,
        UserAdded::DETAIL_TYPE,
        AssignmentCompleted::DETAIL_TYPE,
        UserUpdated::DETAIL_TYPE,
        ComplianceChanged::DETAIL_TYPE,
        DueSoon::DETAIL_TYPE,
        Overdue::DETAIL_TYPE,
        RecertificationDue::DETAIL_TYPE,
        Expired::DETAIL_TYPE,
        SarifIngested::DETAIL_TYPE,
        ExportReady::DETAIL_TYPE,
    ] {
        assert_eq!(Lane::of(published), None, "{published}");
    }
}

#[test]
fn a_request_without_mode_or_phase_is_a_build_of_the_members() {
    let (id, run) = (AssignmentId::new_v7(), Uuid::now_v7());
    let detail = with_envelope(Uuid::now_v7(), json!({"assignmentId": id, "run": run}));
    let request = parse::<RosterRequested>(RosterRequested::DETAIL_TYPE, &detail).unwrap().event;
    assert_eq!(request.from, RosterFrom::default());
    assert_eq!((request.from.mode, request.from.phase), (RosterMode::Build, RosterPhase::Members));
    let nulls = merged(detail, json!({"mode": null, "phase": null, "resume": null}));
    assert_eq!(
        parse::<RosterRequested>(RosterRequested::DETAIL_TYPE, &nulls).unwrap().event.from,
        RosterFrom::default()
    );
}

#[test]
fn a_detail_of_another_type_or_shape_is_refused_without_quoting_it() {
    let event = DomainEvent::new(
        Uuid::now_v7(),
        &org(),
        at(),
        &ExportRequested { export_id: Uuid::now_v7(), kind: "x".into() },
    );
    assert!(!event.is::<ExportReady>());
    assert!(matches!(event.detail_as::<ExportReady>(), Err(ParseError::OtherType { .. })));
    let mut detail = event.detail.clone();
    detail.as_object_mut().unwrap().remove("exportId");
    assert_eq!(
        parse::<ExportRequested>(ExportRequested::DETAIL_TYPE, &detail),
        Err(ParseError::MissingField("`exportId`".into()))
    );
    detail["exportId"] = json!("ada@example.com");
    let refused = parse::<ExportRequested>(ExportRequested::DETAIL_TYPE, &detail).unwrap_err();
    assert_eq!(refused, ParseError::Invalid);
    assert!(!refused.to_string().contains("ada"));
}

#[test]
fn reissued_requests_name_their_new_id() {
    let first = DomainEvent::new(
        Uuid::now_v7(),
        &org(),
        at(),
        &ExportRequested { export_id: Uuid::now_v7(), kind: "x".into() },
    );
    let id = Uuid::now_v7();
    let again = first.reissued(id, at() + chrono::Duration::minutes(1));
    let detail = again.detail_as::<ExportRequested>().unwrap();
    assert_eq!((again.id, detail.event_id), (id, id));
    assert_eq!(detail.event, first.detail_as::<ExportRequested>().unwrap().event);
}
