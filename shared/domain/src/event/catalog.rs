//! The webhook catalog: the event types a customer may subscribe to, each with the JSON Schema of the
//! data a delivery of it carries and an example of that data.
//!
//! A delivery's data is the event's own fields: its detail without the fields every detail carries
//! ([`webhook_data`]), which is the serialisation of its type `E`. The schema is generated from `E`
//! (its doc comments are the descriptions) and the example is a sample value of `E` serialised by
//! serde, so neither can drift from what the producer sends.

use schemars::generate::SchemaSettings;

use super::*;

/// The detail type of a test delivery (an admin's "send a test event" to an endpoint).
pub const WEBHOOK_TEST: &str = "webhook.test";

/// What every detail carries besides the event's own fields ([`Detail`]); a webhook's data leaves
/// them out (the delivery's `timestamp` is the `occurredAt`).
pub const COMMON_FIELDS: &[&str] = &["eventId", "orgId", "occurredAt"];

/// `webhook.test`: an admin asked for a test delivery to one of their endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookTest {
    /// The endpoint the test was sent to.
    pub endpoint_id: Uuid,
    /// Says that this is a test and needs no action.
    pub message: String,
}

impl Event for WebhookTest {
    const DETAIL_TYPE: &'static str = WEBHOOK_TEST;
}

/// An event type a customer may subscribe to: its data's schema is generated from it, and its
/// example is its [`PublicEvent::sample`] serialised.
pub trait PublicEvent: Event + Serialize + JsonSchema {
    /// What it announces, in a sentence (the catalog's `description`).
    const DESCRIPTION: &'static str;

    /// A realistic value of it (the catalog's `example` is its serialisation).
    fn sample() -> Self;
}

/// What goes through every public event type ([`visit_public`]).
pub(crate) trait PublicVisitor {
    fn visit<E: PublicEvent>(&mut self);
}

/// The public event types, each named once: [`public_types`] and [`visit_public`] both follow from
/// this list.
macro_rules! public_events {
    ($($event:ty),+ $(,)?) => {
        const PUBLIC_TYPES: &[&str] = &[$(<$event as Event>::DETAIL_TYPE),+];

        /// Calls `visitor` with each public event type, in [`public_types`]' order.
        pub(crate) fn visit_public<V: PublicVisitor>(visitor: &mut V) {
            $(visitor.visit::<$event>();)+
        }
    };
}

public_events!(
    AssignmentCreated,
    AssignmentUpdated,
    AssignmentDeactivated,
    AssignmentReactivated,
    UserAdded,
    AssignmentCompleted,
    UserUpdated,
    DueSoon,
    Overdue,
    Expired,
    RecertificationDue,
    ComplianceChanged,
    SarifIngested,
    ExportReady,
    WebhookTest,
);

/// The detail types a customer may subscribe to. The service's requests to itself (roster, compliance
/// sync and export requests: [`Lane`]) are never among them.
pub fn public_types() -> &'static [&'static str] {
    PUBLIC_TYPES
}

/// Whether a customer may subscribe to `detail_type`.
pub fn is_public(detail_type: &str) -> bool {
    PUBLIC_TYPES.contains(&detail_type)
}

/// One event type of the catalog (`GET /webhook-endpoints/events`), as
/// `{type, description, schema, example}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogEntry {
    /// The detail type (a delivery's `type`).
    #[serde(rename = "type")]
    pub event_type: &'static str,
    /// What it announces.
    pub description: &'static str,
    /// The JSON Schema (2020-12) of a delivery's `data`: how the type serialises.
    pub schema: Value,
    /// An example of a delivery's `data`.
    pub example: Value,
}

impl CatalogEntry {
    /// `E`'s entry.
    pub fn of<E: PublicEvent>() -> Self {
        let schema = SchemaSettings::draft2020_12().for_serialize().into_generator().into_root_schema_for::<E>();
        CatalogEntry {
            event_type: E::DETAIL_TYPE,
            description: E::DESCRIPTION,
            schema: schema.to_value(),
            // As `DomainEvent::new`: serialising an event cannot fail (the catalog's test goes
            // through every type).
            example: serde_json::to_value(E::sample()).unwrap_or_default(),
        }
    }
}

/// Every public event type's entry, in [`public_types`]' order.
pub fn catalog() -> Vec<CatalogEntry> {
    struct Entries(Vec<CatalogEntry>);
    impl PublicVisitor for Entries {
        fn visit<E: PublicEvent>(&mut self) {
            self.0.push(CatalogEntry::of::<E>());
        }
    }
    let mut entries = Entries(Vec::with_capacity(PUBLIC_TYPES.len()));
    visit_public(&mut entries);
    entries.0
}

/// A webhook delivery's `data`: `detail` (an outgoing event's, [`DomainEvent::detail`]) without the
/// fields every detail carries ([`COMMON_FIELDS`]), i.e. the serialisation of its event type.
pub fn webhook_data(detail: &Value) -> Value {
    let mut data = detail.clone();
    if let Some(fields) = data.as_object_mut() {
        for common in COMMON_FIELDS {
            fields.remove(*common);
        }
    }
    data
}

#[cfg(test)]
mod tests;
