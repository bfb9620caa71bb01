//! Patterns 5, 7, 8, 9 against DynamoDB Local: people, custom courses, API keys, idempotency, rate
//! counters, audit log, catalog.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, TimeZone, Utc};
use domain::{
    ApiKey, Catalog, ContentArea, CourseId, CustomCourse, Role, TargetType, Team, TeamId, User, UserChange, UserId,
};
use store::{AuditFilter, Headcount, IdempotencyBegin, IdempotencyKey, RateSubject, Recount, StoredResponse};
use testkit::fixtures::*;
use testkit::stack::{new_org, store_and_org, store_with_capacity};

fn user(team: Option<TeamId>, at: chrono::DateTime<Utc>) -> User {
    User {
        user_id: UserId(uuid::Uuid::new_v4()),
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        role: Role::Learner,
        team_id: team,
        is_active: true,
        updated_at: at,
        facets: Default::default(),
    }
}

#[tokio::test]
async fn team_members_and_active_users_follow_the_projection() {
    let (store, org) = store_and_org().await;
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let team = TeamId(uuid::Uuid::new_v4());
    store
        .put_team(
            &org,
            &Team { team_id: team, name: "Payments".into(), is_deleted: false, updated_at: t0, name_at: None },
        )
        .await
        .unwrap();
    let members: Vec<User> = (0..3).map(|_| user(Some(team), t0)).collect();
    for m in &members {
        assert!(store.put_user(&org, m, chrono::Utc::now()).await.unwrap());
    }
    let loner = user(None, t0);
    store.put_user(&org, &loner, chrono::Utc::now()).await.unwrap();

    assert_eq!(store.team_members(&org, team).await.unwrap().len(), 3);
    assert_eq!(store.active_users(&org).await.unwrap().len(), 4);
    assert_eq!(store.get_team(&org, team).await.unwrap().unwrap().name, "Payments");

    // Deactivation removes the user from both indexes but keeps the profile.
    let mut gone = members[0].clone();
    gone.is_active = false;
    gone.updated_at = t0 + Duration::minutes(5);
    assert!(store.put_user(&org, &gone, chrono::Utc::now()).await.unwrap());
    assert_eq!(store.team_members(&org, team).await.unwrap().len(), 2);
    assert_eq!(store.active_users(&org).await.unwrap().len(), 3);
    assert!(!store.get_user(&org, gone.user_id).await.unwrap().unwrap().is_active);

    // An older event arriving late does not undo the newer one.
    let mut stale = members[0].clone();
    stale.updated_at = t0 + Duration::minutes(1);
    assert!(!store.put_user(&org, &stale, chrono::Utc::now()).await.unwrap());
    assert!(!store.get_user(&org, gone.user_id).await.unwrap().unwrap().is_active);

    let page = store.active_users_page(&org, 2, None).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = store.active_users_page(&org, 2, page.next).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    let ids: Vec<UserId> = members.iter().map(|m| m.user_id).chain([UserId(uuid::Uuid::new_v4())]).collect();
    assert_eq!(store.get_users(&org, &ids).await.unwrap().len(), 3, "unknown ids are left out");
}

#[tokio::test]
async fn head_counts_move_with_every_user_write_and_a_recount_repairs_them() {
    let (store, org) = store_and_org().await;
    let t0 = Utc::now() - Duration::hours(1);
    let (payments, platform) = (TeamId(uuid::Uuid::new_v4()), TeamId(uuid::Uuid::new_v4()));
    // Checked against the (empty) indexes first: from then on a count is read as its moves left it.
    for count in [Headcount::Org, Headcount::Team(payments), Headcount::Team(platform)] {
        assert_eq!(
            store.recount(&org, count, chrono::Utc::now()).await.unwrap(),
            Recount { counted: 0, stored: None, written: true }
        );
    }
    let members: Vec<User> = (0..3).map(|_| user(Some(payments), t0)).collect();
    for m in &members {
        store.put_user(&org, m, chrono::Utc::now()).await.unwrap();
    }
    store.put_user(&org, &user(None, t0), chrono::Utc::now()).await.unwrap();
    let counts = || async {
        (
            store.headcount(&org, Headcount::Org, chrono::Utc::now()).await.unwrap().unwrap(),
            store.headcount(&org, Headcount::Team(payments), chrono::Utc::now()).await.unwrap().unwrap(),
            store.headcount(&org, Headcount::Team(platform), chrono::Utc::now()).await.unwrap().unwrap(),
        )
    };
    assert_eq!(counts().await, (4, 3, 0));

    // A move between teams, a deactivation, a late (older) write that changes nothing, a reactivation
    // through the event path.
    let mut moved = members[0].clone();
    moved.team_id = Some(platform);
    moved.updated_at = t0 + Duration::minutes(1);
    assert!(store.put_user(&org, &moved, chrono::Utc::now()).await.unwrap());
    assert_eq!(counts().await, (4, 2, 1));
    let mut gone = members[1].clone();
    gone.is_active = false;
    gone.updated_at = t0 + Duration::minutes(2);
    assert!(store.put_user(&org, &gone, chrono::Utc::now()).await.unwrap());
    assert_eq!(counts().await, (3, 1, 1));
    assert!(!store.put_user(&org, &members[1], chrono::Utc::now()).await.unwrap(), "older than the stored user");
    assert_eq!(counts().await, (3, 1, 1));
    let back = UserChange::Snapshot {
        name: gone.name.clone(),
        email: gone.email.clone(),
        role: Role::Learner,
        team_id: Some(payments),
        active: Some(true),
    };
    store
        .change_user(&org, gone.user_id, &back, t0 + Duration::minutes(3), chrono::Utc::now(), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(counts().await, (4, 2, 1));
    assert_eq!(store.active_users(&org).await.unwrap().len(), 4, "the count is what the index lists");

    // A recount (the job's, once the last move is old enough for the index to show it) leaves a count
    // matching its index alone and sets one that drifted (written behind the service's back) again.
    let client = testkit::stack::raw_client().await;
    let counts_pk = AttributeValue::S(format!("ORG#{org}#HEADCOUNT"));
    let set = |shard: String, expression: &'static str, value: i64| {
        client
            .update_item()
            .table_name(store.table_name())
            .key("PK", counts_pk.clone())
            .key("SK", AttributeValue::S(shard))
            .update_expression(expression)
            .expression_attribute_values(":v", AttributeValue::N(value.to_string()))
            .send()
    };
    let shards = client
        .query()
        .table_name(store.table_name())
        .key_condition_expression("PK = :pk AND begins_with(SK, :org)")
        .expression_attribute_values(":pk", counts_pk.clone())
        .expression_attribute_values(":org", AttributeValue::S("ORG#".into()))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(shards.len(), 16, "a count is spread over 16 items");
    let five_minutes_ago = (Utc::now() - Duration::minutes(5)).timestamp_millis();
    for shard in &shards {
        set(shard["SK"].as_s().unwrap().clone(), "SET lastMoveMs = :v", five_minutes_ago).await.unwrap();
    }
    assert_eq!(
        store.recount(&org, Headcount::Org, chrono::Utc::now()).await.unwrap(),
        Recount { counted: 4, stored: Some(4), written: false }
    );
    set("ORG#00".into(), "ADD activeUsers :v", 13).await.unwrap();
    assert_eq!(store.headcount(&org, Headcount::Org, chrono::Utc::now()).await.unwrap().unwrap(), 17, "read as stored");
    let recount = store.recount(&org, Headcount::Org, chrono::Utc::now()).await.unwrap();
    assert_eq!(recount, Recount { counted: 4, stored: Some(17), written: true });
    assert_eq!(store.headcount(&org, Headcount::Org, chrono::Utc::now()).await.unwrap().unwrap(), 4);
    assert!(!store.recount(&org, Headcount::Org, chrono::Utc::now()).await.unwrap().written, "nothing to repair");
    let teams = store.counted_teams(&org).await.unwrap();
    assert!(teams.contains(&payments) && teams.contains(&platform) && teams.len() == 2, "{teams:?}");

    // A count kept only since counts were introduced (users written before) is recounted when first
    // read; a recount does not write over a move made while it counted (too recent to be sure of).
    let team_shards = client
        .query()
        .table_name(store.table_name())
        .key_condition_expression("PK = :pk AND begins_with(SK, :team)")
        .expression_attribute_values(":pk", counts_pk.clone())
        .expression_attribute_values(":team", AttributeValue::S(format!("TEAM#{payments}#")))
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    for shard in team_shards {
        client
            .delete_item()
            .table_name(store.table_name())
            .key("PK", counts_pk.clone())
            .key("SK", shard["SK"].clone())
            .send()
            .await
            .unwrap();
    }
    assert_eq!(store.headcount(&org, Headcount::Team(payments), chrono::Utc::now()).await.unwrap().unwrap(), 2);
    let mut joined = members[1].clone();
    joined.team_id = Some(platform);
    joined.updated_at = t0 + Duration::minutes(4);
    store.put_user(&org, &joined, chrono::Utc::now()).await.unwrap();
    let recount = store.recount(&org, Headcount::Team(platform), chrono::Utc::now()).await.unwrap();
    assert_eq!((recount.counted, recount.written), (2, false), "moved a moment ago: {recount:?}");
    assert_eq!(store.headcount(&org, Headcount::Team(platform), chrono::Utc::now()).await.unwrap().unwrap(), 2);
}

/// A bulk import's users written at the same moment (as concurrently consumed events would): each
/// moves the counts once, whoever held a shard first.
#[tokio::test]
async fn concurrent_user_writes_each_move_the_counts_once() {
    let (store, org) = store_and_org().await;
    let team = TeamId(uuid::Uuid::new_v4());
    // Checked against the (empty) indexes first: from then on a count is read as its moves left it.
    for count in [Headcount::Org, Headcount::Team(team)] {
        assert!(store.recount(&org, count, chrono::Utc::now()).await.unwrap().written);
    }
    let users: Vec<User> = (0..32).map(|i| user((i % 2 == 0).then_some(team), Utc::now())).collect();
    let mut writes = tokio::task::JoinSet::new();
    for u in users {
        let (store, org) = (store.clone(), org.clone());
        writes.spawn(async move { store.put_user(&org, &u, chrono::Utc::now()).await });
    }
    while let Some(written) = writes.join_next().await {
        assert!(written.unwrap().unwrap());
    }
    assert_eq!(store.headcount(&org, Headcount::Org, chrono::Utc::now()).await.unwrap().unwrap(), 32);
    assert_eq!(store.headcount(&org, Headcount::Team(team), chrono::Utc::now()).await.unwrap().unwrap(), 16);
}

#[tokio::test]
async fn head_counts_are_per_org() {
    let (store, org) = store_and_org().await;
    let other = new_org("other");
    let team = TeamId(uuid::Uuid::new_v4());
    for (org, count) in [(&org, Headcount::Org), (&other, Headcount::Org), (&other, Headcount::Team(team))] {
        assert!(store.recount(org, count, chrono::Utc::now()).await.unwrap().written, "checked while empty");
    }
    store.put_user(&org, &user(Some(team), Utc::now()), chrono::Utc::now()).await.unwrap();
    assert_eq!(store.headcount(&org, Headcount::Org, chrono::Utc::now()).await.unwrap().unwrap(), 1);
    assert_eq!(store.headcount(&other, Headcount::Org, chrono::Utc::now()).await.unwrap().unwrap(), 0);
    assert_eq!(store.headcount(&other, Headcount::Team(team), chrono::Utc::now()).await.unwrap().unwrap(), 0);
}

#[tokio::test]
async fn custom_courses_are_stored_per_org() {
    let (store, org) = store_and_org().await;
    assert!(!store.has_custom_courses(&org).await.unwrap());
    let course = CustomCourse {
        course_id: CourseId(uuid::Uuid::new_v4()),
        name: "Secure Payments".into(),
        is_active: true,
        items: vec![],
        units: vec![],
        updated_at: Utc::now(),
    };
    store.put_custom_course(&org, &course).await.unwrap();
    assert!(store.has_custom_courses(&org).await.unwrap());
    assert_eq!(store.get_custom_course(&org, course.course_id).await.unwrap(), Some(course.clone()));
    assert!(!store.has_custom_courses(&new_org("test")).await.unwrap());
}

#[tokio::test]
async fn api_keys_are_found_by_token_hash_and_revocation_is_immediate() {
    let (store, org) = store_and_org().await;
    let token = format!("scs_live_{}", uuid::Uuid::new_v4().simple());
    let key = ApiKey {
        key_id: uuid::Uuid::new_v4(),
        org_id: org.clone(),
        name: "ci".into(),
        scopes: vec!["assignments:read".into()],
        expires_at: None,
        revoked_at: None,
        created_by: "user:admin".into(),
        created_at: Utc::now(),
    };
    store.put_api_key(&key, &token).await.unwrap();
    assert_eq!(store.api_key_by_token(&token).await.unwrap(), Some(key.clone()));
    assert_eq!(store.api_key_by_token("scs_live_unknown").await.unwrap(), None);

    let raw = testkit::stack::raw_client()
        .await
        .get_item()
        .table_name(store.table_name())
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("APIKEY#{}", store::token_sha256(&token))))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("KEY".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!format!("{raw:?}").contains(&token), "the token itself is never stored");

    assert_eq!(store.api_key_by_id(&org, key.key_id).await.unwrap(), Some(key.clone()));
    assert_eq!(store.api_key_by_id(&new_org("test"), key.key_id).await.unwrap(), None, "only in its org");
    store.revoke_api_key(&org, key.key_id, Utc::now()).await.unwrap();
    let revoked = store.api_key_by_token(&token).await.unwrap().unwrap();
    assert!(!revoked.is_usable(Utc::now() + Duration::milliseconds(1)));
    let by_id = store.api_key_by_id(&org, key.key_id).await.unwrap().unwrap();
    assert_eq!(by_id, revoked, "the revocation is seen by id at once (read strongly consistent)");
    assert!(
        store.revoke_api_key(&new_org("test"), key.key_id, Utc::now()).await.is_err(),
        "another org cannot revoke it"
    );
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_other_bodies_and_can_be_released() {
    let (store, org) = store_and_org().await;
    let now = Utc::now();
    let key = IdempotencyKey::new("apikey:1", "POST /assignments", "retry-me");
    assert_eq!(store.begin_idempotency(&org, &key, "body-1", now).await.unwrap(), IdempotencyBegin::Started);
    assert_eq!(store.begin_idempotency(&org, &key, "body-1", now).await.unwrap(), IdempotencyBegin::InProgress);

    let response = StoredResponse { status: 201, headers: vec![("location".into(), "/x".into())], body: "{}".into() };
    store.complete_idempotency(&org, &key, &response).await.unwrap();
    assert_eq!(store.begin_idempotency(&org, &key, "body-1", now).await.unwrap(), IdempotencyBegin::Replay(response));
    assert_eq!(store.begin_idempotency(&org, &key, "body-2", now).await.unwrap(), IdempotencyBegin::Mismatch);
    // Same client key, other org or other actor: independent.
    assert_eq!(
        store.begin_idempotency(&new_org("test"), &key, "body-2", now).await.unwrap(),
        IdempotencyBegin::Started
    );
    let other_actor = IdempotencyKey::new("apikey:2", "POST /assignments", "retry-me");
    assert_eq!(store.begin_idempotency(&org, &other_actor, "body-2", now).await.unwrap(), IdempotencyBegin::Started);

    // A released key (the first attempt failed with a 5xx) can be claimed again right away…
    store.release_idempotency(&org, &other_actor).await.unwrap();
    assert_eq!(store.begin_idempotency(&org, &other_actor, "body-3", now).await.unwrap(), IdempotencyBegin::Started);
    // …and a crashed attempt's lease runs out.
    let crashed = IdempotencyKey::new("apikey:3", "POST /assignments", "crash");
    assert_eq!(store.begin_idempotency(&org, &crashed, "b", now).await.unwrap(), IdempotencyBegin::Started);
    let later = now + Duration::minutes(2);
    assert_eq!(store.begin_idempotency(&org, &crashed, "b", later).await.unwrap(), IdempotencyBegin::Started);
    // After 24 hours a completed key is free again.
    store
        .complete_idempotency(&org, &key, &StoredResponse { status: 201, headers: vec![], body: String::new() })
        .await
        .unwrap();
    let tomorrow = now + Duration::hours(25);
    assert_eq!(store.begin_idempotency(&org, &key, "body-9", tomorrow).await.unwrap(), IdempotencyBegin::Started);
}

#[tokio::test]
async fn rate_counters_count_per_calendar_minute_and_sliding_hour() {
    let (store, org) = store_and_org().await;
    let key = RateSubject::ApiKey(uuid::Uuid::new_v4());
    let t = Utc.with_ymd_and_hms(2026, 5, 1, 10, 15, 30).unwrap();
    for expected in 1..=3 {
        let counts = store.count_request(&org, key, t).await.unwrap();
        assert_eq!((counts.minute(), counts.hour()), (expected, expected));
    }
    let next_minute = store.count_request(&org, key, t + Duration::minutes(1)).await.unwrap();
    assert_eq!((next_minute.minute(), next_minute.hour()), (1, 4));
    // 11:15:30: the sliding hour is 10:16..11:15, so 10:16's request still counts, 10:15's three do not.
    let an_hour_later = store.count_request(&org, key, t + Duration::hours(1)).await.unwrap();
    assert_eq!((an_hour_later.minute(), an_hour_later.hour()), (1, 2));
    assert_eq!(an_hour_later.per_minute[0], 1, "the oldest minute of the window is 10:16");
    let later_still = store.count_request(&org, key, t + Duration::minutes(61)).await.unwrap();
    assert_eq!((later_still.minute(), later_still.hour()), (1, 2), "10:16 left the window, 11:15 is in it");
    let user = store.count_request(&org, RateSubject::User(UserId(uuid::Uuid::new_v4())), t).await.unwrap();
    assert_eq!(user.hour(), 1, "every caller has counters of its own");
    let other_key = store.count_request(&org, RateSubject::ApiKey(uuid::Uuid::new_v4()), t).await.unwrap();
    assert_eq!(other_key.hour(), 1);
}

#[tokio::test]
async fn audit_log_is_newest_first_with_filters_and_time_range() {
    let (store, org) = store_and_org().await;
    let t0 = Utc.with_ymd_and_hms(2026, 2, 1, 9, 0, 0).unwrap();
    for (i, action) in
        ["assignment.created", "assignment.updated", "assignment.exported", "assignment.updated"].iter().enumerate()
    {
        store.put_audit(&org, &audit_at(action, &format!("a{i}"), t0 + Duration::hours(i as i64)), &[]).await.unwrap();
    }
    let all = store.audit_page(&org, &AuditFilter::default(), 10, None).await.unwrap();
    assert_eq!(all.items.iter().map(|e| e.target_id.as_str()).collect::<Vec<_>>(), ["a3", "a2", "a1", "a0"]);

    let updates = AuditFilter { action: Some("assignment.updated".into()), ..Default::default() };
    assert_eq!(store.audit_page(&org, &updates, 10, None).await.unwrap().items.len(), 2);
    let window =
        AuditFilter { from: Some(t0 + Duration::hours(1)), to: Some(t0 + Duration::hours(2)), ..Default::default() };
    let ids: Vec<String> =
        store.audit_page(&org, &window, 10, None).await.unwrap().items.into_iter().map(|e| e.target_id).collect();
    assert_eq!(ids, ["a2", "a1"], "both ends inclusive");
    let nobody = AuditFilter { actor_email: Some("nobody@example.com".into()), ..Default::default() };
    assert!(store.audit_page(&org, &nobody, 10, None).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn the_bundled_catalog_loads_and_resolves_with_one_read() {
    let (store, capacity) = store_with_capacity().await;
    let catalog = Catalog::bundled().unwrap();
    let written = store.put_catalog(catalog.nodes()).await.unwrap();
    assert!(written > 150);

    capacity.reset();
    let node = store.catalog_node(ContentArea::Practice, TargetType::Topic, "sql-injection").await.unwrap().unwrap();
    assert_eq!(node.path, "OWASP Web Top 10 / A03 Injection / SQL Injection");
    assert_eq!(capacity.requests(), 1);
    let web = store.catalog_node(ContentArea::Practice, TargetType::Category, "web").await.unwrap().unwrap();
    assert_eq!(Some(&web), catalog.node(TargetType::Category, "web"));
    assert!(store.catalog_node(ContentArea::Learn, TargetType::Topic, "sql-injection").await.unwrap().is_none());
    assert!(store.catalog_node(ContentArea::Practice, TargetType::Topic, "x#y").await.is_err());
}
