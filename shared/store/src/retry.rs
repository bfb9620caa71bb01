//! The one retry policy: a bounded number of attempts with jittered exponential backoff between them.
//!
//! Loops keep their own state (what is still pending, the record re-read after a conflict) and ask
//! [`Attempts::next`] before each try, so every retry in the service is bounded the same way and sleeps
//! the same way.
//!
//! ```text
//! let mut attempts = Retry::CONFLICT.attempts();
//! while attempts.next().await {
//!     match try_once().await { Err(Conflict) => continue, other => return other }
//! }
//! Err(GaveUp)
//! ```

use std::time::Duration;

use crate::StoreError;

/// How many times to try and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The wait before the second try; it doubles for each later one, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Retry {
    /// Optimistic-concurrency conflicts (a version or revision condition failed, a transaction was
    /// cancelled by a concurrent one): re-read and redo. Twelve tries, at most about 3 s of waiting in
    /// all, outlast the contention a busy progress row sees (several consumers and a fan-out at once).
    pub const CONFLICT: Retry =
        Retry { attempts: 12, first_delay: Duration::from_millis(25), max_delay: Duration::from_millis(400) };
    /// Work the service accepted only in part (BatchWriteItem's `UnprocessedItems`, PutEvents' failed
    /// entries): resend what is left, backing off as the service asks.
    pub const PARTIAL: Retry =
        Retry { attempts: 8, first_delay: Duration::from_millis(50), max_delay: Duration::from_millis(1_000) };

    pub fn attempts(self) -> Attempts {
        Attempts { policy: self, made: 0 }
    }

    /// The wait before try number `attempt` (0-based; the first try does not wait): a random time in
    /// the upper half of the exponential step ("equal jitter"), so concurrent writers spread out
    /// without any of them retrying at once.
    pub fn delay(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let step = self.first_delay.saturating_mul(1u32 << (attempt - 1).min(16)).min(self.max_delay);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// The tries of one retry loop.
#[derive(Debug)]
pub struct Attempts {
    policy: Retry,
    made: u32,
}

impl Attempts {
    /// Waits as the policy says and returns `true` while another try is allowed; `false` once all have
    /// been made.
    pub async fn next(&mut self) -> bool {
        if self.made >= self.policy.attempts {
            return false;
        }
        let delay = self.policy.delay(self.made);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.made += 1;
        true
    }

    /// Tries made so far.
    pub fn made(&self) -> u32 {
        self.made
    }

    /// [`Attempts::next`] for work the table keeps refusing (unprocessed batch items): once the policy
    /// runs out, [`StoreError::Throttled`] saying `what` is left after how many attempts.
    pub(crate) async fn next_or_throttled(&mut self, what: impl FnOnce() -> String) -> Result<(), StoreError> {
        if self.next().await {
            return Ok(());
        }
        Err(StoreError::Throttled(format!("{} after {} attempts", what(), self.made)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loop_gets_exactly_the_policys_attempts() {
        let policy = Retry { attempts: 5, first_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        let mut attempts = policy.attempts();
        let mut tries = 0;
        while attempts.next().await {
            tries += 1;
        }
        assert_eq!((tries, attempts.made()), (5, 5));
        assert!(!attempts.next().await, "exhausted stays exhausted");
    }

    #[test]
    fn delays_grow_stay_capped_and_jitter_within_the_step() {
        let policy = Retry::PARTIAL;
        assert_eq!(policy.delay(0), Duration::ZERO);
        for attempt in 1..40 {
            let step = policy.first_delay.saturating_mul(1 << (attempt - 1).min(16)).min(policy.max_delay);
            for _ in 0..20 {
                let delay = policy.delay(attempt);
                assert!(delay >= step / 2 && delay <= step, "attempt {attempt}: {delay:?} outside {step:?}");
            }
        }
        assert!(policy.delay(30) <= policy.max_delay);
    }
}
