//! Published events: code scanning and exports.

use super::*;

/// A topic an ingestion assigned, found already assigned, or did not assign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicAssignment {
    /// The assignment that gives the author the topic (created, or already there); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "AssignmentId")]
    pub assignment_id: Option<AssignmentId>,
    /// The practice topic.
    pub topic_id: String,
    /// The scan's CWEs that map to it (`CWE-79`).
    pub cwes: Vec<String>,
}

/// `sarif.ingested`: what an ingestion of a SARIF log did (also the response of `POST /sarif`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    #[schemars(with = "String")]
    pub reason: Option<String>,
    /// When the log was ingested.
    pub ingested_at: DateTime<Utc>,
}

impl Event for SarifIngested {
    const DETAIL_TYPE: &'static str = "sarif.ingested";
}

/// `export.ready`: an export's file is written (its audit entry's metadata too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
