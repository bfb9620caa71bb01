//! The training-assignments domain: plain types and rules, unit-tested without I/O.
//!
//! Nothing here knows about DynamoDB, HTTP or Lambda; the store and the route functions translate
//! between these types and the outside world.

pub mod aggregates;
pub mod assignment;
pub mod catalog;
pub mod compliance;
pub mod deadline;
pub mod directory;
pub mod event;
pub mod export;
pub mod ids;
pub mod preview;
pub mod progress;
pub mod recurrence;
pub mod reminders;
pub mod sarif;
pub mod skew;
pub mod validation;
pub mod vocabulary;
pub mod webhook;

pub use aggregates::{Aggregates, DatedCounts, ProgressSummary, RowClass, RowContribution};
pub use assignment::{Activation, Assignee, Assignment, AssignmentSummary, NewAssignment, Patch, RosterStatus, Target};
pub use catalog::{
    Catalog, CatalogError, CatalogNode, CustomCourseItem, CustomItemType, ItemCounts, ResolvedTarget, TrackedItem,
    TrackedUnit,
};
pub use compliance::{
    ComplianceRollup, ComplianceTransition, LearnerCompliance, LearnerFigures, Obligation, RollupFigures, Standing,
};
pub use directory::{ApiKey, AuditEntry, CustomCourse, Team, TeamChange, User, UserChange, UserFacets};
pub use event::{DomainEvent, Event, Lane};
pub use export::{ExportJob, ExportStatus};
pub use ids::{AssignmentId, CourseId, IdError, OrgId, Slug, TeamId, UserId, canonical_uuid};
pub use progress::{CompletedItem, Completion, Exemption, LearnerPatch, ProgressRow, Source, UserStatus};
pub use recurrence::{Cycle, Recurrence};
pub use sarif::{Findings, SarifUpload, Scan, ScanError, UploadStatus};
pub use vocabulary::{AssigneeType, ContentArea, Role, TargetType, Wire};
