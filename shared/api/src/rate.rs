//! Rate limits: how many requests a caller (an API key, or a user's session tokens) and its whole org
//! may send, and the verdict on one more. The counts are the store's ([`store::RateCounts`]);
//! [`crate::auth::Authenticator`] reads them and applies these rules.

use chrono::{DateTime, Timelike, Utc};
use store::{RateCounts, RateLimits, RateSubject};

/// v1's limits of one caller (an API key, or a user's session tokens): 60 in the calendar minute,
/// 1,000 in the sliding hour.
pub const CALLER_LIMITS: RateLimits = RateLimits { per_minute: 60, per_hour: 1_000 };
/// The default limits of an org's requests together, whatever key or user sends them: ten callers at
/// their limits. An operator may set an org's own (`Store::set_org_rate_limits`; docs/operations.md).
pub const ORG_LIMITS: RateLimits = RateLimits { per_minute: 600, per_hour: 10_000 };

/// Which window a rate limit is counted in (v1's `X-RateLimit-Window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateWindow {
    /// The calendar minute (UTC).
    PerMinute,
    /// The sliding 60 minutes.
    PerHour,
}

impl RateWindow {
    pub fn as_str(self) -> &'static str {
        match self {
            RateWindow::PerMinute => "per_minute",
            RateWindow::PerHour => "per_hour",
        }
    }

    fn of(self, limits: RateLimits) -> u32 {
        match self {
            RateWindow::PerMinute => limits.per_minute,
            RateWindow::PerHour => limits.per_hour,
        }
    }
}

/// Whose requests a limit counts (`X-RateLimit-Scope`): the API key's, the user's (session tokens),
/// or the whole org's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateScope {
    Key,
    User,
    Org,
}

impl RateScope {
    pub fn as_str(self) -> &'static str {
        match self {
            RateScope::Key => "key",
            RateScope::User => "user",
            RateScope::Org => "org",
        }
    }

    /// The scope the store's counts of `subject` are.
    pub fn of(subject: RateSubject) -> Self {
        match subject {
            RateSubject::ApiKey(_) => RateScope::Key,
            RateSubject::User(_) => RateScope::User,
            RateSubject::Org => RateScope::Org,
        }
    }
}

/// Where a caller stands after a request that was let through: the tightest of its windows and scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    pub scope: RateScope,
    pub window: RateWindow,
    pub limit: u32,
    pub remaining: u32,
}

/// A request refused for its rate: whose limit, in which window, and how long until one more fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded")]
pub struct RateLimited {
    pub retry_after_secs: u64,
    pub scope: RateScope,
    pub window: RateWindow,
    pub limit: u32,
}

/// Applies `limits` to the counts of `scope` (this request included). Refused requests say how long
/// until one would be let through.
pub fn check_rate(
    counts: &RateCounts,
    limits: RateLimits,
    scope: RateScope,
    now: DateTime<Utc>,
) -> Result<RateStatus, RateLimited> {
    let seconds_into_minute = u64::from(now.second());
    let refused = |retry_after_secs: u64, window: RateWindow| RateLimited {
        retry_after_secs,
        scope,
        window,
        limit: window.of(limits),
    };
    if counts.hour() > limits.per_hour {
        // The window slides a minute at a time: wait until enough of its oldest minutes have left it
        // that one more request fits.
        let mut left = counts.hour();
        let mut minutes = 60u64;
        for (k, count) in counts.per_minute.iter().enumerate() {
            if left < limits.per_hour {
                minutes = k as u64;
                break;
            }
            left -= count;
        }
        return Err(refused((minutes.max(1) * 60).saturating_sub(seconds_into_minute).max(1), RateWindow::PerHour));
    }
    if counts.minute() > limits.per_minute {
        return Err(refused((60 - seconds_into_minute).max(1), RateWindow::PerMinute));
    }
    let minute_left = limits.per_minute - counts.minute();
    let hour_left = limits.per_hour - counts.hour();
    let (window, remaining) =
        if hour_left < minute_left { (RateWindow::PerHour, hour_left) } else { (RateWindow::PerMinute, minute_left) };
    Ok(RateStatus { scope, window, limit: window.of(limits), remaining })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(per_minute: impl IntoIterator<Item = (usize, u32)>) -> RateCounts {
        let mut counts = RateCounts { per_minute: [0; 60] };
        for (slot, n) in per_minute {
            counts.per_minute[slot] = n;
        }
        counts
    }

    fn at_second(second: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-05-01T10:15:{second:02}Z")).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_minute_is_the_calendar_minute() {
        let ok = check_rate(&counts([(59, 60)]), CALLER_LIMITS, RateScope::Key, at_second(10)).unwrap();
        assert_eq!(ok, RateStatus { scope: RateScope::Key, window: RateWindow::PerMinute, limit: 60, remaining: 0 });
        let Err(RateLimited { retry_after_secs, window, .. }) =
            check_rate(&counts([(59, 61)]), CALLER_LIMITS, RateScope::Key, at_second(10))
        else {
            panic!()
        };
        assert_eq!((retry_after_secs, window), (50, RateWindow::PerMinute));
    }

    #[test]
    fn the_hour_slides_and_says_when_a_request_fits_again() {
        // 990 requests 40 minutes ago, 10 now: the 1,000th is fine, the 1,001st waits for minute 19 → 20.
        let full = counts([(19, 990), (59, 10)]);
        let ok = check_rate(&full, CALLER_LIMITS, RateScope::User, at_second(0)).unwrap();
        assert_eq!(ok, RateStatus { scope: RateScope::User, window: RateWindow::PerHour, limit: 1_000, remaining: 0 });
        let over = counts([(19, 990), (59, 11)]);
        let Err(RateLimited { retry_after_secs, window, .. }) =
            check_rate(&over, CALLER_LIMITS, RateScope::User, at_second(15))
        else {
            panic!()
        };
        assert_eq!(window, RateWindow::PerHour);
        assert_eq!(retry_after_secs, 20 * 60 - 15, "minute 19 leaves the window 20 minutes from this one");
        let spread = counts((0..60).map(|m| (m, 17)));
        let Err(RateLimited { retry_after_secs, .. }) =
            check_rate(&spread, CALLER_LIMITS, RateScope::Key, at_second(30))
        else {
            panic!()
        };
        assert_eq!(retry_after_secs, 90, "1,020 in the window: its two oldest minutes must leave before one more fits");
    }

    #[test]
    fn an_orgs_limits_are_its_own_and_name_their_scope() {
        let raised = RateLimits { per_minute: 5_000, per_hour: 100_000 };
        let busy = counts([(59, 601)]);
        let Err(RateLimited { scope, window, limit, .. }) = check_rate(&busy, ORG_LIMITS, RateScope::Org, at_second(5))
        else {
            panic!()
        };
        assert_eq!(
            (scope, window, limit),
            (RateScope::Org, RateWindow::PerMinute, 600),
            "the default: 10 callers' worth"
        );
        let ok = check_rate(&busy, raised, RateScope::Org, at_second(5)).unwrap();
        assert_eq!(
            ok,
            RateStatus { scope: RateScope::Org, window: RateWindow::PerMinute, limit: 5_000, remaining: 4_399 }
        );
    }
}
