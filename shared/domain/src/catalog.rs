//! The content catalog (practice and learn) and the resolver from a target to its tracked items.
//!
//! The catalog ships as `data/catalog.json`. At deploy/seed time every node (category, module, topic,
//! course, scenario) is written to the table *with its tracked units already resolved*, so resolving a
//! target at request time is a single GetItem.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::Slug;
use crate::vocabulary::{ContentArea, TargetType};

/// The catalog bundled with the service.
pub const BUNDLED_CATALOG_JSON: &str = include_str!("../data/catalog.json");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown {target_type} '{target_id}' in content area '{area}'")]
    UnknownTarget { area: ContentArea, target_type: TargetType, target_id: String },
    #[error("catalog data is invalid: {0}")]
    Invalid(String),
}

/// A compact description of what a target tracks: a topic stands for its N challenges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TrackedUnit {
    #[serde(rename_all = "camelCase")]
    Topic { topic_id: Slug, challenges: u16 },
    #[serde(rename_all = "camelCase")]
    Scenario { scenario_id: Slug },
}

/// One tracked item: a single practice challenge or a single learn scenario.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackedItem {
    /// `index` is zero-based, as `challenge.completed` sends it.
    Challenge {
        topic_id: Slug,
        index: u16,
    },
    Scenario {
        scenario_id: Slug,
    },
}

impl TrackedItem {
    /// A stable, compact key used in progress rows: `c:<topic>:<index>` or `s:<scenario>`.
    pub fn key(&self) -> String {
        self.to_string()
    }

    pub fn parse_key(key: &str) -> Option<Self> {
        let mut parts = key.split(':');
        let item = match (parts.next()?, parts.next()?, parts.next()) {
            ("c", topic, Some(index)) => {
                TrackedItem::Challenge { topic_id: Slug::parse(topic).ok()?, index: index.parse().ok()? }
            }
            ("s", scenario, None) => TrackedItem::Scenario { scenario_id: Slug::parse(scenario).ok()? },
            _ => return None,
        };
        parts.next().is_none().then_some(item)
    }
}

impl fmt::Display for TrackedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackedItem::Challenge { topic_id, index } => write!(f, "c:{topic_id}:{index}"),
            TrackedItem::Scenario { scenario_id } => write!(f, "s:{scenario_id}"),
        }
    }
}

/// How many challenges and scenarios a set of units tracks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemCounts {
    pub challenges: u32,
    pub scenarios: u32,
}

impl ItemCounts {
    pub fn of(units: &[TrackedUnit]) -> Self {
        units.iter().fold(Self::default(), |mut acc, unit| {
            match unit {
                TrackedUnit::Topic { challenges, .. } => acc.challenges += u32::from(*challenges),
                TrackedUnit::Scenario { .. } => acc.scenarios += 1,
            }
            acc
        })
    }

    pub fn total(self) -> u32 {
        self.challenges + self.scenarios
    }
}

/// Whether `units` track `item`.
pub fn tracks(units: &[TrackedUnit], item: &TrackedItem) -> bool {
    units.iter().any(|unit| match (unit, item) {
        (TrackedUnit::Topic { topic_id, challenges }, TrackedItem::Challenge { topic_id: t, index }) => {
            topic_id == t && index < challenges
        }
        (TrackedUnit::Scenario { scenario_id }, TrackedItem::Scenario { scenario_id: s }) => scenario_id == s,
        _ => false,
    })
}

/// A catalog node with its resolution baked in: what is stored per node at deploy/seed time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogNode {
    pub content_area: ContentArea,
    pub target_type: TargetType,
    pub slug: Slug,
    pub title: String,
    /// Human path, e.g. "OWASP Web Top 10 / A03 Injection / SQL Injection".
    pub path: String,
    /// Ancestors from the root, e.g. `[(category, web), (module, a03-injection)]` for a topic: the
    /// targets that also track this node's items.
    pub ancestors: Vec<(TargetType, Slug)>,
    pub units: Vec<TrackedUnit>,
}

/// A resolved target: what an assignment stores about its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    pub title: String,
    pub path: String,
    pub units: Vec<TrackedUnit>,
}

impl From<CatalogNode> for ResolvedTarget {
    fn from(node: CatalogNode) -> Self {
        Self { title: node.title, path: node.path, units: node.units }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    practice: Vec<CategoryFile>,
    learn: Vec<CourseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryFile {
    slug: Slug,
    title: String,
    modules: Vec<ModuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleFile {
    slug: Slug,
    title: String,
    topics: Vec<TopicFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicFile {
    slug: Slug,
    title: String,
    challenges: u16,
    /// The CWEs the topic teaches: a code-scanning finding with one of them assigns this topic.
    #[serde(default)]
    cwes: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CourseFile {
    slug: Slug,
    title: String,
    scenarios: Vec<ScenarioFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    slug: Slug,
    title: String,
}

/// The parsed, validated catalog, indexed by (target type, slug).
#[derive(Debug, Clone)]
pub struct Catalog {
    nodes: BTreeMap<(TargetType, Slug), CatalogNode>,
    /// Each CWE that a topic teaches, to that topic (one topic per CWE: a finding assigns one topic).
    cwe_topics: BTreeMap<u32, Slug>,
}

impl Catalog {
    /// The catalog shipped in this repository.
    pub fn bundled() -> Result<Self, CatalogError> {
        Self::from_json(BUNDLED_CATALOG_JSON)
    }

    pub fn from_json(json: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = serde_json::from_str(json).map_err(|e| CatalogError::Invalid(e.to_string()))?;
        let mut catalog = Catalog { nodes: BTreeMap::new(), cwe_topics: BTreeMap::new() };

        for category in &file.practice {
            let mut category_units = Vec::new();
            for module in &category.modules {
                let module_path = format!("{} / {}", category.title, module.title);
                let mut module_units = Vec::new();
                for topic in &module.topics {
                    if topic.challenges == 0 {
                        return Err(CatalogError::Invalid(format!("topic '{}' has no challenges", topic.slug)));
                    }
                    for &cwe in &topic.cwes {
                        if cwe == 0 {
                            return Err(CatalogError::Invalid(format!("topic '{}' lists CWE-0", topic.slug)));
                        }
                        if let Some(other) = catalog.cwe_topics.insert(cwe, topic.slug.clone()) {
                            return Err(CatalogError::Invalid(format!(
                                "CWE-{cwe} is listed by topics '{other}' and '{}'",
                                topic.slug
                            )));
                        }
                    }
                    let unit = TrackedUnit::Topic { topic_id: topic.slug.clone(), challenges: topic.challenges };
                    module_units.push(unit.clone());
                    catalog.insert(CatalogNode {
                        content_area: ContentArea::Practice,
                        target_type: TargetType::Topic,
                        slug: topic.slug.clone(),
                        title: topic.title.clone(),
                        path: format!("{module_path} / {}", topic.title),
                        ancestors: vec![
                            (TargetType::Category, category.slug.clone()),
                            (TargetType::Module, module.slug.clone()),
                        ],
                        units: vec![unit],
                    })?;
                }
                category_units.extend(module_units.iter().cloned());
                catalog.insert(CatalogNode {
                    content_area: ContentArea::Practice,
                    target_type: TargetType::Module,
                    slug: module.slug.clone(),
                    title: module.title.clone(),
                    path: module_path,
                    ancestors: vec![(TargetType::Category, category.slug.clone())],
                    units: module_units,
                })?;
            }
            catalog.insert(CatalogNode {
                content_area: ContentArea::Practice,
                target_type: TargetType::Category,
                slug: category.slug.clone(),
                title: category.title.clone(),
                path: category.title.clone(),
                ancestors: vec![],
                units: category_units,
            })?;
        }

        for course in &file.learn {
            let mut course_units = Vec::new();
            for scenario in &course.scenarios {
                let unit = TrackedUnit::Scenario { scenario_id: scenario.slug.clone() };
                course_units.push(unit.clone());
                catalog.insert(CatalogNode {
                    content_area: ContentArea::Learn,
                    target_type: TargetType::Scenario,
                    slug: scenario.slug.clone(),
                    title: scenario.title.clone(),
                    path: format!("{} / {}", course.title, scenario.title),
                    ancestors: vec![(TargetType::Course, course.slug.clone())],
                    units: vec![unit],
                })?;
            }
            catalog.insert(CatalogNode {
                content_area: ContentArea::Learn,
                target_type: TargetType::Course,
                slug: course.slug.clone(),
                title: course.title.clone(),
                path: course.title.clone(),
                ancestors: vec![],
                units: course_units,
            })?;
        }
        Ok(catalog)
    }

    fn insert(&mut self, node: CatalogNode) -> Result<(), CatalogError> {
        let key = (node.target_type, node.slug.clone());
        if self.nodes.contains_key(&key) {
            return Err(CatalogError::Invalid(format!("duplicate {} slug '{}'", key.0, key.1)));
        }
        self.nodes.insert(key, node);
        Ok(())
    }

    /// Every node, for loading into the table.
    pub fn nodes(&self) -> impl Iterator<Item = &CatalogNode> {
        self.nodes.values()
    }

    pub fn node(&self, target_type: TargetType, slug: &str) -> Option<&CatalogNode> {
        let slug = Slug::parse(slug).ok()?;
        self.nodes.get(&(target_type, slug))
    }

    /// The practice topic that teaches `cwe`, if any.
    pub fn topic_for_cwe(&self, cwe: u32) -> Option<&CatalogNode> {
        let slug = self.cwe_topics.get(&cwe)?;
        self.nodes.get(&(TargetType::Topic, slug.clone()))
    }

    /// Every CWE a topic teaches, with that topic's slug, by CWE.
    pub fn cwe_topics(&self) -> impl Iterator<Item = (u32, &Slug)> {
        self.cwe_topics.iter().map(|(cwe, slug)| (*cwe, slug))
    }

    /// Resolves a catalog target (not a custom course) to its tracked items.
    pub fn resolve(
        &self,
        area: ContentArea,
        target_type: TargetType,
        target_id: &str,
    ) -> Result<ResolvedTarget, CatalogError> {
        self.node(target_type, target_id)
            .filter(|node| node.content_area == area)
            .cloned()
            .map(ResolvedTarget::from)
            .ok_or_else(|| CatalogError::UnknownTarget { area, target_type, target_id: target_id.to_owned() })
    }
}

/// One item of an org's custom course, as the platform publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomCourseItem {
    pub item_type: CustomItemType,
    pub item_id: Slug,
    pub order_index: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomItemType {
    Topic,
    Scenario,
}

/// Resolves a custom course's items to tracked units. `topic_challenges` looks a topic up in the catalog.
/// Items the catalog does not know are returned separately (the course may reference retired content);
/// they are not tracked. Duplicate items are tracked once.
pub fn resolve_custom_course(
    items: &[CustomCourseItem],
    topic_challenges: impl Fn(&Slug) -> Option<u16>,
    scenario_exists: impl Fn(&Slug) -> bool,
) -> (Vec<TrackedUnit>, Vec<Slug>) {
    let mut ordered: Vec<&CustomCourseItem> = items.iter().collect();
    ordered.sort_by_key(|item| item.order_index);
    let mut seen = BTreeSet::new();
    let mut units = Vec::new();
    let mut unknown = Vec::new();
    for item in ordered {
        if !seen.insert((item.item_type as u8, item.item_id.clone())) {
            continue;
        }
        match item.item_type {
            CustomItemType::Topic => match topic_challenges(&item.item_id) {
                Some(challenges) => units.push(TrackedUnit::Topic { topic_id: item.item_id.clone(), challenges }),
                None => unknown.push(item.item_id.clone()),
            },
            CustomItemType::Scenario if scenario_exists(&item.item_id) => {
                units.push(TrackedUnit::Scenario { scenario_id: item.item_id.clone() })
            }
            CustomItemType::Scenario => unknown.push(item.item_id.clone()),
        }
    }
    (units, unknown)
}

impl Catalog {
    /// [`resolve_custom_course`] against this catalog.
    pub fn resolve_custom_course(&self, items: &[CustomCourseItem]) -> (Vec<TrackedUnit>, Vec<Slug>) {
        resolve_custom_course(
            items,
            |slug| match self.nodes.get(&(TargetType::Topic, slug.clone())).map(|n| n.units.as_slice()) {
                Some([TrackedUnit::Topic { challenges, .. }]) => Some(*challenges),
                _ => None,
            },
            |slug| self.nodes.contains_key(&(TargetType::Scenario, slug.clone())),
        )
    }
}

#[cfg(test)]
mod tests;
