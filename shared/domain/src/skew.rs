//! How far a producer's clock is trusted: the one bound the event consumers apply at receipt and the
//! directory applies to times it stored before that bound existed.
//!
//! Order-safety keeps the newest time it has seen (a late, older event never undoes a newer one). A
//! time ahead of every real clock would therefore make every real change after it look older, for
//! as long as its date is ahead: a consumed event dated later than this bound changes nothing, and a
//! stored time beyond it orders nothing.

use chrono::{DateTime, TimeDelta, Utc};

/// How far ahead of the service's own clock an event's time may be (clocks differ a little).
pub const MAX_CLOCK_AHEAD: TimeDelta = TimeDelta::minutes(5);

/// Whether `at` is later than any real clock can be at `now`.
pub fn is_ahead(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    at > now + MAX_CLOCK_AHEAD
}

/// A stored "last changed at" time, forgotten when it is ahead of `now`: any real change is newer
/// than an unknown time. Returns whether it was.
pub fn forget_if_ahead(at: &mut Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let ahead = at.is_some_and(|at| is_ahead(at, now));
    if ahead {
        *at = None;
    }
    ahead
}

/// A stored "first happened at" (or "happened at") time ahead of `now`, set to `now`: what it records
/// happened, and the service knows it had by now. Returns whether it was ahead.
pub fn clamp_if_ahead(at: &mut DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let ahead = is_ahead(*at, now);
    if ahead {
        *at = now;
    }
    ahead
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn only_times_beyond_the_allowed_skew_are_ahead() {
        let now = t("2026-01-01T12:00:00Z");
        assert!(!is_ahead(now + MAX_CLOCK_AHEAD, now));
        assert!(is_ahead(now + MAX_CLOCK_AHEAD + TimeDelta::seconds(1), now));
        assert!(!is_ahead(now - TimeDelta::days(1), now));
    }

    #[test]
    fn a_last_change_ahead_is_forgotten_and_a_first_time_ahead_becomes_now() {
        let now = t("2026-01-01T12:00:00Z");
        let (mut last, mut recent) = (Some(t("2999-01-01T00:00:00Z")), Some(now));
        assert!(forget_if_ahead(&mut last, now));
        assert!(!forget_if_ahead(&mut recent, now));
        assert_eq!((last, recent), (None, Some(now)));
        let mut first = t("2999-01-01T00:00:00Z");
        assert!(clamp_if_ahead(&mut first, now));
        assert_eq!(first, now);
        assert!(!clamp_if_ahead(&mut first, now));
    }
}
