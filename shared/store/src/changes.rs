//! Updates generated from two serialised states of one entity: of the named fields, those that differ
//! are set (or removed, when the new state has none) and nothing else is written. A field's shape
//! has one home, its serde type; and values other writers move on the same item (the counters that
//! progress transactions `ADD`) are never overwritten, as a whole-item put would.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;

use crate::dynamo::Item;

/// The clauses of one update expression, with their names and values.
#[derive(Debug, Default)]
pub(crate) struct FieldUpdate {
    set: Vec<String>,
    remove: Vec<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl FieldUpdate {
    /// Sets each of `fields` whose value differs between `before` and `after`, and removes each that
    /// `after` lacks and `before` has.
    pub(crate) fn between(before: &Item, after: &Item, fields: &[&str]) -> Self {
        let mut update = FieldUpdate::default();
        for &field in fields {
            match (before.get(field), after.get(field)) {
                (old, Some(new)) if old != Some(new) => update.set_value(field, new.clone()),
                (Some(_), None) => update.remove(field),
                _ => {}
            }
        }
        update
    }

    /// `field = value`.
    pub(crate) fn set_value(&mut self, field: &str, value: AttributeValue) {
        let value = self.value(value);
        self.set(field, value);
    }

    /// `field = right`, where `right` is an expression of [`Self::name`]s and [`Self::value`]s: for
    /// writes relative to stored values (`unitsRev = unitsRev + 1`).
    pub(crate) fn set(&mut self, field: &str, right: String) {
        let name = self.name(field);
        self.set.push(format!("{name} = {right}"));
    }

    /// `REMOVE field`.
    pub(crate) fn remove(&mut self, field: &str) {
        let name = self.name(field);
        if !self.remove.contains(&name) {
            self.remove.push(name);
        }
    }

    /// The update with this expression, its names and values (beside any the builder already has,
    /// such as a condition's: these use `#u…` and `:u…`).
    pub(crate) fn apply(self, mut update: UpdateBuilder) -> UpdateBuilder {
        let mut expression = String::new();
        if !self.set.is_empty() {
            expression = format!("SET {}", self.set.join(", "));
        }
        if !self.remove.is_empty() {
            expression = format!("{expression} REMOVE {}", self.remove.join(", ")).trim_start().to_owned();
        }
        for (placeholder, name) in self.names {
            update = update.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in self.values {
            update = update.expression_attribute_values(placeholder, value);
        }
        update.update_expression(expression)
    }

    /// The placeholder of a field's name in this update's expression.
    pub(crate) fn name(&mut self, field: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, name)| name.as_str() == field) {
            return placeholder.clone();
        }
        let placeholder = format!("#u{}", self.names.len());
        self.names.insert(placeholder.clone(), field.to_owned());
        placeholder
    }

    /// The placeholder of a value in this update's expression.
    pub(crate) fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":u{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned()))).collect()
    }

    #[test]
    fn only_named_fields_that_differ_are_written() {
        let before = item(&[("deadline", "2027-01-01"), ("note", "n"), ("title", "a"), ("completed", "3")]);
        let after = item(&[("deadline", "2027-02-01"), ("title", "b"), ("completed", "0")]);
        let update = FieldUpdate::between(&before, &after, &["deadline", "note", "recurrence"]);
        assert_eq!(update.set, vec!["#u0 = :u0"]);
        assert_eq!(update.remove, vec!["#u1"]);
        assert_eq!(update.names.get("#u0").map(String::as_str), Some("deadline"));
        assert_eq!(update.names.get("#u1").map(String::as_str), Some("note"));
        assert_eq!(update.values.get(":u0"), Some(&AttributeValue::S("2027-02-01".into())));
        let unchanged = FieldUpdate::between(&before, &before, &["deadline", "note"]);
        assert!(unchanged.set.is_empty() && unchanged.remove.is_empty());
    }

    #[test]
    fn relative_writes_name_each_field_once() {
        let mut update = FieldUpdate::default();
        let rev = update.name("unitsRev");
        let one = update.value(AttributeValue::N("1".into()));
        update.set("unitsRev", format!("{rev} + {one}"));
        update.set("complianceSync", format!("{rev} + {one}"));
        assert_eq!(update.set, vec!["#u0 = #u0 + :u0", "#u1 = #u0 + :u0"]);
    }
}
