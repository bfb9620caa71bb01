use super::*;

fn slug(s: &str) -> Slug {
    Slug::parse(s).unwrap()
}

#[test]
fn bundled_catalog_is_valid_and_sized_realistically() {
    let catalog = Catalog::bundled().unwrap();
    let topics = catalog.nodes().filter(|n| n.target_type == TargetType::Topic).count();
    let categories: Vec<_> =
        catalog.nodes().filter(|n| n.target_type == TargetType::Category).map(|n| n.slug.to_string()).collect();
    assert!(topics >= 100, "only {topics} topics");
    for expected in ["web", "api", "mobile", "client"] {
        assert!(categories.contains(&expected.to_owned()), "missing category {expected}");
    }
    let web_modules = catalog
        .nodes()
        .filter(|n| n.target_type == TargetType::Module && n.ancestors == vec![(TargetType::Category, slug("web"))])
        .count();
    assert_eq!(web_modules, 10, "web holds the ten OWASP Top 10 2021 categories");
}

#[test]
fn topic_resolves_to_its_challenges_with_a_readable_path() {
    let catalog = Catalog::bundled().unwrap();
    let resolved = catalog.resolve(ContentArea::Practice, TargetType::Topic, "sql-injection").unwrap();
    assert_eq!(resolved.title, "SQL Injection");
    assert_eq!(resolved.path, "OWASP Web Top 10 / A03 Injection / SQL Injection");
    assert_eq!(ItemCounts::of(&resolved.units), ItemCounts { challenges: 11, scenarios: 0 });
}

#[test]
fn higher_levels_cover_everything_under_them() {
    let catalog = Catalog::bundled().unwrap();
    let module = catalog.resolve(ContentArea::Practice, TargetType::Module, "a03-injection").unwrap();
    let category = catalog.resolve(ContentArea::Practice, TargetType::Category, "web").unwrap();
    let module_items = ItemCounts::of(&module.units).total();
    assert!(module.units.contains(&TrackedUnit::Topic { topic_id: slug("sql-injection"), challenges: 11 }));
    assert!(ItemCounts::of(&category.units).total() > module_items);
    let sum_of_topics: u32 = module
        .units
        .iter()
        .map(|u| match u {
            TrackedUnit::Topic { challenges, .. } => u32::from(*challenges),
            TrackedUnit::Scenario { .. } => 1,
        })
        .sum();
    assert_eq!(module_items, sum_of_topics);

    let course = catalog.resolve(ContentArea::Learn, TargetType::Course, "owasp-top-10-2025").unwrap();
    assert!(course.units.contains(&TrackedUnit::Scenario { scenario_id: slug("idor") }));
    assert_eq!(ItemCounts::of(&course.units).challenges, 0);
}

#[test]
fn unknown_or_misplaced_targets_are_typed_errors() {
    let catalog = Catalog::bundled().unwrap();
    for (area, ty, id) in [
        (ContentArea::Practice, TargetType::Topic, "no-such-topic"),
        (ContentArea::Learn, TargetType::Topic, "sql-injection"),
        (ContentArea::Practice, TargetType::Topic, "Not A Slug"),
    ] {
        assert!(matches!(catalog.resolve(area, ty, id), Err(CatalogError::UnknownTarget { .. })));
    }
}

#[test]
fn duplicate_slugs_are_rejected() {
    let json = r#"{"practice":[{"slug":"web","title":"Web","modules":[
        {"slug":"m1","title":"M1","topics":[{"slug":"t","title":"T","challenges":1}]},
        {"slug":"m2","title":"M2","topics":[{"slug":"t","title":"T again","challenges":2}]}]}],"learn":[]}"#;
    assert!(matches!(Catalog::from_json(json), Err(CatalogError::Invalid(msg)) if msg.contains("duplicate topic")));
}

#[test]
fn tracked_item_keys_round_trip_and_reject_garbage() {
    let items = [
        TrackedItem::Challenge { topic_id: slug("sql-injection"), index: 10 },
        TrackedItem::Scenario { scenario_id: slug("idor") },
    ];
    for item in items {
        assert_eq!(TrackedItem::parse_key(&item.key()), Some(item));
    }
    for bad in ["", "c:x", "c:x:y", "s:a:b", "x:idor", "c:Bad:1"] {
        assert_eq!(TrackedItem::parse_key(bad), None, "{bad}");
    }
}

#[test]
fn tracking_respects_challenge_bounds() {
    let units = vec![TrackedUnit::Topic { topic_id: slug("sql-injection"), challenges: 11 }];
    assert!(tracks(&units, &TrackedItem::Challenge { topic_id: slug("sql-injection"), index: 10 }));
    assert!(!tracks(&units, &TrackedItem::Challenge { topic_id: slug("sql-injection"), index: 11 }));
    assert!(!tracks(&units, &TrackedItem::Scenario { scenario_id: slug("sql-injection") }));
}

#[test]
fn custom_courses_resolve_in_order_and_report_unknown_items() {
    let catalog = Catalog::bundled().unwrap();
    let item = |item_type, id: &str, order_index| CustomCourseItem { item_type, item_id: slug(id), order_index };
    let (units, unknown) = catalog.resolve_custom_course(&[
        item(CustomItemType::Scenario, "idor", 2),
        item(CustomItemType::Topic, "sql-injection", 1),
        item(CustomItemType::Topic, "sql-injection", 3),
        item(CustomItemType::Topic, "retired-topic", 4),
    ]);
    assert_eq!(
        units,
        vec![
            TrackedUnit::Topic { topic_id: slug("sql-injection"), challenges: 11 },
            TrackedUnit::Scenario { scenario_id: slug("idor") },
        ]
    );
    assert_eq!(unknown, vec![slug("retired-topic")]);
}
