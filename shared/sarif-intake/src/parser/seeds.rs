//! The seeds every object of a log is read with: a value or `null`, an array one element at a time,
//! a field read once, capped text, the fields the reader knows.

use super::*;

/// Reads what `S` reads, or `null`: SARIF lets most arrays and objects be null.
pub(super) struct Nullable<S>(pub(super) S);

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
pub(super) struct EachOf<'s, T, F, G> {
    pub(super) state: &'s State,
    /// Completes serde's "expected …" when the value is not an array.
    pub(super) expecting: &'static str,
    pub(super) into: T,
    pub(super) element: F,
    pub(super) each: G,
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
pub(super) fn once<'de, A: MapAccess<'de>, T>(
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
pub(super) fn capped_text<'de, A: MapAccess<'de>>(
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
pub(super) fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|IgnoredAny| ())
}

/// The fields read anywhere in a log; each object matches the ones it reads and skips the rest.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
pub(super) enum Field {
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
