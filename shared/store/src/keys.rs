//! Every key of the table, built in one place.
//!
//! Tenant keys take an [`OrgId`] (whose doc says where one may come from), so no code path can build
//! a tenant key without naming the org. Parts that come from requests are checked
//! for the `#` delimiter (ids are validated upstream too; this is the last line).
//!
//! | entity            | PK                                             | SK                      | GSI1 (PK / SK)                 | GSI2 (PK / SK)                                   | GSI3 (PK / SK)            |
//! |-------------------|------------------------------------------------|-------------------------|--------------------------------|--------------------------------------------------|---------------------------|
//! | assignment        | `ORG#o#ASG#a`                                   | `A`                     | `ORG#o#ASGS` / `a` (v7)        | active: `ORG#o#ASSIGNEE#type#id` / `a`           | active: `ORG#o#DUE` / `deadline#a` |
//! | progress row      | `ORG#o#ASG#a`                                   | `USER#u`                | recertified: `ORG#o#RECERT` / `windowOpens#a#u` | `ORG#o#USER#u` / `ASG#a`                         | incomplete, in the rates, own date: `ORG#o#ROWDUE` / `dueOn#a#u`; recertified: `ORG#o#EXPIRY` / `validUntil#a#u` |
//! | active-duplicate lock | `ORG#o#ACTIVE#assigneeType#assigneeId#targetType#targetId` | `LOCK`  |                                |                                                  |                           |
//! | completion log    | `ORG#o#USER#u`                                  | `DONE#item#ms`          |                                |                                                  |                           |
//! | user              | `ORG#o#USER#u`                                  | `PROFILE`               | active: `ORG#o#USERS` / `u`    | active, in a team: `ORG#o#TEAM#t#MEMBERS` / `u`  |                           |
//! | team              | `ORG#o#TEAM#t`                                  | `PROFILE`               | `ORG#o#TEAMS` / `t`            |                                                  |                           |
//! | custom course     | `ORG#o#COURSE#c`                                | `COURSE`                | `ORG#o#COURSES` / `c`          |                                                  |                           |
//! | API key           | `APIKEY#sha256(token)`                          | `KEY`                   | `ORG#o#APIKEYS` / `keyId`      |                                                  |                           |
//! | idempotency       | `ORG#o#IDEM#sha256(actor, key)`                 | `IDEM`                  |                                |                                                  |                           |
//! | rate counter      | `ORG#o#RATE#<key-k or user-u>#yyyymmddhh`       | `RATE`                  |                                |                                                  |                           |
//! | learner compliance | `ORG#o#USER#u`                                 | `COMPLIANCE`            | with obligations: `ORG#o#LEARNERS` / `<team or ->#u` |                                          | compliant as last announced, until the clock flips it: `ORG#o#NONCOMP` / `day#u` |
//! | compliance rollup | `ORG#o#COMPLIANCE`                              | `ORG` or `TEAM#t`       |                                |                                                  |                           |
//! | head count shard  | `ORG#o#HEADCOUNT`                               | `ORG#nn` or `TEAM#t#nn` |                                |                                                  |                           |
//! | audit entry       | `ORG#o#AUDIT`                                   | `createdAt#id`          |                                |                                                  |                           |
//! | export job (TTL)  | `ORG#o#EXPORTS`                                 | `EXPORT#<exportId v7>`  |                                |                                                  |                           |
//! | export slot       | `ORG#o#EXPORTS`                                 | `SLOT#n` (n < 3)        |                                |                                                  |                           |
//! | outbox (events of one transaction, TTL) | `ORG#o#OUTBOX#<first event id>` | `EVENTS`  |                                |                                                  |                           |
//! | org registry      | `ORGS`                                          | `orgId`                 |                                |                                                  |                           |
//! | work lane         | `ORG#o#LANE#<roster or export>`                  | `LANE`                  |                                |                                                  |                           |
//! | request in line   | `ORG#o#LANE#<roster or export>`                  | `WAIT#<event id v7>`    |                                |                                                  |                           |
//! | reminder sent     | `ORG#o#REMIND#a`                                | `user#kind`             |                                |                                                  |                           |
//! | catalog node      | `CATALOG#area`                                  | `targetType#slug`       |                                |                                                  |                           |
//! | webhook endpoint  | `ORG#o#WEBHOOKS`                                | `EP#<endpointId>`       |                                |                                                  |                           |
//! | endpoint count    | `ORG#o#WEBHOOKS`                                | `COUNT`                 |                                |                                                  |                           |
//! | webhook delivery (TTL) | `ORG#o#WEBHOOK#e`                          | `D#<deliveryId v7>`     |                                |                                                  |                           |
//! | endpoint pacing (TTL) | `ORG#o#WEBHOOK#e`                           | `RATE#<unix second>`, `LEASE#n` |                        |                                                  |                           |
//!
//! The API-key item is the one tenant-owned item whose partition key cannot start with the org: it is
//! looked up by the token's hash before the org is known. Its GSI1 key is org-scoped.

use domain::{AssigneeType, AssignmentId, ContentArea, CourseId, OrgId, TargetType, TeamId, UserId};

use crate::StoreError;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI2: &str = "GSI2";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";
pub const GSI3: &str = "GSI3";
pub const GSI3PK: &str = "GSI3PK";
pub const GSI3SK: &str = "GSI3SK";
/// Outbox items only, until the publisher confirms or parks them: `OUTBOX#UNCONFIRMED#nn` /
/// `<made>#<first event id>` ([`unconfirmed_pk`]). An index of its own, so that the publisher's grant
/// to read it reads nothing else.
pub const GSI4: &str = "GSI4";
pub const GSI4PK: &str = "GSI4PK";
pub const GSI4SK: &str = "GSI4SK";
/// On an assignment: how many of its rows are counted by date (the sum of its `due#<date>#<class>`
/// counters, see `domain::DatedCounts`).
pub const DATED_ROWS: &str = "datedRows";
/// On an assignment: whether its roster is all written, and the run that is writing it.
pub const ROSTER_STATUS: &str = "rosterStatus";
pub const ROSTER_RUN: &str = "rosterRun";
/// On an assignment: the revision of the rules its rows are computed under (`Assignment::units_rev`).
pub const UNITS_REV: &str = "unitsRev";
/// On an assignment: the `unitsRev` of a change of its obligation rules (deadline, activity, mandatory
/// flag) not yet synced to every learner; removed once it is.
pub const COMPLIANCE_SYNC: &str = "complianceSync";
/// When a rule change's sync last handed on to its next share.
pub const COMPLIANCE_SYNC_AT: &str = "complianceSyncAt";
/// TTL attribute (epoch seconds) for idempotency records and rate counters.
pub const TTL_ATTRIBUTE: &str = "expiresAt";

pub const ASSIGNMENT_SK: &str = "A";
pub const PROGRESS_SK_PREFIX: &str = "USER#";
pub const PROFILE_SK: &str = "PROFILE";
pub const COMPLETION_SK_PREFIX: &str = "DONE#";

/// A request-supplied key part must not contain the delimiter.
pub(crate) fn part(raw: &str) -> Result<&str, StoreError> {
    if raw.is_empty() || raw.contains('#') {
        return Err(StoreError::InvalidKeyPart(raw.to_owned()));
    }
    Ok(raw)
}

pub fn org_prefix(org: &OrgId) -> String {
    format!("ORG#{org}#")
}

pub fn assignment_pk(org: &OrgId, id: AssignmentId) -> String {
    format!("ORG#{org}#ASG#{id}")
}

pub fn org_assignments(org: &OrgId) -> String {
    format!("ORG#{org}#ASGS")
}

pub fn assignee_index(org: &OrgId, assignee_type: AssigneeType, assignee_id: &str) -> Result<String, StoreError> {
    Ok(format!("ORG#{org}#ASSIGNEE#{assignee_type}#{}", part(assignee_id)?))
}

pub fn due_index(org: &OrgId) -> String {
    format!("ORG#{org}#DUE")
}

/// The registry of orgs that have assignments (scheduled jobs iterate it): `ORGS` / `<orgId>`.
pub const ORGS_PK: &str = "ORGS";

/// "A reminder of this kind was sent to this learner": `ORG#o#REMIND#<assignment>` / `<user>#<kind>`.
pub fn reminder_pk(org: &OrgId, id: AssignmentId) -> String {
    format!("ORG#{org}#REMIND#{id}")
}

pub fn due_sort(deadline: chrono::NaiveDate, id: AssignmentId) -> String {
    format!("{deadline}#{id}")
}

/// Rows with a due date of their own (a relative deadline, an extension) by that date: reminders
/// find them here, as they find rows that follow their assignment's deadline through [`due_index`].
pub fn row_due_index(org: &OrgId) -> String {
    format!("ORG#{org}#ROWDUE")
}

/// Recertified rows by the day their completion lapses (the daily job's `assignment.expired`).
pub fn row_expiry_index(org: &OrgId) -> String {
    format!("ORG#{org}#EXPIRY")
}

/// Recertified rows by the day their next cycle opens (GSI1; the daily job's
/// `assignment.recertification_due`).
pub fn row_recert_index(org: &OrgId) -> String {
    format!("ORG#{org}#RECERT")
}

pub fn row_due_sort(due_on: chrono::NaiveDate, id: AssignmentId, user: UserId) -> String {
    format!("{due_on}#{id}#{user}")
}

pub fn progress_sk(user: UserId) -> String {
    format!("{PROGRESS_SK_PREFIX}{user}")
}

pub fn user_assignments_index(org: &OrgId, user: UserId) -> String {
    format!("ORG#{org}#USER#{user}")
}

pub fn assignment_ref(id: AssignmentId) -> String {
    format!("ASG#{id}")
}

pub fn active_lock_pk(
    org: &OrgId,
    assignee_type: AssigneeType,
    assignee_id: &str,
    target_type: TargetType,
    target_id: &str,
) -> Result<String, StoreError> {
    Ok(format!("ORG#{org}#ACTIVE#{assignee_type}#{}#{target_type}#{}", part(assignee_id)?, part(target_id)?))
}

pub const LOCK_SK: &str = "LOCK";

pub fn user_pk(org: &OrgId, user: UserId) -> String {
    format!("ORG#{org}#USER#{user}")
}

/// A learner's completion log entry, beside their profile: `DONE#<item key>#<completedAt ms>`.
pub fn completion_sk(item_key: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{COMPLETION_SK_PREFIX}{item_key}#{}", at.timestamp_millis())
}

/// A learner's compliance item, beside their profile.
pub const COMPLIANCE_SK: &str = "COMPLIANCE";
/// The team part of a learner's listing key when they are in no team.
pub const NO_TEAM: &str = "-";
/// Learners with obligations, by team then user (GSI1).
pub fn compliance_learners_index(org: &OrgId) -> String {
    format!("ORG#{org}#LEARNERS")
}
pub fn compliance_learner_sort(team: &str, user: UserId) -> String {
    format!("{team}#{user}")
}
/// Learners whom the clock will make non-compliant, by that day (GSI3).
pub fn compliance_flips_index(org: &OrgId) -> String {
    format!("ORG#{org}#NONCOMP")
}
/// The org's and its teams' compliance rollups: one partition, one item per team.
pub fn compliance_pk(org: &OrgId) -> String {
    format!("ORG#{org}#COMPLIANCE")
}
pub const ORG_ROLLUP_SK: &str = "ORG";
pub const TEAM_ROLLUP_SK_PREFIX: &str = "TEAM#";
pub fn team_rollup_sk(team: TeamId) -> String {
    format!("{TEAM_ROLLUP_SK_PREFIX}{team}")
}

pub fn org_users(org: &OrgId) -> String {
    format!("ORG#{org}#USERS")
}

/// An org's active users by email, case-insensitive (code-scanning results name their author by email).
pub fn user_email_index(org: &OrgId, email: &str) -> String {
    format!("ORG#{org}#EMAIL#{}", email.trim().to_lowercase())
}

/// The org's head counts (see `headcount`): sort keys `ORG#<shard>` and `TEAM#<team>#<shard>`.
pub fn headcount_pk(org: &OrgId) -> String {
    format!("ORG#{org}#HEADCOUNT")
}

pub fn team_pk(org: &OrgId, team: TeamId) -> String {
    format!("ORG#{org}#TEAM#{team}")
}

pub fn team_members(org: &OrgId, team: TeamId) -> String {
    format!("ORG#{org}#TEAM#{team}#MEMBERS")
}

pub fn org_teams(org: &OrgId) -> String {
    format!("ORG#{org}#TEAMS")
}

pub fn course_pk(org: &OrgId, course: CourseId) -> String {
    format!("ORG#{org}#COURSE#{course}")
}

pub const COURSE_SK: &str = "COURSE";

pub fn org_courses(org: &OrgId) -> String {
    format!("ORG#{org}#COURSES")
}

pub fn api_key_pk(token_sha256_hex: &str) -> String {
    format!("APIKEY#{token_sha256_hex}")
}

pub const API_KEY_SK: &str = "KEY";

pub fn org_api_keys(org: &OrgId) -> String {
    format!("ORG#{org}#APIKEYS")
}

pub fn idempotency_pk(org: &OrgId, digest_hex: &str) -> String {
    format!("ORG#{org}#IDEM#{digest_hex}")
}

pub const IDEMPOTENCY_SK: &str = "IDEM";

/// A SARIF upload: `ORG#<org>#SARIFUPLOAD#<uploadId>` / `UPLOAD`.
pub fn sarif_upload_pk(org: &OrgId, upload: uuid::Uuid) -> String {
    format!("ORG#{org}#SARIFUPLOAD#{upload}")
}

pub const SARIF_UPLOAD_SK: &str = "UPLOAD";

/// One-off data migrations of an org (what the reconcile job has done): `ORG#<org>#MIGRATION`.
pub fn migration_pk(org: &OrgId) -> String {
    format!("ORG#{org}#MIGRATION")
}

/// The email index of users written before it existed (`Store::index_user_emails`).
pub const EMAIL_INDEX_SK: &str = "EMAIL_INDEX";

/// A caller's request counters of one calendar hour; `subject` is `key-<keyId>`, `user-<userId>` or
/// `org` (every request of the org).
/// IAM narrows the read-only routes' UpdateItem to these keys (`dynamodb:LeadingKeys` `ORG#*#RATE#*`).
pub fn rate_pk(org: &OrgId, subject: &str, hour: &str) -> String {
    format!("ORG#{org}#RATE#{subject}#{hour}")
}

pub const RATE_SK: &str = "RATE";

/// The org's own rate limits, where an operator raised (or lowered) the default: `ORG#o#RATELIMITS` /
/// `RATE`. Not under `ORG#o#RATE#…`: the read-only routes may update the counters there, not this.
pub fn rate_limits_pk(org: &OrgId) -> String {
    format!("ORG#{org}#RATELIMITS")
}

/// One outbox item per transaction, each in its own partition (named by its first event's id).
pub fn outbox_pk(org: &OrgId, first_event: uuid::Uuid) -> String {
    format!("ORG#{org}#OUTBOX#{first_event}")
}

pub const OUTBOX_SK: &str = "EVENTS";

/// Shards of the index of outbox items the publisher has not confirmed: the index is read across
/// orgs (the sweeper, the redrive), and one partition would take every write of the table.
pub const UNCONFIRMED_SHARDS: u8 = 16;

/// The index partition of the outbox item named by `first_event` among those not confirmed (GSI4):
/// a shard picked by the id's last, random, bits.
pub fn unconfirmed_pk(first_event: uuid::Uuid) -> String {
    unconfirmed_shard_pk(u8::try_from(first_event.as_u128() % u128::from(UNCONFIRMED_SHARDS)).unwrap_or(0))
}

/// The index partition of shard `shard` of the outbox items not confirmed.
pub fn unconfirmed_shard_pk(shard: u8) -> String {
    format!("OUTBOX#UNCONFIRMED#{shard:02}")
}

/// An org's export jobs, one partition: ids are UUIDv7, so the sort key orders them by creation.
pub fn exports_pk(org: &OrgId) -> String {
    format!("ORG#{org}#EXPORTS")
}

pub fn export_sk(export_id: uuid::Uuid) -> String {
    format!("EXPORT#{export_id}")
}

pub const EXPORT_SK_PREFIX: &str = "EXPORT#";
/// The org's export slots (at most so many exports run at once), in the jobs' partition.
pub const EXPORT_SLOT_SK_PREFIX: &str = "SLOT#";

pub fn audit_pk(org: &OrgId) -> String {
    format!("ORG#{org}#AUDIT")
}

pub fn audit_sk(created_at: chrono::DateTime<chrono::Utc>, id: uuid::Uuid) -> String {
    format!("{}#{id}", created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

pub fn catalog_pk(area: ContentArea) -> String {
    format!("CATALOG#{area}")
}

pub fn catalog_sk(target_type: TargetType, slug: &str) -> String {
    format!("{target_type}#{slug}")
}

/// An org's lane of one worker (`domain::Lane`): its holder, and the requests waiting in line behind it.
pub fn lane_pk(org: &OrgId, lane: domain::Lane) -> String {
    format!("ORG#{org}#LANE#{}", lane.as_str())
}

pub const LANE_SK: &str = "LANE";
/// A request in line: `WAIT#<its event id>`, so the line is in the order the requests came.
pub const LANE_WAIT_SK_PREFIX: &str = "WAIT#";

/// An org's webhook endpoints (`EP#<id>`) and their count (`COUNT`): one partition, read whole (at
/// most `domain::webhook::MAX_ENDPOINTS_PER_ORG` endpoints).
pub fn webhooks_pk(org: &OrgId) -> String {
    format!("ORG#{org}#WEBHOOKS")
}

pub const ENDPOINT_SK_PREFIX: &str = "EP#";
pub const ENDPOINT_COUNT_SK: &str = "COUNT";

pub fn endpoint_sk(id: uuid::Uuid) -> String {
    format!("{ENDPOINT_SK_PREFIX}{id}")
}

/// One endpoint's deliveries (`D#<deliveryId>`, newest last: the ids are UUIDv7) and its pacing
/// (`RATE#<second>`, `LEASE#<n>`).
pub fn webhook_pk(org: &OrgId, endpoint: uuid::Uuid) -> String {
    format!("ORG#{org}#WEBHOOK#{endpoint}")
}

pub const DELIVERY_SK_PREFIX: &str = "D#";

pub fn delivery_sk(id: uuid::Uuid) -> String {
    format!("{DELIVERY_SK_PREFIX}{id}")
}

pub fn send_rate_sk(second: i64) -> String {
    format!("RATE#{second}")
}

pub fn send_lease_sk(slot: usize) -> String {
    format!("LEASE#{slot}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_keys_start_with_the_org() {
        let org = OrgId::parse("acme").unwrap();
        let id = AssignmentId::new_v7();
        let user = UserId(uuid::Uuid::nil());
        for key in [
            assignment_pk(&org, id),
            org_assignments(&org),
            user_pk(&org, user),
            user_assignments_index(&org, user),
            audit_pk(&org),
            compliance_pk(&org),
            compliance_learners_index(&org),
            compliance_flips_index(&org),
            idempotency_pk(&org, "ab"),
            active_lock_pk(&org, AssigneeType::Team, "t", TargetType::Topic, "xxe").unwrap(),
        ] {
            assert!(key.starts_with(&org_prefix(&org)), "{key}");
        }
    }

    #[test]
    fn request_parts_cannot_forge_a_key() {
        let org = OrgId::parse("acme").unwrap();
        assert!(assignee_index(&org, AssigneeType::User, "x#ORG#other").is_err());
        assert!(active_lock_pk(&org, AssigneeType::Org, "acme", TargetType::Topic, "").is_err());
    }
}
