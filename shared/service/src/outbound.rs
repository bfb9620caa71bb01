//! Domain events this service publishes (source `assignments`), shaped for a webhook dispatcher: each
//! detail names the org, the event's own id and time, and a self-contained assignment summary.

use chrono::{DateTime, Utc};
use domain::{Assignment, OrgId, ProgressRow, User, UserId};
use serde_json::{Value, json};
use store::Written;

pub const SOURCE: &str = "assignments";

pub use domain::DomainEvent;

/// What a webhook consumer needs to know about an assignment: its [`domain::AssignmentSummary`].
pub fn summary(a: &Assignment) -> Value {
    json!(a.summary())
}

fn event(detail_type: &'static str, org: &OrgId, at: DateTime<Utc>, mut detail: Value) -> DomainEvent {
    let id = uuid::Uuid::now_v7();
    if let Some(obj) = detail.as_object_mut() {
        obj.insert("eventId".into(), json!(id));
        obj.insert("orgId".into(), json!(org.as_str()));
        obj.insert("occurredAt".into(), json!(at));
    }
    DomainEvent { id, detail_type: detail_type.to_owned(), detail, time: at }
}

/// `assignment.created`, `.updated`, `.deactivated` or `.reactivated` after an admin's change.
pub fn assignment_changed(
    detail_type: &'static str,
    org: &OrgId,
    a: &Assignment,
    actor: &str,
    at: DateTime<Utc>,
) -> DomainEvent {
    event(detail_type, org, at, json!({"assignment": summary(a), "actorId": actor}))
}

/// `assignment.user_added`: a learner came into the assignment's scope after it was created.
pub fn user_added(org: &OrgId, a: &Assignment, user: UserId, profile: Option<&User>, at: DateTime<Utc>) -> DomainEvent {
    event("assignment.user_added", org, at, with_user(json!({"assignment": summary(a)}), user, profile))
}

/// `assignment.completed`: one learner reached 100 %.
pub fn completed(
    org: &OrgId,
    a: &Assignment,
    user: UserId,
    profile: Option<&User>,
    completed_at: DateTime<Utc>,
) -> DomainEvent {
    let detail = with_user(json!({"assignment": summary(a), "completedAt": completed_at}), user, profile);
    event("assignment.completed", org, completed_at, detail)
}

/// `assignment.user_updated`: an admin extended or exempted one learner (`before`/`after` as in the
/// audit entry).
pub fn user_updated(
    org: &OrgId,
    a: &Assignment,
    row: &ProgressRow,
    profile: Option<&User>,
    actor: &str,
    before: Value,
    at: DateTime<Utc>,
) -> DomainEvent {
    let detail = json!({
        "assignment": summary(a),
        "actorId": actor,
        "before": before,
        "after": row.override_snapshot(a.deadline),
    });
    event("assignment.user_updated", org, at, with_user(detail, row.user_id, profile))
}

/// The learner's name and email as projected; `null` while unknown (a team event about a user can
/// arrive before the event that creates the user).
fn with_user(mut detail: Value, user: UserId, profile: Option<&User>) -> Value {
    let known = |field: fn(&User) -> &str| profile.map(field).filter(|v| !v.is_empty());
    detail["userId"] = json!(user);
    detail["userName"] = json!(known(|u| u.name.as_str()));
    detail["userEmail"] = json!(known(|u| u.email.as_str()));
    detail
}

/// `compliance.changed` when `written` changes the learner's compliance (the store records it as
/// announced in the same transaction, so it must go out with it).
pub(crate) fn compliance_changed(
    org: &OrgId,
    written: &Written<'_>,
    profile: Option<&User>,
    at: DateTime<Utc>,
) -> Option<DomainEvent> {
    written.compliance().map(|t| crate::compliance::changed(org, t, profile, at))
}

/// The announcer of writes that can only change a learner's compliance, made at `now`.
pub(crate) fn compliance_only(
    org: &OrgId,
    now: DateTime<Utc>,
) -> impl Fn(&Written<'_>, Option<&User>) -> Vec<DomainEvent> + Sync + '_ {
    move |written, profile| compliance_changed(org, written, profile, now).into_iter().collect()
}

/// The announcer of row writes on `a`: `assignment.user_added` for a learner who joins with a new
/// row, `assignment.completed` for one the write completes (with `recertifications`, also for another
/// completed cycle: only a completion's own write says so, a re-derivation does not), and
/// `compliance.changed`; made at `now`.
pub(crate) fn row_events<'a>(
    org: &'a OrgId,
    a: &'a Assignment,
    recertifications: bool,
    now: DateTime<Utc>,
) -> impl Fn(&Written<'_>, Option<&User>) -> Vec<DomainEvent> + Sync + 'a {
    move |written, profile| {
        let mut events = Vec::new();
        match written {
            Written::Added { row, .. } if row.removed_at.is_none() => {
                events.push(user_added(org, a, row.user_id, profile, row.membership_at));
            }
            Written::Row(change) if change.completed_now() || (recertifications && change.recertified_now()) => {
                if let Some(at) = change.after.completed_at {
                    events.push(completed(org, a, change.after.user_id, profile, at));
                }
            }
            _ => {}
        }
        events.extend(compliance_changed(org, written, profile, now));
        events
    }
}

/// Any other event (reminders, exports): `detail` is completed with the id, org and time.
pub fn other(detail_type: &'static str, org: &OrgId, at: DateTime<Utc>, detail: Value) -> DomainEvent {
    event(detail_type, org, at, detail)
}
