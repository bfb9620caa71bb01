//! SARIF 2.1.0 logs from code scanners: validation and the CWEs of their results.
//!
//! Logs are read with typed serde straight from the bytes, keeping only rule ids, tags and CWE
//! properties: a scanner's log can run to hundreds of megabytes of locations, snippets and code
//! flows that assignments never look at. Results are reduced as they stream past (grouped by the
//! rule they point to, since results may precede the rules they name), and their number is capped
//! across the whole log so a runaway log is refused before it is read to the end.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{BufReader, Read};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

#[cfg(test)]
mod tests;

pub const SARIF_VERSION: &str = "2.1.0";
/// Results per log (all runs together) beyond which a log is refused.
pub const MAX_RESULTS: usize = 25_000;

/// CWE ids are five digits at most; anything larger is a typo or a different scheme.
const MAX_CWE: u32 = 99_999;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SarifError {
    #[error("not a SARIF log: {0}")]
    Malformed(String),
    #[error("SARIF version '{0}' is not supported: only 2.1.0")]
    UnsupportedVersion(String),
    #[error("more than {limit} results")]
    TooManyResults { limit: usize },
}

/// What a log reports, reduced to what assignments need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// `runs[].tool.driver.name`, each once, in order of first appearance.
    pub tools: Vec<String>,
    /// Results in all runs.
    pub results: usize,
    /// CWE id → the rule ids of the results that carry it. A CWE carried only by results without a
    /// rule id is present with an empty set: the weakness was still reported.
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
    parsed.map_err(|err| {
        // The serde error is only the vehicle for stopping early; the state says what actually went wrong.
        if let Some(version) = state.unsupported_version.take() {
            SarifError::UnsupportedVersion(version)
        } else if state.results.get() > MAX_RESULTS {
            SarifError::TooManyResults { limit: MAX_RESULTS }
        } else {
            SarifError::Malformed(err.to_string())
        }
    })
}

/// Shared by every seed of one parse, so the result cap spans all runs.
#[derive(Default)]
struct State {
    results: Cell<usize>,
    unsupported_version: Cell<Option<String>>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum LogField {
    Version,
    Runs,
    #[serde(other)]
    Other,
}

struct LogSeed<'s> {
    state: &'s State,
}

impl<'de> DeserializeSeed<'de> for LogSeed<'_> {
    type Value = Findings;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Findings, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LogSeed<'_> {
    type Value = Findings;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a SARIF log object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Findings, A::Error> {
        let mut version_seen = false;
        let mut findings = None;
        while let Some(field) = map.next_key()? {
            match field {
                LogField::Version => {
                    if version_seen {
                        return Err(de::Error::duplicate_field("version"));
                    }
                    let version: String = map.next_value()?;
                    if version != SARIF_VERSION {
                        // Stop here: the rest of another version's log is not worth reading.
                        let message = format!("unsupported version {version}");
                        self.state.unsupported_version.set(Some(version));
                        return Err(de::Error::custom(message));
                    }
                    version_seen = true;
                }
                LogField::Runs => {
                    if findings.is_some() {
                        return Err(de::Error::duplicate_field("runs"));
                    }
                    findings = Some(map.next_value_seed(RunsSeed { state: self.state })?);
                }
                LogField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !version_seen {
            return Err(de::Error::missing_field("version"));
        }
        findings.ok_or_else(|| de::Error::missing_field("runs"))
    }
}

struct RunsSeed<'s> {
    state: &'s State,
}

impl<'de> DeserializeSeed<'de> for RunsSeed<'_> {
    type Value = Findings;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Findings, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RunsSeed<'_> {
    type Value = Findings;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of runs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Findings, A::Error> {
        let mut findings = Findings::default();
        let mut index = 0;
        while let Some(run) = seq.next_element_seed(RunSeed { state: self.state, index })? {
            findings.absorb(run);
            index += 1;
        }
        Ok(findings)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RunField {
    Tool,
    Results,
    #[serde(other)]
    Other,
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

impl<'de> DeserializeSeed<'de> for RunSeed<'_> {
    type Value = Run;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Run, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RunSeed<'_> {
    type Value = Run;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a SARIF run object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Run, A::Error> {
        let mut tool: Option<Tool> = None;
        let mut results: Option<Results> = None;
        while let Some(field) = map.next_key()? {
            match field {
                RunField::Tool => {
                    if tool.is_some() {
                        return Err(de::Error::duplicate_field("tool"));
                    }
                    tool = Some(map.next_value()?);
                }
                RunField::Results => {
                    if results.is_some() {
                        return Err(de::Error::duplicate_field("results"));
                    }
                    results = Some(map.next_value_seed(ResultsSeed { state: self.state })?);
                }
                RunField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |path: &str| de::Error::custom(format_args!("runs[{}].{path} is missing", self.index));
        let tool = tool.ok_or_else(|| missing("tool"))?;
        let driver = tool.driver.ok_or_else(|| missing("tool.driver"))?;
        let tool_name = driver.name.clone().ok_or_else(|| missing("tool.driver.name"))?;
        let components = std::iter::once(driver).chain(tool.extensions.unwrap_or_default()).collect();
        Ok(Run { tool_name, components, results: results.unwrap_or_default() })
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

struct ResultsSeed<'s> {
    state: &'s State,
}

impl<'de> DeserializeSeed<'de> for ResultsSeed<'_> {
    type Value = Results;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Results, D::Error> {
        // `results: null` is legal SARIF: the tool did not get as far as producing results.
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ResultsSeed<'_> {
    type Value = Results;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of results")
    }

    fn visit_none<E: de::Error>(self) -> Result<Results, E> {
        Ok(Results::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Results, E> {
        Ok(Results::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Results, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Results, A::Error> {
        let mut results = Results::default();
        while let Some(result) = seq.next_element::<SarifResult>()? {
            let total = self.state.results.get() + 1;
            self.state.results.set(total);
            if total > MAX_RESULTS {
                return Err(de::Error::custom(format_args!("more than {MAX_RESULTS} results")));
            }
            results.count += 1;
            let (rule, own_cwes) = result.reduce();
            results.by_rule.entry(rule).or_default().extend(own_cwes);
        }
        Ok(results)
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: Option<String>,
    rule_index: Option<i64>,
    rule: Option<RuleReference>,
    properties: Option<Properties>,
    taxa: Option<Vec<TaxonReference>>,
}

impl SarifResult {
    fn reduce(self) -> (RuleRef, Vec<u32>) {
        let mut cwes = Vec::new();
        if let Some(properties) = self.properties {
            properties.collect_into(&mut cwes);
        }
        for taxon in self.taxa.into_iter().flatten() {
            taxon.collect_cwe_into(&mut cwes);
        }
        let (reference_id, reference_index, component) = match self.rule {
            Some(rule) => (rule.id, rule.index, rule.tool_component.map(ComponentReference::into_ref)),
            None => (None, None, None),
        };
        let rule = RuleRef {
            id: non_empty(self.rule_id).or_else(|| non_empty(reference_id)),
            index: reference_index.or(self.rule_index).and_then(|i| usize::try_from(i).ok()),
            component: component.unwrap_or(ComponentRef::Driver),
        };
        (rule, cwes)
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleReference {
    id: Option<String>,
    index: Option<i64>,
    tool_component: Option<ComponentReference>,
}

#[derive(Deserialize)]
struct ComponentReference {
    name: Option<String>,
    index: Option<i64>,
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

/// A reference into a taxonomy (a result's `taxa[]`, a rule relationship's `target`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaxonReference {
    #[serde(default)]
    id: PropertyCwes,
    tool_component: Option<ComponentReference>,
}

impl TaxonReference {
    fn collect_cwe_into(self, cwes: &mut Vec<u32>) {
        if self.tool_component.as_ref().is_some_and(ComponentReference::is_cwe_taxonomy) {
            cwes.extend(self.id.0);
        }
    }
}

#[derive(Deserialize)]
struct Properties {
    #[serde(default)]
    tags: TagCwes,
    #[serde(default)]
    cwe: PropertyCwes,
}

impl Properties {
    fn collect_into(self, cwes: &mut Vec<u32>) {
        cwes.extend(self.tags.0);
        cwes.extend(self.cwe.0);
    }
}

#[derive(Deserialize)]
struct Tool {
    driver: Option<ToolComponent>,
    extensions: Option<Vec<ToolComponent>>,
}

#[derive(Deserialize)]
struct ToolComponent {
    name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    rules: Vec<Rule>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Rule>, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}

/// A `reportingDescriptor`, kept as its id and the CWEs it names.
#[derive(Deserialize)]
#[serde(from = "RawRule")]
struct Rule {
    id: Option<String>,
    cwes: BTreeSet<u32>,
}

#[derive(Deserialize)]
struct RawRule {
    id: Option<String>,
    properties: Option<Properties>,
    relationships: Option<Vec<Relationship>>,
}

#[derive(Deserialize)]
struct Relationship {
    target: Option<TaxonReference>,
}

impl From<RawRule> for Rule {
    fn from(raw: RawRule) -> Rule {
        let mut cwes = Vec::new();
        if let Some(properties) = raw.properties {
            properties.collect_into(&mut cwes);
        }
        for target in raw.relationships.into_iter().flatten().filter_map(|r| r.target) {
            target.collect_cwe_into(&mut cwes);
        }
        Rule { id: non_empty(raw.id), cwes: cwes.into_iter().collect() }
    }
}

/// CWE ids among `properties.tags`. Tags are meant to be strings; anything else in the array is
/// skipped rather than refusing the log over a field that is only being searched.
#[derive(Default)]
struct TagCwes(Vec<u32>);

/// CWE ids in a `cwe` property or a taxonomy id: a string or number, or an array of them
/// (tools disagree on the shape).
#[derive(Default)]
struct PropertyCwes(Vec<u32>);

impl<'de> Deserialize<'de> for TagCwes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut ids = Vec::new();
        CweSeed { bare_numbers: false, ids: &mut ids }.deserialize(deserializer)?;
        Ok(TagCwes(ids))
    }
}

impl<'de> Deserialize<'de> for PropertyCwes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut ids = Vec::new();
        CweSeed { bare_numbers: true, ids: &mut ids }.deserialize(deserializer)?;
        Ok(PropertyCwes(ids))
    }
}

/// Collects CWE ids from a JSON value of any shape, ignoring whatever does not name one.
struct CweSeed<'a> {
    /// Whether "79" and 79 count as CWE-79.
    bare_numbers: bool,
    ids: &'a mut Vec<u32>,
}

impl<'de> DeserializeSeed<'de> for CweSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CweSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("CWE ids")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let id = if self.bare_numbers { cwe_of_property(v) } else { cwe_of(v) };
        self.ids.extend(id);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        if self.bare_numbers {
            self.ids.extend(in_cwe_range(v));
        }
        Ok(())
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
        while seq.next_element_seed(CweSeed { bare_numbers: self.bare_numbers, ids: &mut *self.ids })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

impl Findings {
    fn absorb(&mut self, run: Run) {
        if !self.tools.contains(&run.tool_name) {
            self.tools.push(run.tool_name);
        }
        self.results += run.results.count;
        if run.results.by_rule.is_empty() {
            return;
        }
        // Driver rules are inserted first and the first holder of an id wins, so a driver rule
        // shadows an extension rule with the same id.
        let mut by_id: HashMap<&str, &Rule> = HashMap::new();
        for rule in run.components.iter().flat_map(|c| &c.rules) {
            if let Some(id) = rule.id.as_deref() {
                by_id.entry(id).or_insert(rule);
            }
        }
        for (reference, own_cwes) in &run.results.by_rule {
            let rule = resolve(&run.components, &by_id, reference);
            let rule_id = reference.id.as_deref().or_else(|| rule.and_then(|r| r.id.as_deref()));
            let rule_cwes = rule.map(|r| &r.cwes).into_iter().flatten();
            for &cwe in rule_cwes.chain(own_cwes) {
                let rule_ids = self.cwes.entry(cwe).or_default();
                if let Some(rule_id) = rule_id {
                    rule_ids.insert(rule_id.to_owned());
                }
            }
        }
    }
}

/// The rule a result names: by index within the referenced tool component when that index is
/// valid, else by id anywhere in the run.
fn resolve<'r>(
    components: &'r [ToolComponent],
    by_id: &HashMap<&str, &'r Rule>,
    reference: &RuleRef,
) -> Option<&'r Rule> {
    let component = match &reference.component {
        ComponentRef::Driver => components.first(),
        ComponentRef::Extension(i) => i.checked_add(1).and_then(|i| components.get(i)),
        ComponentRef::Named(name) => components.iter().find(|c| c.name.as_deref() == Some(name)),
        ComponentRef::Unknown => None,
    };
    let by_index = component.zip(reference.index).and_then(|(component, j)| component.rules.get(j));
    by_index.or_else(|| reference.id.as_deref().and_then(|id| by_id.get(id).copied()))
}
