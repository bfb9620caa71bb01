//! Faults DynamoDB Local cannot produce on demand, injected with the SDK's own mocking crate:
//! throttling and partially processed batches. Storage behaviour itself is tested against
//! DynamoDB Local in the other test files.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use domain::{Catalog, ContentArea, TargetType};
use store::{Store, StoreError};

#[tokio::test]
async fn throttling_is_a_typed_transient_error() {
    let throttled = mock!(Client::get_item).then_error(|| {
        GetItemError::ProvisionedThroughputExceededException(
            aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException::builder()
                .message("slow down")
                // What the SDK's deserializer records from a real response's `__type`.
                .meta(
                    aws_sdk_dynamodb::error::ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .message("slow down")
                        .build(),
                )
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, [&throttled]);
    let store = Store::new(client, "t");
    let err = store.catalog_node(ContentArea::Practice, TargetType::Topic, "xxe").await.unwrap_err();
    assert!(matches!(err, StoreError::Throttled(_)), "{err:?}");
    assert!(err.is_transient());
}

/// A server error that outlasts the SDK's retries is `Unavailable` (transient; the API answers 503
/// with `Retry-After`), not an unexpected error: the load-and-fault run found such requests answered
/// 500 (`tests/tests/load_and_faults.rs`), as were calls that timed out or whose answer was lost.
#[tokio::test]
async fn a_server_error_after_the_retries_is_unavailable_not_unexpected() {
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_smithy_types::body::SdkBody;
    let failing = mock!(Client::get_item).then_http_response(|| {
        let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}"#;
        HttpResponse::new(500.try_into().unwrap(), SdkBody::from(body))
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&failing]);
    let store = Store::new(client, "t");
    let err = store.catalog_node(ContentArea::Practice, TargetType::Topic, "xxe").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn unprocessed_batch_items_are_resent_until_written() {
    let catalog = Catalog::bundled().unwrap();
    let nodes: Vec<_> = catalog.nodes().take(3).cloned().collect();

    // First call: DynamoDB processes all but one item. Second call must carry exactly that item.
    let leftover = aws_sdk_dynamodb::types::AttributeValue::S("left-over".into());
    let partial = mock!(Client::batch_write_item).then_output(move || {
        let put = PutRequest::builder().item("PK", leftover.clone()).item("SK", leftover.clone()).build().unwrap();
        BatchWriteItemOutput::builder()
            .unprocessed_items("t", vec![WriteRequest::builder().put_request(put).build()])
            .build()
    });
    let resend = mock!(Client::batch_write_item)
        .match_requests(|req| {
            let items = req.request_items().and_then(|m| m.get("t")).map(Vec::len);
            items == Some(1)
        })
        .then_output(|| BatchWriteItemOutput::builder().build());
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&partial, &resend]);
    let store = Store::new(client, "t");

    assert_eq!(store.put_catalog(nodes.iter()).await.unwrap(), 3);
    assert_eq!(partial.num_calls(), 1);
    assert_eq!(resend.num_calls(), 1, "the unprocessed item was sent again, alone");
}
