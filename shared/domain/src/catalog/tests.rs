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

/// CWE Top 25 Most Dangerous Software Weaknesses, 2023 and 2024 editions (cwe.mitre.org/top25).
const CWE_TOP_25: &[u32] = &[
    // 2024
    79, 787, 89, 352, 22, 125, 78, 416, 862, 434, 94, 20, 77, 287, 269, 502, 200, 863, 918, 119, 476, 798, 190, 400,
    306, // 2023 entries not in 2024
    362, 276,
];

/// The CWEs OWASP maps to each Top 10 2021 category (owasp.org/Top10, "List of Mapped CWEs").
const OWASP_TOP_10_2021: &[(&str, &[u32])] = &[
    (
        "A01",
        &[
            22, 23, 35, 59, 200, 201, 219, 264, 275, 276, 284, 285, 352, 359, 377, 402, 425, 441, 497, 538, 540, 548,
            552, 566, 601, 639, 651, 668, 706, 862, 863, 913, 922, 1275,
        ],
    ),
    (
        "A02",
        &[
            259, 261, 296, 310, 319, 321, 322, 323, 324, 325, 326, 327, 328, 329, 330, 331, 335, 336, 337, 338, 340,
            347, 523, 720, 757, 759, 760, 780, 818, 916,
        ],
    ),
    (
        "A03",
        &[
            20, 74, 75, 77, 78, 79, 80, 83, 87, 88, 89, 90, 91, 93, 94, 95, 96, 97, 98, 99, 100, 113, 116, 138, 184,
            470, 471, 564, 610, 643, 644, 652, 917,
        ],
    ),
    (
        "A04",
        &[
            73, 183, 209, 213, 235, 256, 257, 266, 269, 280, 311, 312, 313, 316, 419, 430, 434, 444, 451, 472, 501,
            522, 525, 539, 579, 598, 602, 642, 646, 650, 653, 656, 657, 799, 807, 840, 841, 927, 1021, 1173,
        ],
    ),
    ("A05", &[2, 11, 13, 15, 16, 260, 315, 520, 526, 537, 541, 547, 611, 614, 756, 776, 942, 1004, 1032, 1174]),
    ("A06", &[937, 1035, 1104]),
    (
        "A07",
        &[
            255, 259, 287, 288, 290, 294, 295, 297, 300, 302, 304, 306, 307, 346, 384, 521, 613, 620, 640, 798, 940,
            1216,
        ],
    ),
    ("A08", &[345, 353, 426, 494, 502, 565, 784, 829, 830, 915]),
    ("A09", &[117, 223, 532, 778]),
    ("A10", &[918]),
];

#[test]
fn every_cwe_of_the_top_25_and_the_owasp_top_10_2021_maps_to_a_practice_topic() {
    let catalog = Catalog::bundled().unwrap();
    let lists = OWASP_TOP_10_2021.iter().copied().chain([("CWE Top 25", CWE_TOP_25)]);
    let unmapped: Vec<String> = lists
        .flat_map(|(list, cwes)| cwes.iter().map(move |cwe| (list, *cwe)))
        .filter(|(_, cwe)| catalog.topic_for_cwe(*cwe).is_none())
        .map(|(list, cwe)| format!("{list}: CWE-{cwe}"))
        .collect();
    assert!(unmapped.is_empty(), "not taught by any topic: {unmapped:?}");
    assert_eq!(catalog.topic_for_cwe(89).map(|n| n.slug.as_str()), Some("sql-injection"));
    assert_eq!(catalog.topic_for_cwe(79).map(|n| n.slug.as_str()), Some("reflected-xss"));
    assert_eq!(catalog.topic_for_cwe(7), None, "CWE-7 (J2EE misconfiguration) is taught nowhere");
}

#[test]
fn every_mapped_topic_exists_as_a_practice_topic() {
    let catalog = Catalog::bundled().unwrap();
    let mut mapped = 0;
    for (cwe, slug) in catalog.cwe_topics() {
        let node = catalog.topic_for_cwe(cwe).unwrap_or_else(|| panic!("CWE-{cwe} maps to missing topic '{slug}'"));
        assert_eq!((node.content_area, node.target_type, &node.slug), (ContentArea::Practice, TargetType::Topic, slug));
        assert!(catalog.resolve(ContentArea::Practice, TargetType::Topic, slug.as_str()).is_ok());
        mapped += 1;
    }
    assert!(mapped >= 200, "only {mapped} CWEs mapped");
}

#[test]
fn a_cwe_listed_by_two_topics_or_cwe_0_is_rejected() {
    let json = r#"{"practice":[{"slug":"web","title":"Web","modules":[
        {"slug":"m1","title":"M1","topics":[{"slug":"a","title":"A","challenges":1,"cwes":[89]},
                                            {"slug":"b","title":"B","challenges":1,"cwes":[79,89]}]}]}],"learn":[]}"#;
    assert!(
        matches!(Catalog::from_json(json), Err(CatalogError::Invalid(msg)) if msg == "CWE-89 is listed by topics 'a' and 'b'")
    );
    let zero = json.replace("[79,89]", "[0]");
    assert!(matches!(Catalog::from_json(&zero), Err(CatalogError::Invalid(msg)) if msg.contains("CWE-0")));
}
