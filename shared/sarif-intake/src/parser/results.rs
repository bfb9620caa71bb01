//! A run's results, reduced to the rule each names and its own CWEs, grouped by rule reference.

use super::*;

/// A run's results, grouped by rule reference: every result in a group names the same rule, so
/// the group needs only the union of its results' own CWEs. Memory then grows with the number of
/// distinct references, not with the number of results.
#[derive(Default)]
pub(super) struct Results {
    pub(super) count: usize,
    pub(super) by_rule: HashMap<RuleRef, BTreeSet<u32>>,
}

/// A run's `results`, each counted and grouped as soon as it has been read.
pub(super) fn each_result<'de>(state: &State) -> impl DeserializeSeed<'de, Value = Results> {
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
pub(super) struct RuleRef {
    /// `ruleId`, else `rule.id`; never empty.
    pub(super) id: Option<String>,
    /// `rule.index`, else `ruleIndex`; SARIF's -1 ("none") is `None`.
    pub(super) index: Option<usize>,
    pub(super) component: ComponentRef,
}

#[derive(PartialEq, Eq, Hash)]
pub(super) enum ComponentRef {
    Driver,
    /// Index into `tool.extensions`.
    Extension(usize),
    Named(String),
    /// Given only by guid: the index cannot be placed, only the id can be looked up.
    Unknown,
}

/// One result, reduced to the rule it names and its own CWEs.
pub(super) struct ResultSeed<'s> {
    pub(super) state: &'s State,
}

object_seed!(ResultSeed<'_> => (RuleRef, BTreeSet<u32>), "a SARIF result object");

impl ResultSeed<'_> {
    pub(super) fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(RuleRef, BTreeSet<u32>), A::Error> {
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

pub(super) fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RuleReference {
    pub(super) id: Option<String>,
    #[serde(default, deserialize_with = "whole")]
    pub(super) index: Option<i64>,
    #[serde(default, deserialize_with = "object")]
    pub(super) tool_component: Option<ComponentReference>,
}

#[derive(Deserialize)]
pub(super) struct ComponentReference {
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "whole")]
    pub(super) index: Option<i64>,
}

/// A SARIF object read as an object only: serde's derived structs also take an array of their fields in
/// order, which SARIF does not allow (and the OpenAPI document does not describe).
pub(super) struct Object<T>(pub(super) T);

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

pub(super) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|Object(t)| t))
}

/// An index as SARIF's JSON schema counts integers: `3`, or `3.0` (a whole number written as a float).
pub(super) struct Whole(pub(super) i64);

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

pub(super) fn whole<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Whole>::deserialize(deserializer)?.map(|Whole(i)| i))
}

impl ComponentReference {
    pub(super) fn into_ref(self) -> ComponentRef {
        match (self.index.and_then(|i| usize::try_from(i).ok()), self.name) {
            (Some(index), _) => ComponentRef::Extension(index),
            (None, Some(name)) => ComponentRef::Named(name),
            (None, None) => ComponentRef::Unknown,
        }
    }

    pub(super) fn is_cwe_taxonomy(&self) -> bool {
        self.name.as_deref().is_some_and(|name| name.eq_ignore_ascii_case("CWE"))
    }
}
