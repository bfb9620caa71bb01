//! Pattern 15 against DynamoDB Local: active users by email, SARIF uploads, and the one transaction an
//! ingestion's individual assignments commit in.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use chrono::{Duration, Utc};
use domain::{AssigneeType, Role, SarifUpload, Scan, Source, UploadStatus, User, UserId, event::DomainEvent};
use store::{IdempotencyBegin, IdempotencyKey, StoreError, StoredResponse};
use testkit::fixtures::*;
use testkit::stack::{new_org, store, store_and_org};

fn user(email: &str) -> User {
    User {
        user_id: UserId(uuid::Uuid::new_v4()),
        name: "Ada Lovelace".into(),
        email: email.into(),
        role: Role::Learner,
        team_id: None,
        is_active: true,
        updated_at: Utc::now(),
        facets: Default::default(),
    }
}

#[tokio::test]
async fn the_active_user_is_found_by_email_whatever_its_case_and_only_in_their_org() {
    let store = store().await;
    let (acme, rival) = (new_org("test"), new_org("test"));
    let ada = user("Ada.Lovelace@Acme.example");
    store.put_user(&acme, &ada, chrono::Utc::now()).await.unwrap();

    for spelling in ["ada.lovelace@acme.example", "ADA.LOVELACE@ACME.EXAMPLE", " Ada.Lovelace@Acme.example "] {
        let found = store.active_user_by_email(&acme, spelling).await.unwrap();
        assert_eq!(found.map(|u| u.user_id), Some(ada.user_id), "{spelling}");
    }
    assert!(store.active_user_by_email(&rival, "ada.lovelace@acme.example").await.unwrap().is_none());
    assert!(store.active_user_by_email(&acme, "grace@acme.example").await.unwrap().is_none());

    // Deactivated: no longer found; a new email replaces the old one in the index.
    let mut moved = ada.clone();
    moved.email = "ada@new.example".into();
    moved.updated_at += Duration::seconds(1);
    store.put_user(&acme, &moved, chrono::Utc::now()).await.unwrap();
    assert!(store.active_user_by_email(&acme, "ada.lovelace@acme.example").await.unwrap().is_none());
    assert!(store.active_user_by_email(&acme, "ADA@new.example").await.unwrap().is_some());
    let mut gone = moved.clone();
    gone.is_active = false;
    gone.updated_at += Duration::seconds(1);
    store.put_user(&acme, &gone, chrono::Utc::now()).await.unwrap();
    assert!(store.active_user_by_email(&acme, "ada@new.example").await.unwrap().is_none());
}

/// An individual, optional assignment of `topic` for `user`, with its audit entry and row.
fn individual(user: UserId, topic: &str) -> store::IndividualAssignment {
    let mut a = assignment(AssigneeType::User, &user.to_string(), topic, in_days(14));
    a.is_mandatory = false;
    let row = a.new_row(user, Source::Individual, Utc::now());
    store::IndividualAssignment { assignment: a, audit: audit("assignment.created", topic), row }
}

#[tokio::test]
async fn an_ingestion_commits_all_its_assignments_with_its_response_or_nothing() {
    let (store, org) = store_and_org().await;
    let learner = UserId(uuid::Uuid::new_v4());
    let key = IdempotencyKey::new("sarif", "POST /sarif", "acme/shop\n1111111");
    let response = StoredResponse { status: 200, headers: Vec::new(), body: "{\"ingestionId\":1}".into() };
    assert_eq!(store.begin_idempotency(&org, &key, "h", Utc::now()).await.unwrap(), IdempotencyBegin::Started);
    let first = vec![individual(learner, "sql-injection"), individual(learner, "reflected-xss")];
    let event = DomainEvent {
        id: uuid::Uuid::new_v4(),
        detail_type: "sarif.ingested".into(),
        detail: serde_json::json!({"orgId": org}),
        time: Utc::now(),
    };
    store
        .create_individual_assignments(&org, &first, std::slice::from_ref(&event), Some((&key, &response)))
        .await
        .unwrap();
    for store::IndividualAssignment { assignment: a, .. } in &first {
        let stored = store.get_assignment(&org, a.id).await.unwrap().unwrap();
        assert_eq!(stored.aggregates.total_users, 1, "counters equal the one row");
        assert!(store.progress_row(&org, a.id, learner).await.unwrap().is_some());
    }
    assert_eq!(
        store.begin_idempotency(&org, &key, "h", Utc::now()).await.unwrap(),
        IdempotencyBegin::Replay(response.clone()),
        "the response committed with them"
    );

    // A second ingestion with one topic the learner already has individually: refused as a whole.
    let key2 = IdempotencyKey::new("sarif", "POST /sarif", "acme/shop\n2222222");
    store.begin_idempotency(&org, &key2, "h", Utc::now()).await.unwrap();
    let second = vec![individual(learner, "os-command-injection"), individual(learner, "sql-injection")];
    let err = store.create_individual_assignments(&org, &second, &[event], Some((&key2, &response))).await.unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateAssignment { existing_id } if existing_id == first[0].assignment.id),
        "{err:?}"
    );
    assert!(store.get_assignment(&org, second[0].assignment.id).await.unwrap().is_none(), "nothing of it was written");
    assert_eq!(store.user_progress_rows(&org, learner).await.unwrap().len(), 2);
    assert_eq!(store.begin_idempotency(&org, &key2, "h", Utc::now()).await.unwrap(), IdempotencyBegin::InProgress);

    // More than one transaction holds is refused before anything is sent.
    let many: Vec<_> = (0..=store::MAX_INDIVIDUAL_ASSIGNMENTS).map(|i| individual(learner, &format!("t{i}"))).collect();
    assert!(store.create_individual_assignments(&org, &many, &[], None).await.is_err());
}

#[tokio::test]
async fn an_upload_ends_once_and_only_in_its_org() {
    let store = store().await;
    let (acme, rival) = (new_org("test"), new_org("test"));
    let scan = Scan::new(Some("ci"), Some("acme/shop"), None, Some("abcdef1"), Some("a@b.example")).unwrap();
    let upload = SarifUpload {
        upload_id: uuid::Uuid::now_v7(),
        scan,
        actor_id: "apikey:k".into(),
        actor_email: None,
        actor_role: Role::ApiKey,
        bytes: Some(4_096),
        created_at: Utc::now(),
        status: UploadStatus::Pending,
        outcome: None,
        failure: None,
    };
    store.put_sarif_upload(&acme, &upload).await.unwrap();
    assert!(store.put_sarif_upload(&acme, &upload).await.is_err(), "an id is never reused");
    assert_eq!(store.sarif_upload(&acme, upload.upload_id).await.unwrap(), Some(upload.clone()));
    assert!(store.sarif_upload(&rival, upload.upload_id).await.unwrap().is_none());

    let mut ingested = upload.clone();
    ingested.status = UploadStatus::Ingested;
    ingested.outcome = Some("{}".into());
    assert!(store.finish_sarif_upload(&acme, &ingested).await.unwrap());
    let mut failed = upload.clone();
    failed.status = UploadStatus::Failed;
    failed.failure = Some("late".into());
    assert!(!store.finish_sarif_upload(&acme, &failed).await.unwrap(), "the first outcome stays");
    assert_eq!(store.sarif_upload(&acme, upload.upload_id).await.unwrap(), Some(ingested));
    assert!(store.finish_sarif_upload(&acme, &upload).await.is_err(), "pending is not an end");
}

#[tokio::test]
async fn every_topic_a_cwe_maps_to_resolves_in_the_loaded_catalog() {
    let store = store().await;
    let catalog = domain::Catalog::bundled().unwrap();
    store.put_catalog(catalog.nodes()).await.unwrap();
    let mut topics = std::collections::BTreeSet::new();
    for (cwe, slug) in catalog.cwe_topics() {
        if topics.insert(slug.clone()) {
            let node = store.catalog_node(domain::ContentArea::Practice, domain::TargetType::Topic, slug.as_str());
            let node = node.await.unwrap().unwrap_or_else(|| panic!("CWE-{cwe}: topic '{slug}' is not in the table"));
            assert_eq!(node.units.len(), 1, "a topic tracks its own challenges");
        }
    }
    assert_eq!(topics.len(), 92, "topics that teach at least one CWE");
}
