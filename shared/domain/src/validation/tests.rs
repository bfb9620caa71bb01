use super::*;
use crate::progress::LearnerPatch;
use serde_json::json;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
}

fn valid() -> Value {
    json!({
        "contentArea": "practice", "targetType": "topic", "targetId": "sql-injection",
        "assigneeType": "team", "assigneeId": "0192f0c4-8a8e-7d6e-9a55-2f1e3c4b5a69",
        "deadline": "2026-04-15"
    })
}

fn fields(err: ValidationError) -> Vec<String> {
    match err {
        ValidationError::Fields(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected field errors, got {other:?}"),
    }
}

#[test]
fn minimal_create_gets_defaults() {
    let new = validate_create(&valid(), today()).unwrap();
    assert!(new.is_mandatory);
    assert_eq!(new.note, None);
    assert_eq!(new.deadline, NaiveDate::from_ymd_opt(2026, 4, 15).unwrap());
    assert_eq!(new.target.target_type, TargetType::Topic);
}

#[test]
fn every_problem_is_reported_at_once() {
    let body = json!({"contentArea": "video", "targetType": 3, "assigneeType": "user",
                      "assigneeId": "bob", "deadline": "15/04/2026", "isMandatory": "yes", "colour": "red"});
    let mut got = fields(validate_create(&body, today()).unwrap_err());
    got.sort();
    assert_eq!(got, ["assigneeId", "colour", "contentArea", "deadline", "isMandatory", "targetId", "targetType"]);
}

#[test]
fn deadline_today_is_fine_yesterday_is_not() {
    let mut body = valid();
    body["deadline"] = json!("2026-03-01");
    assert!(validate_create(&body, today()).is_ok());
    body["deadline"] = json!("2026-02-28");
    assert_eq!(fields(validate_create(&body, today()).unwrap_err()), ["deadline"]);
    for bad in ["2026-02-30", "+2026-04-15", "2026-4-15", "2026-04-15T00:00:00Z", "2040-01-01"] {
        body["deadline"] = json!(bad);
        assert_eq!(fields(validate_create(&body, today()).unwrap_err()), ["deadline"], "{bad}");
    }
}

#[test]
fn targets_must_fit_their_area_and_id_kind() {
    let mut body = valid();
    body["contentArea"] = json!("learn");
    assert_eq!(fields(validate_create(&body, today()).unwrap_err()), ["targetType"]);

    let mut body = valid();
    body["targetType"] = json!("custom-course");
    assert_eq!(fields(validate_create(&body, today()).unwrap_err()), ["targetId"], "custom courses take a UUID");
    body["targetId"] = json!("0192f0c4-8a8e-7d6e-9a55-2f1e3c4b5a69");
    assert_eq!(validate_create(&body, today()).unwrap().target.content_area, ContentArea::Practice);
}

#[test]
fn org_assignee_takes_an_org_id() {
    let mut body = valid();
    body["assigneeType"] = json!("org");
    body["assigneeId"] = json!("org-acme");
    assert!(validate_create(&body, today()).is_ok());
    body["assigneeId"] = json!("org#other");
    assert_eq!(fields(validate_create(&body, today()).unwrap_err()), ["assigneeId"]);
}

#[test]
fn notes_are_bounded_and_blank_means_none() {
    let mut body = valid();
    body["note"] = json!("   ");
    assert_eq!(validate_create(&body, today()).unwrap().note, None);
    body["note"] = json!("é".repeat(MAX_NOTE_CHARS));
    assert!(validate_create(&body, today()).is_ok(), "the limit counts characters, not bytes");
    body["note"] = json!("x".repeat(MAX_NOTE_CHARS + 1));
    assert_eq!(fields(validate_create(&body, today()).unwrap_err()), ["note"]);
}

#[test]
fn ids_are_kept_in_their_canonical_form() {
    let canonical = "0192f0c4-8a8e-7d6e-9a55-2f1e3c4b5a69";
    for spelling in [
        "{0192F0C4-8A8E-7D6E-9A55-2F1E3C4B5A69}",
        "0192F0C4-8A8E-7D6E-9A55-2F1E3C4B5A69",
        "urn:uuid:0192f0c4-8a8e-7d6e-9a55-2f1e3c4b5a69",
        "0192f0c48a8e7d6e9a552f1e3c4b5a69",
    ] {
        let mut body = valid();
        body["assigneeId"] = json!(spelling);
        assert_eq!(validate_create(&body, today()).unwrap().assignee.assignee_id, canonical, "{spelling}");
        body["contentArea"] = json!("custom");
        body["targetType"] = json!("custom-course");
        body["targetId"] = json!(spelling);
        assert_eq!(validate_create(&body, today()).unwrap().target.target_id, canonical, "{spelling}");
    }
}

#[test]
fn unknown_fields_are_reported_up_to_a_cap() {
    let mut body = valid();
    for i in 0..5_000 {
        body[format!("junk{i}")] = json!(1);
    }
    let ValidationError::Fields(errors) = validate_create(&body, today()).unwrap_err() else { panic!() };
    assert_eq!(errors.len(), MAX_REPORTED_UNKNOWN + 1);
    assert_eq!(errors.last().unwrap().message, format!("{} more unknown fields", 5_000 - MAX_REPORTED_UNKNOWN));
}

#[test]
fn non_objects_are_refused() {
    assert_eq!(validate_create(&json!([1]), today()), Err(ValidationError::NotAnObject));
    assert_eq!(validate_patch(&json!("x"), today()), Err(ValidationError::NotAnObject));
}

#[test]
fn patch_allows_only_editable_fields() {
    let patch = validate_patch(&json!({"deadline": "2026-05-01", "note": null, "isActive": true}), today()).unwrap();
    assert_eq!(patch.note, Some(None));
    assert_eq!(patch.is_active, Some(true));
    assert_eq!(patch.is_mandatory, None);

    assert_eq!(
        validate_patch(&json!({"targetId": "xxe", "note": "x"}), today()),
        Err(ValidationError::Immutable(vec!["targetId".into()]))
    );
    // Fields fixed at creation are named as such, not as unknown (these three once were).
    for field in ["dueInDays", "newStartersOnly", "rosterStatus"] {
        assert_eq!(
            validate_patch(&json!({field: 1}), today()),
            Err(ValidationError::Immutable(vec![field.into()])),
            "{field}"
        );
    }
    assert_eq!(fields(validate_patch(&json!({"colour": 1}), today()).unwrap_err()), ["colour"]);
    assert_eq!(fields(validate_patch(&json!({}), today()).unwrap_err()), ["body"]);
    assert_eq!(fields(validate_patch(&json!({"isActive": "no"}), today()).unwrap_err()), ["isActive"]);
    assert_eq!(fields(validate_patch(&json!({"deadline": "2020-01-01"}), today()).unwrap_err()), ["deadline"]);
}

#[test]
fn learner_patches_extend_exempt_or_both() {
    let date = NaiveDate::from_ymd_opt(2026, 3, 20).unwrap();
    let extend = validate_learner_patch(&json!({"dueOn": "2026-03-20"}), today()).unwrap();
    assert_eq!(extend, LearnerPatch { due_on: Some(Some(date)), exempt: None });
    let back = validate_learner_patch(&json!({"dueOn": null}), today()).unwrap();
    assert_eq!(back.due_on, Some(None));
    let exempt = validate_learner_patch(&json!({"exempt": true, "reason": "  on leave "}), today()).unwrap();
    assert_eq!(exempt.exempt, Some(Some("on leave".to_owned())));
    let lift = validate_learner_patch(&json!({"exempt": false, "dueOn": "2026-03-01"}), today()).unwrap();
    assert_eq!(lift, LearnerPatch { due_on: Some(Some(today())), exempt: Some(None) });
}

#[test]
fn learner_patches_name_every_bad_field() {
    let bad = |body: Value| fields(validate_learner_patch(&body, today()).unwrap_err());
    assert_eq!(bad(json!({})), ["body"]);
    assert_eq!(bad(json!({"dueOn": "2026-02-28"})), ["dueOn"], "not in the past");
    assert_eq!(bad(json!({"dueOn": 5, "exempt": "yes"})), ["dueOn", "exempt"]);
    assert_eq!(bad(json!({"exempt": true})), ["reason"], "an exemption says why");
    assert_eq!(bad(json!({"exempt": true, "reason": " "})), ["reason"]);
    assert_eq!(bad(json!({"exempt": false, "reason": "x"})), ["reason"]);
    assert_eq!(bad(json!({"dueOn": null, "reason": "x"})), ["reason"]);
    assert_eq!(bad(json!({"exempt": true, "reason": "x".repeat(MAX_REASON_CHARS + 1)})), ["reason"]);
    assert_eq!(bad(json!({"dueOn": null, "deadline": "2026-04-01"})), ["deadline"]);
    assert!(matches!(validate_learner_patch(&json!([1]), today()), Err(ValidationError::NotAnObject)));
}

#[test]
fn relative_deadlines_and_new_starters() {
    let mut body = valid();
    body.as_object_mut().unwrap().remove("deadline");
    body["dueInDays"] = json!(30);
    let new = validate_create(&body, today()).unwrap();
    assert_eq!((new.due_in_days, new.deadline), (Some(30), NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()));
    // A whole number written as a float is an integer to JSON Schema (and so to the OpenAPI document).
    body["dueInDays"] = json!(30.0);
    assert_eq!(validate_create(&body, today()).unwrap().due_in_days, Some(30));
    body["newStartersOnly"] = json!(true);
    assert!(validate_create(&body, today()).unwrap().new_starters_only);

    let bad = |body: Value| fields(validate_create(&body, today()).unwrap_err());
    let mut both = valid();
    both["dueInDays"] = json!(3);
    assert_eq!(bad(both), ["dueInDays"]);
    for days in [json!(0), json!(366), json!(1.5), json!("7")] {
        let mut b = body.clone();
        b["dueInDays"] = days;
        assert_eq!(bad(b), ["dueInDays"]);
    }
    let mut absolute = valid();
    absolute["newStartersOnly"] = json!(true);
    assert_eq!(bad(absolute), ["dueInDays"], "new starters need a relative deadline");
    let mut individual = body.clone();
    individual["assigneeType"] = json!("user");
    assert_eq!(bad(individual), ["newStartersOnly"]);
}

#[test]
fn recurrence_is_an_object_with_a_default_window_or_null() {
    let mut body = valid();
    body["recurrence"] = json!({"everyMonths": 12});
    let new = validate_create(&body, today()).unwrap();
    assert_eq!(new.recurrence, Some(Recurrence { every_months: 12, window_days: 30 }));
    let patch = validate_patch(&json!({"recurrence": null}), today()).unwrap();
    assert_eq!(patch.recurrence, Some(None));
    let patch = validate_patch(&json!({"recurrence": {"everyMonths": 36, "windowDays": 0}}), today()).unwrap();
    assert_eq!(patch.recurrence, Some(Some(Recurrence { every_months: 36, window_days: 0 })));

    let bad = |recurrence: Value| fields(validate_patch(&json!({"recurrence": recurrence}), today()).unwrap_err());
    assert_eq!(bad(json!({})), ["recurrence.everyMonths"]);
    assert_eq!(bad(json!({"everyMonths": 0, "windowDays": 181})), ["recurrence.everyMonths", "recurrence.windowDays"]);
    assert_eq!(bad(json!({"everyMonths": 37})), ["recurrence.everyMonths"]);
    assert_eq!(bad(json!({"everyMonths": 12, "every": 1})), ["recurrence.every"]);
    assert_eq!(bad(json!(12)), ["recurrence"]);
    assert_eq!(bad(json!({"everyMonths": 1, "windowDays": 28})), ["recurrence.windowDays"], "longer than a month");
    assert!(validate_patch(&json!({"recurrence": {"everyMonths": 1, "windowDays": 27}}), today()).is_ok());
}
