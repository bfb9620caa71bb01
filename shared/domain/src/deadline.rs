//! Due, overdue and expired: the one rule of days passing. Every layer asks it — a learner's status,
//! the progress counters' summary, learners' compliance, the list's `overdue` filter, reminders.
//!
//! Days are UTC dates of the org's clock. A day (a learner's due date, or the last day a completion
//! is valid) has **passed** once it has ended: from the next day on. A learner who has not completed
//! is **due** until their due day has passed and **overdue** from then; a completion whose last valid
//! day has passed has **expired**.

use chrono::NaiveDate;

/// Whether `day` has passed on `today`: the rule itself.
pub fn has_passed(day: NaiveDate, today: NaiveDate) -> bool {
    day < today
}

/// The first day on which `day` has passed (`None` at the end of the calendar). Stored figures keep
/// this date, so a later read compares dates (`from <= today`) and never restates the rule.
pub fn passed_from(day: NaiveDate) -> Option<NaiveDate> {
    day.succ_opt()
}

/// The latest day that has passed on `today`: every day up to it has (a query's bound).
pub fn last_passed(today: NaiveDate) -> Option<NaiveDate> {
    today.pred_opt()
}

/// Whole days from the first day `day` has passed to `today`: 0 on the first overdue day, negative
/// while it has not passed (reminders count them).
pub fn days_since_passed(day: NaiveDate, today: NaiveDate) -> i64 {
    (today - day).num_days() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// The one table: for each (day, today), whether the day has passed — and every other form of
    /// the rule agrees with it.
    #[test]
    fn a_day_has_passed_from_the_next_day_on() {
        let table = [
            (d(2026, 4, 15), d(2026, 4, 14), false),
            (d(2026, 4, 15), d(2026, 4, 15), false),
            (d(2026, 4, 15), d(2026, 4, 16), true),
            (d(2026, 4, 15), d(2026, 5, 1), true),
            (d(2026, 12, 31), d(2027, 1, 1), true),
            (d(2028, 2, 28), d(2028, 2, 29), true),
            (d(2028, 2, 29), d(2028, 2, 29), false),
        ];
        for (day, today, passed) in table {
            assert_eq!(has_passed(day, today), passed, "{day} on {today}");
            assert_eq!(passed_from(day).is_some_and(|from| from <= today), passed, "{day} on {today}: from");
            assert_eq!(last_passed(today).is_some_and(|last| day <= last), passed, "{day} on {today}: bound");
            assert_eq!(days_since_passed(day, today) >= 0, passed, "{day} on {today}: days");
        }
        assert_eq!(passed_from(NaiveDate::MAX), None, "the end of the calendar never passes");
    }
}
