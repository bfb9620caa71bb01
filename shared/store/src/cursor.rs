//! Opaque, tamper-proof pagination cursors.
//!
//! A cursor is DynamoDB's `LastEvaluatedKey` (all our key attributes are strings), signed with
//! HMAC-SHA256 over the org id and the listing it came from. Editing any byte, replaying it in another
//! org, or using it on another listing fails verification. As a second line, every partition-key value
//! in it must start with the caller's org prefix.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::OrgId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{PageKey, StoreError, keys};

/// Cursors longer than this are refused before any work.
pub const MAX_CURSOR_LEN: usize = 2_048;

#[derive(Clone)]
pub struct CursorCodec {
    secret: Vec<u8>,
    /// Older keys a cursor may have been sealed with (a secret's previous version).
    older: Vec<Vec<u8>>,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(..)")
    }
}

impl CursorCodec {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self { secret: secret.into(), older: Vec::new() }
    }

    /// Also opens cursors sealed with `older` (it seals with its own key only).
    pub fn also_opening_with(mut self, older: Vec<u8>) -> Self {
        self.older.push(older);
        self
    }

    fn mac(&self, org: &OrgId, listing: &str, payload: &[u8]) -> Hmac<Sha256> {
        Self::mac_with(&self.secret, org, listing, payload)
    }

    fn mac_with(secret: &[u8], org: &OrgId, listing: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(org.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(listing.as_bytes());
        mac.update(b"\n");
        mac.update(payload);
        mac
    }

    /// The client-facing cursor for `key` on `listing` (e.g. `"assignments"`) of `org`.
    pub fn seal(&self, org: &OrgId, listing: &str, key: &PageKey) -> String {
        let payload = serde_json::to_vec(&plain(key)).unwrap_or_default();
        let tag = self.mac(org, listing, &payload).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag))
    }

    /// Verifies and decodes a cursor. Any failure is [`StoreError::InvalidCursor`].
    pub fn open(&self, org: &OrgId, listing: &str, cursor: &str) -> Result<PageKey, StoreError> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(StoreError::InvalidCursor);
        }
        let (payload_b64, tag_b64) = cursor.split_once('.').ok_or(StoreError::InvalidCursor)?;
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| StoreError::InvalidCursor)?;
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| StoreError::InvalidCursor)?;
        let sealed_with = |secret: &Vec<u8>| Self::mac_with(secret, org, listing, &payload).verify_slice(&tag).is_ok();
        if !std::iter::once(&self.secret).chain(&self.older).any(sealed_with) {
            return Err(StoreError::InvalidCursor);
        }

        let plain: HashMap<String, String> = serde_json::from_slice(&payload).map_err(|_| StoreError::InvalidCursor)?;
        within_org(org, plain)
    }
}

fn plain(key: &PageKey) -> BTreeMap<&str, &str> {
    key.0.iter().filter_map(|(name, value)| value.as_s().ok().map(|v| (name.as_str(), v.as_str()))).collect()
}

/// The key, if every partition key in it belongs to `org`.
fn within_org(org: &OrgId, plain: HashMap<String, String>) -> Result<PageKey, StoreError> {
    let prefix = keys::org_prefix(org);
    let partition_keys = [keys::PK, keys::GSI1PK, keys::GSI2PK, keys::GSI3PK];
    let foreign =
        plain.iter().any(|(name, value)| partition_keys.contains(&name.as_str()) && !value.starts_with(&prefix));
    if plain.is_empty() || foreign {
        return Err(StoreError::InvalidCursor);
    }
    Ok(PageKey(plain.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect()))
}

impl PageKey {
    /// Where a job goes on, in the service's own events (which only its outbox publisher can send):
    /// the key as JSON, not signed; [`PageKey::resume_at`] still keeps it inside the org.
    pub fn resume_point(&self) -> serde_json::Value {
        serde_json::json!(plain(self))
    }

    /// The key of a [`PageKey::resume_point`] of `org`; one that is not, or names another org, is
    /// [`StoreError::InvalidCursor`].
    pub fn resume_at(org: &OrgId, point: &serde_json::Value) -> Result<PageKey, StoreError> {
        let plain: HashMap<String, String> =
            serde_json::from_value(point.clone()).map_err(|_| StoreError::InvalidCursor)?;
        within_org(org, plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(org: &OrgId) -> PageKey {
        PageKey(HashMap::from([
            (keys::PK.to_owned(), AttributeValue::S(format!("ORG#{org}#ASG#1"))),
            (keys::SK.to_owned(), AttributeValue::S("A".into())),
            (keys::GSI1PK.to_owned(), AttributeValue::S(keys::org_assignments(org))),
            (keys::GSI1SK.to_owned(), AttributeValue::S("1".into())),
        ]))
    }

    #[test]
    fn round_trips_for_the_same_org_and_listing() {
        let codec = CursorCodec::new("secret");
        let org = OrgId::parse("acme").unwrap();
        let cursor = codec.seal(&org, "assignments", &key(&org));
        assert_eq!(codec.open(&org, "assignments", &cursor).unwrap(), key(&org));
    }

    #[test]
    fn refuses_other_orgs_other_listings_and_edits() {
        let codec = CursorCodec::new("secret");
        let acme = OrgId::parse("acme").unwrap();
        let other = OrgId::parse("other").unwrap();
        let cursor = codec.seal(&acme, "assignments", &key(&acme));
        assert!(codec.open(&other, "assignments", &cursor).is_err());
        assert!(codec.open(&acme, "progress", &cursor).is_err());
        assert!(CursorCodec::new("another secret").open(&acme, "assignments", &cursor).is_err());

        // Re-encode the payload pointing at another org, keeping the old tag.
        let (_, tag) = cursor.split_once('.').unwrap();
        let forged = serde_json::to_vec(&BTreeMap::from([("GSI1PK", keys::org_assignments(&other))])).unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
        assert!(codec.open(&acme, "assignments", &forged).is_err());

        for garbage in ["", ".", "abc", "a.b.c", "!!!.???", &"x".repeat(MAX_CURSOR_LEN + 1)] {
            assert!(codec.open(&acme, "assignments", garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn a_resume_point_round_trips_within_its_org_only() {
        let acme = OrgId::parse("acme").unwrap();
        let other = OrgId::parse("other").unwrap();
        let point = key(&acme).resume_point();
        assert_eq!(PageKey::resume_at(&acme, &point).unwrap(), key(&acme));
        assert!(PageKey::resume_at(&other, &point).is_err(), "another org's key");
        for garbage in
            [serde_json::json!(null), serde_json::json!({}), serde_json::json!({"PK": 1}), serde_json::json!("x")]
        {
            assert!(PageKey::resume_at(&acme, &garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn a_validly_signed_key_of_another_org_is_still_refused() {
        // Even with a leaked secret, the prefix check keeps a cursor inside the caller's org.
        let codec = CursorCodec::new("secret");
        let acme = OrgId::parse("acme").unwrap();
        let other = OrgId::parse("other").unwrap();
        let cursor = codec.seal(&acme, "assignments", &key(&other));
        assert!(codec.open(&acme, "assignments", &cursor).is_err());
    }
}
