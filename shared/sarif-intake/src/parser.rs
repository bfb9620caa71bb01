//! SARIF 2.1.0 logs from code scanners: validation and the CWEs of their results.
//!
//! Logs are read with typed serde straight from the bytes, keeping only rule ids, tags and CWE
//! properties: a scanner's log can run to hundreds of megabytes of locations, snippets and code
//! flows that assignments never look at. Results are reduced as they stream past (grouped by the
//! rule they point to, since results may precede the rules they name).
//!
//! Every count and length that decides what is held in memory is capped while the log is read, so
//! a hostile log is refused at the first thing over a limit instead of after it has been held:
//! a small gzip can expand to a log of millions of empty rules or a megabyte-long rule id.
//!
//! The reader is a tree of serde seeds sharing one `State` (the counts capped across the whole log,
//! and why a parse was stopped): each object that matters has a seed whose `read` walks its fields
//! (see `object_seed!`), each array that matters is an `EachOf`, which hands every element on as
//! soon as it has been read, and everything else is skipped unread.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::{BufReader, Read};

use domain::Findings;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

#[cfg(test)]
mod tests;

pub const SARIF_VERSION: &str = "2.1.0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SarifError {
    /// The reason is cut to [`MAX_REASON_CHARS`] characters: serde quotes offending values in full.
    #[error("not a SARIF log: {0}")]
    Malformed(String),
    /// The version is cut to [`MAX_VERSION_CHARS`] characters.
    #[error("SARIF version '{0}' is not supported: only 2.1.0")]
    UnsupportedVersion(String),
    #[error("more than {limit} results")]
    TooManyResults { limit: usize },
    /// More of something than any scanner writes: holding it would cost the parser more memory or
    /// time than the log is worth, or the ingestion would have to echo it.
    #[error("{what}: at most {limit}")]
    OverLimit { what: &'static str, limit: usize },
}

/// Results per log (all runs together) beyond which a log is refused.
pub const MAX_RESULTS: usize = 25_000;
/// Rules (`reportingDescriptor`s of the driver and of extensions, all runs together) per log. Each
/// is held until its run ends, since results may name it by index.
pub const MAX_RULES: usize = 100_000;
/// Extensions (`runs[].tool.extensions`) of one run: each is held until its run ends.
pub const MAX_EXTENSIONS: usize = 1_000;
/// Distinct CWEs on one rule or one result (tags, `cwe` property and CWE-taxonomy references
/// together). Scanners name a handful; the cap keeps each rule's id from being copied into
/// thousands of CWEs.
pub const MAX_CWES_PER_ITEM: usize = 100;
/// Characters of a rule id (`rules[].id`, `ruleId`, `rule.id`) and of a tool component's name
/// (extensions, `rule.toolComponent.name`); the driver's name is held to [`MAX_TOOL_NAME_CHARS`].
pub const MAX_ID_CHARS: usize = 1_024;
/// Distinct tools (`runs[].tool.driver.name`) a log may name (GitHub's code scanning takes 20 runs).
pub const MAX_TOOLS: usize = 20;
/// Characters of a tool's name (`runs[].tool.driver.name`).
pub const MAX_TOOL_NAME_CHARS: usize = 200;
/// Distinct CWEs a log may carry (the CWE list itself has fewer than 1,000 weaknesses).
pub const MAX_CWES: usize = 1_000;
/// Rule ids kept per CWE (notes name a few; ranking counts up to this many).
pub const MAX_RULES_PER_CWE: usize = 25;
/// Characters of the version quoted in [`SarifError::UnsupportedVersion`] (before "…").
pub const MAX_VERSION_CHARS: usize = 64;
/// Characters of a [`SarifError::Malformed`] reason (before "…").
pub const MAX_REASON_CHARS: usize = 512;

/// CWE ids are five digits at most; anything larger is a typo or a different scheme.
const MAX_CWE: u32 = 99_999;

const RULE_ID_CHARS: &str = "characters of a rule id";
const COMPONENT_NAME_CHARS: &str = "characters of a tool component's name";

impl SarifError {
    // Errors go back to the client, in a response Lambda caps at 6 MB: what they quote of the log
    // is cut to a size that tells the client what was wrong without echoing the log back.
    fn unsupported_version(version: &str) -> Self {
        SarifError::UnsupportedVersion(clip(version, MAX_VERSION_CHARS))
    }

    fn malformed(reason: &impl fmt::Display) -> Self {
        SarifError::Malformed(clip(&reason.to_string(), MAX_REASON_CHARS))
    }
}

/// `text` cut to its first `max_chars` characters, with "…" when anything was cut.
fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn longer_than(text: &str, max_chars: usize) -> bool {
    // A string has no more characters than bytes, so short strings are never walked.
    text.len() > max_chars && text.chars().nth(max_chars).is_some()
}

/// Reads a SARIF 2.1.0 log held in memory.
pub fn parse(bytes: &[u8]) -> Result<Findings, SarifError> {
    read_log(serde_json::Deserializer::from_slice(bytes))
}

/// Reads a SARIF 2.1.0 log from a stream without holding the document in memory.
pub fn parse_reader(reader: impl Read) -> Result<Findings, SarifError> {
    read_log(serde_json::Deserializer::from_reader(BufReader::new(reader)))
}

/// The CWE id a tag or property names, as tools write it: `external/cwe/cwe-079` (CodeQL, Bandit),
/// `CWE-89: Improper Neutralization…` (Semgrep), `CWE-89`, `cwe_89`.
///
/// Accepted: an optional `external/cwe/` prefix, then `cwe-` or `cwe_` (any case), then digits
/// (leading zeros allowed) up to the end or a non-digit. A bare number is not a CWE here: tags such
/// as "2021" are common and mean something else.
pub fn cwe_of(tag: &str) -> Option<u32> {
    let tag = tag.trim();
    let rest = strip_prefix_ignore_case(tag, "external/cwe/").unwrap_or(tag);
    let digits = strip_prefix_ignore_case(rest, "cwe-").or_else(|| strip_prefix_ignore_case(rest, "cwe_"))?;
    leading_cwe_number(digits)
}

/// Like [`cwe_of`], but a bare number is also a CWE: in a `cwe` property or a CWE-taxonomy
/// reference the context already says what the number means.
fn cwe_of_property(value: &str) -> Option<u32> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        leading_cwe_number(value)
    } else {
        cwe_of(value)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let (head, rest) = s.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

fn leading_cwe_number(s: &str) -> Option<u32> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).map_or(s, |end| &s[..end]);
    if digits.is_empty() {
        return None;
    }
    // Leading zeros are stripped before parsing so "cwe-0000079" is 79 and an overlong number
    // cannot overflow.
    let significant = digits.trim_start_matches('0');
    if significant.len() > 5 {
        return None;
    }
    let n: u32 = if significant.is_empty() { 0 } else { significant.parse().ok()? };
    in_cwe_range(u64::from(n))
}

fn in_cwe_range(n: u64) -> Option<u32> {
    u32::try_from(n).ok().filter(|n| (1..=MAX_CWE).contains(n))
}

fn read_log<'de, R: serde_json::de::Read<'de>>(mut de: serde_json::Deserializer<R>) -> Result<Findings, SarifError> {
    let state = State::default();
    let parsed = LogSeed { state: &state }.deserialize(&mut de).and_then(|findings| de.end().map(|()| findings));
    // The serde error is only the vehicle for stopping early; the state says what actually went wrong.
    parsed.map_err(|err| state.failure.take().unwrap_or_else(|| SarifError::malformed(&err)))
}

/// Shared by every seed of one parse, so the caps on results and rules span all runs.
#[derive(Default)]
struct State {
    results: Cell<usize>,
    rules: Cell<usize>,
    /// Why the parse was stopped, when it was not the JSON's fault.
    failure: Cell<Option<SarifError>>,
}

impl State {
    /// Records `error` for [`read_log`] and returns the serde error that unwinds the parse to it.
    fn fail<E: de::Error>(&self, error: SarifError) -> E {
        let vehicle = E::custom(&error);
        self.failure.set(Some(error));
        vehicle
    }

    fn check_chars<E: de::Error>(&self, text: Option<&str>, what: &'static str, limit: usize) -> Result<(), E> {
        match text {
            Some(text) if longer_than(text, limit) => Err(self.fail(SarifError::OverLimit { what, limit })),
            _ => Ok(()),
        }
    }
}

/// Counts one more of something capped across the whole log.
fn count(counter: &Cell<usize>, limit: usize, over: SarifError) -> Result<(), SarifError> {
    let total = counter.get() + 1;
    counter.set(total);
    if total > limit { Err(over) } else { Ok(()) }
}

/// Makes `$seed` a seed that is its own visitor and reads a JSON object with its `read` method.
/// `$expecting` completes serde's "invalid type: …, expected …" when the value is not an object.
macro_rules! object_seed {
    ($seed:ty => $value:ty, $expecting:literal) => {
        impl<'de> DeserializeSeed<'de> for $seed {
            type Value = $value;

            fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<$value, D::Error> {
                deserializer.deserialize_map(self)
            }
        }

        impl<'de> Visitor<'de> for $seed {
            type Value = $value;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str($expecting)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$value, A::Error> {
                self.read(map)
            }
        }
    };
}

mod cwes;
mod log;
mod results;
mod seeds;

use cwes::*;
use log::*;
use results::*;
use seeds::*;
