//! One attempt of one delivery, from its task on the delivery queue: when due and the endpoint's
//! pacing allows, the signed POST, then its outcome written with the endpoint's health and the next
//! attempt queued — or, early or paced, the task sent on to wait on the queue.

use chrono::Duration;
use domain::OrgId;
use domain::webhook::{Attempt, Delivery, DeliveryStatus, Schedule};
use store::{DeliveryFilter, PageKey};

use super::endpoints::Restart;
use super::{AttemptQueue, Post, Queued, Task, Vault, queue_delay};
use crate::{AppError, Ctx};

/// How one endpoint is paced: attempts started per second, and attempts in flight at once (a slow
/// receiver holds at most that many of the delivery function's containers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub per_second: u32,
    pub in_flight: usize,
}

impl Pacing {
    /// The documented default: 10 a second, 2 at once.
    pub const DEFAULT: Pacing = Pacing { per_second: 10, in_flight: 2 };
}

/// How long a task that found its endpoint busy waits before it tries again: about its turn in the
/// endpoint's backlog at the endpoint's pace (`pending` / `per_second`, spread by a random half either
/// way so a backlog does not come back at once), at least a second, at most the queue's longest delay.
/// A backlog then costs the queue about one receive per task per turn, not one per second.
pub fn paced_wait(pending: u64, pacing: Pacing) -> Duration {
    let turn = pending as f64 / f64::from(pacing.per_second.max(1));
    let seconds = (turn * (0.5 + fastrand::f64())).clamp(1.0, super::MAX_QUEUE_DELAY.num_seconds() as f64);
    Duration::milliseconds((seconds * 1_000.0) as i64)
}
/// How long an attempt holds its send lease and its step's claim: its 15 s, and room for opening the
/// secrets and writing the outcome (a container that dies frees both by time).
const HELD: Duration = Duration::seconds(60);
/// Failed deliveries brought back per recovery task (the next page is the next task).
const RECOVER_PAGE: usize = 100;

/// What the delivery function runs on besides the table: its queue, the vault that opens secrets,
/// the sender, the schedule and the pacing.
pub struct Deliverer<'a, Q, V, P> {
    pub queue: &'a Q,
    pub vault: &'a V,
    pub sender: &'a P,
    pub schedule: &'a Schedule,
    pub pacing: Pacing,
}

/// What a task came to (for the function's answer and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Attempted: the delivery's status after it.
    Attempted(DeliveryStatus),
    /// Not due yet, or the endpoint was busy: sent on to wait.
    Waiting,
    /// Ended without an attempt (the endpoint is gone, off or disabled).
    Ended(&'static str),
    /// Nothing to do: already attempted, ended, or gone.
    Dropped,
    /// A recovery page: how many deliveries started a new round.
    Recovered(usize),
}

impl<Q: AttemptQueue, V: Vault, P: Post> Deliverer<'_, Q, V, P> {
    pub async fn run(&self, ctx: &Ctx<'_>, task: Task) -> Result<Outcome, AppError> {
        match task {
            Task::Attempt { .. } => self.attempt(ctx, task).await,
            Task::Recover { org_id, endpoint_id, since, resume } => {
                self.recover(ctx, &org_id, endpoint_id, since, resume).await
            }
        }
    }

    async fn attempt(&self, ctx: &Ctx<'_>, task: Task) -> Result<Outcome, AppError> {
        let Task::Attempt { ref org_id, endpoint_id, delivery_id, round, step } = task else {
            return Ok(Outcome::Dropped);
        };
        let org = org_id;
        let Some(delivery) = ctx.store.delivery(org, endpoint_id, delivery_id).await? else {
            return Ok(Outcome::Dropped);
        };
        if delivery.status != DeliveryStatus::Pending || delivery.round != round || delivery.step + 1 != step {
            if delivery.status == DeliveryStatus::Pending && delivery.round == round && delivery.step == step {
                // This step was made, but its next may not have been queued (a failure in between).
                self.queue_next(org, &delivery, ctx.now(org)).await?;
            }
            return Ok(Outcome::Dropped);
        }
        let now = ctx.now(org);
        if let Some(due) = delivery.next_attempt_at.filter(|due| *due > now) {
            self.queue.send(&[Queued { task: task.clone(), delay: queue_delay(due - now) }]).await?;
            return Ok(Outcome::Waiting);
        }
        let Some((endpoint, sealed)) = ctx.store.endpoint_and_secret(org, endpoint_id).await? else {
            return self.end(ctx, org, &delivery, "the endpoint was deleted").await;
        };
        if endpoint.disabled_at.is_some() {
            return self.end(ctx, org, &delivery, "the endpoint is disabled").await;
        }
        if !endpoint.is_active {
            return self.end(ctx, org, &delivery, "the endpoint is turned off").await;
        }
        if delivery.body.len() > domain::webhook::delivery::MAX_BODY_BYTES {
            return self.end(ctx, org, &delivery, "the event's body is larger than a delivery sends").await;
        }
        let wall = ctx.clock.wall();
        let holder = format!("{delivery_id}/{round}/{step}");
        let lease_until = wall + HELD;
        let slot = if ctx.store.take_send_rate(org, endpoint_id, wall, self.pacing.per_second).await? {
            ctx.store.take_send_lease(org, endpoint_id, &holder, self.pacing.in_flight, wall, lease_until).await?
        } else {
            None
        };
        let Some(slot) = slot else {
            let delay = paced_wait(endpoint.pending, self.pacing);
            self.queue.send(&[Queued { task: task.clone(), delay }]).await?;
            return Ok(Outcome::Waiting);
        };
        if !ctx.store.claim_attempt(org, &delivery, wall, lease_until).await? {
            // Another copy of this task is making the attempt (the queue delivered it twice). If that
            // one dies mid-send, its own message comes back after the queue's visibility timeout, once
            // the claim has lapsed: this copy has nothing to add.
            ctx.store.release_send_lease(org, endpoint_id, &holder, slot).await?;
            return Ok(Outcome::Dropped);
        }
        let sent = self.send(ctx, org, &endpoint.url, &delivery, &sealed, now).await;
        if let Err(error) = ctx.store.release_send_lease(org, endpoint_id, &holder, slot).await {
            tracing::warn!(org = %org, endpoint_id = %endpoint_id, %error, "a send lease is left to lapse");
        }
        let attempt = sent?;
        self.record(ctx, org, &delivery, attempt).await
    }

    /// Signs and sends the delivery's body with the endpoint's secrets (the one rotated out too, while
    /// its overlap lasts by the org's clock). `webhook-timestamp` is this attempt's real time.
    async fn send(
        &self,
        ctx: &Ctx<'_>,
        org: &OrgId,
        url: &str,
        delivery: &Delivery,
        sealed: &store::SealedSecret,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Attempt, AppError> {
        let current = self.vault.open(org, delivery.endpoint_id, &sealed.current).await?;
        let previous = match (&sealed.previous, sealed.previous_until) {
            (Some(previous), Some(until)) if until > now => {
                Some(self.vault.open(org, delivery.endpoint_id, previous).await?)
            }
            _ => None,
        };
        let id = delivery.event_id.to_string();
        let timestamp = ctx.clock.wall().timestamp();
        let signed = webhooks::Signed::new(&id, timestamp, &delivery.body, &current, previous.as_ref());
        let headers = signed.headers();
        Ok(self.sender.post(url, &headers, delivery.body.clone()).await)
    }

    /// Writes the attempt's outcome; queues the next attempt while the delivery stays pending.
    async fn record(
        &self,
        ctx: &Ctx<'_>,
        org: &OrgId,
        before: &Delivery,
        attempt: Attempt,
    ) -> Result<Outcome, AppError> {
        let at = ctx.now(org);
        let made = before.step + 1;
        let status = self.schedule.status_after(&attempt, made as usize);
        let mut after = before.clone();
        after.attempts = before.attempts + 1;
        after.step = made;
        after.status = status;
        after.last_attempt_at = Some(at);
        (after.last_status_code, after.last_error) = match attempt {
            Attempt::Delivered { status } => (Some(status), None),
            Attempt::Failed { status, error } => (status, Some(error)),
        };
        after.next_attempt_at = match status {
            DeliveryStatus::Pending => self.schedule.next_attempt_at(made as usize, at),
            _ => None,
        };
        let disable = (status == DeliveryStatus::Failed).then_some(at);
        if ctx.store.record_attempt(org, before, &after, disable).await? {
            if status == DeliveryStatus::Failed {
                tracing::warn!(org = %org, endpoint_id = %after.endpoint_id, delivery_id = %after.delivery_id, "a delivery spent its schedule: the endpoint is disabled");
            }
            self.queue_next(org, &after, at).await?;
        }
        Ok(Outcome::Attempted(status))
    }

    /// Queues the attempt after `delivery`'s last, if it is still pending.
    async fn queue_next(
        &self,
        org: &OrgId,
        delivery: &Delivery,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), AppError> {
        if delivery.status != DeliveryStatus::Pending {
            return Ok(());
        }
        let due = delivery.next_attempt_at.unwrap_or(now);
        let task = Task::Attempt {
            org_id: org.clone(),
            endpoint_id: delivery.endpoint_id,
            delivery_id: delivery.delivery_id,
            round: delivery.round,
            step: delivery.step + 1,
        };
        self.queue.send(&[Queued { task, delay: queue_delay(due - now) }]).await
    }

    /// Ends a delivery without an attempt: failed, with why (out of the endpoint's backlog).
    async fn end(&self, ctx: &Ctx<'_>, org: &OrgId, before: &Delivery, why: &'static str) -> Result<Outcome, AppError> {
        let mut after = before.clone();
        after.status = DeliveryStatus::Failed;
        after.next_attempt_at = None;
        after.last_error = Some(why.to_owned());
        ctx.store.record_attempt(org, before, &after, None).await?;
        Ok(Outcome::Ended(why))
    }

    /// A page of the endpoint's failed deliveries since `since`, each started on a new round; the next
    /// page is queued as the next task.
    async fn recover(
        &self,
        ctx: &Ctx<'_>,
        org: &OrgId,
        endpoint: uuid::Uuid,
        since: chrono::DateTime<chrono::Utc>,
        resume: Option<serde_json::Value>,
    ) -> Result<Outcome, AppError> {
        let start = match resume {
            Some(point) => Some(
                PageKey::resume_at(org, &point)
                    .map_err(|_| AppError::InvalidField { field: "resume", message: "is not this org's" })?,
            ),
            None => None,
        };
        let filter = DeliveryFilter { status: Some(DeliveryStatus::Failed), since: Some(since) };
        let page = ctx.store.deliveries_page(org, endpoint, filter, start, RECOVER_PAGE).await?;
        let mut recovered = 0;
        for delivery in &page.items {
            match super::endpoints::restart(ctx, self.queue, org, delivery).await? {
                Restart::Started(_) => recovered += 1,
                Restart::Changed => {}
                // Off, disabled or full: the rest stay failed for a later `recover`.
                Restart::EndpointNotTaking => return Ok(Outcome::Recovered(recovered)),
            }
        }
        if let Some(next) = page.next {
            let task =
                Task::Recover { org_id: org.clone(), endpoint_id: endpoint, since, resume: Some(next.resume_point()) };
            self.queue.send(&[Queued::now(task)]).await?;
        }
        Ok(Outcome::Recovered(recovered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_task_waits_about_its_turn_in_the_backlog() {
        for _ in 0..100 {
            assert_eq!(paced_wait(0, Pacing::DEFAULT), Duration::seconds(1), "at least a second");
            let wait = paced_wait(1_000, Pacing::DEFAULT).num_milliseconds();
            assert!((50_000..=150_000).contains(&wait), "1,000 waiting at 10/s: about 100 s, not {wait} ms");
            assert_eq!(paced_wait(1_000_000, Pacing::DEFAULT), Duration::minutes(15), "at most the queue's delay");
        }
    }
}
