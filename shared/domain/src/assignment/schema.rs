//! JSON Schemas of the types the assignment's outward shapes hold that are defined elsewhere: the v1
//! enums (their wire spellings, as [`crate::vocabulary`] lists them) and the resource's progress.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::aggregates::ProgressSummary;
use crate::vocabulary::{AssigneeType, ContentArea, TargetType};

/// A v1 enum: a string, one of its wire spellings (its `ALL` in order).
macro_rules! wire_enum_schema {
    ($($name:ident: $description:literal),+ $(,)?) => {$(
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn schema_id() -> Cow<'static, str> {
                concat!("domain::vocabulary::", stringify!($name)).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                let spellings: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                json_schema!({"type": "string", "enum": spellings, "description": $description})
            }
        }
    )+};
}

wire_enum_schema!(
    ContentArea: "Which part of the platform the content comes from.",
    TargetType: "The level of the content hierarchy an assignment points at.",
    AssigneeType: "Who an assignment is for: a user, a team or the whole org.",
);

// The resource's `progress` ([`ProgressSummary`], serialised as is): each field of it, described (its
// doc comments are the schema's descriptions). A test holds the two to the same fields.
/// An assignment's learners by status, as of the day it was read. Rates are numbers from 0 to 1.
#[derive(JsonSchema)]
#[schemars(rename = "ProgressSummary", rename_all = "camelCase")]
#[allow(dead_code)]
struct ProgressSummarySchema {
    /// Learners it counts: everyone in scope but exempted learners.
    total_users: u64,
    /// Learners who completed it (and whose completion has not lapsed).
    completed_users: u64,
    /// Learners who started and are not yet due.
    in_progress_users: u64,
    /// Learners who have not started and are not yet due.
    not_started_users: u64,
    /// Learners past their due date who have not completed it.
    overdue_users: u64,
    /// Recertified learners whose completion lapsed before they renewed it (counted out of
    /// `completedUsers`).
    expired_users: u64,
    /// `completedUsers` out of `totalUsers`, from 0 to 1.
    completion_rate: f64,
    /// The share of all learners' tracked items completed, from 0 to 1.
    average_progress: f64,
}

/// `progress` of the assignment resource (`ProgressSummarySchema`'s).
impl JsonSchema for ProgressSummary {
    fn schema_name() -> Cow<'static, str> {
        ProgressSummarySchema::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        "domain::aggregates::ProgressSummary".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        ProgressSummarySchema::json_schema(generator)
    }
}
