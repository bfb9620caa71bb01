use super::*;

fn sample() -> Assignment {
    let now = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc);
    NewAssignment {
        target: Target {
            content_area: ContentArea::Practice,
            target_type: TargetType::Topic,
            target_id: "sql-injection".into(),
        },
        assignee: Assignee { assignee_type: AssigneeType::Org, assignee_id: "acme".into() },
        deadline: NaiveDate::from_ymd_opt(2026, 4, 15).unwrap(),
        due_in_days: None,
        new_starters_only: false,
        recurrence: None,
        is_mandatory: true,
        note: Some("PCI 6.2.2".into()),
    }
    .into_assignment(
        AssignmentId::new_v7(),
        ResolvedTarget {
            title: "SQL Injection".into(),
            path: "p".into(),
            units: vec![TrackedUnit::Topic { topic_id: crate::Slug::parse("sql-injection").unwrap(), challenges: 11 }],
        },
        "Acme".into(),
        "apikey:k1".into(),
        now,
    )
}

#[test]
fn new_assignments_count_items_and_start_at_version_one() {
    let a = sample();
    assert_eq!((a.item_count, a.version, a.is_active), (11, 1, true));
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["targetType"], "topic");
    assert_eq!(json["assigneeType"], "org");
    assert_eq!(json["deadline"], "2026-04-15");
    assert_eq!(serde_json::from_value::<Assignment>(json).unwrap(), a);
}

#[test]
fn patches_bump_version_and_report_activation() {
    let a = sample();
    let now: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
    let (off, activation) = a.patched(&Patch { is_active: Some(false), ..Default::default() }, now).unwrap();
    assert_eq!((off.is_active, off.version, activation), (false, 2, Activation::Deactivated));
    assert_eq!(off.updated_at, now);

    assert!(off.patched(&Patch { is_active: Some(false), ..Default::default() }, now).is_none(), "repeat is a no-op");
    let (on, activation) = off.patched(&Patch { is_active: Some(true), ..Default::default() }, now).unwrap();
    assert_eq!((on.version, activation), (3, Activation::Reactivated));

    let (cleared, activation) = a.patched(&Patch { note: Some(None), ..Default::default() }, now).unwrap();
    assert_eq!((cleared.note, activation), (None, Activation::Unchanged));
}

#[test]
fn relative_deadlines_date_each_row_and_new_starters_admit_only_later_joiners() {
    let mut a = sample();
    a.due_in_days = Some(10);
    let joined = a.created_at + chrono::Duration::days(3);
    let row = a.new_row(UserId(uuid::Uuid::nil()), Source::Organization, joined);
    assert_eq!(row.relative_due_on, Some(joined.date_naive() + chrono::Duration::days(10)));
    assert_eq!(sample().new_row(row.user_id, Source::Organization, joined).relative_due_on, None);
    let early = a.new_row(row.user_id, Source::Organization, a.created_at - chrono::Duration::days(9));
    assert_eq!(early.relative_due_on, Some(a.created_at.date_naive() + chrono::Duration::days(10)));

    a.new_starters_only = true;
    let mut user = crate::directory::User {
        user_id: row.user_id,
        name: "N".into(),
        email: "n@example.com".into(),
        role: crate::vocabulary::Role::Learner,
        team_id: None,
        is_active: true,
        updated_at: joined,
        facets: Default::default(),
    };
    user.facets.created_at = Some(a.created_at - chrono::Duration::days(1));
    user.facets.active_at = Some(joined);
    assert!(!a.includes(&user), "an existing member is not a new starter, whatever else changed");
    user.facets.created_at = Some(joined);
    assert!(a.includes(&user));
    user.is_active = false;
    assert!(!a.includes(&user));
    let json = serde_json::to_value(a.summary()).unwrap();
    assert_eq!((json["dueInDays"].as_u64(), json["newStartersOnly"].as_bool()), (Some(10), Some(true)));
}

#[test]
fn the_summary_carries_the_fields_events_promise_in_their_v1_names() {
    let summary = serde_json::to_value(sample().summary()).unwrap();
    let mut keys: Vec<&str> = summary.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "assigneeId",
            "assigneeName",
            "assigneeType",
            "contentArea",
            "deadline",
            "id",
            "isActive",
            "isMandatory",
            "itemCount",
            "targetId",
            "targetPath",
            "targetTitle",
            "targetType"
        ]
    );
    assert_eq!((summary["targetId"].as_str(), summary["assigneeType"].as_str()), (Some("sql-injection"), Some("org")));
}

#[test]
fn the_resource_is_the_summary_with_its_note_history_state_and_progress() {
    let mut a = sample();
    let today = a.created_at.date_naive();
    let resource = serde_json::to_value(a.resource(today)).unwrap();
    let summary = serde_json::to_value(a.summary()).unwrap();
    for (key, value) in summary.as_object().unwrap() {
        assert_eq!(&resource[key], value, "{key}");
    }
    assert_eq!(
        (&resource["note"], &resource["rosterStatus"], &resource["complianceSync"]),
        (&serde_json::json!("PCI 6.2.2"), &serde_json::json!("complete"), &serde_json::json!("synced"))
    );
    assert_eq!(
        (&resource["createdBy"], &resource["version"]),
        (&serde_json::json!("apikey:k1"), &serde_json::json!(1))
    );
    assert_eq!(
        resource["progress"],
        serde_json::to_value(a.aggregates.summary(a.item_count, a.deadline, today)).unwrap()
    );
    a.note = None;
    a.compliance_sync = Some(2);
    a.roster_status = RosterStatus::Building;
    let resource = serde_json::to_value(a.resource(today)).unwrap();
    assert_eq!(resource["note"], serde_json::Value::Null, "an absent note is null, not left out");
    assert_eq!(
        (resource["complianceSync"].as_str(), resource["rosterStatus"].as_str()),
        (Some("syncing"), Some("building"))
    );
}

#[test]
fn the_resources_schema_describes_what_it_serialises() {
    let schema = |s: schemars::Schema| s.to_value();
    let object_keys = |v: &serde_json::Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort_unstable();
        keys
    };
    // The progress' schema is written beside the type (in `schema`): the same fields.
    let a = sample();
    let progress = serde_json::to_value(a.aggregates.summary(a.item_count, a.deadline, a.deadline)).unwrap();
    let described = schema(schemars::schema_for!(crate::ProgressSummary));
    assert_eq!(object_keys(&described["properties"]), object_keys(&progress));
    assert_eq!(described["required"].as_array().unwrap().len(), object_keys(&progress).len());
    // The v1 enums: exactly their wire spellings.
    let spellings = |s: serde_json::Value| s["enum"].clone();
    assert_eq!(spellings(schema(schemars::schema_for!(TargetType))), serde_json::json!(TargetType::ALL));
    assert_eq!(spellings(schema(schemars::schema_for!(ContentArea))), serde_json::json!(ContentArea::ALL));
    assert_eq!(spellings(schema(schemars::schema_for!(AssigneeType))), serde_json::json!(AssigneeType::ALL));
}
