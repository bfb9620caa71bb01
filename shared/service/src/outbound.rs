//! Domain events this service publishes (source `assignments`), shaped for a webhook dispatcher: each
//! detail names the org, the event's own id and time, and a self-contained assignment summary (for
//! `assignment.created`, the whole resource). Each event's type (its detail's shape and its detail
//! type) is in [`domain::event`]; this module makes them, under new ids, from what the use cases have
//! at hand.

use chrono::{DateTime, Utc};
use domain::event::{
    AssignmentCompleted, AssignmentCreated, AssignmentDeactivated, AssignmentReactivated, AssignmentUpdated,
    ComplianceChanged, Event, Learner, LearnerOverride, UserAdded, UserUpdated,
};
use domain::{Activation, Assignment, ComplianceTransition, OrgId, ProgressRow, User, UserId};
use serde::Serialize;
use store::Written;

pub const SOURCE: &str = "assignments";

pub use domain::DomainEvent;

/// `detail` as an event of `org` made at `at`, under a new id (the type's [`domain::event::Detail`]:
/// with the event's id, the org and the time).
pub fn event<E: Event + Serialize>(org: &OrgId, at: DateTime<Utc>, detail: &E) -> DomainEvent {
    DomainEvent::new(uuid::Uuid::now_v7(), org, at, detail)
}

/// `assignment.created` after an admin's (or an ingestion's) create made at `at` (the org's time): the
/// resource as the API shows it on that day, the shape `POST /assignments` answers with (its
/// `progress` counts what `a`'s counters count).
pub fn created(org: &OrgId, a: &Assignment, actor: &str, at: DateTime<Utc>) -> DomainEvent {
    event(org, at, &AssignmentCreated { assignment: a.resource(at.date_naive()), actor_id: actor.to_owned() })
}

/// `assignment.updated`, `.deactivated` or `.reactivated` (as `activation` says) after an admin's
/// change.
pub fn assignment_changed(
    activation: Activation,
    org: &OrgId,
    a: &Assignment,
    actor: &str,
    at: DateTime<Utc>,
) -> DomainEvent {
    let (assignment, actor_id) = (a.summary(), actor.to_owned());
    match activation {
        Activation::Deactivated => event(org, at, &AssignmentDeactivated { assignment, actor_id }),
        Activation::Reactivated => event(org, at, &AssignmentReactivated { assignment, actor_id }),
        Activation::Unchanged => event(org, at, &AssignmentUpdated { assignment, actor_id }),
    }
}

/// `assignment.user_added`: a learner came into the assignment's scope after it was created.
pub fn user_added(org: &OrgId, a: &Assignment, user: UserId, profile: Option<&User>, at: DateTime<Utc>) -> DomainEvent {
    event(org, at, &UserAdded { assignment: a.summary(), learner: Learner::known(user, profile) })
}

/// `assignment.completed`: one learner reached 100 %.
pub fn completed(
    org: &OrgId,
    a: &Assignment,
    user: UserId,
    profile: Option<&User>,
    completed_at: DateTime<Utc>,
) -> DomainEvent {
    let detail = AssignmentCompleted { assignment: a.summary(), completed_at, learner: Learner::known(user, profile) };
    event(org, completed_at, &detail)
}

/// `assignment.user_updated`: an admin extended or exempted one learner (`before`/`after` as in the
/// audit entry).
pub fn user_updated(
    org: &OrgId,
    a: &Assignment,
    row: &ProgressRow,
    profile: Option<&User>,
    actor: &str,
    before: LearnerOverride,
    at: DateTime<Utc>,
) -> DomainEvent {
    let detail = UserUpdated {
        assignment: a.summary(),
        actor_id: actor.to_owned(),
        before,
        after: LearnerOverride::of(row, a.deadline),
        learner: Learner::known(row.user_id, profile),
    };
    event(org, at, &detail)
}

/// `compliance.changed` when `written` changes the learner's compliance (the store records it as
/// announced in the same transaction, so it must go out with it).
pub(crate) fn compliance_changed(
    org: &OrgId,
    written: &Written<'_>,
    profile: Option<&User>,
    at: DateTime<Utc>,
) -> Option<DomainEvent> {
    written.compliance().map(|t| compliance_transition(org, t, profile, at))
}

/// `compliance.changed`: a learner became compliant or non-compliant.
fn compliance_transition(
    org: &OrgId,
    t: &ComplianceTransition,
    profile: Option<&User>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let detail = ComplianceChanged {
        learner: Learner::known(t.user_id, profile),
        team_id: t.team_id,
        compliant: t.compliant,
        non_compliant_since: t.since,
    };
    event(org, at, &detail)
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
