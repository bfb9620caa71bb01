//! JSON shapes of the public API (camelCase, v1 field names).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    Assignment, AssignmentId, ContentArea, ProgressRow, Source, TargetType, TeamId, User, UserId, UserStatus,
};
use serde::Serialize;
use serde_json::{Value, json};

/// The assignment resource ([`domain::assignment::AssignmentResource`], what `assignment.created`
/// carries too) as of `now`, the org's time: its summary, the note, who made it and when, the version
/// for `If-Match`, and the progress counters.
pub fn assignment(a: &Assignment, now: DateTime<Utc>) -> Value {
    json!(a.resource(now.date_naive()))
}

/// Why the learner has the assignment and, for team assignments, the team's id and current name.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Membership<'a> {
    source: &'static str,
    #[serde(flatten)]
    team: Option<TeamRef<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TeamRef<'a> {
    team_id: TeamId,
    team_name: Option<&'a str>,
}

impl<'a> Membership<'a> {
    fn of(source: &Source, a: &Assignment, team_names: &'a HashMap<TeamId, String>) -> Self {
        let team =
            |team_id: &TeamId| TeamRef { team_id: *team_id, team_name: team_names.get(team_id).map(String::as_str) };
        if a.new_starters_only {
            // "Default for New Starters", with the team that brought them if it was a team.
            let team = match source {
                Source::Team { team_id } => Some(team(team_id)),
                _ => None,
            };
            return Membership { source: "new_starters", team };
        }
        match source {
            Source::Individual => Membership { source: "individual", team: None },
            Source::Organization => Membership { source: "organization", team: None },
            Source::Team { team_id } => Membership { source: "team", team: Some(team(team_id)) },
        }
    }
}

/// A learner's standing on one assignment, as the detail's `users[]` and the learner view both show it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Standing<'a> {
    status: UserStatus,
    /// The learner's own due date, or the assignment's deadline.
    due_on: NaiveDate,
    completed_items: u32,
    total_items: u32,
    progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exempt_reason: Option<&'a str>,
    /// Recurring assignments: the last day the learner's completion is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<NaiveDate>,
    #[serde(flatten)]
    membership: Membership<'a>,
}

impl<'a> Standing<'a> {
    fn of(row: &'a ProgressRow, a: &Assignment, team_names: &'a HashMap<TeamId, String>, now: DateTime<Utc>) -> Self {
        Standing {
            status: row.status(&a.units, a.item_count, a.deadline, now.date_naive()),
            due_on: row.due_on(a.deadline),
            completed_items: row.completed_tracked(&a.units),
            total_items: a.item_count,
            progress: row.progress(&a.units, a.item_count),
            exempt_reason: row.exemption.as_ref().map(|e| e.reason.as_str()),
            valid_until: row.expires_on(),
            membership: Membership::of(&row.source, a, team_names),
        }
    }
}

/// One learner's row in the assignment detail.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserProgressView<'a> {
    user_id: UserId,
    name: Option<&'a str>,
    email: Option<&'a str>,
    average_score: Option<f64>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    removed_at: Option<DateTime<Utc>>,
    #[serde(flatten)]
    standing: Standing<'a>,
}

/// One learner's row in the assignment detail.
pub fn user_progress<'a>(
    row: &'a ProgressRow,
    user: Option<&'a User>,
    a: &Assignment,
    team_names: &'a HashMap<TeamId, String>,
    now: DateTime<Utc>,
) -> Value {
    json!(UserProgressView {
        user_id: row.user_id,
        name: user.map(|u| u.name.as_str()),
        email: user.map(|u| u.email.as_str()),
        average_score: row.average_score(&a.units),
        started_at: row.started_at,
        completed_at: row.completed_at,
        removed_at: row.removed_at,
        standing: Standing::of(row, a, team_names, now),
    })
}

/// `GET`/`PATCH /assignments/{id}/users/{userId}`: the detail's row of one learner, with the
/// assignment's id and what an admin set on it.
pub fn assignment_learner(learner: &service::reads::AssignmentLearner, now: DateTime<Utc>) -> Value {
    let (a, row) = (&learner.assignment, &learner.row);
    let mut view = user_progress(row, learner.user.as_ref(), a, &learner.team_names, now);
    view["assignmentId"] = json!(a.id);
    view["extendedTo"] = json!(row.extended_to);
    view["exemptedAt"] = json!(row.exemption.as_ref().map(|e| e.at));
    view["version"] = json!(row.revision);
    // Every completed cycle, oldest first: the evidence of each recertification.
    view["cycles"] = json!(row.cycles);
    view
}

/// One item of the learner view: the assignment as the learner sees it, with their own standing.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LearnerAssignmentView<'a> {
    id: AssignmentId,
    content_area: ContentArea,
    target_type: TargetType,
    target_id: &'a str,
    target_title: &'a str,
    target_path: &'a str,
    deadline: NaiveDate,
    is_mandatory: bool,
    note: &'a Option<String>,
    #[serde(flatten)]
    standing: Standing<'a>,
}

pub fn learner_assignment<'a>(
    a: &'a Assignment,
    row: &'a ProgressRow,
    team_names: &'a HashMap<TeamId, String>,
    now: DateTime<Utc>,
) -> Value {
    json!(LearnerAssignmentView {
        id: a.id,
        content_area: a.target.content_area,
        target_type: a.target.target_type,
        target_id: &a.target.target_id,
        target_title: &a.target_title,
        target_path: &a.target_path,
        deadline: a.deadline,
        is_mandatory: a.is_mandatory,
        note: &a.note,
        standing: Standing::of(row, a, team_names, now),
    })
}

/// One audit-log entry.
pub fn audit_entry(e: &domain::AuditEntry) -> Value {
    json!({
        "id": e.id,
        "createdAt": e.created_at,
        "action": e.action,
        "actorId": e.actor_id,
        "actorEmail": e.actor_email,
        "actorRole": e.actor_role,
        "targetType": e.target_type,
        "targetId": e.target_id,
        "targetLabel": e.target_label,
        "metadata": e.metadata,
        "requestId": e.request_id,
    })
}

/// `GET /compliance`.
pub fn compliance_summary(s: &service::compliance::Summary) -> Value {
    let rate = |f: &domain::RollupFigures| (f.compliance_rate * 10_000.0).round() / 10_000.0;
    json!({
        "asOf": s.as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "learners": s.org.learners,
        "compliantLearners": s.org.compliant_learners,
        "complianceRate": rate(&s.org),
        "overdueLearners": s.org.overdue_learners,
        "expiredLearners": s.org.expired_learners,
        "mandatoryAssignments": s.mandatory_assignments,
        "teams": s.teams.iter().map(|t| json!({
            "teamId": t.team_id,
            "name": t.name,
            "learners": t.figures.learners,
            "compliantLearners": t.figures.compliant_learners,
            "complianceRate": rate(&t.figures),
            "overdueLearners": t.figures.overdue_learners,
            "expiredLearners": t.figures.expired_learners,
        })).collect::<Vec<_>>(),
    })
}

/// One learner of `GET /compliance/learners`.
pub fn compliance_learner(line: &service::compliance::LearnerLine) -> Value {
    let f = &line.figures;
    json!({
        "userId": line.learner.user_id,
        "name": line.user.as_ref().map(|u| u.name.as_str()),
        "email": line.user.as_ref().map(|u| u.email.as_str()),
        "teamId": line.learner.team_id,
        "teamName": line.team_name,
        "mandatoryAssigned": f.mandatory_assigned,
        "completed": f.completed,
        "dueSoon": f.due_soon,
        "overdue": f.overdue,
        "expired": f.expired,
        "compliant": f.compliant,
        "nonCompliantSince": f.non_compliant_since,
        "lastCompletedAt": f.last_completed_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use domain::assignment::{CREATE_FIELDS, IMMUTABLE_FIELDS, PATCHABLE_FIELDS};
    use domain::{Assignee, AssigneeType, NewAssignment, Recurrence, ResolvedTarget, Slug, Target, TrackedUnit};

    use super::*;

    /// An assignment with every optional field set, so its resource shows every field.
    fn everything_set() -> Assignment {
        let now = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let mut a = NewAssignment {
            target: Target {
                content_area: ContentArea::Practice,
                target_type: TargetType::Topic,
                target_id: "sql-injection".into(),
            },
            assignee: Assignee { assignee_type: AssigneeType::Team, assignee_id: uuid::Uuid::nil().to_string() },
            deadline: NaiveDate::from_ymd_opt(2026, 4, 15).unwrap(),
            due_in_days: Some(30),
            new_starters_only: true,
            recurrence: Some(Recurrence { every_months: 12, window_days: 30 }),
            is_mandatory: true,
            note: Some("PCI 6.2.2".into()),
        }
        .into_assignment(
            AssignmentId::new_v7(),
            ResolvedTarget {
                title: "SQL Injection".into(),
                path: "p".into(),
                units: vec![TrackedUnit::Topic { topic_id: Slug::parse("sql-injection").unwrap(), challenges: 11 }],
            },
            "Team".into(),
            "apikey:k1".into(),
            now,
        );
        a.compliance_sync = Some(1);
        a
    }

    #[test]
    fn the_resources_fields_are_each_patchable_or_immutable_and_create_names_only_its_fields() {
        let a = everything_set();
        let resource = assignment(&a, a.created_at);
        let shown: BTreeSet<&str> = resource.as_object().unwrap().keys().map(String::as_str).collect();
        let listed: BTreeSet<&str> = PATCHABLE_FIELDS.iter().chain(IMMUTABLE_FIELDS).copied().collect();
        assert_eq!(shown, listed, "every field of the resource is patchable or immutable, and no other");
        assert!(PATCHABLE_FIELDS.iter().all(|f| !IMMUTABLE_FIELDS.contains(f)));
        let unknown: Vec<&&str> = CREATE_FIELDS.iter().filter(|f| !shown.contains(**f)).collect();
        assert!(unknown.is_empty(), "create takes fields the resource does not show: {unknown:?}");
    }

    #[test]
    fn assignment_created_carries_the_resource_as_post_answers_it() {
        let a = everything_set();
        let at = a.created_at;
        let created =
            domain::event::AssignmentCreated { assignment: a.resource(at.date_naive()), actor_id: "u-1".into() };
        let detail =
            domain::DomainEvent::new(uuid::Uuid::now_v7(), &domain::OrgId::parse("acme").unwrap(), at, &created);
        let mut data = domain::event::webhook_data(&detail.detail);
        assert_eq!(data.as_object_mut().unwrap().remove("actorId"), Some(json!("u-1")));
        assert_eq!(data, assignment(&a, at));
    }
}
