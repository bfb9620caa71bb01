//! Each public event type's description and sample ([`PublicEvent`]): the catalog's examples are these
//! values serialised. One assignment (a yearly secure-coding recertification of a team's new
//! starters) and one learner run through all of them.

use super::*;
use crate::aggregates::ProgressSummary;
use crate::assignment::{Assignee, ComplianceSync, RosterStatus, Target};
use crate::recurrence::Recurrence;
use crate::vocabulary::{AssigneeType, ContentArea, TargetType};

const ASSIGNMENT: AssignmentId = AssignmentId(Uuid::from_u128(0x0195_a0c4_8a8e_7d6e_9a55_2f1e_3c4b_5a69));
const TEAM: TeamId = TeamId(Uuid::from_u128(0x4f1c_2b9e_63d5_4a07_b8e1_0c92_7d3a_6e15));
const ADMIN: UserId = UserId(Uuid::from_u128(0x8d2e_47a1_c3f0_4b6e_9a15_2e7c_d04b_8f31));
const LEARNER: UserId = UserId(Uuid::from_u128(0xb7e9_0d42_5a1c_4f83_a6d2_91c4_e5f0_7b28));

/// A day of 2026.
fn day(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).unwrap_or_default()
}

/// A time of 2026 (UTC).
fn at(month: u32, d: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    day(month, d).and_hms_opt(hour, minute, 0).unwrap_or_default().and_utc()
}

fn summary() -> AssignmentSummary {
    AssignmentSummary {
        id: ASSIGNMENT,
        target: Target {
            content_area: ContentArea::Practice,
            target_type: TargetType::Topic,
            target_id: "sql-injection".into(),
        },
        target_title: "SQL Injection".into(),
        target_path: "Practice / Web Security".into(),
        assignee: Assignee { assignee_type: AssigneeType::Team, assignee_id: TEAM.to_string() },
        assignee_name: "Payments Engineering".into(),
        deadline: day(4, 30),
        due_in_days: Some(30),
        new_starters_only: true,
        recurrence: Some(Recurrence { every_months: 12, window_days: 30 }),
        is_mandatory: true,
        is_active: true,
        item_count: 12,
    }
}

fn learner() -> Learner {
    Learner { user_id: LEARNER, user_name: Some("Ada Lovelace".into()), user_email: Some("ada@example.com".into()) }
}

fn notice(status: UserStatus, due_on: NaiveDate, progress: f64) -> LearnerNotice {
    LearnerNotice { assignment: summary(), learner: learner(), deadline: day(4, 30), due_on, status, progress }
}

impl PublicEvent for AssignmentCreated {
    const DESCRIPTION: &'static str = "An assignment was created (by an admin or a code-scanning ingestion): the assignment as POST /assignments returns it.";

    fn sample() -> Self {
        let created = at(3, 2, 9, 30);
        AssignmentCreated {
            assignment: AssignmentResource {
                summary: summary(),
                note: Some("PCI DSS 6.2.2: yearly secure-coding training".into()),
                roster_status: RosterStatus::Complete,
                compliance_sync: ComplianceSync::Synced,
                created_at: created,
                created_by: ADMIN.to_string(),
                updated_at: created,
                version: 1,
                // A new starters' assignment has no learner yet when it is created.
                progress: ProgressSummary {
                    total_users: 0,
                    completed_users: 0,
                    in_progress_users: 0,
                    not_started_users: 0,
                    overdue_users: 0,
                    expired_users: 0,
                    completion_rate: 0.0,
                    average_progress: 0.0,
                },
            },
            actor_id: ADMIN.to_string(),
        }
    }
}

impl PublicEvent for AssignmentUpdated {
    const DESCRIPTION: &'static str =
        "An admin changed an assignment's deadline, mandatory flag, note or recurrence: the assignment as changed.";

    fn sample() -> Self {
        AssignmentUpdated {
            assignment: AssignmentSummary { deadline: day(5, 15), ..summary() },
            actor_id: ADMIN.to_string(),
        }
    }
}

impl PublicEvent for AssignmentDeactivated {
    const DESCRIPTION: &'static str =
        "An admin deactivated an assignment: it records no progress and sends no reminders until reactivated.";

    fn sample() -> Self {
        AssignmentDeactivated {
            assignment: AssignmentSummary { is_active: false, ..summary() },
            actor_id: ADMIN.to_string(),
        }
    }
}

impl PublicEvent for AssignmentReactivated {
    const DESCRIPTION: &'static str = "An admin reactivated an assignment.";

    fn sample() -> Self {
        AssignmentReactivated { assignment: summary(), actor_id: ADMIN.to_string() }
    }
}

impl PublicEvent for UserAdded {
    const DESCRIPTION: &'static str = "A learner came into an assignment's scope after it was created and got it.";

    fn sample() -> Self {
        UserAdded { assignment: summary(), learner: learner() }
    }
}

impl PublicEvent for AssignmentCompleted {
    const DESCRIPTION: &'static str =
        "A learner completed every tracked item of an assignment (again, for each cycle of a recertification).";

    fn sample() -> Self {
        AssignmentCompleted { assignment: summary(), completed_at: at(4, 12, 14, 5), learner: learner() }
    }
}

impl PublicEvent for UserUpdated {
    const DESCRIPTION: &'static str = "An admin extended or exempted one learner of an assignment.";

    fn sample() -> Self {
        let before = LearnerOverride { due_on: day(4, 30), extended_to: None, exempt: false, reason: None, version: 2 };
        let after = LearnerOverride { due_on: day(5, 31), extended_to: Some(day(5, 31)), version: 3, ..before.clone() };
        UserUpdated { assignment: summary(), actor_id: ADMIN.to_string(), before, after, learner: learner() }
    }
}

impl PublicEvent for DueSoon {
    const DESCRIPTION: &'static str =
        "A learner who has not completed an assignment is due soon (7 days before their due date, then 1).";

    fn sample() -> Self {
        DueSoon { notice: notice(UserStatus::InProgress, day(4, 30), 0.25), days: 7 }
    }
}

impl PublicEvent for Overdue {
    const DESCRIPTION: &'static str =
        "A learner who has not completed an assignment is past their due date (on the first overdue day, then weekly).";

    fn sample() -> Self {
        Overdue { notice: notice(UserStatus::Overdue, day(4, 30), 0.25), days: 1 }
    }
}

impl PublicEvent for Expired {
    const DESCRIPTION: &'static str = "A recertified learner's last completion lapsed before they renewed it.";

    fn sample() -> Self {
        let valid_until = day(4, 11);
        Expired { notice: notice(UserStatus::Expired, valid_until, 0.0), valid_until, cycles: 1 }
    }
}

impl PublicEvent for RecertificationDue {
    const DESCRIPTION: &'static str = "A recertified learner's next cycle opened: their completion lapses soon.";

    fn sample() -> Self {
        let valid_until = day(4, 11);
        RecertificationDue {
            notice: notice(UserStatus::NotStarted, valid_until, 0.0),
            window_opens_on: day(3, 12),
            valid_until,
            cycles: 1,
        }
    }
}

impl PublicEvent for ComplianceChanged {
    const DESCRIPTION: &'static str =
        "A learner became compliant or non-compliant with every mandatory assignment they have.";

    fn sample() -> Self {
        ComplianceChanged {
            learner: learner(),
            team_id: Some(TEAM),
            compliant: false,
            non_compliant_since: Some(day(5, 1)),
        }
    }
}

impl PublicEvent for SarifIngested {
    const DESCRIPTION: &'static str =
        "A code scan's SARIF log was ingested: the topics it assigned to the commit's author, or why it did not.";

    fn sample() -> Self {
        let topic = |topic_id: &str, cwe: &str| TopicAssignment {
            assignment_id: None,
            topic_id: topic_id.into(),
            cwes: vec![cwe.into()],
        };
        SarifIngested {
            ingestion_id: Uuid::from_u128(0x0195_a0d1_2c4e_7f10_8b3a_5d6e_7f80_91a2),
            source: "github-actions".into(),
            repo: "acme/payments".into(),
            branch: Some("main".into()),
            commit_sha: "a1b2c3d4e5f6".into(),
            author_user_id: None,
            tools: vec!["Semgrep OSS".into()],
            results: 3,
            cwes: vec!["CWE-79".into(), "CWE-89".into(), "CWE-1333".into()],
            created: Vec::new(),
            already_covered: Vec::new(),
            not_created: vec![topic("sql-injection", "CWE-89"), topic("xss", "CWE-79")],
            unmapped_cwes: vec!["CWE-1333".into()],
            reason: Some("no active user of the organization has the commit author's email".into()),
            ingested_at: at(3, 2, 11, 45),
        }
    }
}

impl PublicEvent for ExportReady {
    const DESCRIPTION: &'static str = "An export's CSV file is written and ready to download.";

    fn sample() -> Self {
        let export_id = Uuid::from_u128(0x0195_a0e7_5b21_7c3d_9e4f_a0b1_c2d3_e4f5);
        ExportReady {
            export_id,
            kind: "progress".into(),
            row_count: 1_250,
            bytes: 187_342,
            key: format!("exports/acme/2026/03/{export_id}-progress.csv"),
        }
    }
}

impl PublicEvent for WebhookTest {
    const DESCRIPTION: &'static str = "A test delivery an admin asked for: it needs no action.";

    fn sample() -> Self {
        WebhookTest {
            endpoint_id: Uuid::from_u128(0x0195_a0f2_3d4c_7b5a_8e6f_1a2b_3c4d_5e6f),
            message: "This is a test delivery from the training assignments service.".into(),
        }
    }
}
