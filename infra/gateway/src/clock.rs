//! Per-org test clocks: the local stack's time, which tests set and advance one org at a time.
//!
//! Every function the gateway runs reads the time from these clocks (its use cases' `service::Clock`).
//! An org's time is the wall clock plus that org's own offset, zero until a test moves it, so orgs that
//! no test touches run on real time, and tests running in parallel in one gateway (each with its own
//! org) cannot move each other's time. Moving an org's clock forward fires the template's schedules
//! that fall in between for that org alone (see `schedule`).
//!
//! Local only: this module is in the gateway, which no deployed function depends on
//! (`tests/tests/build.rs`), and the control that moves a clock is served only on the gateway's Invoke
//! API port (`POST /local/orgs/{orgId}/clock`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use chrono::{DateTime, Duration, Utc};
use domain::OrgId;
use service::{Clock, SystemClock};

/// Where a clock move goes: forward by a duration, or to a time (never back).
#[derive(Debug, Clone, Copy)]
pub enum Target {
    By(Duration),
    At(DateTime<Utc>),
}

/// Every org's clock in this process (the HTTP routes and the event delivery share them).
#[derive(Debug, Default)]
pub struct TestClocks {
    offsets: RwLock<HashMap<OrgId, Duration>>,
}

static SHARED: LazyLock<Arc<TestClocks>> = LazyLock::new(Arc::default);

impl TestClocks {
    /// The clocks every gateway of this process runs on.
    pub fn shared() -> Arc<TestClocks> {
        Arc::clone(&SHARED)
    }

    fn offset(&self, org: &OrgId) -> Duration {
        self.offsets.read().map(|o| o.get(org).copied().unwrap_or_default()).unwrap_or_default()
    }

    /// Sets `org`'s time to `to` (it runs on from there); returns its time before. Time only moves
    /// forward: an earlier `to` is refused, as the service assumes a clock that never goes back.
    pub fn set(&self, org: &OrgId, to: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        let wall = self.wall();
        let mut offsets = self.offsets.write().map_err(|_| "the clocks' lock was poisoned".to_owned())?;
        let before = wall + offsets.get(org).copied().unwrap_or_default();
        if to < before {
            return Err(format!("{org}'s clock reads {before}; it does not go back to {to}"));
        }
        offsets.insert(org.clone(), to - wall);
        Ok(before)
    }

    /// Sets `org`'s time to `to` unless it already reads later (it ran on while a schedule fired).
    pub fn set_at_least(&self, org: &OrgId, to: DateTime<Utc>) {
        let wall = self.wall();
        if let Ok(mut offsets) = self.offsets.write() {
            let offset = offsets.entry(org.clone()).or_default();
            *offset = (*offset).max(to - wall);
        }
    }
}

impl Clock for TestClocks {
    fn now(&self, org: &OrgId) -> DateTime<Utc> {
        self.wall() + self.offset(org)
    }

    fn wall(&self) -> DateTime<Utc> {
        SystemClock.wall()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_org_moved_forward_leaves_every_other_org_on_real_time() {
        let clocks = TestClocks::default();
        let (moved, still) = (OrgId::parse("clock-moved").unwrap(), OrgId::parse("clock-still").unwrap());
        let target = clocks.now(&moved) + Duration::days(8);
        let before = clocks.set(&moved, target).unwrap();
        assert!(target - before >= Duration::days(8) - Duration::seconds(1));
        assert!(clocks.now(&moved) >= target);
        assert!(clocks.now(&still) < target - Duration::days(7), "another org's time stands still");
        assert!((clocks.now(&still) - clocks.wall()).num_seconds().abs() < 1);
        assert!(clocks.set(&moved, target - Duration::days(1)).is_err(), "never back");
        clocks.set_at_least(&moved, target - Duration::days(1));
        assert!(clocks.now(&moved) >= target, "at least: a later time stays");
    }
}
