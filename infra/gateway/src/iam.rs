//! Which IAM permissions each function uses, recorded while the local gateway runs it.
//!
//! An SDK interceptor on the gateway's DynamoDB, S3, EventBridge and SQS clients turns every call made inside
//! [`as_function`] into the IAM actions AWS checks for it (a `TransactWriteItems` is a `PutItem`,
//! `UpdateItem`, `DeleteItem` or `ConditionCheckItem` per item; multipart uploads are `s3:PutObject`),
//! with the resource and, for DynamoDB, the shape of the item's partition key (`ORG#*#RATE#*#*`) that a
//! `dynamodb:LeadingKeys` condition would see. With `IAM_RECORD_DIR` set, each distinct use is appended
//! as a JSON line to a file of that folder; the IAM coverage test (`tests/tests/iam_coverage.rs`)
//! compares them with the policies in `template.yaml`. Without it, nothing is recorded. The same clients
//! carry the fault injector ([`crate::faults`]), which does nothing unless a run turns it on.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::ConfigBag;
use serde::{Deserialize, Serialize};

/// Environment variable naming the folder the uses are written to.
pub const RECORD_DIR_VAR: &str = "IAM_RECORD_DIR";

pub use crate::running::as_function;
use crate::running::current_function;

/// One permission a function used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionUse {
    /// The function's logical id in `template.yaml`.
    pub function: String,
    /// The IAM action, e.g. `dynamodb:UpdateItem`.
    pub action: String,
    /// The resource as the end of its ARN: `table/<name>`, `table/<name>/index/<index>`,
    /// `<bucket>/<key>`, `event-bus/<name>`, `queue/<name>`.
    pub resource: String,
    /// DynamoDB: the partition key with its values replaced by `*` (`ORG#*#RATE#*#*`); `None` where
    /// the request names no single item (Query, batches).
    pub leading_key: Option<String>,
}

/// The sink of the uses of this process: one file per process, each distinct use written once.
struct Sink {
    seen: HashSet<PermissionUse>,
    file: File,
}

fn sink() -> Option<&'static Mutex<Sink>> {
    static SINK: OnceLock<Option<Mutex<Sink>>> = OnceLock::new();
    SINK.get_or_init(|| {
        let dir = std::env::var_os(RECORD_DIR_VAR)?;
        std::fs::create_dir_all(&dir).ok()?;
        let path = std::path::Path::new(&dir).join(format!("{}.jsonl", std::process::id()));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok()?;
        Some(Mutex::new(Sink { seen: HashSet::new(), file }))
    })
    .as_ref()
}

fn record(uses: Vec<PermissionUse>) {
    let Some(sink) = sink() else { return };
    let mut sink = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for used in uses {
        if sink.seen.insert(used.clone())
            && let Ok(line) = serde_json::to_string(&used)
        {
            // A lost line would show as a missing permission in the coverage test, never a false pass.
            let _ = writeln!(sink.file, "{line}");
        }
    }
}

/// Every use recorded in `dir` (all processes), sorted and without repeats.
pub fn read_uses(dir: &std::path::Path) -> std::io::Result<Vec<PermissionUse>> {
    let mut uses = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            uses.insert(serde_json::from_str(line).map_err(std::io::Error::other)?);
        }
    }
    Ok(uses.into_iter().collect())
}

/// `ORG#acme#RATE#key-1#2026112406` → `ORG#*#RATE#*#*`: a key's labels (the upper-case parts the key
/// builders write), its values starred.
pub fn key_shape(partition_key: &str) -> String {
    let label = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    partition_key.split('#').map(|part| if label(part) { part } else { "*" }).collect::<Vec<_>>().join("#")
}

fn partition_key(key: &std::collections::HashMap<String, AttributeValue>) -> Option<String> {
    key.get("PK").and_then(|v| v.as_s().ok()).map(|pk| key_shape(pk))
}

/// The interceptor: add it to a client's config ([`dynamodb`], [`s3`], [`eventbridge`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Recorder;

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "IamPermissionRecorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(function) = current_function() else { return Ok(()) };
        let operation = cfg.load::<Metadata>().map(|m| format!("{}:{}", m.service(), m.name()));
        let uses = permissions(context.input())
            .unwrap_or_else(|| vec![(format!("unknown:{}", operation.unwrap_or_default()), "*".to_owned(), None)]);
        record(
            uses.into_iter()
                .map(|(action, resource, leading_key)| PermissionUse {
                    function: function.to_owned(),
                    action,
                    resource,
                    leading_key,
                })
                .collect(),
        );
        Ok(())
    }
}

/// IAM's `StringLike` (as in a `dynamodb:LeadingKeys` condition or a resource ARN): `*` matches any run of
/// characters.
pub fn string_like(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            value.starts_with(head)
                && (0..=value.len() - head.len()).any(|i| string_like(tail, &value[head.len() + i..]))
        }
    }
}

type Permission = (String, String, Option<String>);

/// The IAM actions a request needs, with their resources; `None` for an operation this does not know.
fn permissions(input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> Option<Vec<Permission>> {
    use aws_sdk_dynamodb::operation as ddb;
    let table = |name: Option<&str>| format!("table/{}", name.unwrap_or_default());
    let one = |action: &str, resource: String, key: Option<String>| Some(vec![(action.to_owned(), resource, key)]);

    if let Some(i) = input.downcast_ref::<ddb::get_item::GetItemInput>() {
        return one("dynamodb:GetItem", table(i.table_name()), i.key().and_then(partition_key));
    }
    if let Some(i) = input.downcast_ref::<ddb::put_item::PutItemInput>() {
        return one("dynamodb:PutItem", table(i.table_name()), i.item().and_then(partition_key));
    }
    if let Some(i) = input.downcast_ref::<ddb::update_item::UpdateItemInput>() {
        return one("dynamodb:UpdateItem", table(i.table_name()), i.key().and_then(partition_key));
    }
    if let Some(i) = input.downcast_ref::<ddb::delete_item::DeleteItemInput>() {
        return one("dynamodb:DeleteItem", table(i.table_name()), i.key().and_then(partition_key));
    }
    if let Some(i) = input.downcast_ref::<ddb::query::QueryInput>() {
        let resource = match i.index_name() {
            Some(index) => format!("{}/index/{index}", table(i.table_name())),
            None => table(i.table_name()),
        };
        return one("dynamodb:Query", resource, None);
    }
    if let Some(i) = input.downcast_ref::<ddb::scan::ScanInput>() {
        return one("dynamodb:Scan", table(i.table_name()), None);
    }
    if let Some(i) = input.downcast_ref::<ddb::batch_get_item::BatchGetItemInput>() {
        let tables = i.request_items().into_iter().flat_map(|items| items.keys());
        return Some(tables.map(|t| ("dynamodb:BatchGetItem".to_owned(), table(Some(t)), None)).collect());
    }
    if let Some(i) = input.downcast_ref::<ddb::batch_write_item::BatchWriteItemInput>() {
        let tables = i.request_items().into_iter().flat_map(|items| items.keys());
        return Some(tables.map(|t| ("dynamodb:BatchWriteItem".to_owned(), table(Some(t)), None)).collect());
    }
    if let Some(i) = input.downcast_ref::<ddb::transact_write_items::TransactWriteItemsInput>() {
        let mut uses = Vec::new();
        for item in i.transact_items() {
            if let Some(p) = item.put() {
                uses.push(("dynamodb:PutItem".into(), table(Some(p.table_name())), partition_key(p.item())));
            }
            if let Some(u) = item.update() {
                uses.push(("dynamodb:UpdateItem".into(), table(Some(u.table_name())), partition_key(u.key())));
            }
            if let Some(d) = item.delete() {
                uses.push(("dynamodb:DeleteItem".into(), table(Some(d.table_name())), partition_key(d.key())));
            }
            if let Some(c) = item.condition_check() {
                uses.push(("dynamodb:ConditionCheckItem".into(), table(Some(c.table_name())), partition_key(c.key())));
            }
        }
        return Some(uses);
    }
    if let Some(i) = input.downcast_ref::<ddb::transact_get_items::TransactGetItemsInput>() {
        let gets = i.transact_items().iter().filter_map(|item| item.get());
        return Some(
            gets.map(|g| ("dynamodb:GetItem".to_owned(), table(Some(g.table_name())), partition_key(g.key())))
                .collect(),
        );
    }
    if let Some(i) = input.downcast_ref::<aws_sdk_eventbridge::operation::put_events::PutEventsInput>() {
        let buses = i.entries().iter().map(|e| e.event_bus_name().unwrap_or("default"));
        return Some(buses.map(|bus| ("events:PutEvents".to_owned(), format!("event-bus/{bus}"), None)).collect());
    }
    if let Some(i) = input.downcast_ref::<aws_sdk_sqs::operation::send_message::SendMessageInput>() {
        return one("sqs:SendMessage", queue(i.queue_url()), None);
    }
    // IAM has no action of its own for a batch: each entry is an `sqs:SendMessage`.
    if let Some(i) = input.downcast_ref::<aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput>() {
        return one("sqs:SendMessage", queue(i.queue_url()), None);
    }
    if let Some(i) =
        input.downcast_ref::<aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityInput>()
    {
        return one("sqs:ChangeMessageVisibility", queue(i.queue_url()), None);
    }
    if let Some(i) = input.downcast_ref::<aws_sdk_sqs::operation::receive_message::ReceiveMessageInput>() {
        return one("sqs:ReceiveMessage", queue(i.queue_url()), None);
    }
    if let Some(i) = input.downcast_ref::<aws_sdk_sqs::operation::delete_message::DeleteMessageInput>() {
        return one("sqs:DeleteMessage", queue(i.queue_url()), None);
    }
    if let Some(i) = input.downcast_ref::<aws_sdk_kms::operation::encrypt::EncryptInput>() {
        return one("kms:Encrypt", kms_key(i.key_id()), None);
    }
    if let Some(i) = input.downcast_ref::<aws_sdk_kms::operation::decrypt::DecryptInput>() {
        return one("kms:Decrypt", kms_key(i.key_id()), None);
    }
    if let Some(i) = input.downcast_ref::<aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueInput>() {
        return one("secretsmanager:GetSecretValue", secret(i.secret_id()), None);
    }
    s3_permission(input)
}

/// `secret:<name>`: the end of a secret's ARN (or its name).
fn secret(id: Option<&str>) -> String {
    let id = id.unwrap_or_default();
    format!("secret:{}", id.split_once(":secret:").map_or(id, |(_, name)| name))
}

/// `queue/<name>`: the end of a queue URL.
fn queue(url: Option<&str>) -> String {
    format!("queue/{}", url.unwrap_or_default().rsplit('/').next().unwrap_or_default())
}

fn s3_permission(input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> Option<Vec<Permission>> {
    use aws_sdk_s3::operation as s3;
    macro_rules! object_action {
        ($($input:ty => $action:literal),* $(,)?) => {
            $(if let Some(i) = input.downcast_ref::<$input>() {
                let resource = format!("{}/{}", i.bucket().unwrap_or_default(), i.key().unwrap_or_default());
                return Some(vec![($action.to_owned(), resource, None)]);
            })*
        };
    }
    // IAM has no actions of their own for the multipart calls: they are `s3:PutObject`.
    object_action!(
        s3::put_object::PutObjectInput => "s3:PutObject",
        s3::create_multipart_upload::CreateMultipartUploadInput => "s3:PutObject",
        s3::upload_part::UploadPartInput => "s3:PutObject",
        s3::complete_multipart_upload::CompleteMultipartUploadInput => "s3:PutObject",
        s3::abort_multipart_upload::AbortMultipartUploadInput => "s3:AbortMultipartUpload",
        s3::get_object::GetObjectInput => "s3:GetObject",
        s3::head_object::HeadObjectInput => "s3:GetObject",
        s3::delete_object::DeleteObjectInput => "s3:DeleteObject",
    );
    None
}

/// `client` with the recorder and the fault injector ([`crate::faults`]) added.
pub fn dynamodb(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        client.config().to_builder().interceptor(Recorder).interceptor(crate::faults::Injector).build(),
    )
}

/// `client` with the recorder and the fault injector ([`crate::faults`]) added.
pub fn s3(client: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        client.config().to_builder().interceptor(Recorder).interceptor(crate::faults::Injector).build(),
    )
}

/// `client` with the recorder and the fault injector ([`crate::faults`]) added.
pub fn sqs(client: &aws_sdk_sqs::Client) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        client.config().to_builder().interceptor(Recorder).interceptor(crate::faults::Injector).build(),
    )
}

/// `client` with the recorder and the fault injector ([`crate::faults`]) added.
pub fn secretsmanager(client: &aws_sdk_secretsmanager::Client) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        client.config().to_builder().interceptor(Recorder).interceptor(crate::faults::Injector).build(),
    )
}

/// `client` with the recorder and the fault injector ([`crate::faults`]) added.
pub fn eventbridge(client: &aws_sdk_eventbridge::Client) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::from_conf(
        client.config().to_builder().interceptor(Recorder).interceptor(crate::faults::Injector).build(),
    )
}

/// A KMS key as the coverage test names the template's keys: `key/<logical id>` (the local stack's one
/// key, the webhook secrets', is known by the ARN it exported).
fn kms_key(key: Option<&str>) -> String {
    let webhooks = std::env::var(events::webhooks::SECRETS_KEY_VAR).ok();
    match key {
        Some(key) if webhooks.as_deref() == Some(key) => "key/WebhookSecretsKey".to_owned(),
        Some(key) => format!("key/{key}"),
        None => "key/*".to_owned(),
    }
}

/// `client` with the recorder and the fault injector ([`crate::faults`]) added.
pub fn kms(client: &aws_sdk_kms::Client) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::from_conf(
        client.config().to_builder().interceptor(Recorder).interceptor(crate::faults::Injector).build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shapes_keep_labels_and_star_values() {
        assert_eq!(key_shape("ORG#acme#RATE#key-1#2026112406"), "ORG#*#RATE#*#*");
        assert_eq!(key_shape("APIKEY#abc"), "APIKEY#*");
        assert_eq!(key_shape("ORG#acme#ASG#x"), "ORG#*#ASG#*");
        assert_eq!(key_shape("ORG#o-1#ACTIVE#team#0d42f0e5#topic#xxe"), "ORG#*#ACTIVE#*#*#*#*");
        assert_eq!(key_shape("ORGS"), "ORGS");
    }
}
