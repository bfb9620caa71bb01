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
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{BufReader, Read};

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

/// What a log reports, reduced to what assignments need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// `runs[].tool.driver.name`, each once, in order of first appearance; at most [`MAX_TOOLS`].
    pub tools: Vec<String>,
    /// Results in all runs.
    pub results: usize,
    /// CWE id → the rule ids (at most [`MAX_RULES_PER_CWE`]) of the results that carry it; at most
    /// [`MAX_CWES`] CWEs. A CWE carried only by results without a rule id is present with an empty
    /// set: the weakness was still reported.
    pub cwes: BTreeMap<u32, BTreeSet<String>>,
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

/// Reads what `S` reads, or `null`: SARIF lets most arrays and objects be null.
struct Nullable<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null or a value")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}

/// Reads an array one element at a time, so that it is never held whole: `element(i)` makes the
/// seed for element `i`, and `each` folds what that seed read into `into` as soon as it has been
/// read, or refuses the log.
struct EachOf<'s, T, F, G> {
    state: &'s State,
    /// Completes serde's "expected …" when the value is not an array.
    expecting: &'static str,
    into: T,
    element: F,
    each: G,
}

impl<'de, T, S, F, G> DeserializeSeed<'de> for EachOf<'_, T, F, G>
where
    S: DeserializeSeed<'de>,
    F: FnMut(usize) -> S,
    G: FnMut(&mut T, S::Value) -> Result<(), SarifError>,
{
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T, S, F, G> Visitor<'de> for EachOf<'_, T, F, G>
where
    S: DeserializeSeed<'de>,
    F: FnMut(usize) -> S,
    G: FnMut(&mut T, S::Value) -> Result<(), SarifError>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<T, A::Error> {
        let mut index = 0;
        while let Some(element) = seq.next_element_seed((self.element)(index))? {
            (self.each)(&mut self.into, element).map_err(|error| self.state.fail(error))?;
            index += 1;
        }
        Ok(self.into)
    }
}

/// Reads a field's value with `read`, refusing a second occurrence of the field as serde's derived
/// structs do. The check comes before the read, so a repeated field is reported as repeated rather
/// than as whichever cap its second value would push over.
fn once<'de, A: MapAccess<'de>, T>(
    map: &mut A,
    slot: &mut Option<T>,
    field: &'static str,
    read: impl FnOnce(&mut A) -> Result<T, A::Error>,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(field));
    }
    *slot = Some(read(map)?);
    Ok(())
}

/// Reads a string (or null) field's value, refusing it when it is longer than `limit` characters.
fn capped_text<'de, A: MapAccess<'de>>(
    map: &mut A,
    state: &State,
    what: &'static str,
    limit: usize,
) -> Result<Option<String>, A::Error> {
    let text: Option<String> = map.next_value()?;
    state.check_chars(text.as_deref(), what, limit)?;
    Ok(text)
}

/// Reads past the value of a field that nothing here needs.
fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|IgnoredAny| ())
}

/// The fields read anywhere in a log; each object matches the ones it reads and skips the rest.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    Version,
    Runs,
    Tool,
    Results,
    Driver,
    Extensions,
    Name,
    Rules,
    Id,
    Properties,
    Relationships,
    RuleId,
    RuleIndex,
    Rule,
    Taxa,
    Tags,
    Cwe,
    Target,
    ToolComponent,
    #[serde(other)]
    Other,
}

struct LogSeed<'s> {
    state: &'s State,
}

object_seed!(LogSeed<'_> => Findings, "a SARIF log object");

impl LogSeed<'_> {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Findings, A::Error> {
        let mut version = None;
        let mut findings = None;
        while let Some(field) = map.next_key()? {
            match field {
                Field::Version => once(&mut map, &mut version, "version", |map| {
                    let version: String = map.next_value()?;
                    if version != SARIF_VERSION {
                        // Stop here: the rest of another version's log is not worth reading.
                        return Err(self.state.fail(SarifError::unsupported_version(&version)));
                    }
                    Ok(())
                })?,
                // SARIF allows `"runs": null`: the tool failed before it could start a run.
                Field::Runs => {
                    once(&mut map, &mut findings, "runs", |map| map.next_value_seed(Nullable(each_run(self.state))))?
                }
                _ => skip(&mut map)?,
            }
        }
        if version.is_none() {
            return Err(de::Error::missing_field("version"));
        }
        let findings = findings.ok_or_else(|| de::Error::missing_field("runs"))?;
        Ok(findings.unwrap_or_default())
    }
}

/// The log's `runs`, each absorbed into the findings as soon as it has been read.
fn each_run<'de>(state: &State) -> impl DeserializeSeed<'de, Value = Findings> {
    EachOf {
        state,
        expecting: "an array of runs",
        into: Findings::default(),
        element: |index| RunSeed { state, index },
        each: Findings::absorb,
    }
}

struct RunSeed<'s> {
    state: &'s State,
    index: usize,
}

/// One run, reduced: its tool's rules and its results grouped by the rule they reference.
struct Run {
    tool_name: String,
    /// The driver first, then `tool.extensions` in order, so extension `i` is component `i + 1`.
    components: Vec<ToolComponent>,
    results: Results,
}

object_seed!(RunSeed<'_> => Run, "a SARIF run object");

impl RunSeed<'_> {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Run, A::Error> {
        let state = self.state;
        let mut tool = None;
        let mut results = None;
        while let Some(field) = map.next_key()? {
            match field {
                Field::Tool => once(&mut map, &mut tool, "tool", |map| map.next_value_seed(ToolSeed { state }))?,
                // `results: null` is legal SARIF: the tool did not get as far as producing results.
                Field::Results => {
                    once(&mut map, &mut results, "results", |map| map.next_value_seed(Nullable(each_result(state))))?
                }
                _ => skip(&mut map)?,
            }
        }
        let missing = |path: &str| de::Error::custom(format_args!("runs[{}].{path} is missing", self.index));
        let tool = tool.ok_or_else(|| missing("tool"))?;
        let driver = tool.driver.ok_or_else(|| missing("tool.driver"))?;
        let tool_name = driver.name.clone().ok_or_else(|| missing("tool.driver.name"))?;
        let components = std::iter::once(driver).chain(tool.extensions).collect();
        Ok(Run { tool_name, components, results: results.flatten().unwrap_or_default() })
    }
}

struct Tool {
    driver: Option<ToolComponent>,
    extensions: Vec<ToolComponent>,
}

struct ToolSeed<'s> {
    state: &'s State,
}

object_seed!(ToolSeed<'_> => Tool, "a SARIF tool object");

impl ToolSeed<'_> {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Tool, A::Error> {
        let state = self.state;
        let mut driver = None;
        let mut extensions = None;
        while let Some(field) = map.next_key()? {
            match field {
                Field::Driver => once(&mut map, &mut driver, "driver", |map| {
                    map.next_value_seed(Nullable(ComponentSeed { state, is_driver: true }))
                })?,
                Field::Extensions => once(&mut map, &mut extensions, "extensions", |map| {
                    map.next_value_seed(Nullable(each_extension(state)))
                })?,
                _ => skip(&mut map)?,
            }
        }
        Ok(Tool { driver: driver.flatten(), extensions: extensions.flatten().unwrap_or_default() })
    }
}

/// A tool's `extensions`. Even an empty extension is held, so that extension indexes stay right.
fn each_extension<'de>(state: &State) -> impl DeserializeSeed<'de, Value = Vec<ToolComponent>> {
    EachOf {
        state,
        expecting: "an array of tool components",
        into: Vec::new(),
        element: |_| ComponentSeed { state, is_driver: false },
        each: |extensions: &mut Vec<ToolComponent>, extension| {
            if extensions.len() == MAX_EXTENSIONS {
                let what = "extensions of one run's tool (runs[].tool.extensions)";
                return Err(SarifError::OverLimit { what, limit: MAX_EXTENSIONS });
            }
            extensions.push(extension);
            Ok(())
        },
    }
}

/// A `toolComponent`: the driver or an extension.
struct ToolComponent {
    name: Option<String>,
    rules: Vec<Rule>,
}

struct ComponentSeed<'s> {
    state: &'s State,
    /// The driver's name is the tool's name, which the ingestion echoes: it has the stricter limit.
    is_driver: bool,
}

object_seed!(ComponentSeed<'_> => ToolComponent, "a SARIF tool component object");

impl ComponentSeed<'_> {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<ToolComponent, A::Error> {
        let state = self.state;
        let (what, limit) = if self.is_driver {
            ("characters of a tool's name", MAX_TOOL_NAME_CHARS)
        } else {
            (COMPONENT_NAME_CHARS, MAX_ID_CHARS)
        };
        let mut name = None;
        let mut rules = None;
        while let Some(field) = map.next_key()? {
            match field {
                Field::Name => once(&mut map, &mut name, "name", |map| capped_text(map, state, what, limit))?,
                Field::Rules => {
                    once(&mut map, &mut rules, "rules", |map| map.next_value_seed(Nullable(each_rule(state))))?
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(ToolComponent { name: name.flatten(), rules: rules.flatten().unwrap_or_default() })
    }
}

/// A tool component's `rules`. Every rule counts, `{}` too: it is held for results that name it
/// by index.
fn each_rule<'de>(state: &State) -> impl DeserializeSeed<'de, Value = Vec<Rule>> {
    EachOf {
        state,
        expecting: "an array of rules",
        into: Vec::new(),
        element: |_| RuleSeed { state },
        each: |rules: &mut Vec<Rule>, rule| {
            let what = "rules (tool.driver.rules and tool.extensions[].rules, all runs)";
            count(&state.rules, MAX_RULES, SarifError::OverLimit { what, limit: MAX_RULES })?;
            rules.push(rule);
            Ok(())
        },
    }
}

/// A `reportingDescriptor`, kept as its id and the CWEs it names (sorted, each once).
struct Rule {
    id: Option<Box<str>>,
    cwes: Box<[u32]>,
}

struct RuleSeed<'s> {
    state: &'s State,
}

object_seed!(RuleSeed<'_> => Rule, "a SARIF reportingDescriptor object");

impl RuleSeed<'_> {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Rule, A::Error> {
        let cwes = CweSet::new(self.state);
        let mut id = None;
        let mut properties = None;
        let mut relationships = None;
        while let Some(field) = map.next_key()? {
            match field {
                Field::Id => {
                    once(&mut map, &mut id, "id", |map| capped_text(map, self.state, RULE_ID_CHARS, MAX_ID_CHARS))?
                }
                Field::Properties => once(&mut map, &mut properties, "properties", |map| {
                    map.next_value_seed(Nullable(PropertiesSeed { cwes: &cwes }))
                })?,
                Field::Relationships => once(&mut map, &mut relationships, "relationships", |map| {
                    map.next_value_seed(Nullable(each_relationship(&cwes)))
                })?,
                _ => skip(&mut map)?,
            }
        }
        let id = non_empty(id.flatten()).map(String::into_boxed_str);
        Ok(Rule { id, cwes: cwes.into_ids().into_iter().collect() })
    }
}

/// A run's results, grouped by rule reference: every result in a group names the same rule, so
/// the group needs only the union of its results' own CWEs. Memory then grows with the number of
/// distinct references, not with the number of results.
#[derive(Default)]
struct Results {
    count: usize,
    by_rule: HashMap<RuleRef, BTreeSet<u32>>,
}

/// A run's `results`, each counted and grouped as soon as it has been read.
fn each_result<'de>(state: &State) -> impl DeserializeSeed<'de, Value = Results> {
    EachOf {
        state,
        expecting: "an array of results",
        into: Results::default(),
        element: |_| ResultSeed { state },
        each: |results: &mut Results, (rule, own_cwes)| {
            count(&state.results, MAX_RESULTS, SarifError::TooManyResults { limit: MAX_RESULTS })?;
            results.count += 1;
            results.by_rule.entry(rule).or_default().extend(own_cwes);
            Ok(())
        },
    }
}

/// Which rule a result names, in every way SARIF lets it.
#[derive(PartialEq, Eq, Hash)]
struct RuleRef {
    /// `ruleId`, else `rule.id`; never empty.
    id: Option<String>,
    /// `rule.index`, else `ruleIndex`; SARIF's -1 ("none") is `None`.
    index: Option<usize>,
    component: ComponentRef,
}

#[derive(PartialEq, Eq, Hash)]
enum ComponentRef {
    Driver,
    /// Index into `tool.extensions`.
    Extension(usize),
    Named(String),
    /// Given only by guid: the index cannot be placed, only the id can be looked up.
    Unknown,
}

/// One result, reduced to the rule it names and its own CWEs.
struct ResultSeed<'s> {
    state: &'s State,
}

object_seed!(ResultSeed<'_> => (RuleRef, BTreeSet<u32>), "a SARIF result object");

impl ResultSeed<'_> {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(RuleRef, BTreeSet<u32>), A::Error> {
        let state = self.state;
        let cwes = CweSet::new(state);
        let mut rule_id = None;
        let mut rule_index = None;
        let mut rule = None;
        let mut properties = None;
        let mut taxa = None;
        while let Some(field) = map.next_key()? {
            match field {
                Field::RuleId => {
                    once(&mut map, &mut rule_id, "ruleId", |map| capped_text(map, state, RULE_ID_CHARS, MAX_ID_CHARS))?
                }
                Field::RuleIndex => once(&mut map, &mut rule_index, "ruleIndex", |map| {
                    Ok(map.next_value::<Option<Whole>>()?.map(|Whole(i)| i))
                })?,
                Field::Rule => once(&mut map, &mut rule, "rule", |map| {
                    let rule = map.next_value::<Option<Object<RuleReference>>>()?.map(|Object(rule)| rule);
                    if let Some(rule) = &rule {
                        state.check_chars(rule.id.as_deref(), RULE_ID_CHARS, MAX_ID_CHARS)?;
                        let component = rule.tool_component.as_ref().and_then(|c| c.name.as_deref());
                        state.check_chars(component, COMPONENT_NAME_CHARS, MAX_ID_CHARS)?;
                    }
                    Ok(rule)
                })?,
                Field::Properties => once(&mut map, &mut properties, "properties", |map| {
                    map.next_value_seed(Nullable(PropertiesSeed { cwes: &cwes }))
                })?,
                Field::Taxa => {
                    once(&mut map, &mut taxa, "taxa", |map| map.next_value_seed(Nullable(each_taxon(&cwes))))?
                }
                _ => skip(&mut map)?,
            }
        }
        let (reference_id, reference_index, component) = match rule.flatten() {
            Some(rule) => (rule.id, rule.index, rule.tool_component.map(ComponentReference::into_ref)),
            None => (None, None, None),
        };
        let rule = RuleRef {
            id: non_empty(rule_id.flatten()).or_else(|| non_empty(reference_id)),
            index: reference_index.or(rule_index.flatten()).and_then(|i| usize::try_from(i).ok()),
            component: component.unwrap_or(ComponentRef::Driver),
        };
        Ok((rule, cwes.into_ids()))
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleReference {
    id: Option<String>,
    #[serde(default, deserialize_with = "whole")]
    index: Option<i64>,
    #[serde(default, deserialize_with = "object")]
    tool_component: Option<ComponentReference>,
}

#[derive(Deserialize)]
struct ComponentReference {
    name: Option<String>,
    #[serde(default, deserialize_with = "whole")]
    index: Option<i64>,
}

/// A SARIF object read as an object only: serde's derived structs also take an array of their fields in
/// order, which SARIF does not allow (and the OpenAPI document does not describe).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|Object(t)| t))
}

/// An index as SARIF's JSON schema counts integers: `3`, or `3.0` (a whole number written as a float).
struct Whole(i64);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WholeVisitor;
        impl Visitor<'_> for WholeVisitor {
            type Value = Whole;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Whole, E> {
                Ok(Whole(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Whole, E> {
                i64::try_from(v).map(Whole).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Whole, E> {
                // i64's bounds as f64: every whole float strictly inside them converts exactly.
                if v.fract() == 0.0 && v > -9.223_372_036_854_776e18 && v < 9.223_372_036_854_776e18 {
                    Ok(Whole(v as i64))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(WholeVisitor)
    }
}

fn whole<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Whole>::deserialize(deserializer)?.map(|Whole(i)| i))
}

impl ComponentReference {
    fn into_ref(self) -> ComponentRef {
        match (self.index.and_then(|i| usize::try_from(i).ok()), self.name) {
            (Some(index), _) => ComponentRef::Extension(index),
            (None, Some(name)) => ComponentRef::Named(name),
            (None, None) => ComponentRef::Unknown,
        }
    }

    fn is_cwe_taxonomy(&self) -> bool {
        self.name.as_deref().is_some_and(|name| name.eq_ignore_ascii_case("CWE"))
    }
}

/// The CWEs of one rule or one result, capped as they are collected: a rule with tens of
/// thousands of CWE tags is refused at the first one over [`MAX_CWES_PER_ITEM`] instead of being
/// held and then having its id copied into every one of them.
///
/// The seeds below share it by `&` reference (hence the `RefCell`), so that [`EachOf`] can make a
/// fresh seed for every element of `taxa` and `relationships`.
struct CweSet<'s> {
    state: &'s State,
    ids: RefCell<BTreeSet<u32>>,
}

impl<'s> CweSet<'s> {
    fn new(state: &'s State) -> Self {
        CweSet { state, ids: RefCell::default() }
    }

    fn insert<E: de::Error>(&self, id: Option<u32>) -> Result<(), E> {
        let mut ids = self.ids.borrow_mut();
        if let Some(id) = id
            && !ids.contains(&id)
        {
            if ids.len() == MAX_CWES_PER_ITEM {
                let what = "CWEs on one rule or result";
                return Err(self.state.fail(SarifError::OverLimit { what, limit: MAX_CWES_PER_ITEM }));
            }
            ids.insert(id);
        }
        Ok(())
    }

    fn into_ids(self) -> BTreeSet<u32> {
        self.ids.into_inner()
    }
}

/// A property bag's CWEs: its `tags` and its `cwe` property.
struct PropertiesSeed<'a, 's> {
    cwes: &'a CweSet<'s>,
}

object_seed!(PropertiesSeed<'_, '_> => (), "a SARIF property bag");

impl PropertiesSeed<'_, '_> {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let cwes = self.cwes;
        let mut tags = None;
        let mut cwe = None;
        while let Some(field) = map.next_key()? {
            match field {
                // Tags are meant to be strings; anything else in the array is skipped rather than
                // refusing the log over a field that is only being searched.
                Field::Tags => {
                    once(&mut map, &mut tags, "tags", |map| map.next_value_seed(CweSeed { bare_numbers: false, cwes }))?
                }
                // Tools disagree on the shape: a string or number, or an array of them.
                Field::Cwe => {
                    once(&mut map, &mut cwe, "cwe", |map| map.next_value_seed(CweSeed { bare_numbers: true, cwes }))?
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

/// A rule's `relationships`, of which only targets in the CWE taxonomy matter.
fn each_relationship<'de>(cwes: &CweSet) -> impl DeserializeSeed<'de, Value = ()> {
    EachOf {
        state: cwes.state,
        expecting: "an array of relationships",
        into: (),
        element: |_| RelationshipSeed { cwes },
        each: |_: &mut (), ()| Ok(()),
    }
}

struct RelationshipSeed<'a, 's> {
    cwes: &'a CweSet<'s>,
}

object_seed!(RelationshipSeed<'_, '_> => (), "a SARIF relationship object");

impl RelationshipSeed<'_, '_> {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut target = None;
        while let Some(field) = map.next_key()? {
            match field {
                Field::Target => once(&mut map, &mut target, "target", |map| {
                    map.next_value_seed(Nullable(TaxonSeed { cwes: self.cwes }))
                })?,
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

/// A result's `taxa`, of which only references to the CWE taxonomy matter.
fn each_taxon<'de>(cwes: &CweSet) -> impl DeserializeSeed<'de, Value = ()> {
    EachOf {
        state: cwes.state,
        expecting: "an array of taxon references",
        into: (),
        element: |_| TaxonSeed { cwes },
        each: |_: &mut (), ()| Ok(()),
    }
}

/// A reference into a taxonomy (a result's `taxa[]`, a rule relationship's `target`): its id is a
/// CWE when its `toolComponent` is the CWE taxonomy.
struct TaxonSeed<'a, 's> {
    cwes: &'a CweSet<'s>,
}

object_seed!(TaxonSeed<'_, '_> => (), "a SARIF reference to a taxon");

impl TaxonSeed<'_, '_> {
    fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The id may come before the toolComponent that says whether it is a CWE, so its CWEs are
        // set aside (under the same cap) until the end of the object.
        let ids = CweSet::new(self.cwes.state);
        let mut id = None;
        let mut component = None;
        while let Some(field) = map.next_key()? {
            match field {
                Field::Id => once(&mut map, &mut id, "id", |map| {
                    map.next_value_seed(CweSeed { bare_numbers: true, cwes: &ids })
                })?,
                Field::ToolComponent => once(&mut map, &mut component, "toolComponent", |map| {
                    Ok(map.next_value::<Option<Object<ComponentReference>>>()?.map(|Object(c)| c))
                })?,
                _ => skip(&mut map)?,
            }
        }
        if component.flatten().is_some_and(|c| c.is_cwe_taxonomy()) {
            ids.into_ids().into_iter().try_for_each(|id| self.cwes.insert(Some(id)))
        } else {
            Ok(())
        }
    }
}

/// Collects CWE ids from a JSON value of any shape, ignoring whatever does not name one.
#[derive(Clone, Copy)]
struct CweSeed<'a, 's> {
    /// Whether "79" and 79 count as CWE-79.
    bare_numbers: bool,
    cwes: &'a CweSet<'s>,
}

impl<'de> DeserializeSeed<'de> for CweSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CweSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("CWE ids")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let id = if self.bare_numbers { cwe_of_property(v) } else { cwe_of(v) };
        self.cwes.insert(id)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let id = if self.bare_numbers { in_cwe_range(v) } else { None };
        self.cwes.insert(id)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Ok(()),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // "79.0" is a number a JSON writer may produce for an integer; a fractional id is nothing.
        if v.fract() == 0.0 && (1.0..=f64::from(MAX_CWE)).contains(&v) {
            return self.visit_u64(v as u64);
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

impl Findings {
    /// Adds a run, refusing the log as soon as it names one tool or one CWE too many: what an
    /// ingestion echoes (its response and event hold every tool and CWE) stays bounded, and so
    /// does the copying of rule ids into CWEs.
    fn absorb(&mut self, run: Run) -> Result<(), SarifError> {
        if !self.tools.contains(&run.tool_name) {
            if self.tools.len() == MAX_TOOLS {
                return Err(SarifError::OverLimit {
                    what: "distinct tools (runs[].tool.driver.name)",
                    limit: MAX_TOOLS,
                });
            }
            self.tools.push(run.tool_name);
        }
        self.results += run.results.count;
        if run.results.by_rule.is_empty() {
            return Ok(());
        }
        let rules = RuleIndex::new(&run.components);
        for (reference, own_cwes) in &run.results.by_rule {
            let rule = rules.resolve(reference);
            let rule_id = reference.id.as_deref().or_else(|| rule.and_then(|r| r.id.as_deref()));
            let rule_cwes = rule.map_or(&[][..], |r| &r.cwes[..]);
            for &cwe in rule_cwes.iter().chain(own_cwes) {
                if self.cwes.len() == MAX_CWES && !self.cwes.contains_key(&cwe) {
                    return Err(SarifError::OverLimit { what: "distinct CWEs", limit: MAX_CWES });
                }
                let rule_ids = self.cwes.entry(cwe).or_default();
                if let Some(rule_id) = rule_id
                    && rule_ids.len() < MAX_RULES_PER_CWE
                    && !rule_ids.contains(rule_id)
                {
                    rule_ids.insert(rule_id.to_owned());
                }
            }
        }
        Ok(())
    }
}

/// A run's rules, looked up in the ways results name them.
struct RuleIndex<'r> {
    components: &'r [ToolComponent],
    by_id: HashMap<&'r str, &'r Rule>,
    by_name: HashMap<&'r str, &'r ToolComponent>,
}

impl<'r> RuleIndex<'r> {
    fn new(components: &'r [ToolComponent]) -> Self {
        // Components and rules are inserted in order and the first holder of an id or name wins,
        // so a driver rule shadows an extension rule with the same id.
        let mut by_id = HashMap::new();
        let mut by_name = HashMap::new();
        for component in components {
            if let Some(name) = component.name.as_deref() {
                by_name.entry(name).or_insert(component);
            }
            for rule in &component.rules {
                if let Some(id) = rule.id.as_deref() {
                    by_id.entry(id).or_insert(rule);
                }
            }
        }
        RuleIndex { components, by_id, by_name }
    }

    /// The rule a result names: by index within the referenced tool component when that index is
    /// valid, else by id anywhere in the run.
    fn resolve(&self, reference: &RuleRef) -> Option<&'r Rule> {
        let component = match &reference.component {
            ComponentRef::Driver => self.components.first(),
            ComponentRef::Extension(i) => i.checked_add(1).and_then(|i| self.components.get(i)),
            ComponentRef::Named(name) => self.by_name.get(name.as_str()).copied(),
            ComponentRef::Unknown => None,
        };
        let by_index = component.zip(reference.index).and_then(|(component, j)| component.rules.get(j));
        by_index.or_else(|| reference.id.as_deref().and_then(|id| self.by_id.get(id).copied()))
    }
}
