//! When learners are reminded of a deadline (design §7): 7 and 1 days before it (`due_soon`), the day
//! after it and then weekly (`overdue`).

use chrono::NaiveDate;

use crate::deadline;
use crate::event::{DueSoon, Event, Overdue};

/// One reminder due on a given day. `key` identifies it per (assignment, learner): each is sent once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// [`DueSoon`]'s or [`Overdue`]'s.
    pub detail_type: &'static str,
    /// Days before the deadline (due soon) or after it (overdue).
    pub days: i64,
    pub key: String,
}

/// The reminder an incomplete, in-scope learner gets on `today` for `due_on`, if any: due soon 7 and 1
/// days before it, overdue on its first overdue day ([`deadline`]) and weekly after.
pub fn reminder_on(due_on: NaiveDate, today: NaiveDate) -> Option<Reminder> {
    let until = (due_on - today).num_days();
    if until == 7 || until == 1 {
        return Some(Reminder { detail_type: DueSoon::DETAIL_TYPE, days: until, key: format!("due_soon-{until}") });
    }
    let overdue_for = deadline::days_since_passed(due_on, today);
    // `days` counts from the due day itself, as v1's reminders say "1 day overdue" on the first.
    let after = overdue_for + 1;
    (overdue_for >= 0 && overdue_for % 7 == 0).then(|| Reminder {
        detail_type: Overdue::DETAIL_TYPE,
        days: after,
        key: format!("overdue-{after}"),
    })
}

/// The latest deadline that can have a reminder on `today` (the reminder job reads deadlines up to it).
pub fn latest_reminded_deadline(today: NaiveDate) -> NaiveDate {
    today + chrono::Duration::days(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_and_one_days_before_the_day_after_then_weekly() {
        let deadline = NaiveDate::from_ymd_opt(2026, 4, 15).unwrap();
        let on = |y, m, d| reminder_on(deadline, NaiveDate::from_ymd_opt(y, m, d).unwrap()).map(|r| r.key);
        assert_eq!(on(2026, 4, 7), None);
        assert_eq!(on(2026, 4, 8).as_deref(), Some("due_soon-7"));
        assert_eq!(on(2026, 4, 9), None);
        assert_eq!(on(2026, 4, 14).as_deref(), Some("due_soon-1"));
        assert_eq!(on(2026, 4, 15), None, "the deadline day itself is not overdue yet");
        assert_eq!(on(2026, 4, 16).as_deref(), Some("overdue-1"));
        assert_eq!(on(2026, 4, 17), None);
        assert_eq!(on(2026, 4, 23).as_deref(), Some("overdue-8"));
        assert_eq!(on(2026, 4, 30).as_deref(), Some("overdue-15"));
        let days: Vec<_> = (0..60)
            .filter_map(|d| reminder_on(deadline, deadline - chrono::Duration::days(10) + chrono::Duration::days(d)))
            .map(|r| r.days)
            .collect();
        assert_eq!(days, [7, 1, 1, 8, 15, 22, 29, 36, 43]);
        assert!(latest_reminded_deadline(deadline - chrono::Duration::days(7)) == deadline);
    }
}
