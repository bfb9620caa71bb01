//! The template's schedules (`Schedule` events: `cron(…)` and `rate(…)`), fired locally as EventBridge
//! Scheduler would: on demand through the Invoke API (as ever), when a test moves an org's clock across
//! a firing (for that org alone, at each firing's time: see `clock`), and, when the run command's
//! gateway ticks (`--tick`), by the wall clock for every org. A schedule with an `Input` of its own
//! (the outbox sweep) is the service's, no org's: only the wall clock fires it.

use chrono::{DateTime, Datelike, Duration, DurationRound, Timelike, Utc};
use serde_json::{Value, json};

use crate::GatewayError;

/// Most firings one clock move may fire: a year of an hourly schedule.
pub const MAX_FIRINGS: usize = 24 * 366;

/// One `Schedule` event of a function in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub function: String,
    pub event: String,
    pub expression: Expression,
    /// The schedule's `Input`: what the function gets instead of the "Scheduled Event".
    pub input: Option<Value>,
}

impl Schedule {
    /// Whether it runs each org's job (the scheduled functions that take `orgIds`), so that moving an
    /// org's clock fires it.
    pub fn per_org(&self) -> bool {
        self.input.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// `rate(N unit)`: every N units, counted from the epoch (AWS counts from the rule's creation).
    Rate(Duration),
    /// `cron(minutes hours day-of-month month day-of-week year)`, UTC.
    Cron(Box<Cron>),
}

/// The allowed values of each field of a cron expression (`None`: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Option<Vec<u32>>,
    hours: Option<Vec<u32>>,
    days: Option<Vec<u32>>,
    months: Option<Vec<u32>>,
    /// 1 (Sunday) to 7, as AWS numbers them.
    weekdays: Option<Vec<u32>>,
    years: Option<Vec<u32>>,
}

impl Expression {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some(body) = raw.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            let (n, unit) = body.trim().split_once(' ').ok_or(format!("{raw}: rate(N unit)"))?;
            let n: i64 = n.parse().map_err(|_| format!("{raw}: N must be a positive number"))?;
            let every = match unit.trim() {
                "minute" | "minutes" => Duration::minutes(n),
                "hour" | "hours" => Duration::hours(n),
                "day" | "days" => Duration::days(n),
                other => return Err(format!("{raw}: unknown unit {other}")),
            };
            if n < 1 {
                return Err(format!("{raw}: N must be a positive number"));
            }
            return Ok(Expression::Rate(every));
        }
        if let Some(body) = raw.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            let fields: Vec<&str> = body.split_whitespace().collect();
            let [minutes, hours, days, months, weekdays, years] = fields[..] else {
                return Err(format!("{raw}: cron takes six fields"));
            };
            let field =
                |text: &str, low: u32, high: u32| parse_field(text, low, high).map_err(|e| format!("{raw}: {e}"));
            return Ok(Expression::Cron(Box::new(Cron {
                minutes: field(minutes, 0, 59)?,
                hours: field(hours, 0, 23)?,
                days: field(days, 1, 31)?,
                months: field(months, 1, 12)?,
                weekdays: field(weekdays, 1, 7)?,
                years: field(years, 1970, 2199)?,
            })));
        }
        Err(format!("{raw}: a schedule is rate(…) or cron(…)"))
    }

    /// The firings after `after` up to and including `until`, oldest first, at most `limit`.
    pub fn firings(&self, after: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        match self {
            Expression::Rate(every) => {
                let Ok(mut at) = after.duration_trunc(*every) else { return out };
                loop {
                    at += *every;
                    if at > until || out.len() == limit {
                        return out;
                    }
                    if at > after {
                        out.push(at);
                    }
                }
            }
            Expression::Cron(cron) => {
                let Ok(mut at) = after.duration_trunc(Duration::minutes(1)) else { return out };
                loop {
                    at += Duration::minutes(1);
                    if at > until || out.len() == limit {
                        return out;
                    }
                    if cron.matches(at) {
                        out.push(at);
                    }
                }
            }
        }
    }
}

impl Cron {
    fn matches(&self, at: DateTime<Utc>) -> bool {
        let is = |allowed: &Option<Vec<u32>>, value: u32| allowed.as_ref().is_none_or(|v| v.contains(&value));
        is(&self.minutes, at.minute())
            && is(&self.hours, at.hour())
            && is(&self.days, at.day())
            && is(&self.months, at.month())
            && is(&self.weekdays, at.weekday().number_from_sunday())
            && is(&self.years, at.year().max(0) as u32)
    }
}

/// `*`, `?`, `n`, `a-b`, `*/s`, `a/s`, `a-b/s` and comma-separated lists of them.
fn parse_field(text: &str, low: u32, high: u32) -> Result<Option<Vec<u32>>, String> {
    if text == "*" || text == "?" {
        return Ok(None);
    }
    let number = |s: &str| -> Result<u32, String> {
        let n: u32 = s.parse().map_err(|_| format!("{s:?} is not supported here (numbers, *, ?, -, /, ,)"))?;
        if (low..=high).contains(&n) { Ok(n) } else { Err(format!("{n} is outside {low}-{high}")) }
    };
    let mut values = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => match step.parse::<u32>() {
                Ok(step) if step > 0 => (range, step),
                _ => return Err(format!("step {step:?} must be a positive number")),
            },
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (low, high),
            _ => match range.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None if step > 1 => (number(range)?, high),
                None => (number(range)?, number(range)?),
            },
        };
        values.extend((from..=to).step_by(step.max(1) as usize));
    }
    Ok(Some(values))
}

/// Every `Schedule` (and `ScheduleV2`) event of the template's functions.
pub(crate) fn schedules(resources: &serde_yaml_ng::Mapping) -> Result<Vec<Schedule>, GatewayError> {
    let mut schedules = Vec::new();
    for (logical_id, resource) in resources {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for (name, event) in events.iter() {
            let key = match event["Type"].as_str() {
                Some("Schedule") => "Schedule",
                Some("ScheduleV2") => "ScheduleExpression",
                _ => continue,
            };
            let function = logical_id.as_str().unwrap_or_default().to_owned();
            let raw = event["Properties"][key].as_str().ok_or_else(|| {
                GatewayError::Template(format!("{function}.{name:?}: a schedule without its expression"))
            })?;
            let expression = Expression::parse(raw).map_err(|e| GatewayError::Template(format!("{function}: {e}")))?;
            let input = match event["Properties"]["Input"].as_str() {
                Some(text) => Some(
                    serde_json::from_str(text)
                        .map_err(|e| GatewayError::Template(format!("{function}.{name:?}: Input is not JSON: {e}")))?,
                ),
                None => None,
            };
            let event = name.as_str().unwrap_or_default().to_owned();
            schedules.push(Schedule { function, event, expression, input });
        }
    }
    Ok(schedules)
}

/// The event a schedule delivers at `at` (EventBridge's "Scheduled Event"), limited to `orgs` when a
/// test's clock fired it (the scheduled functions take `orgIds`; on AWS every org's run starts).
pub fn scheduled_event(schedule: &Schedule, at: DateTime<Utc>, orgs: Option<&[&str]>) -> Value {
    if let Some(input) = &schedule.input {
        return input.clone();
    }
    let mut event = json!({
        "version": "0",
        "id": uuid::Uuid::new_v4(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        "resources": [format!("arn:aws:events:local:000000000000:rule/{}-{}", schedule.function, schedule.event)],
        "detail": {},
    });
    if let Some(orgs) = orgs {
        event["orgIds"] = json!(orgs);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_templates_schedules_fire_as_eventbridge_would() {
        let daily = Expression::parse("cron(0 7 * * ? *)").unwrap();
        let fired = daily.firings(at("2026-03-01T07:00:00Z"), at("2026-03-04T07:00:00Z"), 100);
        assert_eq!(fired, vec![at("2026-03-02T07:00:00Z"), at("2026-03-03T07:00:00Z"), at("2026-03-04T07:00:00Z")]);
        assert!(daily.firings(at("2026-03-01T07:00:01Z"), at("2026-03-02T06:59:59Z"), 100).is_empty());
        let hourly = Expression::parse("rate(1 hour)").unwrap();
        let fired = hourly.firings(at("2026-03-01T06:30:00Z"), at("2026-03-01T09:00:00Z"), 100);
        assert_eq!(fired, vec![at("2026-03-01T07:00:00Z"), at("2026-03-01T08:00:00Z"), at("2026-03-01T09:00:00Z")]);
        assert_eq!(hourly.firings(at("2026-03-01T00:00:00Z"), at("2027-03-01T00:00:00Z"), 5).len(), 5, "bounded");
        let weekdays = Expression::parse("cron(15 9/6 ? * 2-6 *)").unwrap();
        let fired = weekdays.firings(at("2026-03-06T23:00:00Z"), at("2026-03-09T16:00:00Z"), 100);
        assert_eq!(fired, vec![at("2026-03-09T09:15:00Z"), at("2026-03-09T15:15:00Z")], "Saturday and Sunday skipped");
        for wrong in ["rate(0 hours)", "rate(1 week)", "cron(0 7 * *)", "cron(0 7 L * ? *)", "at(2026-03-01T00:00:00)"]
        {
            assert!(Expression::parse(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn every_schedule_of_the_template_is_read() {
        let template = crate::Template::of_project().unwrap();
        let functions: Vec<_> = template.schedules.iter().map(|s| (s.function.as_str(), s.per_org())).collect();
        assert_eq!(
            functions,
            [("RemindersFunction", true), ("ReconcileFunction", true), ("OutboxPublisherFunction", false)]
        );
        let sweep = template.schedules.iter().find(|s| !s.per_org()).unwrap();
        assert_eq!(scheduled_event(sweep, at("2026-03-01T00:00:00Z"), None), json!({"sweep": "unconfirmed"}));
    }
}
