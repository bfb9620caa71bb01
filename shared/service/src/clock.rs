//! What time it is, as an input: every use case reads the time from its context's [`Clock`], never from
//! the system, so a test can move one org's time without touching another's.
//!
//! Deployed functions run on [`SystemClock`], the only code of theirs that reads the system's time
//! (clippy's `disallowed-methods` refuses `Utc::now()` everywhere else; only tests and the local seed's
//! stand-ins for another system's clock are allowed it, each saying why). The local gateway runs a clock per org
//! that tests set and advance (`infra/gateway/src/clock.rs`); no deployed function can build it, since
//! no function depends on the gateway (`tests/tests/build.rs`).

use chrono::{DateTime, Utc};
use domain::OrgId;

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The time now in `org`.
    fn now(&self, org: &OrgId) -> DateTime<Utc>;

    /// The time now for work that is no one org's yet: authenticating a request before its org is
    /// known, rate-limit windows, how long a job has run.
    fn wall(&self) -> DateTime<Utc>;
}

/// The system's time, for every org: what every deployed function runs on.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self, _org: &OrgId) -> DateTime<Utc> {
        self.wall()
    }

    #[allow(clippy::disallowed_methods, reason = "the one place that reads the system's time")]
    fn wall(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
