//! The roster and export workers fair across orgs, end to end (API → outbox → publisher → lanes →
//! queue → worker). Its own test binary (so its own process): here the test is the workers' queue
//! mappings, taking one request at a time — a worker at its concurrency, where the order of what runs
//! next is everything — so it can say which org's request a freed slot takes.
#![allow(
    clippy::disallowed_methods,
    reason = "the test's requests are dated by the real time, as the service's own are"
)]

use domain::{Lane, OrgId};
use gateway::seed::SeededOrg;
use serde_json::{Value, json};
use testkit::e2e::{Env, eventually};

async fn env() -> Env {
    Env::start_with(|template| {
        template.queues.retain(|m| !matches!(m.function.as_str(), "RosterWorkerFunction" | "ExportWorkerFunction"))
    })
    .await
}

fn queue_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run this test through infra/test.sh"))
}

/// What a mapping does with one message: takes the next of `queue` (waiting up to 30 s for one),
/// invokes `function` with it as Lambda's SQS event and deletes it unless the answer names it failed.
/// The org whose request it was, and the request. A request of an org that is not one of `orgs` (the
/// stack is shared with earlier test binaries, whose committed requests the publisher sends on) is
/// run and passed over.
async fn take_next(env: &Env, queue: &str, function: &str, orgs: &[&SeededOrg]) -> (String, Value) {
    loop {
        let message = eventually("a request on the worker's queue", || async {
            let got =
                env.sqs.receive_message().queue_url(queue).max_number_of_messages(1).wait_time_seconds(1).send().await;
            got.ok()?.messages.unwrap_or_default().into_iter().next()
        })
        .await;
        let body: Value = serde_json::from_str(message.body().unwrap()).unwrap();
        let event = json!({"Records": [{
            "messageId": message.message_id(), "receiptHandle": message.receipt_handle(), "body": message.body(),
            "eventSource": "aws:sqs", "attributes": {"ApproximateReceiveCount": "1"},
        }]});
        let answer = env.invoke(function, event).await;
        assert_eq!(answer["batchItemFailures"], json!([]), "{function} failed {body}: {answer}");
        env.sqs
            .delete_message()
            .queue_url(queue)
            .receipt_handle(message.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
        let org = body["detail"]["orgId"].as_str().unwrap().to_owned();
        if orgs.iter().any(|o| o.org_id.as_str() == org) {
            return (org, body);
        }
    }
}

/// Nothing more of `orgs` on `queue` for a few seconds (it only looks).
async fn assert_none_of(env: &Env, queue: &str, orgs: &[&SeededOrg]) {
    let seen = testkit::e2e::peek_until(&env.sqs, queue, std::time::Duration::from_secs(3), |m| {
        let body: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_default();
        orgs.iter().any(|o| body["detail"]["orgId"] == o.org_id.as_str())
    })
    .await;
    assert!(seen.is_none(), "{queue} holds another request: {seen:?}");
}

/// A message no worker can take: the worker names it failed and brings its retry forward (a minute,
/// not the queue's visibility timeout; `ChangeMessageVisibility`). Then the test deletes it.
async fn a_message_that_is_no_request_fails(env: &Env, queue: &str, function: &str) {
    env.sqs.send_message().queue_url(queue).message_body("not a request").send().await.unwrap();
    let message = eventually("the message", || async {
        let got = env.sqs.receive_message().queue_url(queue).wait_time_seconds(1).send().await.ok()?;
        got.messages.unwrap_or_default().into_iter().find(|m| m.body() == Some("not a request"))
    })
    .await;
    let event = json!({"Records": [{"messageId": message.message_id(), "receiptHandle": message.receipt_handle(),
                                    "body": message.body(), "eventSource": "aws:sqs"}]});
    let answer = env.invoke(function, event).await;
    assert_eq!(answer["batchItemFailures"], json!([{"itemIdentifier": message.message_id()}]), "{answer}");
    env.sqs.delete_message().queue_url(queue).receipt_handle(message.receipt_handle().unwrap()).send().await.unwrap();
}

/// Which of the orgs `id` is: "A", "B" or "C".
fn name_of(orgs: &[(&str, &SeededOrg)], id: &str) -> String {
    orgs.iter().find(|(_, org)| org.org_id.as_str() == id).map(|(name, _)| (*name).to_owned()).unwrap()
}

/// Orgs A and B ask for three exports each (the most an org runs at once), then org C for one, while
/// the worker takes one request at a time. Each org has one request in the queue, the others wait in
/// line in the table, so the worker runs A, B, C, then A's and B's next ones in turn: C's export runs
/// third, not seventh behind A's and B's backlogs (as a plain queue would have it). Every export ends
/// ready, each once, and every lane ends free.
#[tokio::test]
async fn one_orgs_queued_exports_do_not_keep_another_orgs_from_running_next() {
    let env = env().await;
    let queue = queue_url(events::work::EXPORT_QUEUE_URL_VAR);
    let (a, b, c) =
        (env.org_with_prefix("fair").await, env.org_with_prefix("fair").await, env.org_with_prefix("fair").await);
    let orgs = [("A", &a), ("B", &b), ("C", &c)];
    let mut exports = Vec::new();
    for (org, count) in [(&a, 3), (&b, 3), (&c, 1)] {
        for _ in 0..count {
            let requested = env
                .post("/assignments/exports")
                .token(org.api_keys.admin.as_str())
                .json(json!({"kind": "assignments"}))
                .await;
            assert_eq!(requested.status, 202, "{:?}", requested.body);
            exports.push((org, requested.body["exportId"].as_str().unwrap().to_owned()));
        }
    }
    // Each org's first request holds its lane; the others wait in line.
    for (org, waiting) in [(&a, 2), (&b, 2), (&c, 0)] {
        let id = OrgId::parse(org.org_id.as_str()).unwrap();
        let lane = eventually("the org's requests admitted", || async {
            let lane = env.store.lane(&id, Lane::Export).await.unwrap();
            (lane.holder.is_some() && lane.waiting == waiting).then_some(lane)
        })
        .await;
        assert_eq!(lane.waiting, waiting);
    }
    let mut order = Vec::new();
    for _ in 0..7 {
        let (org, request) = take_next(&env, &queue, "ExportWorkerFunction", &[&a, &b, &c]).await;
        assert_eq!(request["detail-type"], "export.requested", "{request}");
        order.push(name_of(&orgs, &org));
    }
    assert_eq!(order, ["A", "B", "C", "A", "B", "A", "B"], "the worker's runs, by org");
    assert_none_of(&env, &queue, &[&a, &b, &c]).await;
    for (org, export) in &exports {
        let reply = env.get(&format!("/assignments/exports/{export}")).token(org.api_keys.admin.as_str()).await;
        assert_eq!(reply.body["status"], "ready", "{:?}", reply.body);
        let id = OrgId::parse(org.org_id.as_str()).unwrap();
        assert_eq!(env.store.lane(&id, Lane::Export).await.unwrap(), store::LaneState::default(), "lane freed");
    }
    a_message_that_is_no_request_fails(&env, &queue, "ExportWorkerFunction").await;
}

/// The roster worker's lane does the same for roster runs (here two orgs' runs of assignments that do
/// not exist, which the worker drops: what is checked is who runs next). And a lane whose holder never
/// ran — its message lost past its retries, as a parked one is — is handed on by the hourly reconcile
/// once the holder's time has run out: the request in line behind it reaches the queue.
#[tokio::test]
async fn roster_requests_take_turns_across_orgs_and_reconcile_hands_on_a_stuck_lane() {
    let env = env().await;
    let queue = queue_url(events::work::ROSTER_QUEUE_URL_VAR);
    let (a, b) = (env.org_with_prefix("fair").await, env.org_with_prefix("fair").await);
    let orgs = [("A", &a), ("B", &b)];
    let request = |org: &SeededOrg| {
        let id = OrgId::parse(org.org_id.as_str()).unwrap();
        let from = service::roster::Position::of_request(&id, &json!({})).unwrap();
        let event = service::roster::requested(
            &id,
            domain::AssignmentId::new_v7(),
            &from,
            uuid::Uuid::now_v7(),
            chrono::Utc::now(),
        );
        (id, event)
    };
    for org in [&a, &a, &a, &b] {
        let (id, event) = request(org);
        env.store.commit_events(&id, &[event]).await.unwrap();
    }
    for (org, waiting) in [(&a, 2), (&b, 0)] {
        let id = OrgId::parse(org.org_id.as_str()).unwrap();
        eventually("the org's requests admitted", || async {
            let lane = env.store.lane(&id, Lane::Roster).await.unwrap();
            (lane.holder.is_some() && lane.waiting == waiting).then_some(())
        })
        .await;
    }
    let mut order = Vec::new();
    for _ in 0..4 {
        let (org, request) = take_next(&env, &queue, "RosterWorkerFunction", &[&a, &b]).await;
        assert_eq!(request["detail-type"], "assignment.roster_requested", "{request}");
        order.push(name_of(&orgs, &org));
    }
    assert_eq!(order, ["A", "B", "A", "A"], "the worker's runs, by org");
    assert_none_of(&env, &queue, &[&a, &b]).await;

    // A stuck lane: the holder's message is taken off the queue and never run.
    let (stuck, waiting) = (request(&b), request(&b));
    env.store.commit_events(&stuck.0, std::slice::from_ref(&stuck.1)).await.unwrap();
    let lost = eventually("the holder on the queue", || async {
        let got = env.sqs.receive_message().queue_url(&queue).wait_time_seconds(1).send().await.ok()?;
        got.messages
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.body().is_some_and(|b| b.contains(&stuck.1.id.to_string())))
    })
    .await;
    env.sqs.delete_message().queue_url(&queue).receipt_handle(lost.receipt_handle().unwrap()).send().await.unwrap();
    env.store.commit_events(&waiting.0, std::slice::from_ref(&waiting.1)).await.unwrap();
    eventually("B's second request in line", || async {
        (env.store.lane(&stuck.0, Lane::Roster).await.unwrap().waiting == 1).then_some(())
    })
    .await;
    // Within the holder's time, reconcile leaves the lane alone.
    env.run_reconcile(&stuck.0).await;
    assert_eq!(env.store.lane(&stuck.0, Lane::Roster).await.unwrap().holder, Some(stuck.1.id));
    // Past it (the org's clock moved on, the hourly reconcile firing), the request in line is handed on.
    let hold = chrono::Duration::from_std(service::lanes::QUEUED_HOLD).unwrap();
    env.advance_clock_firing(&stuck.0, hold + chrono::Duration::hours(1), &["ReconcileFunction"]).await;
    let lane = eventually("the lane handed on", || async {
        let lane = env.store.lane(&stuck.0, Lane::Roster).await.unwrap();
        (lane.holder != Some(stuck.1.id)).then_some(lane)
    })
    .await;
    assert_eq!(lane.waiting, 0);
    let (org, request) = take_next(&env, &queue, "RosterWorkerFunction", &[&b]).await;
    assert_eq!(org, b.org_id.as_str());
    // The reissued request: a new id, the same request.
    assert_eq!(request["detail"]["run"], waiting.1.detail["run"], "{request}");
    assert_ne!(request["id"], json!(waiting.1.id));
    assert_eq!(request["id"], json!(lane.holder.unwrap()));
    assert_none_of(&env, &queue, &[&a, &b]).await;
    a_message_that_is_no_request_fails(&env, &queue, "RosterWorkerFunction").await;
}
