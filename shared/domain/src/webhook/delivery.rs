//! One delivery of an event to one endpoint: when its attempts fall, what counts as delivered, and
//! what the endpoint's health says after them.
//!
//! The schedule is Standard Webhooks' reference one: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h,
//! 10 h and 10 h after each failure (eight attempts over about 28 hours). A `2xx` answer within
//! [`ATTEMPT_TIMEOUT`] delivers; anything else fails the attempt with its status or error, a redirect
//! too (it is never followed). After the last failure the delivery is `failed` and the endpoint
//! disabled.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long an attempt waits for the receiver's answer.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The wait before each attempt, from the failure of the one before (the first is immediate).
pub const ATTEMPT_DELAYS: [Duration; 8] = [
    Duration::zero(),
    Duration::seconds(5),
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
    Duration::hours(5),
    Duration::hours(10),
    Duration::hours(10),
];

/// Most characters of a receiver's answer or error a delivery keeps.
pub const MAX_EXCERPT_CHARS: usize = 256;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered `2xx`.
    Delivered { status: u16 },
    /// Any other answer, or none: its status if it answered, and why it failed (cut to
    /// [`MAX_EXCERPT_CHARS`]).
    Failed { status: Option<u16>, error: String },
}

impl Attempt {
    /// The attempt the receiver's answer makes: `2xx` delivers; a redirect is not followed.
    pub fn answered(status: u16, body_excerpt: &str) -> Self {
        match status {
            200..=299 => Attempt::Delivered { status },
            300..=399 => Attempt::failed(Some(status), "a redirect (not followed)"),
            _ => Attempt::failed(Some(status), body_excerpt),
        }
    }

    /// An attempt that got no answer (refused address, connection, timeout), with why.
    pub fn failed(status: Option<u16>, error: &str) -> Self {
        let error = match error.char_indices().nth(MAX_EXCERPT_CHARS) {
            Some((end, _)) => format!("{}…", &error[..end]),
            None => error.to_owned(),
        };
        Attempt::Failed { status, error }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Recorded, and attempted again on schedule until it is delivered or the schedule is spent.
    Pending,
    Succeeded,
    /// The schedule is spent (or the endpoint was deleted); a redelivery or `recover` tries again.
    Failed,
}

/// An endpoint's health, as its list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// Its last delivery got a `2xx`.
    Healthy,
    /// Its last delivery failed and is being retried.
    Failing,
    /// No delivery yet.
    Pending,
    /// A delivery spent the schedule: the endpoint was disabled (turning it active again clears it).
    Disabled,
}

impl Health {
    /// The health of an endpoint whose last attempt delivered (`Some(true)`), failed (`Some(false)`)
    /// or never was (`None`), and which is or is not disabled.
    pub fn of(last_delivered: Option<bool>, disabled: bool) -> Self {
        match (disabled, last_delivered) {
            (true, _) => Health::Disabled,
            (false, None) => Health::Pending,
            (false, Some(true)) => Health::Healthy,
            (false, Some(false)) => Health::Failing,
        }
    }
}

/// A delivery's body: the event's type, when it happened, and the data it carried when it
/// committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's `occurredAt` (RFC 3339), the same on every attempt: a receiver orders by it.
    pub timestamp: DateTime<Utc>,
    pub data: T,
}

/// The attempt schedule a delivery follows: [`ATTEMPT_DELAYS`] wherever the service is deployed. Only
/// the local stack builds a shorter one (so its tests see a whole schedule in seconds); no deployed
/// function reads one from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    delays: Vec<Duration>,
}

impl Default for Schedule {
    fn default() -> Self {
        Self { delays: ATTEMPT_DELAYS.to_vec() }
    }
}

impl Schedule {
    /// A schedule of `delays` (the first is the first attempt's); at least one attempt.
    pub fn of(delays: Vec<Duration>) -> Option<Self> {
        (!delays.is_empty() && delays.iter().all(|d| *d >= Duration::zero())).then_some(Self { delays })
    }

    /// How many attempts a round of a delivery makes.
    pub fn attempts(&self) -> usize {
        self.delays.len()
    }

    /// When the attempt after `made` ones of this round falls, the last having ended at `at`; `None`
    /// once the round is spent.
    pub fn next_attempt_at(&self, made: usize, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.delays.get(made).map(|delay| at + *delay)
    }

    /// The status after the `made`-th attempt of a round (counting it).
    pub fn status_after(&self, attempt: &Attempt, made: usize) -> DeliveryStatus {
        match attempt {
            Attempt::Delivered { .. } => DeliveryStatus::Succeeded,
            Attempt::Failed { .. } if made >= self.attempts() => DeliveryStatus::Failed,
            Attempt::Failed { .. } => DeliveryStatus::Pending,
        }
    }
}

/// One event's delivery to one endpoint, as its log shows it. A redelivery (or `recover`) starts a
/// new round of the schedule on the same delivery: `attempts` counts every attempt ever made, `round`
/// and `step` say where the schedule stands (an attempt is made once per round and step, whatever the
/// queue redelivers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub delivery_id: uuid::Uuid,
    pub endpoint_id: uuid::Uuid,
    /// The event's id: the `webhook-id` of every attempt.
    pub event_id: uuid::Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub round: u32,
    pub step: u32,
    #[serde(default)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_status_code: Option<u16>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The body every attempt sends: the [`Envelope`] as the event committed.
    pub body: String,
}

impl Delivery {
    /// The delivery of the event `event_id` (of `event_type`, which happened at `occurred_at`) to
    /// `endpoint`, recorded at `now`: pending, its first round due at once.
    pub fn new(
        event_id: uuid::Uuid,
        event_type: &str,
        endpoint: uuid::Uuid,
        occurred_at: DateTime<Utc>,
        now: DateTime<Utc>,
        body: String,
    ) -> Self {
        Delivery {
            delivery_id: delivery_id(event_id, endpoint, occurred_at),
            endpoint_id: endpoint,
            event_id,
            event_type: event_type.to_owned(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            round: 1,
            step: 0,
            last_attempt_at: None,
            last_status_code: None,
            last_error: None,
            next_attempt_at: Some(now),
            created_at: now,
            body,
        }
    }
}

/// The largest body a delivery sends. An event whose envelope is larger is recorded `failed` with
/// why, never cut.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// The id of `event`'s delivery to `endpoint`: the same however often the event arrives (so recording
/// it is idempotent), ordered by when the event happened (a UUIDv7 of `occurred_at`), and unique per
/// endpoint (its random part is the event id's, mixed with the endpoint's).
pub fn delivery_id(event: uuid::Uuid, endpoint: uuid::Uuid, occurred_at: DateTime<Utc>) -> uuid::Uuid {
    let (e, p) = (event.as_bytes(), endpoint.as_bytes());
    let mut random = [0u8; 10];
    for (i, byte) in random.iter_mut().enumerate() {
        *byte = e[6 + i] ^ p[6 + i];
    }
    let millis = u64::try_from(occurred_at.timestamp_millis()).unwrap_or_default();
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_attempts_over_about_28_hours_then_the_delivery_has_failed() {
        let t0 = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z").unwrap().with_timezone(&Utc);
        let mut at = t0;
        let mut times = Vec::new();
        for attempts in 0.. {
            match Schedule::default().next_attempt_at(attempts, at) {
                Some(next) => {
                    times.push((next - t0).num_seconds());
                    at = next;
                }
                None => break,
            }
        }
        let (m, h) = (60, 3600);
        assert_eq!(
            times,
            [
                0,
                5,
                5 + 5 * m,
                5 + 35 * m,
                5 + 35 * m + 2 * h,
                5 + 35 * m + 7 * h,
                5 + 35 * m + 17 * h,
                5 + 35 * m + 27 * h
            ]
        );
        let failed = Attempt::failed(None, "connection refused");
        assert_eq!(Schedule::default().status_after(&failed, 7), DeliveryStatus::Pending);
        assert_eq!(Schedule::default().status_after(&failed, 8), DeliveryStatus::Failed);
        assert_eq!(Schedule::default().status_after(&Attempt::answered(204, ""), 8), DeliveryStatus::Succeeded);
    }

    #[test]
    fn only_a_2xx_delivers_and_a_redirect_is_a_failure() {
        assert_eq!(Attempt::answered(200, "ok"), Attempt::Delivered { status: 200 });
        assert_eq!(Attempt::answered(299, ""), Attempt::Delivered { status: 299 });
        assert_eq!(
            Attempt::answered(302, "see other"),
            Attempt::Failed { status: Some(302), error: "a redirect (not followed)".into() }
        );
        assert_eq!(Attempt::answered(500, "oops"), Attempt::Failed { status: Some(500), error: "oops".into() });
        let Attempt::Failed { error, .. } = Attempt::answered(400, &"é".repeat(1_000)) else { unreachable!() };
        assert_eq!(error.chars().count(), MAX_EXCERPT_CHARS + 1, "an excerpt, cut on a character");
    }

    #[test]
    fn health_follows_the_last_attempt_unless_disabled() {
        assert_eq!(Health::of(None, false), Health::Pending);
        assert_eq!(Health::of(Some(true), false), Health::Healthy);
        assert_eq!(Health::of(Some(false), false), Health::Failing);
        assert_eq!(Health::of(Some(true), true), Health::Disabled);
        let body = Envelope {
            event_type: "webhook.test".into(),
            timestamp: DateTime::UNIX_EPOCH,
            data: serde_json::json!({"ok": true}),
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"type": "webhook.test", "timestamp": "1970-01-01T00:00:00Z", "data": {"ok": true}})
        );
    }

    #[test]
    fn a_delivery_id_is_the_same_for_the_same_event_and_endpoint_and_ordered_by_time() {
        let (event, other_event) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let (endpoint, other_endpoint) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let t0 = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z").unwrap().with_timezone(&Utc);
        let id = delivery_id(event, endpoint, t0);
        assert_eq!(id, delivery_id(event, endpoint, t0));
        assert_ne!(id, delivery_id(other_event, endpoint, t0));
        assert_ne!(id, delivery_id(event, other_endpoint, t0));
        assert!(delivery_id(other_event, endpoint, t0 + Duration::milliseconds(1)) > id);
        assert_eq!(id.get_version_num(), 7);
    }

    #[test]
    fn a_shorter_schedule_has_the_same_rules() {
        let local = Schedule::of(vec![Duration::zero(), Duration::seconds(1)]).unwrap();
        let t0 = DateTime::UNIX_EPOCH;
        assert_eq!(local.next_attempt_at(1, t0), Some(t0 + Duration::seconds(1)));
        assert_eq!(local.next_attempt_at(2, t0), None);
        let failed = Attempt::failed(Some(500), "no");
        assert_eq!(local.status_after(&failed, 1), DeliveryStatus::Pending);
        assert_eq!(local.status_after(&failed, 2), DeliveryStatus::Failed);
        assert_eq!(Schedule::default().attempts(), 8);
        assert!(Schedule::of(vec![]).is_none());
    }
}
