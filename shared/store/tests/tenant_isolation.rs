//! One org's keys never reach another org's items, whatever ids a request carries.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use domain::{AssigneeType, OrgId};
use store::{AssignmentFilter, AuditFilter, CursorCodec, StoreError};
use testkit::fixtures::*;
use testkit::stack::{new_org, store};

#[tokio::test]
async fn another_org_cannot_read_list_patch_or_page_into_an_assignment() {
    let store = store().await;
    let acme = new_org("test");
    let rival = new_org("test");
    let a = assignment(AssigneeType::Org, acme.as_str(), "sql-injection", in_days(10));
    let rows = roster(&a, 5);
    store.create_assignment(&acme, &a, &audit("assignment.created", "a"), &rows, &[]).await.unwrap();

    // Same assignment id, other org: nothing.
    assert!(store.get_assignment(&rival, a.id).await.unwrap().is_none());
    assert!(store.get_assignments(&rival, &[a.id]).await.unwrap().is_empty());
    assert!(store.progress_page(&rival, a.id, 50, None).await.unwrap().items.is_empty());
    assert!(store.progress_row(&rival, a.id, rows[0].user_id).await.unwrap().is_none());
    assert!(store.user_progress_rows(&rival, rows[0].user_id).await.unwrap().is_empty());
    assert!(store.list_assignments(&rival, &AssignmentFilter::default(), 50, None).await.unwrap().items.is_empty());
    assert!(store.audit_page(&rival, &AuditFilter::default(), 50, None).await.unwrap().items.is_empty());
    assert!(store.active_assignments_for(&rival, AssigneeType::Org, acme.as_str()).await.unwrap().is_empty());

    // A patch through the other org finds nothing to change.
    let (next, activation) =
        a.patched(&domain::Patch { is_active: Some(false), ..Default::default() }, chrono::Utc::now()).unwrap();
    let err = store
        .update_assignment(&rival, &a, &next, activation, &audit("assignment.updated", "x"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(store.get_assignment(&acme, a.id).await.unwrap().unwrap().is_active);
}

#[tokio::test]
async fn a_cursor_from_one_org_cannot_page_another() {
    let store = store().await;
    let codec = CursorCodec::new("test-secret");
    let acme = new_org("test");
    for topic in ["xxe", "idor", "zip-slip"] {
        let a = assignment(AssigneeType::Org, acme.as_str(), topic, in_days(10));
        store.create_assignment(&acme, &a, &audit("assignment.created", topic), &[], &[]).await.unwrap();
    }
    let page = store.list_assignments(&acme, &AssignmentFilter::default(), 1, None).await.unwrap();
    let cursor = codec.seal(&acme, "assignments", &page.next.unwrap());
    let rival = OrgId::parse("rival-org").unwrap();
    assert!(matches!(codec.open(&rival, "assignments", &cursor), Err(StoreError::InvalidCursor)));
    assert!(codec.open(&acme, "assignments", &cursor).is_ok());
}
