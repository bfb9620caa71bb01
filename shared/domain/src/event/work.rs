//! Work requests: the service's requests to itself, sent to a worker's queue ([`super::Lane`]), not the bus.

use super::*;

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
