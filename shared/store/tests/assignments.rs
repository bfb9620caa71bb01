//! Access patterns 1–4 and their transactions, against DynamoDB Local.
#![allow(
    clippy::disallowed_methods,
    reason = "tests date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use chrono::Utc;
use domain::{Activation, AssigneeType, ContentArea, Patch};
use store::{AssignmentFilter, AuditFilter, CursorCodec, StoreError};
use testkit::fixtures::*;
use testkit::stack::{new_org, store_and_org, store_with_capacity};

/// A create's answer commits with the assignment: a retry after an answer that was lost on its way is a
/// replay of it, even though the request's claim was released (the load-and-fault run found such
/// retries made again and answered `duplicate_assignment`, naming their own first create).
#[tokio::test]
async fn a_creates_answer_commits_with_it_so_a_retry_replays_it() {
    let (store, org) = store_and_org().await;
    let a = org_wide(&org, in_days(30));
    let key = store::IdempotencyKey::new("key-1", "POST /assignments", "k-1");
    assert_eq!(
        store.begin_idempotency(&org, &key, "body", Utc::now()).await.unwrap(),
        store::IdempotencyBegin::Started
    );
    let respond = |created: &domain::Assignment| store::StoredResponse {
        status: 201,
        headers: vec![],
        body: created.id.to_string(),
    };
    let audit = audit("assignment.created", &a.id.to_string());
    store.create_assignment_answering(&org, &a, &audit, &[], &[], Some((&key, &respond))).await.unwrap();
    // The answer was lost: the request ends in a 503, which releases a claim still pending.
    store.release_idempotency(&org, &key).await.unwrap();
    let retry = store.begin_idempotency(&org, &key, "body", Utc::now()).await.unwrap();
    assert_eq!(retry, store::IdempotencyBegin::Replay(respond(&a)));
}

#[tokio::test]
async fn create_writes_assignment_audit_and_roster_with_matching_counters() {
    let (store, org) = store_and_org().await;
    let a = org_wide(&org, in_days(30));
    let rows = roster(&a, 24);

    let created =
        store.create_assignment(&org, &a, &audit("assignment.created", &a.id.to_string()), &rows, &[]).await.unwrap();
    assert_eq!((created.aggregates.total_users, created.aggregates.not_started_users), (24, 24));

    let stored = store.get_assignment(&org, a.id).await.unwrap().expect("assignment stored");
    assert_eq!(stored, created);
    let page = store.progress_page(&org, a.id, 100, None).await.unwrap();
    assert_eq!(page.items.len(), 24);
    assert!(page.next.is_none());

    let log = store.audit_page(&org, &AuditFilter::default(), 10, None).await.unwrap();
    assert_eq!(log.items.len(), 1);
    assert_eq!(log.items[0].target_id, a.id.to_string());
}

#[tokio::test]
async fn a_duplicate_active_assignment_is_refused_with_the_existing_id_and_leaves_no_trace() {
    let (store, org) = store_and_org().await;
    let team = uuid::Uuid::new_v4().to_string();
    let first = assignment(AssigneeType::Team, &team, "xxe", in_days(10));
    store
        .create_assignment(&org, &first, &audit("assignment.created", "first"), &roster(&first, 3), &[])
        .await
        .unwrap();

    let second = assignment(AssigneeType::Team, &team, "xxe", in_days(20));
    let err = store
        .create_assignment(&org, &second, &audit("assignment.created", "second"), &roster(&second, 3), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateAssignment { existing_id } if existing_id == first.id), "{err:?}");

    // The failed create wrote nothing: no assignment, no rows, no audit entry.
    assert!(store.get_assignment(&org, second.id).await.unwrap().is_none());
    assert!(store.progress_page(&org, second.id, 10, None).await.unwrap().items.is_empty());
    let log = store.audit_page(&org, &AuditFilter::default(), 10, None).await.unwrap();
    assert_eq!(log.items.iter().map(|e| e.target_id.as_str()).collect::<Vec<_>>(), ["first"]);

    // Another target or another assignee is not a duplicate.
    let other_target = assignment(AssigneeType::Team, &team, "sql-injection", in_days(10));
    store.create_assignment(&org, &other_target, &audit("assignment.created", "t2"), &[], &[]).await.unwrap();
}

#[tokio::test]
async fn large_rosters_commit_in_chunks_and_retries_add_nothing_twice() {
    let (store, org) = store_and_org().await;
    let a = org_wide(&org, in_days(30));
    let rows = roster(&a, 250);
    let created = store.create_assignment(&org, &a, &audit("assignment.created", "big"), &rows, &[]).await.unwrap();
    assert_eq!(created.aggregates.total_users, 250);
    assert_eq!(store.get_assignment(&org, a.id).await.unwrap().unwrap().aggregates.total_users, 250);

    // A retry of the same roster (e.g. after a timeout) skips rows that exist and moves no counter.
    let mut again = rows[200..].to_vec();
    let newcomers = roster(&a, 5);
    again.extend(newcomers.iter().cloned());
    assert_eq!(store.add_roster_rows(&org, &created, &again, chrono::Utc::now().date_naive()).await.unwrap(), 5);
    let stored = store.get_assignment(&org, a.id).await.unwrap().unwrap();
    assert_eq!((stored.aggregates.total_users, stored.aggregates.not_started_users), (255, 255));

    let mut seen = 0;
    let mut next = None;
    loop {
        let page = store.progress_page(&org, a.id, 100, next).await.unwrap();
        seen += page.items.len();
        match page.next {
            Some(key) => next = Some(key),
            None => break,
        }
    }
    assert_eq!(seen, 255, "counters equal the rows present");
}

#[tokio::test]
async fn roster_rows_for_a_missing_assignment_are_refused() {
    let (store, org) = store_and_org().await;
    let ghost = assignment(AssigneeType::Org, org.as_str(), "xxe", in_days(3));
    let err =
        store.add_roster_rows(&org, &ghost, &roster(&ghost, 2), chrono::Utc::now().date_naive()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(store.progress_page(&org, ghost.id, 10, None).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn listing_is_newest_first_filtered_and_paged_with_sealed_cursors() {
    let (store, org) = store_and_org().await;
    let codec = CursorCodec::new("test-secret");
    let user = uuid::Uuid::new_v4().to_string();
    let mut ids = Vec::new();
    for (i, topic) in ["xxe", "sql-injection", "idor", "ssrf-basic", "zip-slip"].into_iter().enumerate() {
        let a = if i % 2 == 0 {
            assignment(AssigneeType::User, &user, topic, in_days(5))
        } else {
            assignment(AssigneeType::Org, org.as_str(), topic, in_days(5))
        };
        store.create_assignment(&org, &a, &audit("assignment.created", topic), &[], &[]).await.unwrap();
        ids.push(a.id);
    }
    ids.reverse();

    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let start = cursor.as_deref().map(|c| codec.open(&org, "assignments", c).unwrap());
        let page = store.list_assignments(&org, &AssignmentFilter::default(), 2, start).await.unwrap();
        assert!(page.items.len() <= 2);
        listed.extend(page.items.iter().map(|a| a.id));
        match page.next {
            Some(key) => cursor = Some(codec.seal(&org, "assignments", &key)),
            None => break,
        }
    }
    assert_eq!(listed, ids, "newest first, every item once");

    let filter = AssignmentFilter { assignee_type: Some(AssigneeType::User), ..Default::default() };
    let users_only = store.list_assignments(&org, &filter, 50, None).await.unwrap();
    assert_eq!(users_only.items.len(), 3);
    let filter = AssignmentFilter {
        assignee_id: Some(user.clone()),
        content_area: Some(ContentArea::Learn),
        ..Default::default()
    };
    assert!(store.list_assignments(&org, &filter, 50, None).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn overdue_filter_finds_active_late_unfinished_assignments() {
    let (store, org) = store_and_org().await;
    let a = assignment(AssigneeType::Org, org.as_str(), "xxe", in_days(0));
    store.create_assignment(&org, &a, &audit("assignment.created", "a"), &roster(&a, 2), &[]).await.unwrap();
    let empty = assignment(AssigneeType::Org, org.as_str(), "idor", in_days(0));
    store.create_assignment(&org, &empty, &audit("assignment.created", "b"), &[], &[]).await.unwrap();

    let today = AssignmentFilter { overdue_on: Some(in_days(0)), ..Default::default() };
    assert!(store.list_assignments(&org, &today, 50, None).await.unwrap().items.is_empty(), "due today is not late");
    let tomorrow = AssignmentFilter { overdue_on: Some(in_days(1)), ..Default::default() };
    let late = store.list_assignments(&org, &tomorrow, 50, None).await.unwrap();
    assert_eq!(late.items.iter().map(|x| x.id).collect::<Vec<_>>(), [a.id], "nobody to chase on an empty roster");
}

#[tokio::test]
async fn patches_check_version_move_indexes_and_free_the_duplicate_lock() {
    let (store, org) = store_and_org().await;
    let team = uuid::Uuid::new_v4().to_string();
    let a = assignment(AssigneeType::Team, &team, "xxe", in_days(10));
    let a = store.create_assignment(&org, &a, &audit("assignment.created", "a"), &[], &[]).await.unwrap();
    assert_eq!(store.active_assignments_for(&org, AssigneeType::Team, &team).await.unwrap().len(), 1);

    // A stale version is refused and changes nothing (no audit entry either).
    let (next, activation) =
        a.patched(&Patch { note: Some(Some("n".into())), ..Default::default() }, Utc::now()).unwrap();
    let mut stale = a.clone();
    stale.version = 7;
    let err = store
        .update_assignment(&org, &stale, &next, activation, &audit("assignment.updated", "stale"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict), "{err:?}");
    assert_eq!(store.audit_page(&org, &AuditFilter::default(), 10, None).await.unwrap().items.len(), 1);

    store.update_assignment(&org, &a, &next, activation, &audit("assignment.updated", "note"), &[]).await.unwrap();
    let stored = store.get_assignment(&org, a.id).await.unwrap().unwrap();
    assert_eq!((stored.note.as_deref(), stored.version), (Some("n"), 2));

    // Deactivate: out of the active index, duplicate lock freed.
    let (off, activation) =
        stored.patched(&Patch { is_active: Some(false), ..Default::default() }, Utc::now()).unwrap();
    assert_eq!(activation, Activation::Deactivated);
    store
        .update_assignment(&org, &stored, &off, activation, &audit("assignment.deactivated", "off"), &[])
        .await
        .unwrap();
    assert!(store.active_assignments_for(&org, AssigneeType::Team, &team).await.unwrap().is_empty());
    let replacement = assignment(AssigneeType::Team, &team, "xxe", in_days(40));
    store.create_assignment(&org, &replacement, &audit("assignment.created", "r"), &[], &[]).await.unwrap();

    // Reactivating the old one now collides with the replacement.
    let (on, activation) = off.patched(&Patch { is_active: Some(true), ..Default::default() }, Utc::now()).unwrap();
    let err = store
        .update_assignment(&org, &off, &on, activation, &audit("assignment.reactivated", "on"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateAssignment { existing_id } if existing_id == replacement.id), "{err:?}");
    assert!(!store.get_assignment(&org, a.id).await.unwrap().unwrap().is_active, "history kept, still inactive");

    // Every successful change has exactly one audit entry, newest first.
    let actions: Vec<String> = store
        .audit_page(&org, &AuditFilter::default(), 10, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["assignment.created", "assignment.deactivated", "assignment.updated", "assignment.created"]);
}

/// PATCH writes the patchable fields of the serialised assignment and nothing else: every one of
/// them lands (the store restates none of them), and counters a progress change moved after the
/// patch read the assignment survive it, as a whole-item put would not let them.
#[tokio::test]
async fn a_patch_stores_every_patchable_field_and_keeps_counters_moved_meanwhile() {
    let (store, org) = store_and_org().await;
    let mut a = assignment(AssigneeType::Org, org.as_str(), "xxe", in_days(10));
    a.is_mandatory = false;
    a.note = Some("old".into());
    let rows = roster(&a, 3);
    let a = store.create_assignment(&org, &a, &audit("assignment.created", "a"), &rows, &[]).await.unwrap();
    let read = store.get_assignment(&org, a.id).await.unwrap().unwrap();

    // A learner's row changes after the patch read the assignment: its counters move, not its version.
    let before = store.progress_row(&org, a.id, rows[0].user_id).await.unwrap().unwrap();
    let mut after = before.clone();
    after.exemption = Some(domain::Exemption { reason: "on leave".into(), at: Utc::now(), by: "user:admin".into() });
    store.apply_progress(&org, &read, &before, &after, today(), &store::announce_nothing).await.unwrap();

    let patch = Patch {
        deadline: Some(in_days(20)),
        is_mandatory: Some(true),
        note: Some(None),
        is_active: Some(true),
        recurrence: Some(Some(domain::Recurrence { every_months: 12, window_days: 30 })),
    };
    let (next, activation) = read.patched(&patch, Utc::now()).unwrap();
    store.update_assignment(&org, &read, &next, activation, &audit("assignment.updated", "all"), &[]).await.unwrap();

    let stored = store.get_assignment(&org, a.id).await.unwrap().unwrap();
    let patched = |x: &domain::Assignment| {
        (x.deadline, x.is_mandatory, x.note.clone(), x.is_active, x.recurrence, x.version, x.updated_at)
    };
    assert_eq!(patched(&stored), patched(&next));
    assert_eq!((stored.units_rev, stored.compliance_sync), (next.units_rev, next.compliance_sync));
    assert_ne!(stored.aggregates, read.aggregates, "the exemption's counters are still there");
    assert!(!store.repair_counters(&org, a.id).await.unwrap(), "counters equal a recount of the rows");
}

/// A patch that starts a roster run writes the run with its status, whatever the status it read:
/// the worker may have finished the previous run since (which moves no version), and the new run's
/// roster must still say `building` (the review caught a patch that wrote the run alone).
#[tokio::test]
async fn a_new_roster_run_is_written_with_its_status_even_after_a_run_finished_meanwhile() {
    let (store, org) = store_and_org().await;
    let mut a = assignment(AssigneeType::Org, org.as_str(), "xxe", in_days(10));
    let first = uuid::Uuid::now_v7();
    a.roster_status = domain::RosterStatus::Building;
    a.roster_run = Some(first);
    let a = store.create_assignment(&org, &a, &audit("assignment.created", "a"), &[], &[]).await.unwrap();
    let read = store.get_assignment(&org, a.id).await.unwrap().unwrap();
    assert_eq!(read.roster_status, domain::RosterStatus::Building);
    assert!(store.finish_roster(&org, a.id, Some(first)).await.unwrap(), "the first run finishes");

    let patch = Patch {
        recurrence: Some(Some(domain::Recurrence { every_months: 12, window_days: 30 })),
        ..Default::default()
    };
    let (mut next, activation) = read.patched(&patch, Utc::now()).unwrap();
    let second = uuid::Uuid::now_v7();
    (next.roster_status, next.roster_run) = (domain::RosterStatus::Building, Some(second));
    store.update_assignment(&org, &read, &next, activation, &audit("assignment.updated", "r"), &[]).await.unwrap();
    let stored = store.get_assignment(&org, a.id).await.unwrap().unwrap();
    assert_eq!((stored.roster_status, stored.roster_run), (domain::RosterStatus::Building, Some(second)));
}

#[tokio::test]
async fn patching_a_missing_assignment_is_not_found() {
    let (store, org) = store_and_org().await;
    let a = assignment(AssigneeType::Org, org.as_str(), "xxe", in_days(10));
    let (next, activation) = a.patched(&Patch { is_mandatory: Some(false), ..Default::default() }, Utc::now()).unwrap();
    let err =
        store.update_assignment(&org, &a, &next, activation, &audit("assignment.updated", "x"), &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

#[tokio::test]
async fn a_users_rows_are_found_through_the_user_index() {
    let (store, org) = store_and_org().await;
    let a = assignment(AssigneeType::Org, org.as_str(), "xxe", in_days(10));
    let b = assignment(AssigneeType::Org, org.as_str(), "idor", in_days(10));
    let rows_a = roster(&a, 3);
    let mut rows_b = roster(&b, 2);
    rows_b[0].user_id = rows_a[0].user_id;
    store.create_assignment(&org, &a, &audit("assignment.created", "a"), &rows_a, &[]).await.unwrap();
    store.create_assignment(&org, &b, &audit("assignment.created", "b"), &rows_b, &[]).await.unwrap();

    let mine = store.user_progress_rows(&org, rows_a[0].user_id).await.unwrap();
    let mut ids: Vec<_> = mine.iter().map(|r| r.assignment_id).collect();
    ids.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(store.get_assignments(&org, &ids).await.unwrap().len(), 2);
    assert!(store.progress_row(&org, a.id, rows_a[0].user_id).await.unwrap().is_some());
}

#[tokio::test]
async fn progress_pages_cross_the_one_megabyte_boundary() {
    let (store, capacity) = store_with_capacity().await;
    let org = new_org("test");
    let a = org_wide(&org, in_days(10));
    // ~40 KB rows: 40 of them are ~1.6 MB, more than one DynamoDB page.
    let mut rows = roster(&a, 40);
    for row in &mut rows {
        for i in 0..700u16 {
            row.completed.insert(
                format!("c:padding-topic-with-a-long-slug-{i}:{i}"),
                domain::CompletedItem { score: Some(99.5), completed_at: Utc::now() },
            );
        }
    }
    store.create_assignment(&org, &a, &audit("assignment.created", "big"), &rows, &[]).await.unwrap();

    capacity.reset();
    let page = store.progress_page(&org, a.id, 200, None).await.unwrap();
    assert_eq!(page.items.len(), 40, "the store followed LastEvaluatedKey to fill the page");
    assert!(page.next.is_none());
    assert!(capacity.requests() >= 2, "expected at least two Query pages, got {}", capacity.requests());
    assert!(capacity.reads() > 100.0, "large rows consume capacity ({} RCU)", capacity.reads());
}

/// A filter that matches nothing cannot make one request read the whole org: a request reads at most
/// `MAX_PAGES_PER_REQUEST` pages of `FILTERED_PAGE_SIZE` and hands back a cursor, even with no items.
#[tokio::test]
async fn a_filtered_list_reads_a_bounded_number_of_pages_and_says_where_to_go_on() {
    let (store, capacity) = store_with_capacity().await;
    let org = new_org("test");
    let codec = CursorCodec::new("test-secret");
    let total: usize = 650;
    let mut pending = Vec::new();
    for _ in 0..total {
        let a = assignment(AssigneeType::User, &uuid::Uuid::new_v4().to_string(), "xxe", in_days(5));
        let (store, org) = (store.clone(), org.clone());
        pending.push(tokio::spawn(async move {
            store.create_assignment(&org, &a, &audit("assignment.created", "xxe"), &[], &[]).await.unwrap()
        }));
        if pending.len() == 16 {
            for task in pending.drain(..) {
                task.await.unwrap();
            }
        }
    }
    for task in pending {
        task.await.unwrap();
    }

    let nobody = AssignmentFilter { assignee_id: Some(uuid::Uuid::new_v4().to_string()), ..Default::default() };
    let mut cursor: Option<String> = None;
    let mut requests_per_call = Vec::new();
    loop {
        capacity.reset();
        let start = cursor.as_deref().map(|c| codec.open(&org, "assignments", c).unwrap());
        let page = store.list_assignments(&org, &nobody, 1, start).await.unwrap();
        assert!(page.items.is_empty());
        requests_per_call.push(capacity.requests());
        eprintln!(
            "  request {}: {} Queries, {} read units",
            requests_per_call.len(),
            capacity.requests(),
            capacity.reads()
        );
        match page.next {
            Some(key) => cursor = Some(codec.seal(&org, "assignments", &key)),
            None => break,
        }
        assert!(requests_per_call.len() < 10, "the listing ends: {requests_per_call:?}");
    }
    eprintln!("filtered list, no match, 650 assignments: Queries per request {requests_per_call:?}");
    let cap = store::MAX_PAGES_PER_REQUEST as u64;
    assert!(requests_per_call.iter().all(|r| *r <= cap), "at most {cap} Queries per request: {requests_per_call:?}");
    let pages = total.div_ceil(store::FILTERED_PAGE_SIZE as usize) as u64;
    assert_eq!(requests_per_call.iter().sum::<u64>(), pages, "every item read once over the cursors");
    assert_eq!(requests_per_call[0], cap, "the first request stops at the cap and hands back a cursor");

    // A filter every item matches fills `limit` from the first page.
    capacity.reset();
    let everyone = AssignmentFilter { assignee_type: Some(AssigneeType::User), ..Default::default() };
    let page = store.list_assignments(&org, &everyone, 3, None).await.unwrap();
    assert_eq!((page.items.len(), page.next.is_some(), capacity.requests()), (3, true, 1));
}
