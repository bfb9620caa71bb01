//! Customer webhooks on the wire, as the Standard Webhooks specification has them, so customers
//! verify deliveries with its published libraries (the tests verify with the PyPI one):
//!
//! - a signing secret is `whsec_` and the standard base64 of [`SECRET_BYTES`] random bytes;
//! - a delivery carries `webhook-id` (the event's id: the same on every attempt), `webhook-timestamp`
//!   (Unix seconds of the attempt) and `webhook-signature`: `v1,<base64 of HMAC-SHA256 of
//!   "{id}.{timestamp}.{body}" under the secret>`, one per valid secret, separated by spaces (during a
//!   rotation, the previous secret signs beside the new one).
//!
//! [`send`] is the HTTP client that delivers them, within what `domain::webhook` allows to be reached.

pub mod send;

pub use send::{PublicOnly, Reach, Resolve, Resolving, Sender, SystemResolver};

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Random bytes of a secret this service makes (the specification asks for at least 24).
pub const SECRET_BYTES: usize = 32;
/// What every secret's text starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Fewest bytes a secret may have (a shorter one cannot be trusted to sign).
const MIN_SECRET_BYTES: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a signing secret is `{SECRET_PREFIX}` and base64")]
    Malformed,
    #[error("a signing secret holds at least {MIN_SECRET_BYTES} bytes")]
    TooShort,
    #[error("the system's random source failed: {0}")]
    Random(String),
}

/// A signing secret. Its `Debug` never shows the key, and it has no `==` (compare what it signs).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A new secret from the system's random source.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(Secret(key))
    }

    /// A secret as `whsec_…` text.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(SecretError::Malformed)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Malformed)?;
        if key.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort);
        }
        Ok(Secret(key))
    }

    /// The secret as the customer is shown it (once) and as it is stored, encrypted: `whsec_…`.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn sign(&self, content: &str) -> String {
        // HMAC takes a key of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(content.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The three headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
}

impl Signed {
    /// The headers that sign `body` as delivery `id` at `timestamp` (Unix seconds) under the
    /// `current` secret and, during a rotation's overlap, the `previous` one too.
    pub fn new(id: &str, timestamp: i64, body: &str, current: &Secret, previous: Option<&Secret>) -> Self {
        let content = format!("{id}.{timestamp}.{body}");
        let signature =
            std::iter::once(current).chain(previous).map(|secret| secret.sign(&content)).collect::<Vec<_>>().join(" ");
        Signed { id: id.to_owned(), timestamp: timestamp.to_string(), signature }
    }

    /// The headers by name, as sent.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [("webhook-id", &self.id), ("webhook-timestamp", &self.timestamp), ("webhook-signature", &self.signature)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example (its reference implementations' test vector).
    #[test]
    fn the_specifications_example_signs_as_it_says() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signed =
            Signed::new("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, r#"{"test": 2432232314}"#, &secret, None);
        assert_eq!(signed.signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(signed.timestamp, "1614265330");
    }

    #[test]
    fn secrets_are_random_whsec_base64_and_never_shown_by_debug() {
        let (a, b) = (Secret::generate().unwrap(), Secret::generate().unwrap());
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(Secret::parse(&a.expose()).unwrap().expose(), a.expose(), "a secret reads back from its text");
        assert_eq!(format!("{a:?}"), "Secret(…)");
        let error = |text: &str| Secret::parse(text).err();
        assert_eq!(error("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Some(SecretError::Malformed));
        assert_eq!(error("whsec_not base64!"), Some(SecretError::Malformed));
        assert_eq!(error("whsec_c2hvcnQ="), Some(SecretError::TooShort));
    }

    #[test]
    fn every_valid_secret_signs_separated_by_a_space() {
        let (new, old) = (Secret::generate().unwrap(), Secret::generate().unwrap());
        let both = Signed::new("id", 1, "{}", &new, Some(&old));
        let alone = |s: &Secret| Signed::new("id", 1, "{}", s, None).signature;
        assert_eq!(both.signature, format!("{} {}", alone(&new), alone(&old)));
    }
}
