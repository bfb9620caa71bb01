use super::*;
use serde_json::json;

fn envelope(detail_type: &str, detail: Value) -> Value {
    json!({"id": "e1", "source": "platform.x", "detail-type": detail_type, "time": "2026-03-01T10:00:00Z", "detail": detail})
}

#[test]
fn parses_every_consumed_event() {
    let (u, t, c) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let at = "2026-03-01T10:00:00Z";
    let cases = [
        envelope(
            "user.created",
            json!({"orgId": "acme", "userId": u, "name": "Ada", "email": "a@x", "role": "learner", "teamId": t, "occurredAt": at}),
        ),
        envelope(
            "user.updated",
            json!({"orgId": "acme", "userId": u, "name": "Ada", "email": "a@x", "role": "org_admin", "teamId": null, "previousTeamId": t, "occurredAt": at}),
        ),
        envelope("user.deactivated", json!({"orgId": "acme", "userId": u, "occurredAt": at})),
        envelope(
            "team.member_added",
            json!({"orgId": "acme", "teamId": t, "teamName": "Blue", "userId": u, "occurredAt": at}),
        ),
        envelope("team.member_removed", json!({"orgId": "acme", "teamId": t, "userId": u, "occurredAt": at})),
        envelope("team.renamed", json!({"orgId": "acme", "teamId": t, "name": "Red", "occurredAt": at})),
        envelope("team.deleted", json!({"orgId": "acme", "teamId": t, "occurredAt": at})),
        envelope(
            "challenge.completed",
            json!({"orgId": "acme", "userId": u, "topicId": "sql-injection", "challengeIndex": 3, "score": 92.5, "completedAt": at}),
        ),
        envelope("scenario.completed", json!({"orgId": "acme", "userId": u, "scenarioId": "idor", "completedAt": at})),
        envelope(
            "custom_course.updated",
            json!({"orgId": "acme", "courseId": c, "name": "Onboarding", "isActive": true,
                   "items": [{"itemType": "topic", "itemId": "sql-injection", "orderIndex": 1}]}),
        ),
    ];
    for case in &cases {
        let parsed = parse(case).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(parsed.org.as_str(), "acme");
        assert_eq!(parsed.occurred_at.to_rfc3339(), "2026-03-01T10:00:00+00:00");
    }
    let EventKind::Completed { item, score, .. } = parse(&cases[7]).unwrap().kind else { panic!() };
    assert_eq!((item.key(), score), ("c:sql-injection:3".to_owned(), Some(92.5)));
    let EventKind::UserUpdated { team, previous_team, .. } = parse(&cases[1]).unwrap().kind else { panic!() };
    assert_eq!((team, previous_team), (None, Some(TeamId(t))));
}

#[test]
fn poison_events_are_named_not_panicked_on() {
    let user = uuid::Uuid::new_v4();
    let at = "2026-03-01T10:00:00Z";
    for bad in [
        json!({"detail-type": "challenge.completed"}),
        envelope("challenge.completed", json!({"orgId": "acme"})),
        envelope(
            "challenge.completed",
            json!({"orgId": "a#b", "userId": user, "topicId": "x", "challengeIndex": 1, "completedAt": at}),
        ),
        envelope(
            "challenge.completed",
            json!({"orgId": "acme", "userId": "bob", "topicId": "x", "challengeIndex": 1, "completedAt": at}),
        ),
        envelope(
            "scenario.completed",
            json!({"orgId": "acme", "userId": user, "scenarioId": "Bad Slug", "completedAt": at}),
        ),
        envelope("team.renamed", json!({"orgId": "acme", "teamId": user, "name": " ", "occurredAt": at})),
        envelope("user.deactivated", json!({"orgId": "acme", "userId": user})),
        envelope("user.exploded", json!({"orgId": "acme"})),
    ] {
        assert!(parse(&bad).is_err(), "{bad}");
    }
}

fn completion(score: Value) -> Value {
    envelope(
        "challenge.completed",
        json!({"orgId": "acme", "userId": uuid::Uuid::new_v4(), "topicId": "xxe", "challengeIndex": 1,
               "score": score, "completedAt": "2026-03-01T10:00:00Z"}),
    )
}

#[test]
fn scores_are_percentages() {
    for ok in [json!(0), json!(100), json!(57.5), Value::Null] {
        assert!(parse(&completion(ok.clone())).is_ok(), "{ok}");
    }
    for bad in [json!(-0.1), json!(100.5), json!(1e300), json!(-1e9)] {
        assert!(parse(&completion(bad.clone())).is_err(), "{bad}");
    }
}

#[test]
fn names_are_capped_and_overlong_emails_are_poison() {
    let user = uuid::Uuid::new_v4();
    let created = |name: &str, email: &str| {
        envelope(
            "user.created",
            json!({"orgId": "acme", "userId": user, "name": name, "email": email, "role": "learner",
                   "occurredAt": "2026-03-01T10:00:00Z"}),
        )
    };
    let long_name = "é".repeat(MAX_NAME_CHARS + 50);
    let EventKind::UserCreated { name, .. } = parse(&created(&long_name, "a@x")).unwrap().kind else { panic!() };
    assert_eq!(name.chars().count(), MAX_NAME_CHARS);
    let long_email = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
    assert!(parse(&created("Ada", &long_email)).is_err());

    let team = uuid::Uuid::new_v4();
    let renamed = envelope(
        "team.renamed",
        json!({"orgId": "acme", "teamId": team, "name": "t".repeat(10_000), "occurredAt": "2026-03-01T10:00:00Z"}),
    );
    let EventKind::TeamRenamed { name, .. } = parse(&renamed).unwrap().kind else { panic!() };
    assert_eq!(name.len(), MAX_NAME_CHARS);

    let items: Vec<_> =
        (0..=MAX_COURSE_ITEMS).map(|i| json!({"itemType": "topic", "itemId": "xxe", "orderIndex": i})).collect();
    let course = envelope(
        "custom_course.updated",
        json!({"orgId": "acme", "courseId": team, "name": "C", "isActive": true, "items": items}),
    );
    assert!(parse(&course).is_err(), "a course with too many items is poison");
}

#[test]
fn poison_reasons_never_quote_personal_data() {
    let secret_email = "ada.lovelace@example.com";
    let secret_name = "Ada Lovelace";
    let cases = [
        // A string where a number belongs: serde would quote it.
        envelope(
            "challenge.completed",
            json!({"orgId": "acme", "userId": uuid::Uuid::new_v4(), "topicId": "xxe",
                   "challengeIndex": secret_email, "completedAt": "2026-03-01T10:00:00Z"}),
        ),
        envelope(
            "user.created",
            json!({"orgId": "acme", "userId": uuid::Uuid::new_v4(), "name": secret_name, "email": secret_email,
                   "role": secret_name, "occurredAt": "2026-03-01T10:00:00Z"}),
        ),
        envelope(
            "user.created",
            json!({"orgId": "acme", "userId": uuid::Uuid::new_v4(), "name": secret_name, "email": secret_email,
                   "role": "learner", "occurredAt": secret_email}),
        ),
        envelope(
            "user.updated",
            json!({"orgId": "acme", "userId": secret_email, "name": secret_name,
                   "email": secret_email, "role": "learner", "occurredAt": "2026-03-01T10:00:00Z"}),
        ),
    ];
    for case in &cases {
        let reason = parse(case).unwrap_err();
        for secret in [secret_email, secret_name, "ada", "Ada"] {
            assert!(!reason.contains(secret), "{reason:?} quotes {secret:?}");
        }
    }
    let missing = parse(&envelope("user.deactivated", json!({"orgId": "acme", "occurredAt": "2026-03-01T10:00:00Z"})));
    assert_eq!(missing.unwrap_err(), "detail is missing the field `userId`");
}

/// Every consumed event type dated more than five minutes after the consumer's clock is held back, with
/// its field named; within five minutes (clocks differ a little) it is applied.
#[test]
fn every_consumed_event_dated_ahead_of_the_clock_is_held_back() {
    let (u, t, c) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let now: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
    let dated = |at: DateTime<Utc>| {
        let at = at.to_rfc3339();
        [
            envelope(
                "user.created",
                json!({"orgId": "acme", "userId": u, "name": "Ada", "email": "a@x", "role": "learner", "teamId": t, "occurredAt": at}),
            ),
            envelope(
                "user.updated",
                json!({"orgId": "acme", "userId": u, "name": "Ada", "email": "a@x", "role": "org_admin", "teamId": null, "occurredAt": at}),
            ),
            envelope("user.deactivated", json!({"orgId": "acme", "userId": u, "occurredAt": at})),
            envelope("team.member_added", json!({"orgId": "acme", "teamId": t, "userId": u, "occurredAt": at})),
            envelope("team.member_removed", json!({"orgId": "acme", "teamId": t, "userId": u, "occurredAt": at})),
            envelope("team.renamed", json!({"orgId": "acme", "teamId": t, "name": "Red", "occurredAt": at})),
            envelope("team.deleted", json!({"orgId": "acme", "teamId": t, "occurredAt": at})),
            envelope(
                "challenge.completed",
                json!({"orgId": "acme", "userId": u, "topicId": "sql-injection", "challengeIndex": 3, "completedAt": at}),
            ),
            envelope(
                "scenario.completed",
                json!({"orgId": "acme", "userId": u, "scenarioId": "idor", "completedAt": at}),
            ),
            envelope(
                "custom_course.updated",
                json!({"orgId": "acme", "courseId": c, "name": "Onboarding", "isActive": true, "items": [], "occurredAt": at}),
            ),
        ]
    };
    for case in dated(now + chrono::TimeDelta::minutes(5) + chrono::TimeDelta::seconds(1)) {
        let event = parse(&case).unwrap();
        let reason = ahead_of(&event, now).unwrap_or_else(|| panic!("{case}: applied"));
        let field =
            if case["detail-type"].as_str().unwrap().ends_with(".completed") { "completedAt" } else { "occurredAt" };
        assert!(reason.starts_with(field), "{reason}");
        assert!(!reason.contains("Ada") && !reason.contains("a@x"), "ids and times only: {reason}");
    }
    for case in dated(now + chrono::TimeDelta::minutes(5)) {
        assert_eq!(ahead_of(&parse(&case).unwrap(), now), None, "{case}");
    }
    // A course update without its own time is dated by the envelope, which the producer sets too.
    let mut undated = envelope(
        "custom_course.updated",
        json!({"orgId": "acme", "courseId": c, "name": "x", "isActive": true, "items": []}),
    );
    undated["time"] = json!("2999-01-01T00:00:00Z");
    assert!(ahead_of(&parse(&undated).unwrap(), now).is_some());
}
