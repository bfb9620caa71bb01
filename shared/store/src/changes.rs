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

    /// Each of `fields` as `after` has it (set, or removed when absent), whether or not it changed.
    pub(crate) fn write(&mut self, after: &Item, fields: &[&str]) {
        for &field in fields {
            match after.get(field) {
                Some(value) => self.set_value(field, value.clone()),
                None => self.remove(field),
            }
        }
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
        self.forget(&name);
        self.set.push(format!("{name} = {right}"));
    }

    /// `REMOVE field`.
    pub(crate) fn remove(&mut self, field: &str) {
        let name = self.name(field);
        self.forget(&name);
        self.remove.push(name);
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
        // Only what the expression still names: DynamoDB refuses names and values it does not use
        // (a clause replaced by a later write of its field leaves its value behind).
        let named = |placeholder: &str| {
            expression
                .match_indices(placeholder)
                .any(|(at, _)| !expression[at + placeholder.len()..].starts_with(|c: char| c.is_ascii_alphanumeric()))
        };
        for (placeholder, name) in self.names.into_iter().filter(|(p, _)| named(p)) {
            update = update.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in self.values.into_iter().filter(|(p, _)| named(p)) {
            update = update.expression_attribute_values(placeholder, value);
        }
        update.update_expression(expression)
    }

    /// Drops any clause on `name`: one update may name a path once (DynamoDB refuses overlapping
    /// paths), and the last write of a field is the one meant.
    fn forget(&mut self, name: &str) {
        let assigns = format!("{name} = ");
        self.set.retain(|clause| !clause.starts_with(&assigns));
        self.remove.retain(|removed| removed != name);
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
    use crate::dynamo::s;

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

    /// A path is named once, by its last write: DynamoDB refuses an update whose paths overlap.
    #[test]
    fn the_last_write_of_a_field_is_the_only_one() {
        let after = item(&[("rosterStatus", "building")]);
        let mut update = FieldUpdate::between(&item(&[]), &after, &["rosterStatus", "rosterRun"]);
        update.write(&after, &["rosterStatus", "rosterRun"]);
        update.remove("rosterStatus");
        assert_eq!((update.set.len(), update.remove.len()), (0, 2), "{update:?}");
        update.set_value("rosterRun", AttributeValue::S("r".into()));
        assert_eq!((update.set.len(), update.remove.clone()), (1, vec!["#u0".to_owned()]));
        let built = update.apply(aws_sdk_dynamodb::types::Update::builder().table_name("t").key("PK", s("k")));
        let built = built.build().unwrap();
        assert_eq!(built.update_expression(), "SET #u1 = :u2 REMOVE #u0");
        let values: Vec<&String> = built.expression_attribute_values().unwrap().keys().collect();
        assert_eq!(values, [":u2"], "the replaced clauses' values are not sent");
        assert_eq!(built.expression_attribute_names().unwrap().len(), 2);
    }
}
