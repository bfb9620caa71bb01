//! The single DynamoDB table, behind an API in domain terms.
//!
//! Handlers never see attribute maps: they call `create_assignment`, `progress_page`, … with domain
//! types. Keys live in [`keys`]; item shapes in `records`; each access pattern of design §5 is one
//! method that issues a Query/GetItem/TransactWriteItems, never a Scan.

mod access;
mod assignments;
mod audit;
mod capacity;
mod catalog;
mod changes;
mod compliance;
mod courses;
pub mod cursor;
mod directory;
mod dynamo;
mod export_jobs;
mod headcount;
mod jobs;
pub mod keys;
mod lanes;
mod outbox;
mod partition;
mod progress;
mod records;
pub mod retry;
mod roster;
mod sarif;
mod tx;
pub mod webhooks;
mod written;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub use access::{
    CreateAnswer, IdempotencyBegin, IdempotencyKey, RateCounts, RateLimits, RateSubject, StoredResponse, token_sha256,
};
pub use assignments::{AssignmentFilter, IndividualAssignment, MAX_INDIVIDUAL_ASSIGNMENTS};
pub use audit::AuditFilter;
pub use capacity::Capacity;
pub use compliance::{LearnerFilter, Rollups};
pub use cursor::CursorCodec;
pub use dynamo::{FILTERED_PAGE_SIZE, MAX_PAGES_PER_REQUEST};
pub use export_jobs::EXPORT_SLOTS;
pub use headcount::{Headcount, Recount};
pub use jobs::Listed;
pub use lanes::LaneState;
pub use outbox::{
    MAX_EVENTS_PER_ITEM, OUTBOX_ENTITY, OUTBOX_KEEP_DAYS, OutboxImage, OutboxItem, OutboxKey, Unconfirmed, outbox_image,
};
pub use progress::MembershipChange;
pub use records::CorruptItem;
pub use roster::ROSTER_ROWS_PER_TRANSACTION;
pub use webhooks::{DeliveryFilter, Recorded, Restarted, SealedSecret};
pub use written::{Announce, RowChange, Written, announce_nothing};

/// The table and the client that reaches it. Cheap to clone; build once per Lambda instance.
#[derive(Clone, Debug)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
    capacity: Option<Capacity>,
}

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), capacity: None }
    }

    /// A store that asks DynamoDB for consumed capacity and adds it up in `capacity`
    /// (benchmarks and capacity tests).
    pub fn with_capacity_tracking(mut self, capacity: Capacity) -> Self {
        self.capacity = Some(capacity);
        self
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }
}

/// Errors of the storage layer. Callers branch on the first few; the rest are "try again later".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition on a single-item write failed (the item was not in the expected state).
    #[error("conditional check failed")]
    ConditionFailed,
    /// An active assignment with the same target and assignee exists.
    #[error("an active assignment with the same target and assignee exists: {existing_id}")]
    DuplicateAssignment { existing_id: domain::AssignmentId },
    /// The assignment's version is not the expected one (optimistic concurrency).
    #[error("the assignment was changed concurrently (version mismatch)")]
    VersionConflict,
    #[error("no such item")]
    NotFound,
    /// The assignment's tracked items changed since it was read (a custom course was edited): read it
    /// again and redo the change.
    #[error("the assignment's tracked items changed concurrently")]
    AssignmentChanged,
    /// DynamoDB throttled the request after the SDK's own retries.
    #[error("throttled by DynamoDB: {0}")]
    Throttled(String),
    /// A transaction collided with another one on the same items.
    #[error("transaction conflict: {0}")]
    TransactionConflict(String),
    #[error("invalid or tampered cursor")]
    InvalidCursor,
    #[error("invalid key part {0:?}")]
    InvalidKeyPart(String),
    #[error("stored item could not be read: {0}")]
    Corrupt(String),
    /// DynamoDB did not answer (a timeout, a connection that failed or an answer that was lost) or
    /// answered with a server error, after the SDK's own retries: whether a write happened is not
    /// known. Worth retrying; idempotent callers may.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    #[error("DynamoDB request failed: {0}")]
    Other(String),
}

impl StoreError {
    /// Worth retrying by the caller (or by Lambda/EventBridge).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Throttled(_)
                | StoreError::TransactionConflict(_)
                | StoreError::Unavailable(_)
                | StoreError::Other(_)
        )
    }
}

/// A page of results and the key to continue after it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<PageKey>,
}

/// Walks a paged listing to its end, the one way every job and use case follows `next`:
///
/// ```text
/// let mut pages = Pages::default();
/// while let Some(start) = pages.next_start() {
///     for row in pages.follow(store.progress_page(org, id, 100, start).await?) { … }
/// }
/// ```
#[derive(Debug, Default)]
pub struct Pages {
    start: Option<PageKey>,
    finished: bool,
}

impl Pages {
    /// Where the next page starts (`Some(None)`: the first page), or `None` once the last page was read.
    pub fn next_start(&mut self) -> Option<Option<PageKey>> {
        if self.finished {
            return None;
        }
        self.finished = true;
        Some(self.start.take())
    }

    /// Takes a page read from [`Pages::next_start`]'s key: remembers where the next one starts and
    /// returns its items.
    pub fn follow<T>(&mut self, page: Page<T>) -> Vec<T> {
        if let Some(key) = page.next {
            self.start = Some(key);
            self.finished = false;
        }
        page.items
    }
}

/// DynamoDB's `LastEvaluatedKey`, opaque outside the store. Turn it into a client cursor with
/// [`CursorCodec`], which signs it and binds it to the org and the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct PageKey(pub(crate) HashMap<String, AttributeValue>);
