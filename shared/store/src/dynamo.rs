//! Low-level helpers over the SDK: error classification, paging, batches that resend unprocessed
//! work, transactions whose cancellation reasons are kept.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, PutRequest, ReturnConsumedCapacity, WriteRequest,
};
use serde::de::DeserializeOwned;

use crate::capacity::Capacity;
use crate::retry::Retry;
use crate::{PageKey, Store, StoreError};
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Items a filtered listing reads per Query.
pub const FILTERED_PAGE_SIZE: i32 = 100;
/// Queries one listing request may issue.
pub const MAX_PAGES_PER_REQUEST: usize = 5;

/// The key DynamoDB would return as `LastEvaluatedKey` after `item`: the table's key plus the queried
/// index's key.
pub(crate) fn continuation_key(item: &Item, index: Option<&str>) -> Result<PageKey, StoreError> {
    use crate::keys;
    let index_keys: &[&str] = match index {
        None => &[],
        Some(keys::GSI1) => &[keys::GSI1PK, keys::GSI1SK],
        Some(keys::GSI2) => &[keys::GSI2PK, keys::GSI2SK],
        Some(keys::GSI3) => &[keys::GSI3PK, keys::GSI3SK],
        Some(other) => return Err(StoreError::Other(format!("unknown index {other}"))),
    };
    let mut key = HashMap::new();
    for name in [keys::PK, keys::SK].iter().chain(index_keys) {
        let value = item.get(*name).ok_or_else(|| StoreError::Corrupt(format!("listed item without {name}")))?;
        key.insert((*name).to_owned(), value.clone());
    }
    Ok(PageKey(key))
}

/// Maps an SDK error to the store's typed error, keeping throttling and condition failures apart,
/// and a call that got no answer or a server error apart from one that was refused.
pub(crate) fn classify<E>(err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let unanswered = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => service.raw().status().is_server_error(),
        _ => false,
    };
    if unanswered && !matches!(err.code(), Some("ProvisionedThroughputExceededException" | "ThrottlingException")) {
        return StoreError::Unavailable(DisplayErrorContext(&err).to_string());
    }
    match err.code() {
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed,
        Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded") => {
            StoreError::Throttled(err.message().unwrap_or("throttled").to_owned())
        }
        Some("TransactionConflictException") => {
            StoreError::TransactionConflict(err.message().unwrap_or("conflict").to_owned())
        }
        _ => StoreError::Other(DisplayErrorContext(&err).to_string()),
    }
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Items one `TransactWriteItems` holds at most.
pub(crate) const MAX_TRANSACTION_ITEMS: usize = 100;

impl Store {
    pub(crate) fn capacity_mode(&self) -> Option<ReturnConsumedCapacity> {
        self.capacity.as_ref().map(|_| ReturnConsumedCapacity::Total)
    }

    /// A PutItem on the table that reports its consumed capacity; send it with [`Store::send_put`].
    pub(crate) fn put_request(&self) -> PutItemFluentBuilder {
        self.client.put_item().table_name(&self.table).set_return_consumed_capacity(self.capacity_mode())
    }

    /// Sends a [`Store::put_request`]: errors classified, capacity counted.
    pub(crate) async fn send_put(&self, request: PutItemFluentBuilder) -> Result<PutItemOutput, StoreError> {
        let out = request.send().await.map_err(classify)?;
        self.note_write(out.consumed_capacity());
        Ok(out)
    }

    /// An UpdateItem on the table that reports its consumed capacity; send it with [`Store::send_update`].
    pub(crate) fn update_request(&self) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).set_return_consumed_capacity(self.capacity_mode())
    }

    /// Sends an [`Store::update_request`]: errors classified, capacity counted.
    pub(crate) async fn send_update(&self, request: UpdateItemFluentBuilder) -> Result<UpdateItemOutput, StoreError> {
        let out = request.send().await.map_err(classify)?;
        self.note_write(out.consumed_capacity());
        Ok(out)
    }

    /// Counts a single-item write (PutItem/UpdateItem) made outside the helpers here.
    pub(crate) fn note_write(&self, consumed: Option<&ConsumedCapacity>) {
        self.count(|c| c.record_writes(consumed));
    }

    /// Counts what a call consumed, when capacity is tracked.
    pub(crate) fn count(&self, record: impl FnOnce(&Capacity)) {
        if let Some(c) = &self.capacity {
            record(c);
        }
    }

    pub(crate) async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        self.get_item(pk, sk, false).await
    }

    /// GetItem, strongly consistent when `consistent` (1 RCU per 4 KB instead of 0.5).
    pub(crate) async fn get_item(&self, pk: String, sk: &str, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(crate::keys::PK, s(pk))
            .key(crate::keys::SK, s(sk))
            .consistent_read(consistent)
            .set_return_consumed_capacity(self.capacity_mode())
            .send()
            .await
            .map_err(classify)?;
        self.count(|c| c.record(out.consumed_capacity()));
        Ok(out.item)
    }

    /// One page of a Query built by `build`; follows `start` and returns DynamoDB's own page key.
    pub(crate) async fn query_page(
        &self,
        build: impl Fn(
            aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        start: Option<PageKey>,
        limit: Option<i32>,
    ) -> Result<(Vec<Item>, Option<PageKey>), StoreError> {
        let request = build(self.client.query().table_name(&self.table))
            .set_exclusive_start_key(start.map(|k| k.0))
            .set_limit(limit)
            .set_return_consumed_capacity(self.capacity_mode());
        let out = request.send().await.map_err(classify)?;
        self.count(|c| c.record(out.consumed_capacity()));
        let next = out.last_evaluated_key.filter(|k| !k.is_empty()).map(PageKey);
        Ok((out.items.unwrap_or_default(), next))
    }

    /// Up to `limit` items of a listing, with bounded work: an unfiltered query asks DynamoDB for
    /// exactly what is still missing; a filtered one reads fixed pages of [`FILTERED_PAGE_SIZE`] items
    /// (a filter drops items after they are read, so asking for `limit` could mean one Query per item).
    /// At most [`MAX_PAGES_PER_REQUEST`] Queries: when that cap is hit the listing stops where it is
    /// and hands back where to continue, even with fewer than `limit` items. `index` names the index
    /// queried, whose key attributes make up a continuation key.
    pub(crate) async fn query_bounded(
        &self,
        build: impl Fn(
            aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        index: Option<&str>,
        filtered: bool,
        start: Option<PageKey>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<PageKey>), StoreError> {
        let mut items: Vec<Item> = Vec::new();
        let mut next = start;
        for _ in 0..MAX_PAGES_PER_REQUEST {
            let missing = limit.saturating_sub(items.len());
            // Unfiltered, one item more than needed: DynamoDB hands back a LastEvaluatedKey when a page
            // ends exactly at its Limit, so asking for `missing` would send a client to an empty last page.
            let page_size = if filtered {
                FILTERED_PAGE_SIZE
            } else {
                i32::try_from(missing.saturating_add(1)).unwrap_or(i32::MAX)
            };
            let (page, after) = self.query_page(&build, next, Some(page_size.max(1))).await?;
            let read = page.len();
            items.extend(page.into_iter().take(missing));
            if read > missing {
                // The page went past `limit`: continue right after the last item handed out.
                let last = items.last().map(|item| continuation_key(item, index)).transpose()?;
                return Ok((items, last));
            }
            next = after;
            if next.is_none() || items.len() >= limit {
                return Ok((items, next));
            }
        }
        Ok((items, next))
    }

    /// Every item of a query, following every page. Only for bounded sets (a user's assignments, a
    /// team's members); unbounded sets are paged by the caller.
    pub(crate) async fn query_all(
        &self,
        build: impl Fn(
            aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut pages = crate::Pages::default();
        while let Some(start) = pages.next_start() {
            let (page, next) = self.query_page(&build, start, None).await?;
            items.extend(pages.follow(crate::Page { items: page, next }));
        }
        Ok(items)
    }

    /// Writes items with BatchWriteItem (25 a call), resending `UnprocessedItems` with backoff.
    pub(crate) async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(|e| StoreError::Other(e.to_string()))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_, StoreError>>()?;
            let mut attempts = Retry::PARTIAL.attempts();
            while !pending.is_empty() {
                attempts.next_or_throttled(|| format!("{} items still unprocessed", pending.len())).await?;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .set_return_consumed_capacity(self.capacity_mode())
                    .send()
                    .await
                    .map_err(classify)?;
                self.count(|c| c.record_writes(out.consumed_capacity()));
                pending = out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
            }
        }
        Ok(())
    }

    /// Reads items by key with BatchGetItem (100 a call), resending `UnprocessedKeys`.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        self.batch_get_with(keys, false).await
    }

    /// [`Store::batch_get`], strongly consistent when `consistent`.
    pub(crate) async fn batch_get_with(&self, keys: Vec<Item>, consistent: bool) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|e| StoreError::Other(e.to_string()))?,
            );
            let mut attempts = Retry::PARTIAL.attempts();
            while let Some(request) = pending.take() {
                attempts.next_or_throttled(|| "keys still unprocessed".to_owned()).await?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .set_return_consumed_capacity(self.capacity_mode())
                    .send()
                    .await
                    .map_err(classify)?;
                self.count(|c| c.record(out.consumed_capacity()));
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                pending = out.unprocessed_keys.and_then(|mut m| m.remove(&self.table)).filter(|k| !k.keys().is_empty());
            }
        }
        Ok(found)
    }
}
