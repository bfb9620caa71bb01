//! The assignment entity and the changes an admin may make to it.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aggregates::Aggregates;
use crate::catalog::{ItemCounts, ResolvedTarget, TrackedUnit};
use crate::directory::User;
use crate::ids::{AssignmentId, TeamId, UserId};
use crate::progress::{ProgressRow, Source};
use crate::recurrence::Recurrence;
use crate::vocabulary::{AssigneeType, ContentArea, TargetType};

/// What is assigned. `target_id` is a slug (catalog) or a course UUID (custom course).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Which part of the platform the content comes from.
    pub content_area: ContentArea,
    /// The level of the content hierarchy assigned.
    pub target_type: TargetType,
    /// The content's slug (catalog content) or UUID (a custom course).
    pub target_id: String,
}

/// Who it is assigned to. For `org`, `assignee_id` is the org id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignee {
    /// Who it is assigned to: a user, a team or the whole org.
    pub assignee_type: AssigneeType,
    /// The user's or team's UUID, or the org's id.
    pub assignee_id: String,
}

/// An assignment as stored. Target and assignee are immutable; deadline, mandatory flag, note and
/// active state change through [`Patch`], which bumps `version`. Counters move with progress and do
/// not bump `version` (an admin's `If-Match` is about what admins edit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub id: AssignmentId,
    #[serde(flatten)]
    pub target: Target,
    pub target_title: String,
    pub target_path: String,
    #[serde(flatten)]
    pub assignee: Assignee,
    pub assignee_name: String,
    /// The due date of rows without one of their own. With `due_in_days`, the date of the learners
    /// assigned at creation; each later learner has their own.
    pub deadline: NaiveDate,
    /// A relative deadline: each learner is due this many days after the UTC date they got their row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_in_days: Option<u32>,
    /// "Default for New Starters": only users who join the scope after creation get rows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_starters_only: bool,
    /// Recertification: each completion is valid for a number of months (see [`crate::recurrence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Recurrence>,
    pub is_mandatory: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub is_active: bool,
    pub units: Vec<TrackedUnit>,
    pub item_count: u32,
    /// Bumped whenever `units` change (a custom course was edited); progress writes computed against
    /// older units are refused and redone.
    #[serde(default)]
    pub units_rev: u64,
    /// Set (to the `unitsRev` of the change) while a change of the rules learners' obligations follow
    /// has not reached every learner yet: the store's sync clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance_sync: Option<u64>,
    /// When the sync last handed on to its next share (none: not since the change): the reconcile
    /// job starts again only a sync that has not moved for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance_sync_at: Option<DateTime<Utc>>,
    /// Whether every member the assignee had at creation has a row yet (the roster worker writes them
    /// off the request path; the counters always count the rows present).
    #[serde(default)]
    pub roster_status: RosterStatus,
    /// While building: the roster worker run that may go on (each run hands over to the next with a
    /// new id), so a duplicated request's run stops instead of building the rest twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_run: Option<uuid::Uuid>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    #[serde(flatten)]
    pub aggregates: Aggregates,
}

/// Whether an assignment's roster is all written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RosterStatus {
    /// The roster worker is still writing the rows of the members the assignee had at creation.
    Building,
    /// Every such member has a row (later joiners get theirs as they join).
    #[default]
    Complete,
}

impl RosterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RosterStatus::Building => "building",
            RosterStatus::Complete => "complete",
        }
    }
}

/// What an assignment is, in the API's words: the fields every outward shape of it carries (the API
/// resource, [`AssignmentResource`], adds its note, history and progress; events carry this as of the
/// event, `assignment.created` the whole resource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentSummary {
    /// The assignment's id.
    pub id: AssignmentId,
    /// What is assigned: `contentArea`, `targetType` and `targetId`.
    #[serde(flatten)]
    pub target: Target,
    /// The assigned content's title.
    pub target_title: String,
    /// Where the content sits in the catalog (its breadcrumb).
    pub target_path: String,
    /// Whom it is assigned to: `assigneeType` (`user`, `team` or `org`) and `assigneeId`.
    #[serde(flatten)]
    pub assignee: Assignee,
    /// The assignee's name.
    pub assignee_name: String,
    /// The due date of learners without one of their own.
    pub deadline: NaiveDate,
    /// A relative deadline: each learner is due this many days after they got the assignment. Absent
    /// for a fixed deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32")]
    pub due_in_days: Option<u32>,
    /// Only learners who joined the scope after the assignment was created get it. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_starters_only: bool,
    /// Recertification: how long each completion is valid. Absent for a one-off assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Recurrence")]
    pub recurrence: Option<Recurrence>,
    /// Whether the assignment counts towards compliance.
    pub is_mandatory: bool,
    /// Whether the assignment is active (an inactive one records no progress and sends no reminders).
    pub is_active: bool,
    /// How many tracked items completing it takes.
    pub item_count: u32,
}

/// What a client may send to create an assignment (wire names): [`crate::validation::validate_create`]
/// reads exactly these, and a test holds them to the resource's fields.
pub const CREATE_FIELDS: &[&str] = &[
    "contentArea",
    "targetType",
    "targetId",
    "assigneeType",
    "assigneeId",
    "deadline",
    "dueInDays",
    "newStartersOnly",
    "recurrence",
    "isMandatory",
    "note",
];

/// What a client may change with PATCH (wire names, one per [`Patch`] field). Validation reads them,
/// and the store writes exactly these fields of the serialised assignment (with [`PATCH_ALSO_WRITES`]):
/// adding a patchable field is the field, this list, [`Patch`], [`Assignment::patched`] (and
/// `NewAssignment::into_assignment`), its validation, the API view and OpenAPI — not the store.
pub const PATCHABLE_FIELDS: &[&str] = &["deadline", "isMandatory", "note", "isActive", "recurrence"];

/// What a change also writes, besides the patchable fields: its version and time. (The roster run it
/// may start, and `unitsRev` and `complianceSync`, move too: the store writes the run with its status,
/// and the revisions relative to the stored values, so a concurrent change is not undone.)
pub const PATCH_ALSO_WRITES: &[&str] = &["version", "updatedAt"];

/// Fields of the resource (the API's assignment) that no PATCH may change: naming one is
/// `immutable_field`, not "unknown field". With [`PATCHABLE_FIELDS`], every field of the resource;
/// a test over the serialised resource holds the two lists to it.
pub const IMMUTABLE_FIELDS: &[&str] = &[
    "id",
    "contentArea",
    "targetType",
    "targetId",
    "targetTitle",
    "targetPath",
    "assigneeType",
    "assigneeId",
    "assigneeName",
    "dueInDays",
    "newStartersOnly",
    "itemCount",
    "rosterStatus",
    "complianceSync",
    "createdAt",
    "createdBy",
    "updatedAt",
    "version",
    "progress",
];

/// A validated patch: only these fields may change ([`PATCHABLE_FIELDS`]). `note: Some(None)` clears
/// the note.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    pub deadline: Option<NaiveDate>,
    pub is_mandatory: Option<bool>,
    pub note: Option<Option<String>>,
    pub is_active: Option<bool>,
    /// `Some(None)` stops recertification (cycles stay as history).
    pub recurrence: Option<Option<Recurrence>>,
}

/// How a patch changed the active state; decides which domain event follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Unchanged,
    Deactivated,
    Reactivated,
}

impl Assignment {
    pub fn summary(&self) -> AssignmentSummary {
        AssignmentSummary {
            id: self.id,
            target: self.target.clone(),
            target_title: self.target_title.clone(),
            target_path: self.target_path.clone(),
            assignee: self.assignee.clone(),
            assignee_name: self.assignee_name.clone(),
            deadline: self.deadline,
            due_in_days: self.due_in_days,
            new_starters_only: self.new_starters_only,
            recurrence: self.recurrence,
            is_mandatory: self.is_mandatory,
            is_active: self.is_active,
            item_count: self.item_count,
        }
    }

    /// Whether `user` belongs in this assignment's scope according to the directory: active, and the
    /// assignee themself, a member of the team, or anyone in the org — for a new-starters assignment,
    /// only if they came into the scope after it was created.
    pub fn includes(&self, user: &User) -> bool {
        user.is_active
            && match self.assignee.assignee_type {
                AssigneeType::User => self.assignee.assignee_id == user.user_id.to_string(),
                AssigneeType::Team => user.team_id.is_some_and(|t| t.to_string() == self.assignee.assignee_id),
                AssigneeType::Org => true,
            }
            && self.admits(user)
    }

    /// Whether this assignment may give `user` a row at all: always, except that a new-starters
    /// assignment admits only users who joined its team (or whose account was created) after it was
    /// created. Someone it never admitted gets no row, not even a removed one.
    pub fn admits(&self, user: &User) -> bool {
        if !self.new_starters_only {
            return true;
        }
        self.entered_scope(user).is_some_and(|at| at > self.created_at)
    }

    /// When `user` came into this assignment's scope, as far as the directory knows, whatever order
    /// its events arrived in: first seen in the team, or the account's creation (org). `None` for an
    /// individual assignment or when not known.
    pub fn entered_scope(&self, user: &User) -> Option<DateTime<Utc>> {
        match self.assignee.assignee_type {
            AssigneeType::Team => {
                TeamId::parse(&self.assignee.assignee_id).ok().and_then(|t| user.facets.first_in_team.get(&t).copied())
            }
            AssigneeType::Org => user.facets.created_at,
            AssigneeType::User => None,
        }
    }

    /// A row for a learner who came into scope at `at`, due on their own date when the deadline is
    /// relative: `due_in_days` after the UTC date they got it (the later of `at` and the creation).
    /// The membership event's time, not the clock, decides, so a replayed event gives the same date.
    pub fn new_row(&self, user: UserId, source: Source, at: DateTime<Utc>) -> ProgressRow {
        let mut row = ProgressRow::new(self.id, user, source, at);
        row.relative_due_on = self.relative_due_on(at);
        row
    }

    /// The due date of a learner who got their row at `at` (or at creation, if later), when the
    /// deadline is relative.
    pub fn relative_due_on(&self, at: DateTime<Utc>) -> Option<NaiveDate> {
        let got_it = at.max(self.created_at).date_naive();
        self.due_in_days.and_then(|days| got_it.checked_add_days(chrono::Days::new(u64::from(days))))
    }

    /// Why a learner in scope has this assignment (the learner view's `source`).
    pub fn source(&self) -> Source {
        match self.assignee.assignee_type {
            AssigneeType::User => Source::Individual,
            AssigneeType::Team => match TeamId::parse(&self.assignee.assignee_id) {
                Ok(team_id) => Source::Team { team_id },
                Err(_) => Source::Individual,
            },
            AssigneeType::Org => Source::Organization,
        }
    }

    /// Applies `patch`, returning the new state, or `None` if nothing would change (a repeated DELETE,
    /// a PATCH that sets what is already there): such requests succeed without a write.
    pub fn patched(&self, patch: &Patch, now: DateTime<Utc>) -> Option<(Assignment, Activation)> {
        let mut next = self.clone();
        if let Some(deadline) = patch.deadline {
            next.deadline = deadline;
        }
        if let Some(mandatory) = patch.is_mandatory {
            next.is_mandatory = mandatory;
        }
        if let Some(note) = &patch.note {
            next.note = note.clone();
        }
        if let Some(active) = patch.is_active {
            next.is_active = active;
        }
        if let Some(recurrence) = patch.recurrence {
            next.recurrence = recurrence;
        }
        if next == *self {
            return None;
        }
        let activation = match (self.is_active, next.is_active) {
            (true, false) => Activation::Deactivated,
            (false, true) => Activation::Reactivated,
            _ => Activation::Unchanged,
        };
        if next.recurrence != self.recurrence || next.obligations_differ(self) {
            // Every row's cycles follow from the recurrence, and learners' obligations from the
            // deadline, activity and mandatory flag: progress (and compliance) written under the old
            // rules is refused and redone, as when tracked items change.
            next.units_rev = self.units_rev + 1;
        }
        if next.obligations_differ(self) {
            // Learners' obligations follow in the compliance sync; until it finishes, the reconcile
            // job finds this marker (a sync of an older change that had moved is not this one's).
            next.compliance_sync = Some(next.units_rev);
            next.compliance_sync_at = None;
        }
        next.version = self.version + 1;
        next.updated_at = now;
        Some((next, activation))
    }

    /// Whether the rules learners' obligations follow (see [`crate::compliance::Obligation`]) differ:
    /// the deadline, the activity or the mandatory flag.
    pub fn obligations_differ(&self, other: &Assignment) -> bool {
        self.deadline != other.deadline || self.is_active != other.is_active || self.is_mandatory != other.is_mandatory
    }

    /// Whether learners owe it: only an active, mandatory assignment counts towards compliance (and
    /// the org's count of obliging assignments).
    pub fn obliges(&self) -> bool {
        self.is_active && self.is_mandatory
    }

    /// The patchable fields and the version, for audit before/after (an absent note or recurrence is
    /// `null`).
    pub fn editable_snapshot(&self) -> serde_json::Value {
        let serialised = serde_json::to_value(self).unwrap_or_default();
        let field = |name: &str| serialised.get(name).cloned().unwrap_or(serde_json::Value::Null);
        let mut snapshot: serde_json::Map<String, serde_json::Value> =
            PATCHABLE_FIELDS.iter().map(|&name| (name.to_owned(), field(name))).collect();
        snapshot.insert("version".into(), field("version"));
        serde_json::Value::Object(snapshot)
    }
}

mod new;
mod resource;
mod schema;
pub use new::NewAssignment;
pub use resource::{AssignmentResource, ComplianceSync};

#[cfg(test)]
mod tests;
