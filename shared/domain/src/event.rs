//! The service's events, one type per EventBridge detail type: the events it publishes (source
//! `assignments`) and the work requests it sends itself. Each type is the one home of its detail's
//! shape: the producer serialises it ([`DomainEvent::new`]) and the consumers and workers parse it
//! ([`DomainEvent::detail_as`], [`parse`]); its detail type is [`Event::DETAIL_TYPE`] and nowhere else.
//!
//! An event is written to the table's outbox in the transaction of the change it announces and sent
//! from there, so it carries its own id: a consumer that sees the same id twice (delivery is at least
//! once) drops the second. Every detail carries the data as of that commit (a snapshot), so a webhook
//! consumer needs nothing else to act on it.
//!
//! The platform's events this service consumes are parsed by `events::platform`, whose detail types
//! implement [`Event`] too.

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::assignment::{Assignee, Assignment, Target};
use crate::directory::User;
use crate::ids::{AssignmentId, OrgId, TeamId, UserId};
use crate::progress::{ProgressRow, UserStatus};
use crate::recurrence::Recurrence;

/// An event type: the detail of one EventBridge detail type.
pub trait Event {
    /// Its EventBridge `detail-type`.
    const DETAIL_TYPE: &'static str;
}

/// A detail as it goes out: what every event of the service carries, and the event's own fields
/// (`E`, flattened into the same object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail<E> {
    /// The event's id (also the EventBridge entry's): a consumer drops an id it has seen.
    pub event_id: Uuid,
    /// The org (tenant) the event belongs to.
    pub org_id: OrgId,
    /// When the change it announces was made (a completion: when the learner completed).
    pub occurred_at: DateTime<Utc>,
    /// The event's own fields.
    #[serde(flatten)]
    pub event: E,
}

/// One event on its way out: its id (also `detail.eventId`), EventBridge detail type, detail and
/// time. The detail is kept as JSON: it is stored in the outbox and read back as such.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    pub id: Uuid,
    pub detail_type: String,
    pub detail: Value,
    pub time: DateTime<Utc>,
}

impl DomainEvent {
    /// `event` of `org` made at `at`, under `id`: its detail is the [`Detail`] of `event`.
    pub fn new<E: Event + Serialize>(id: Uuid, org: &OrgId, at: DateTime<Utc>, event: &E) -> DomainEvent {
        let detail = Detail { event_id: id, org_id: org.clone(), occurred_at: at, event };
        // Serialising a detail cannot fail: its fields are ids, strings, numbers, booleans, dates and
        // structs of them, and no map has keys other than strings (the round-trip test goes through
        // every type).
        let detail = serde_json::to_value(&detail).unwrap_or_default();
        DomainEvent { id, detail_type: E::DETAIL_TYPE.to_owned(), detail, time: at }
    }

    /// Whether this is an event of type `E`.
    pub fn is<E: Event>(&self) -> bool {
        self.detail_type == E::DETAIL_TYPE
    }

    /// The detail as `E`'s; `Err` if this is another type's event or its detail does not fit.
    pub fn detail_as<E: Event + DeserializeOwned>(&self) -> Result<Detail<E>, ParseError> {
        parse(&self.detail_type, &self.detail)
    }

    /// The same request again under a new id made at `at` (`detail.eventId` too): a request handed on
    /// from a lane's line is a new outbox entry, whose item is named by its first event's id.
    pub fn reissued(&self, id: Uuid, at: DateTime<Utc>) -> DomainEvent {
        let mut detail = self.detail.clone();
        if let Some(obj) = detail.as_object_mut() {
            obj.insert("eventId".into(), Value::String(id.to_string()));
        }
        DomainEvent { id, detail_type: self.detail_type.clone(), detail, time: at }
    }
}

/// The org a detail names (its `orgId`, which every detail carries); `None` if it names none.
pub fn org_of(detail: &Value) -> Option<OrgId> {
    detail.get("orgId").and_then(Value::as_str).and_then(|o| OrgId::parse(o).ok())
}

/// Why a detail is not the detail of an event type. The reason never quotes a value of the detail
/// (serde's messages do: `invalid type: string "ada@example.com"`), so it can be logged without
/// personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("detail-type {found:?} is not {expected}")]
    OtherType { expected: &'static str, found: String },
    #[error("detail is missing the field {0}")]
    MissingField(String),
    #[error("a detail field has the wrong type or value")]
    Invalid,
}

/// The detail of an event of `detail_type` as `E`'s ([`Detail`]: with the id, org and time).
pub fn parse<E: Event + DeserializeOwned>(detail_type: &str, detail: &Value) -> Result<Detail<E>, ParseError> {
    if detail_type != E::DETAIL_TYPE {
        return Err(ParseError::OtherType { expected: E::DETAIL_TYPE, found: detail_type.chars().take(64).collect() });
    }
    fields(detail)
}

/// `detail` (or a part of it) as `T`, with a [`ParseError`] that quotes no value of it.
pub fn fields<T: DeserializeOwned>(detail: &Value) -> Result<T, ParseError> {
    serde_json::from_value(detail.clone()).map_err(|e| {
        let message = e.to_string();
        match message.strip_prefix("missing field ") {
            Some(field) if !field.contains('"') => ParseError::MissingField(field.to_owned()),
            _ => ParseError::Invalid,
        }
    })
}

/// A worker's lane: the work requests the service sends itself go to a worker's queue, not the bus, and
/// each org has one request of a lane running (or queued to run) at a time while its others wait in line
/// (`service::lanes`), so one org's backlog never keeps another org's request from running next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// [`RosterRequested`] and [`ComplianceSyncRequested`]: the roster worker.
    Roster,
    /// [`ExportRequested`]: the export worker.
    Export,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Roster, Lane::Export];

    /// The lane of a work request's detail type; `None` for an event for the bus.
    pub fn of(detail_type: &str) -> Option<Lane> {
        if detail_type == RosterRequested::DETAIL_TYPE || detail_type == ComplianceSyncRequested::DETAIL_TYPE {
            Some(Lane::Roster)
        } else if detail_type == ExportRequested::DETAIL_TYPE {
            Some(Lane::Export)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Roster => "roster",
            Lane::Export => "export",
        }
    }
}

/// A work request as its worker reads it: the org it is for and the request's own fields. The id and
/// time are not read: an operator's direct invocation of a worker may leave them out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkRequest<E> {
    /// The org the request is for.
    pub org_id: OrgId,
    /// The request's own fields.
    #[serde(flatten)]
    pub request: E,
}

impl<E: Event + DeserializeOwned> WorkRequest<E> {
    /// The request in `detail` (a message's, whatever its detail type says).
    pub fn of(detail: &Value) -> Result<Self, ParseError> {
        fields(detail)
    }
}

// ---------------------------------------------------------------------------------------------------
// What several events carry.

/// An assignment as an event shows it: what it is, whom it is for and its rules, as of the event
/// (the fields of [`crate::AssignmentSummary`], owned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentSnapshot {
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
    pub due_in_days: Option<u32>,
    /// Only learners who joined the scope after the assignment was created get it. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_starters_only: bool,
    /// Recertification: how long each completion is valid. Absent for a one-off assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Recurrence>,
    /// Whether the assignment counts towards compliance.
    pub is_mandatory: bool,
    /// Whether the assignment is active (an inactive one records no progress and sends no reminders).
    pub is_active: bool,
    /// How many tracked items completing it takes.
    pub item_count: u32,
}

impl From<&Assignment> for AssignmentSnapshot {
    fn from(a: &Assignment) -> Self {
        let s = a.summary();
        AssignmentSnapshot {
            id: s.id,
            target: s.target.clone(),
            target_title: s.target_title.to_owned(),
            target_path: s.target_path.to_owned(),
            assignee: s.assignee.clone(),
            assignee_name: s.assignee_name.to_owned(),
            deadline: s.deadline,
            due_in_days: s.due_in_days,
            new_starters_only: s.new_starters_only,
            recurrence: s.recurrence,
            is_mandatory: s.is_mandatory,
            is_active: s.is_active,
            item_count: s.item_count,
        }
    }
}

/// The learner an event is about, with their name and email as the service knows them (`null` while
/// unknown: a team event about a user can arrive before the event that creates the user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Learner {
    /// The learner's user id.
    pub user_id: UserId,
    /// Their name; `null` while unknown.
    pub user_name: Option<String>,
    /// Their email; `null` while unknown.
    pub user_email: Option<String>,
}

impl Learner {
    /// `user` with their projected `profile`'s name and email, an empty one as unknown.
    pub fn known(user: UserId, profile: Option<&User>) -> Self {
        let known = |field: fn(&User) -> &str| profile.map(field).filter(|v| !v.is_empty()).map(str::to_owned);
        Learner { user_id: user, user_name: known(|u| u.name.as_str()), user_email: known(|u| u.email.as_str()) }
    }

    /// `user` with their projected `profile`'s name and email as they are (an empty one stays empty).
    pub fn projected(user: UserId, profile: Option<&User>) -> Self {
        Learner {
            user_id: user,
            user_name: profile.map(|u| u.name.clone()),
            user_email: profile.map(|u| u.email.clone()),
        }
    }
}

/// One learner's own date and exemption on an assignment (an admin's change of them:
/// [`UserUpdated`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LearnerOverride {
    /// The learner's due date.
    pub due_on: NaiveDate,
    /// The date an admin extended them to; `null` if none.
    pub extended_to: Option<NaiveDate>,
    /// Whether an admin exempted them.
    pub exempt: bool,
    /// The exemption's reason; `null` if not exempt.
    pub reason: Option<String>,
    /// The learner's row's revision (the `If-Match` of their next change).
    pub version: u64,
}

impl LearnerOverride {
    /// `row`'s, on an assignment due on `deadline` (the audit entry's `before`/`after`:
    /// [`ProgressRow::override_snapshot`]).
    pub fn of(row: &ProgressRow, deadline: NaiveDate) -> Self {
        LearnerOverride {
            due_on: row.due_on(deadline),
            extended_to: row.extended_to,
            exempt: row.exemption.is_some(),
            reason: row.exemption.as_ref().map(|e| e.reason.clone()),
            version: row.revision,
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Published events: an admin's changes of an assignment.

/// `assignment.created`: an admin (or a SARIF ingestion) created an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentCreated {
    /// The assignment as created.
    pub assignment: AssignmentSnapshot,
    /// Who created it (a user id, or an API key's id).
    pub actor_id: String,
}

impl Event for AssignmentCreated {
    const DETAIL_TYPE: &'static str = "assignment.created";
}

/// `assignment.updated`: an admin changed an assignment (its deadline, mandatory flag, note or
/// recurrence) without deactivating or reactivating it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentUpdated {
    /// The assignment as changed.
    pub assignment: AssignmentSnapshot,
    /// Who changed it.
    pub actor_id: String,
}

impl Event for AssignmentUpdated {
    const DETAIL_TYPE: &'static str = "assignment.updated";
}

/// `assignment.deactivated`: an admin deactivated an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentDeactivated {
    /// The assignment as changed.
    pub assignment: AssignmentSnapshot,
    /// Who changed it.
    pub actor_id: String,
}

impl Event for AssignmentDeactivated {
    const DETAIL_TYPE: &'static str = "assignment.deactivated";
}

/// `assignment.reactivated`: an admin reactivated an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentReactivated {
    /// The assignment as changed.
    pub assignment: AssignmentSnapshot,
    /// Who changed it.
    pub actor_id: String,
}

impl Event for AssignmentReactivated {
    const DETAIL_TYPE: &'static str = "assignment.reactivated";
}

// ---------------------------------------------------------------------------------------------------
// Published events: one learner on one assignment.

/// `assignment.user_added`: a learner came into the assignment's scope after it was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAdded {
    /// The assignment they got.
    pub assignment: AssignmentSnapshot,
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
}

impl Event for UserAdded {
    const DETAIL_TYPE: &'static str = "assignment.user_added";
}

/// `assignment.completed`: a learner completed every tracked item of the assignment (again, for
/// another cycle of a recertification).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentCompleted {
    /// The assignment they completed.
    pub assignment: AssignmentSnapshot,
    /// When they completed its last item (also the event's `occurredAt`).
    pub completed_at: DateTime<Utc>,
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
}

impl Event for AssignmentCompleted {
    const DETAIL_TYPE: &'static str = "assignment.completed";
}

/// `assignment.user_updated`: an admin extended or exempted one learner (`before`/`after` as in the
/// audit entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdated {
    /// The assignment.
    pub assignment: AssignmentSnapshot,
    /// Who changed the learner.
    pub actor_id: String,
    /// The learner's date and exemption before the change.
    pub before: LearnerOverride,
    /// The learner's date and exemption after it.
    pub after: LearnerOverride,
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
}

impl Event for UserUpdated {
    const DETAIL_TYPE: &'static str = "assignment.user_updated";
}

/// `compliance.changed`: a learner became compliant or non-compliant (with every mandatory
/// assignment they have).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceChanged {
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
    /// Their team; `null` if none.
    pub team_id: Option<TeamId>,
    /// Whether they are compliant now.
    pub compliant: bool,
    /// For a learner who became non-compliant: the first day they were; otherwise `null`.
    pub non_compliant_since: Option<NaiveDate>,
}

impl Event for ComplianceChanged {
    const DETAIL_TYPE: &'static str = "compliance.changed";
}

// ---------------------------------------------------------------------------------------------------
// Published events: the daily job's notices (each once per learner, assignment and occasion).

/// What every notice of the daily job says of its learner on the assignment, as of the job's day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LearnerNotice {
    /// The assignment.
    pub assignment: AssignmentSnapshot,
    /// The learner.
    #[serde(flatten)]
    pub learner: Learner,
    /// The assignment's deadline.
    pub deadline: NaiveDate,
    /// The learner's own due date.
    pub due_on: NaiveDate,
    /// The learner's status on the job's day.
    pub status: UserStatus,
    /// The share of the tracked items they completed, from 0 to 1.
    pub progress: f64,
}

/// `assignment.due_soon`: a learner who has not completed the assignment is due in `days` days (7,
/// then 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DueSoon {
    #[serde(flatten)]
    pub notice: LearnerNotice,
    /// Days until the learner's due date.
    pub days: i64,
}

impl Event for DueSoon {
    const DETAIL_TYPE: &'static str = "assignment.due_soon";
}

/// `assignment.overdue`: a learner who has not completed the assignment is past their due date (the
/// first overdue day, then weekly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overdue {
    #[serde(flatten)]
    pub notice: LearnerNotice,
    /// How many days overdue (1 on the first overdue day).
    pub days: i64,
}

impl Event for Overdue {
    const DETAIL_TYPE: &'static str = "assignment.overdue";
}

/// `assignment.recertification_due`: a recertified learner's next cycle has opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecertificationDue {
    #[serde(flatten)]
    pub notice: LearnerNotice,
    /// The first day of the next cycle.
    pub window_opens_on: NaiveDate,
    /// The last day their last completion is valid.
    pub valid_until: NaiveDate,
    /// How many cycles they completed.
    pub cycles: usize,
}

impl Event for RecertificationDue {
    const DETAIL_TYPE: &'static str = "assignment.recertification_due";
}

/// `assignment.expired`: a recertified learner's last completion lapsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expired {
    #[serde(flatten)]
    pub notice: LearnerNotice,
    /// The last day their last completion was valid.
    pub valid_until: NaiveDate,
    /// How many cycles they completed.
    pub cycles: usize,
}

impl Event for Expired {
    const DETAIL_TYPE: &'static str = "assignment.expired";
}

// ---------------------------------------------------------------------------------------------------
// Published events: code scanning and exports.

/// A topic an ingestion assigned, found already assigned, or did not assign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicAssignment {
    /// The assignment that gives the author the topic (created, or already there); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_id: Option<AssignmentId>,
    /// The practice topic.
    pub topic_id: String,
    /// The scan's CWEs that map to it (`CWE-79`).
    pub cwes: Vec<String>,
}

/// `sarif.ingested`: what an ingestion of a SARIF log did (also the response of `POST /sarif`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifIngested {
    /// The ingestion's id.
    pub ingestion_id: Uuid,
    /// The scanner or CI system that sent the log.
    pub source: String,
    /// The repository scanned.
    pub repo: String,
    /// The branch scanned; `null` if not given.
    #[serde(default)]
    pub branch: Option<String>,
    /// The commit scanned.
    pub commit_sha: String,
    /// The commit's author as a user of the org; `null` if unknown.
    pub author_user_id: Option<UserId>,
    /// The tools whose results the log holds.
    pub tools: Vec<String>,
    /// How many results the log holds.
    pub results: usize,
    /// The results' CWEs.
    pub cwes: Vec<String>,
    /// Topics assigned to the author by this ingestion.
    pub created: Vec<TopicAssignment>,
    /// Topics an active assignment already gives the author.
    pub already_covered: Vec<TopicAssignment>,
    /// Mapped topics not assigned: beyond the most one ingestion creates, or all of them when the
    /// author is unknown.
    pub not_created: Vec<TopicAssignment>,
    /// CWEs that map to no topic.
    pub unmapped_cwes: Vec<String>,
    /// Why nothing was created for a known reason (an unknown author); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the log was ingested.
    pub ingested_at: DateTime<Utc>,
}

impl Event for SarifIngested {
    const DETAIL_TYPE: &'static str = "sarif.ingested";
}

/// `export.ready`: an export's file is written (its audit entry's metadata too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportReady {
    /// The export's id.
    pub export_id: Uuid,
    /// What was exported (`assignments`, `progress`, …).
    pub kind: String,
    /// The rows written.
    pub row_count: u64,
    /// The file's size.
    pub bytes: u64,
    /// The file's object key.
    pub key: String,
}

impl Event for ExportReady {
    const DETAIL_TYPE: &'static str = "export.ready";
}

// ---------------------------------------------------------------------------------------------------
// Work requests: the service's requests to itself, sent to a worker's queue ([`Lane`]), not the bus.

/// `export.requested`: write the file of a running export (the export worker's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequested {
    /// The export's id.
    pub export_id: Uuid,
    /// What to export (the worker reads it from the job; an operator's request may leave it out).
    #[serde(default)]
    pub kind: String,
}

impl Event for ExportRequested {
    const DETAIL_TYPE: &'static str = "export.requested";
}

/// What a roster run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RosterMode {
    /// A new roster: members without a row get one (which takes the completions they logged).
    #[default]
    Build,
    /// The reconcile job: members without a row join, removed members in scope return, rows of people
    /// no longer in scope leave, rows derived under other items are derived again.
    Repair,
    /// [`RosterMode::Repair`], and every member's row takes the completions logged meanwhile:
    /// reactivation (completions are not recorded on inactive assignments) and a stopped run started
    /// again.
    CatchUp,
}

/// Which listing a roster run goes through: the assignee's members, then (repairs) the assignment's
/// rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RosterPhase {
    #[default]
    Members,
    Rows,
}

/// Where a roster run starts: `mode` and `phase` default to a build's members (as create requests
/// them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RosterFrom {
    /// What the run does.
    #[serde(default, deserialize_with = "null_as_default")]
    pub mode: RosterMode,
    /// Which listing it goes through.
    #[serde(default, deserialize_with = "null_as_default")]
    pub phase: RosterPhase,
    /// Where in the listing it starts (the store's opaque page key); `null`: the listing's start.
    #[serde(default)]
    pub resume: Option<Value>,
}

/// A field whose `null` means its default, as its absence does.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `assignment.roster_requested`: run `run` is to go on with the roster of an assignment (the roster
/// worker's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RosterRequested {
    /// The assignment.
    pub assignment_id: AssignmentId,
    /// The run that may go on (the assignment's `rosterRun`).
    pub run: Uuid,
    /// Where it goes on from.
    #[serde(flatten)]
    pub from: RosterFrom,
}

impl Event for RosterRequested {
    const DETAIL_TYPE: &'static str = "assignment.roster_requested";
}

/// `assignment.compliance_sync_requested`: the sync of change `rev` of an assignment's rules to its
/// learners' obligations is to go on (the roster worker's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceSyncRequested {
    /// The assignment.
    pub assignment_id: AssignmentId,
    /// The change (its `unitsRev`) being synced.
    pub rev: u64,
    /// Where the sync goes on from (the store's opaque page key); `null`: the first learner.
    #[serde(default)]
    pub resume: Option<Value>,
}

impl Event for ComplianceSyncRequested {
    const DETAIL_TYPE: &'static str = "assignment.compliance_sync_requested";
}

#[cfg(test)]
mod tests;
