//! The key condition most reads need: one partition of the table or an index, optionally a sort-key
//! prefix.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use crate::dynamo::s;
use crate::records::Record;
use crate::{Page, PageKey, Store, StoreError};

/// The items of one partition of the table or of an index, or only those whose sort key starts with a
/// prefix: the key condition most reads need, written once.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    pub(crate) index: Option<&'static str>,
    key: String,
    prefix: Option<&'static str>,
    consistent: bool,
}

impl Partition {
    /// A partition of the table (`PK`).
    pub(crate) fn table(pk: String) -> Self {
        Self { index: None, key: pk, prefix: None, consistent: false }
    }

    /// A partition of a global secondary index (`<index>PK`).
    pub(crate) fn index(index: &'static str, pk: String) -> Self {
        Self { index: Some(index), key: pk, prefix: None, consistent: false }
    }

    /// Only the items whose sort key starts with `prefix`.
    pub(crate) fn prefixed(self, prefix: &'static str) -> Self {
        Self { prefix: Some(prefix), ..self }
    }

    /// Strongly consistent (the table only: indexes are eventually consistent).
    pub(crate) fn consistent(self) -> Self {
        debug_assert!(self.index.is_none(), "global secondary indexes cannot be read strongly consistent");
        Self { consistent: true, ..self }
    }

    pub(crate) fn query(&self, q: QueryFluentBuilder) -> QueryFluentBuilder {
        let (pk, sk) = match self.index {
            None => (crate::keys::PK.to_owned(), crate::keys::SK.to_owned()),
            Some(index) => (format!("{index}PK"), format!("{index}SK")),
        };
        let q =
            q.set_index_name(self.index.map(str::to_owned)).expression_attribute_values(":pk", s(self.key.as_str()));
        let q = if self.consistent { q.consistent_read(true) } else { q };
        match self.prefix {
            None => q.key_condition_expression(format!("{pk} = :pk")),
            Some(prefix) => q
                .key_condition_expression(format!("{pk} = :pk AND begins_with({sk}, :prefix)"))
                .expression_attribute_values(":prefix", s(prefix)),
        }
    }
}

impl Store {
    /// Up to `limit` entities of one partition, in sort-key order, and where to go on.
    pub(crate) async fn page_of<R: Record>(
        &self,
        partition: &Partition,
        start: Option<PageKey>,
        limit: usize,
    ) -> Result<Page<R::Entity>, StoreError> {
        let (items, next) = self.query_bounded(|q| partition.query(q), partition.index, false, start, limit).await?;
        Ok(Page { items: items.into_iter().map(R::entity_of).collect::<Result<_, _>>()?, next })
    }

    /// Every entity of one partition. Only for bounded sets (a user's assignments, a team's members);
    /// unbounded ones are paged with [`Store::page_of`].
    pub(crate) async fn all_of<R: Record>(&self, partition: &Partition) -> Result<Vec<R::Entity>, StoreError> {
        self.query_all(|q| partition.query(q)).await?.into_iter().map(R::entity_of).collect()
    }
}
