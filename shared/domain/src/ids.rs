//! Identifiers. Every id that ends up inside a storage key is validated here, so a key delimiter (`#`)
//! or other surprise can never be smuggled into a key from a token, path or body.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be 1 to 64 characters of letters, digits, '-' or '_'")]
    BadOrgId,
    #[error("must be a UUID")]
    NotAUuid,
    #[error("must be a lowercase slug (a-z, 0-9, '-') of at most 100 characters")]
    BadSlug,
}

/// The tenant: storage keys of tenant data are built from it and nothing else. [`OrgId::parse`] only
/// checks the shape (so no key delimiter gets in). *Which* org a piece of work acts for comes only from
/// the verified principal of a request (`api::auth`), a consumed event's own org (`events::platform`),
/// or what the service itself wrote with an org it had from one of those: its workers' and jobs'
/// messages, the table's org markers, an upload's object key it signed. Nothing takes an org id from a
/// request's body, path or query; those are the only callers of [`OrgId::parse`] outside tests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgId(String);

impl OrgId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(Self(raw.to_owned())) } else { Err(IdError::BadOrgId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrgId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<OrgId> for String {
    fn from(value: OrgId) -> Self {
        value.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The string it serialises to, of the shape [`OrgId::parse`] accepts.
impl JsonSchema for OrgId {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "OrgId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                Uuid::parse_str(raw).map(Self).map_err(|_| IdError::NotAUuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        /// A UUID string, as it serialises.
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({"type": "string", "format": "uuid"})
            }
        }
    };
}

uuid_id!(
    /// An assignment. UUIDv7, so ids sort by creation time and "newest first" is a key order.
    AssignmentId
);
uuid_id!(
    /// A platform user (learner or admin).
    UserId
);
uuid_id!(
    /// A team of users.
    TeamId
);
uuid_id!(
    /// An org-owned custom course.
    CourseId
);

impl AssignmentId {
    /// A new, time-ordered id.
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }
}

/// The canonical spelling of a UUID given in any form `uuid` accepts (upper case, braces, no hyphens,
/// `urn:uuid:`): lowercase and hyphenated. Ids are stored and compared only in this form, so two
/// spellings of one id can never name two things.
pub fn canonical_uuid(raw: &str) -> Option<String> {
    Uuid::parse_str(raw).ok().map(|id| id.hyphenated().to_string())
}

/// A catalog slug such as `sql-injection` or `owasp-top-10-2025`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.is_empty()
            && raw.len() <= 100
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok { Ok(Self(raw.to_owned())) } else { Err(IdError::BadSlug) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Slug> for String {
    fn from(value: Slug) -> Self {
        value.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The string it serialises to, of the shape [`Slug::parse`] accepts.
impl JsonSchema for Slug {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Slug".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^[a-z0-9-]{1,100}$"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_ids_cannot_carry_key_delimiters() {
        assert!(OrgId::parse("org-acme_1").is_ok());
        assert_eq!(OrgId::parse("acme#ASG"), Err(IdError::BadOrgId));
        assert_eq!(OrgId::parse(""), Err(IdError::BadOrgId));
        assert_eq!(OrgId::parse(&"a".repeat(65)), Err(IdError::BadOrgId));
    }

    #[test]
    fn slugs_are_lowercase_kebab() {
        assert!(Slug::parse("a03-injection").is_ok());
        assert_eq!(Slug::parse("A03"), Err(IdError::BadSlug));
        assert_eq!(Slug::parse("x#y"), Err(IdError::BadSlug));
    }

    #[test]
    fn assignment_ids_sort_by_creation() {
        let first = AssignmentId::new_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = AssignmentId::new_v7();
        assert!(first.to_string() < second.to_string());
    }

    #[test]
    fn every_spelling_of_a_uuid_has_one_canonical_form() {
        let canonical = "0192f0c4-8a8e-7d6e-9a55-2f1e3c4b5a69";
        for spelling in [
            canonical,
            "0192F0C4-8A8E-7D6E-9A55-2F1E3C4B5A69",
            "{0192f0c4-8a8e-7d6e-9a55-2f1e3c4b5a69}",
            "{0192F0C4-8A8E-7D6E-9A55-2F1E3C4B5A69}",
            "urn:uuid:0192f0c4-8a8e-7d6e-9a55-2f1e3c4b5a69",
            "0192f0c48a8e7d6e9a552f1e3c4b5a69",
        ] {
            assert_eq!(canonical_uuid(spelling).as_deref(), Some(canonical), "{spelling}");
            assert_eq!(UserId::parse(spelling).unwrap().to_string(), canonical, "{spelling}");
        }
        assert_eq!(canonical_uuid("acme"), None);
    }

    #[test]
    fn ids_are_described_as_the_strings_they_serialise_to() {
        let schema = |s: Schema| s.to_value();
        for id in [schema(schemars::schema_for!(UserId)), schema(schemars::schema_for!(AssignmentId))] {
            assert_eq!((&id["type"], &id["format"]), (&serde_json::json!("string"), &serde_json::json!("uuid")));
        }
        assert_eq!(schema(schemars::schema_for!(OrgId))["pattern"], "^[A-Za-z0-9_-]{1,64}$");
        assert_eq!(schema(schemars::schema_for!(Slug))["pattern"], "^[a-z0-9-]{1,100}$");
    }

    #[test]
    fn uuid_ids_round_trip_as_strings() {
        let raw = "0192f0c4-8a8e-7d6e-9a55-2f1e3c4b5a69";
        assert_eq!(UserId::parse(raw).unwrap().to_string(), raw);
        assert_eq!(UserId::parse("not-a-uuid"), Err(IdError::NotAUuid));
    }
}
