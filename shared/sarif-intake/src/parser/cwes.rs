//! The CWEs of a rule or a result, from its tags, `cwe` property, relationships and taxa.

use super::*;

/// The CWEs of one rule or one result, capped as they are collected: a rule with tens of
/// thousands of CWE tags is refused at the first one over [`MAX_CWES_PER_ITEM`] instead of being
/// held and then having its id copied into every one of them.
///
/// The seeds below share it by `&` reference (hence the `RefCell`), so that [`EachOf`] can make a
/// fresh seed for every element of `taxa` and `relationships`.
pub(super) struct CweSet<'s> {
    pub(super) state: &'s State,
    pub(super) ids: RefCell<BTreeSet<u32>>,
}

impl<'s> CweSet<'s> {
    pub(super) fn new(state: &'s State) -> Self {
        CweSet { state, ids: RefCell::default() }
    }

    pub(super) fn insert<E: de::Error>(&self, id: Option<u32>) -> Result<(), E> {
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

    pub(super) fn into_ids(self) -> BTreeSet<u32> {
        self.ids.into_inner()
    }
}

/// A property bag's CWEs: its `tags` and its `cwe` property.
pub(super) struct PropertiesSeed<'a, 's> {
    pub(super) cwes: &'a CweSet<'s>,
}

object_seed!(PropertiesSeed<'_, '_> => (), "a SARIF property bag");

impl PropertiesSeed<'_, '_> {
    pub(super) fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
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
pub(super) fn each_relationship<'de>(cwes: &CweSet) -> impl DeserializeSeed<'de, Value = ()> {
    EachOf {
        state: cwes.state,
        expecting: "an array of relationships",
        into: (),
        element: |_| RelationshipSeed { cwes },
        each: |_: &mut (), ()| Ok(()),
    }
}

pub(super) struct RelationshipSeed<'a, 's> {
    pub(super) cwes: &'a CweSet<'s>,
}

object_seed!(RelationshipSeed<'_, '_> => (), "a SARIF relationship object");

impl RelationshipSeed<'_, '_> {
    pub(super) fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
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
pub(super) fn each_taxon<'de>(cwes: &CweSet) -> impl DeserializeSeed<'de, Value = ()> {
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
pub(super) struct TaxonSeed<'a, 's> {
    pub(super) cwes: &'a CweSet<'s>,
}

object_seed!(TaxonSeed<'_, '_> => (), "a SARIF reference to a taxon");

impl TaxonSeed<'_, '_> {
    pub(super) fn read<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
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
pub(super) struct CweSeed<'a, 's> {
    /// Whether "79" and 79 count as CWE-79.
    pub(super) bare_numbers: bool,
    pub(super) cwes: &'a CweSet<'s>,
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
