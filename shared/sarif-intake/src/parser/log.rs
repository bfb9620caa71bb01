//! The log, its runs, tools, tool components and rules.

use super::*;

pub(super) struct LogSeed<'s> {
    pub(super) state: &'s State,
}

object_seed!(LogSeed<'_> => Findings, "a SARIF log object");

impl LogSeed<'_> {
    pub(super) fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Findings, A::Error> {
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
pub(super) fn each_run<'de>(state: &State) -> impl DeserializeSeed<'de, Value = Findings> {
    EachOf {
        state,
        expecting: "an array of runs",
        into: Findings::default(),
        element: |index| RunSeed { state, index },
        each: absorb,
    }
}

pub(super) struct RunSeed<'s> {
    pub(super) state: &'s State,
    pub(super) index: usize,
}

/// One run, reduced: its tool's rules and its results grouped by the rule they reference.
pub(super) struct Run {
    pub(super) tool_name: String,
    /// The driver first, then `tool.extensions` in order, so extension `i` is component `i + 1`.
    pub(super) components: Vec<ToolComponent>,
    pub(super) results: Results,
}

object_seed!(RunSeed<'_> => Run, "a SARIF run object");

impl RunSeed<'_> {
    pub(super) fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Run, A::Error> {
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

pub(super) struct Tool {
    pub(super) driver: Option<ToolComponent>,
    pub(super) extensions: Vec<ToolComponent>,
}

pub(super) struct ToolSeed<'s> {
    pub(super) state: &'s State,
}

object_seed!(ToolSeed<'_> => Tool, "a SARIF tool object");

impl ToolSeed<'_> {
    pub(super) fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Tool, A::Error> {
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
pub(super) fn each_extension<'de>(state: &State) -> impl DeserializeSeed<'de, Value = Vec<ToolComponent>> {
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
pub(super) struct ToolComponent {
    pub(super) name: Option<String>,
    pub(super) rules: Vec<Rule>,
}

pub(super) struct ComponentSeed<'s> {
    pub(super) state: &'s State,
    /// The driver's name is the tool's name, which the ingestion echoes: it has the stricter limit.
    pub(super) is_driver: bool,
}

object_seed!(ComponentSeed<'_> => ToolComponent, "a SARIF tool component object");

impl ComponentSeed<'_> {
    pub(super) fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<ToolComponent, A::Error> {
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
pub(super) fn each_rule<'de>(state: &State) -> impl DeserializeSeed<'de, Value = Vec<Rule>> {
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
pub(super) struct Rule {
    pub(super) id: Option<Box<str>>,
    pub(super) cwes: Box<[u32]>,
}

pub(super) struct RuleSeed<'s> {
    pub(super) state: &'s State,
}

object_seed!(RuleSeed<'_> => Rule, "a SARIF reportingDescriptor object");

impl RuleSeed<'_> {
    pub(super) fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Rule, A::Error> {
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

/// Adds a run to `findings`, refusing the log as soon as it names one tool or one CWE too many: what
/// an ingestion echoes (its response and event hold every tool and CWE) stays bounded, and so does
/// the copying of rule ids into CWEs.
fn absorb(findings: &mut Findings, run: Run) -> Result<(), SarifError> {
    if !findings.tools.contains(&run.tool_name) {
        if findings.tools.len() == MAX_TOOLS {
            return Err(SarifError::OverLimit { what: "distinct tools (runs[].tool.driver.name)", limit: MAX_TOOLS });
        }
        findings.tools.push(run.tool_name);
    }
    findings.results += run.results.count;
    if run.results.by_rule.is_empty() {
        return Ok(());
    }
    let rules = RuleIndex::new(&run.components);
    for (reference, own_cwes) in &run.results.by_rule {
        let rule = rules.resolve(reference);
        let rule_id = reference.id.as_deref().or_else(|| rule.and_then(|r| r.id.as_deref()));
        let rule_cwes = rule.map_or(&[][..], |r| &r.cwes[..]);
        for &cwe in rule_cwes.iter().chain(own_cwes) {
            if findings.cwes.len() == MAX_CWES && !findings.cwes.contains_key(&cwe) {
                return Err(SarifError::OverLimit { what: "distinct CWEs", limit: MAX_CWES });
            }
            let rule_ids = findings.cwes.entry(cwe).or_default();
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

/// A run's rules, looked up in the ways results name them.
pub(super) struct RuleIndex<'r> {
    pub(super) components: &'r [ToolComponent],
    pub(super) by_id: HashMap<&'r str, &'r Rule>,
    pub(super) by_name: HashMap<&'r str, &'r ToolComponent>,
}

impl<'r> RuleIndex<'r> {
    pub(super) fn new(components: &'r [ToolComponent]) -> Self {
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
    pub(super) fn resolve(&self, reference: &RuleRef) -> Option<&'r Rule> {
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
