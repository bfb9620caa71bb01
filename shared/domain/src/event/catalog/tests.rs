use std::collections::BTreeSet;

use chrono::TimeZone;
use serde_json::json;

use super::*;

fn org() -> OrgId {
    OrgId::parse("acme").unwrap()
}

fn keys(object: &Value) -> BTreeSet<&str> {
    object.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
}

#[test]
fn the_catalog_lists_exactly_the_public_types() {
    assert_eq!(
        public_types(),
        [
            "assignment.created",
            "assignment.updated",
            "assignment.deactivated",
            "assignment.reactivated",
            "assignment.user_added",
            "assignment.completed",
            "assignment.user_updated",
            "assignment.due_soon",
            "assignment.overdue",
            "assignment.expired",
            "assignment.recertification_due",
            "compliance.changed",
            "sarif.ingested",
            "export.ready",
            "webhook.test",
        ]
    );
    let listed: Vec<&str> = catalog().iter().map(|entry| entry.event_type).collect();
    assert_eq!(listed, public_types());
    assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), listed.len(), "each type once");
    assert!(public_types().iter().all(|t| is_public(t)));
    assert_eq!(WebhookTest::DETAIL_TYPE, WEBHOOK_TEST);
}

#[test]
fn no_work_request_is_public() {
    for request in [RosterRequested::DETAIL_TYPE, ComplianceSyncRequested::DETAIL_TYPE, ExportRequested::DETAIL_TYPE] {
        assert!(!is_public(request), "{request}");
        assert!(!public_types().contains(&request), "{request}");
    }
    for public in public_types() {
        assert_eq!(Lane::of(public), None, "{public} goes to the bus, not a worker's queue");
    }
}

#[test]
fn an_entry_is_its_type_description_schema_and_example() {
    for entry in catalog() {
        let wire = serde_json::to_value(&entry).unwrap();
        assert_eq!(keys(&wire), BTreeSet::from(["type", "description", "schema", "example"]));
        assert_eq!(wire["type"], entry.event_type);
        assert!(!entry.description.is_empty() && entry.description.ends_with('.'), "{}", entry.event_type);
        assert_eq!(entry.schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(entry.schema["type"], "object", "{}: data is an object", entry.event_type);
    }
}

#[test]
fn every_example_has_its_schemas_properties_and_fits_the_schema() {
    for entry in catalog() {
        let (schema, example, name) = (&entry.schema, &entry.example, entry.event_type);
        let properties = keys(&schema["properties"]);
        assert_eq!(keys(example), properties, "{name}: the example shows every property and no other");
        for required in schema["required"].as_array().unwrap() {
            assert!(example.get(required.as_str().unwrap()).is_some(), "{name}: {required} is required");
        }
        for (property, described) in schema["properties"].as_object().unwrap() {
            assert!(described["description"].is_string(), "{name}: {property} has a description (its doc comment)");
        }
        assert!(schema["description"].as_str().unwrap().contains(&format!("`{name}`")), "{name}: the type's doc");
        conforms(schema, schema, example, name).unwrap();
    }
}

#[test]
fn a_deliverys_data_is_the_serialisation_of_its_type() {
    struct Check(usize);
    impl PublicVisitor for Check {
        fn visit<E: PublicEvent>(&mut self) {
            let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap();
            let sample = E::sample();
            let event = DomainEvent::new(Uuid::now_v7(), &org(), at, &sample);
            assert_eq!(event.detail_type, E::DETAIL_TYPE);
            let data = serde_json::to_value(&sample).unwrap();
            assert_eq!(webhook_data(&event.detail), data, "{}", E::DETAIL_TYPE);
            assert_eq!(CatalogEntry::of::<E>().example, data, "{}", E::DETAIL_TYPE);
            for common in COMMON_FIELDS {
                assert!(event.detail.get(common).is_some() && data.get(common).is_none(), "{common}");
            }
            self.0 += 1;
        }
    }
    let mut check = Check(0);
    visit_public(&mut check);
    assert_eq!(check.0, public_types().len());
}

#[test]
fn webhook_data_leaves_out_only_the_common_fields() {
    let detail = json!({"eventId": "e", "orgId": "acme", "occurredAt": "t", "id": "a", "actorId": "u"});
    assert_eq!(webhook_data(&detail), json!({"id": "a", "actorId": "u"}));
    assert_eq!(webhook_data(&json!(null)), json!(null));
}

#[test]
fn a_test_delivery_says_which_endpoint() {
    let endpoint_id = Uuid::now_v7();
    let test = WebhookTest { endpoint_id, message: "test".into() };
    let event = DomainEvent::new(Uuid::now_v7(), &org(), Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap(), &test);
    assert_eq!(webhook_data(&event.detail), json!({"endpointId": endpoint_id, "message": "test"}));
    assert_eq!(event.detail_as::<WebhookTest>().unwrap().event, test);
}

/// Whether `value` fits `schema` (of the root schema `root`), for what the generated schemas use:
/// `$ref`s into `$defs`, `type`, `enum`, `const`, `anyOf`/`oneOf`, `properties` (no key beyond them)
/// with `required`, `items`, `minimum`, and the `date`, `date-time` and `uuid` formats.
fn conforms(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{at}: {why} ({value})"));
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/$defs/").ok_or(format!("{at}: {reference}"))?;
        conforms(root, &root["$defs"][name], value, at)?;
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(types) => types.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        let fits = |t: &str| match t {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            _ => false,
        };
        if !types.iter().any(|t| fits(t)) {
            return fail(&format!("not of type {types:?}"));
        }
    }
    if schema.get("enum").and_then(Value::as_array).is_some_and(|values| !values.contains(value)) {
        return fail("not one of the enum's values");
    }
    if schema.get("const").is_some_and(|c| c != value) {
        return fail("not the const");
    }
    if let Some(any) = schema["anyOf"].as_array()
        && !any.iter().any(|s| conforms(root, s, value, at).is_ok())
    {
        return fail("fits none of anyOf");
    }
    if let Some(one) = schema["oneOf"].as_array()
        && one.iter().filter(|s| conforms(root, s, value, at).is_ok()).count() != 1
    {
        return fail("does not fit exactly one of oneOf");
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), value.as_object()) {
        for (key, field) in object {
            let property = properties.get(key).ok_or(format!("{at}: {key} is not a property"))?;
            conforms(root, property, field, &format!("{at}.{key}"))?;
        }
        for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(required) {
                return fail(&format!("{required} is missing"));
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            conforms(root, items, item, &format!("{at}[{i}]"))?;
        }
    }
    if let (Some(minimum), Some(number)) = (schema["minimum"].as_f64(), value.as_f64())
        && number < minimum
    {
        return fail("below the minimum");
    }
    let text = value.as_str().unwrap_or_default();
    let format_fits = match schema["format"].as_str() {
        Some("uuid") => Uuid::parse_str(text).is_ok(),
        Some("date") => NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
        Some("date-time") => DateTime::parse_from_rfc3339(text).is_ok(),
        _ => true,
    };
    if !format_fits && value.is_string() {
        return fail("not of its format");
    }
    Ok(())
}

#[test]
fn the_conformance_check_refuses_what_does_not_fit() {
    let entry = CatalogEntry::of::<AssignmentCompleted>();
    let fits = |change: fn(&mut Value)| {
        let mut example = entry.example.clone();
        change(&mut example);
        conforms(&entry.schema, &entry.schema, &example, "data")
    };
    assert!(fits(|_| {}).is_ok());
    assert!(fits(|e| e["userName"] = Value::Null).is_ok(), "an unknown name is null");
    assert!(fits(|e| e["surprise"] = json!(1)).is_err());
    assert!(fits(|e| drop(e.as_object_mut().unwrap().remove("userId"))).is_err());
    assert!(fits(|e| e["assigneeType"] = json!("group")).is_err());
    assert!(fits(|e| e["completedAt"] = json!("yesterday")).is_err());
    assert!(fits(|e| e["recurrence"]["everyMonths"] = json!("12")).is_err());
    assert!(fits(|e| e["dueInDays"] = Value::Null).is_err(), "absent, never null");
    assert!(fits(|e| drop(e.as_object_mut().unwrap().remove("dueInDays"))).is_ok());
}
