//! Pattern 9: the content catalog, loaded from the repository's data file at deploy/seed time.

use domain::{CatalogNode, ContentArea, TargetType};

use crate::dynamo::to_item;
use crate::records::CatalogRecord;
use crate::{Store, StoreError, keys};

impl Store {
    /// Writes (or overwrites) catalog nodes. Idempotent: loading the same catalog twice is harmless.
    pub async fn put_catalog<'a>(&self, nodes: impl IntoIterator<Item = &'a CatalogNode>) -> Result<usize, StoreError> {
        let items = nodes
            .into_iter()
            .map(|node| {
                to_item(&CatalogRecord {
                    pk: keys::catalog_pk(node.content_area),
                    sk: keys::catalog_sk(node.target_type, node.slug.as_str()),
                    entity: "catalog".into(),
                    node: node.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let count = items.len();
        self.batch_put(items).await?;
        Ok(count)
    }

    /// One catalog node with its tracked units: resolving a catalog target is this one GetItem.
    pub async fn catalog_node(
        &self,
        area: ContentArea,
        target_type: TargetType,
        slug: &str,
    ) -> Result<Option<CatalogNode>, StoreError> {
        let slug = keys::part(slug)?;
        self.get_entity::<CatalogRecord>(keys::catalog_pk(area), &keys::catalog_sk(target_type, slug)).await
    }
}
