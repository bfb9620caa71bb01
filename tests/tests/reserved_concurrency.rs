//! Reserved concurrency in the local stack, end to end. Its own test binary (so its own process): it
//! takes every slot of the export worker, which the process's other tests would otherwise find taken.

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::e2e::{Env, eventually};
/// The export worker runs at most its reserved concurrency (the template's default, 5) at once: with
/// every slot taken, a requested export's invocation is throttled and its message kept (the queue brings
/// it back after its visibility timeout), and the export runs once a slot frees. Nothing is lost.
#[tokio::test]
async fn an_export_waits_while_its_worker_is_at_its_reserved_concurrency_and_is_not_lost() {
    let (env, org) = Env::with_org().await;
    let key = org.api_keys.admin.as_str();
    let concurrency = gateway::concurrency::Concurrency::shared();
    let worker = "ExportWorkerFunction";
    // Five exports running elsewhere, as far as the worker's concurrency goes.
    let running = concurrency.hold(worker, 5).await.expect("the template reserves the worker's concurrency");
    let throttled_before = concurrency.throttled(worker);
    let requested = env.post("/assignments/exports").token(key).json(json!({"kind": "assignments"})).await;
    assert_eq!(requested.status, StatusCode::ACCEPTED, "{:?}", requested.body);
    let path = format!("/assignments/exports/{}", requested.body["exportId"].as_str().unwrap());
    eventually("the worker's invocation to be throttled", || async {
        (concurrency.throttled(worker) > throttled_before).then_some(())
    })
    .await;
    let waiting = env.get(&path).token(key).await;
    assert_eq!(waiting.body["status"], "running", "{:?}", waiting.body);

    drop(running);
    let done = eventually("the export once a slot is free", || async {
        let reply = env.get(&path).token(key).await;
        (reply.body["status"] != "running").then_some(reply)
    })
    .await;
    assert_eq!(done.body["status"], "ready", "{:?}", done.body);
    // And through the Invoke API, a synchronous invocation at the limit is refused as Lambda refuses it.
    let _all = concurrency.hold(worker, 5).await.unwrap();
    let refused = env.invoke_raw(worker, &json!({"detail-type": "export.requested", "detail": {}})).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["Type"], "TooManyRequestsException");
}
