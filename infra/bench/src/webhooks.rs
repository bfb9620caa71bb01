//! What one webhook delivery costs the table: requests and capacity units of the dispatcher's part (an
//! event → its deliveries, per endpoint) and of one attempt (the delivery function's part), measured
//! against the local stack's DynamoDB Local with the store's capacity tracking, and the queue messages
//! and KMS calls each makes. Not a test: it reports numbers measured in one run.
//!
//! `source <stack>/stack.env; cargo run --release -p bench --bin webhook-cost-bench`
//!
//! The queue, the vault and the receiver are in-process stand-ins (they count what they are asked);
//! every table request is real.
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks date their data by the real time, as a client would; the code under test reads its context's clock"
)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::webhook::{Attempt, EndpointUrl, NewEndpoint, Schedule};
use domain::{DomainEvent, OrgId};
use serde_json::json;
use service::webhooks::deliver::{Deliverer, Pacing};
use service::webhooks::{AttemptQueue, Post, Queued, Task};
use service::{Actor, AppError, Ctx, SystemClock};
use store::Capacity;

/// Holds what is sent to it, in order.
#[derive(Default)]
struct Queue(Mutex<Vec<Queued>>);

impl AttemptQueue for Queue {
    async fn send(&self, tasks: &[Queued]) -> Result<(), AppError> {
        self.0.lock().map_err(|e| AppError::Unavailable(e.to_string()))?.extend_from_slice(tasks);
        Ok(())
    }
}

/// Seals by keeping the secret's text, and counts what a KMS would be asked.
#[derive(Default)]
struct Vault(AtomicU64);

impl service::webhooks::Vault for Vault {
    async fn seal(&self, _: &OrgId, _: uuid::Uuid, secret: &webhooks::Secret) -> Result<String, AppError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(secret.expose())
    }

    async fn open(&self, _: &OrgId, _: uuid::Uuid, sealed: &str) -> Result<webhooks::Secret, AppError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        webhooks::Secret::parse(sealed).map_err(|e| AppError::Unavailable(e.to_string()))
    }
}

/// A receiver that answers 204 at once.
struct Receiver;

impl Post for Receiver {
    async fn post(&self, _: &str, _: &[(&str, &str)], _: String) -> Attempt {
        Attempt::answered(204, "")
    }
}

fn row(what: &str, capacity: &Capacity, messages: usize, kms: u64) {
    println!(
        "| {what} | {} | {:.1} | {:.1} | {messages} | {kms} |",
        capacity.requests(),
        capacity.reads(),
        capacity.writes()
    );
}

#[tokio::main]
async fn main() {
    let capacity = Capacity::default();
    let store = bench::store().await.with_capacity_tracking(capacity.clone());
    let clock = SystemClock;
    let ctx = Ctx::new(&store, &clock);
    let org = bench::new_org();
    let (queue, vault) = (Queue::default(), Vault::default());
    let actor = Actor {
        id: "apikey:bench".into(),
        email: None,
        role: domain::Role::OrgAdmin,
        request_id: "bench".into(),
        now: chrono::Utc::now(),
    };
    println!("| step | table requests | read units | write units | queue messages | KMS calls |");
    println!("|---|---|---|---|---|---|");
    for endpoints in [1usize, 20] {
        for n in store.endpoints(&org).await.map(|e| e.len()).unwrap_or(0)..endpoints {
            let new = NewEndpoint {
                url: EndpointUrl::parse(&format!("https://hooks.example.com/{n}")).expect("a valid URL"),
                description: String::new(),
                events: vec!["assignment.created".into()],
                is_active: true,
            };
            service::webhooks::endpoints::create(&ctx, &vault, &actor, &org, new).await.expect("created");
        }
        queue.0.lock().expect("the queue").clear();
        vault.0.store(0, Ordering::Relaxed);
        capacity.reset();
        let id = uuid::Uuid::now_v7();
        let at = chrono::Utc::now();
        let detail = json!({"eventId": id, "orgId": org.as_str(), "occurredAt": at, "id": uuid::Uuid::now_v7(),
                            "targetTitle": "SQL Injection", "actorId": "apikey:bench"});
        let event = DomainEvent { id, detail_type: "assignment.created".into(), detail, time: at };
        let queued = service::webhooks::dispatch::dispatch(&ctx, &queue, &event).await.expect("dispatched");
        assert_eq!(queued, endpoints);
        let tasks: Vec<Queued> = queue.0.lock().expect("the queue").drain(..).collect();
        row(&format!("dispatch an event to {endpoints} endpoint(s)"), &capacity, tasks.len(), 0);

        let schedule = Schedule::default();
        let deliverer =
            Deliverer { queue: &queue, vault: &vault, sender: &Receiver, schedule: &schedule, pacing: Pacing::DEFAULT };
        let first: Task = tasks[0].task.clone();
        capacity.reset();
        vault.0.store(0, Ordering::Relaxed);
        deliverer.run(&ctx, first).await.expect("attempted");
        let sent = queue.0.lock().expect("the queue").drain(..).count();
        row("one attempt that delivers", &capacity, sent, vault.0.load(Ordering::Relaxed));
    }
}
