//! What a write is about to commit, as the caller's announcer sees it: the change of a row (or of a
//! learner's compliance) that the domain events committed with it announce.

use domain::{ComplianceTransition, DomainEvent, ProgressRow, User, UserId};

/// A row as it was before a change and as stored after it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub before: ProgressRow,
    pub after: ProgressRow,
    /// The learner became compliant or non-compliant with this change.
    pub compliance: Option<ComplianceTransition>,
}

impl RowChange {
    /// The learner (in scope) reached 100 % with this change.
    pub fn completed_now(&self) -> bool {
        self.before.completed_at.is_none() && self.after.completed_at.is_some() && self.after.removed_at.is_none()
    }

    /// The learner (in scope) completed another recertification cycle with this change. Only a
    /// completion's own change says so: re-deriving rows (a new recurrence) announces nothing.
    pub fn recertified_now(&self) -> bool {
        !self.before.cycles.is_empty()
            && self.after.cycles.len() > self.before.cycles.len()
            && self.after.removed_at.is_none()
    }
}

/// What a write is about to commit, as the announcer sees it (before the transaction, and again on
/// each retry: the events commit with exactly the change they announce).
#[derive(Debug, Clone, Copy)]
pub enum Written<'a> {
    /// An existing row changed (progress, membership, an admin's override, a re-derivation).
    Row(&'a RowChange),
    /// A new row joined the roster (`row.removed_at` set: a leave's tombstone), and the learner's
    /// change of compliance with it, if announced.
    Added { row: &'a ProgressRow, compliance: Option<ComplianceTransition> },
    /// Only the learner's compliance changed (a rule change, a team move, the clock).
    Compliance(&'a ComplianceTransition),
}

impl Written<'_> {
    /// The learner the write is about.
    pub fn user_id(&self) -> UserId {
        match self {
            Written::Row(change) => change.after.user_id,
            Written::Added { row, .. } => row.user_id,
            Written::Compliance(t) => t.user_id,
        }
    }

    /// The learner's change of compliance that the write announces, if any.
    pub fn compliance(&self) -> Option<&ComplianceTransition> {
        match self {
            Written::Row(change) => change.compliance.as_ref(),
            Written::Added { compliance, .. } => compliance.as_ref(),
            Written::Compliance(t) => Some(t),
        }
    }
}

/// The caller's event builders: the events a [`Written`] change announces, given the learner's profile
/// (their names; `None` while the directory does not have them). The store reads the profile only
/// for a change that announces something.
pub type Announce<'a> = &'a (dyn Fn(&Written<'_>, Option<&User>) -> Vec<DomainEvent> + Sync);

/// An announcer for writes that announce nothing (seeding, benchmarks, the rest of a new roster, whose
/// `assignment.created` speaks for it).
pub fn announce_nothing(_: &Written<'_>, _: Option<&User>) -> Vec<DomainEvent> {
    Vec::new()
}
