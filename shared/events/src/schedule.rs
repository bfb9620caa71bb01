//! The scheduled jobs' input. The scheduler's event carries nothing the jobs need; a manual run
//! (a re-run for one customer after an outage; tests) may narrow or move it.

use chrono::NaiveDate;
use domain::OrgId;
use serde_json::Value;

/// `{"orgIds": [...]}` limits a run to those orgs; anything else in the input is ignored. Invalid ids
/// make the input poison.
pub fn only_orgs(input: &Value) -> Result<Option<Vec<OrgId>>, String> {
    let Some(ids) = input.get("orgIds") else { return Ok(None) };
    let ids = ids.as_array().ok_or("orgIds must be an array")?;
    ids.iter()
        .map(|id| {
            id.as_str()
                .ok_or("orgIds must be strings".to_owned())
                .and_then(|id| OrgId::parse(id).map_err(|e| e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `{"date": "YYYY-MM-DD"}` runs a daily job for that day instead of each org's today (`None`).
pub fn run_date(input: &Value) -> Result<Option<NaiveDate>, &'static str> {
    match input.get("date").and_then(Value::as_str) {
        Some(raw) => NaiveDate::parse_from_str(raw, "%Y-%m-%d").map(Some).map_err(|_| "date must be YYYY-MM-DD"),
        None => Ok(None),
    }
}
