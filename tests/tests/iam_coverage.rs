//! Each function's IAM policy in `template.yaml` allows exactly the AWS actions it was seen to use.
//!
//! The local gateway records every permission a function uses (`gateway::iam`) into `IAM_RECORD_DIR`
//! while the end-to-end tests run. This test, run by `infra/test.sh` after them (it is `test = false`:
//! it needs their records), checks per function that every use is allowed by a statement of its
//! policy — action, resource, and `dynamodb:LeadingKeys` condition — and that every action and
//! resource a statement grants was used: a missing permission fails here instead of in production,
//! and a grant nobody uses is taken away.

use std::collections::{BTreeMap, BTreeSet};

use gateway::iam::{PermissionUse, RECORD_DIR_VAR, read_uses, string_like as glob};
use serde_yaml_ng::Value;

/// One `Allow` statement, its resources resolved to the form the recorder writes.
#[derive(Debug)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
    /// `ForAllValues:StringLike` `dynamodb:LeadingKeys` patterns, if the statement has them.
    leading_keys: Option<Vec<String>>,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run this test through infra/test.sh"))
}

/// The end of the ARN a template resource names, with the local stack's physical names:
/// `!GetAtt AssignmentsTable.Arn` → `table/<TABLE_NAME>`, `!Sub "${ExportBucket.Arn}/exports/*"` →
/// `<EXPORT_BUCKET>/exports/*`.
fn resource(template: &Value, value: &Value) -> String {
    let arn_of = |logical: &str| -> String {
        let kind = template["Resources"][logical]["Type"].as_str().unwrap_or_else(|| panic!("no resource {logical}"));
        match kind {
            "AWS::DynamoDB::Table" => format!("table/{}", env("TABLE_NAME")),
            "AWS::S3::Bucket" if logical == "SarifUploadBucket" => env("SARIF_BUCKET"),
            "AWS::S3::Bucket" => env("EXPORT_BUCKET"),
            "AWS::Events::EventBus" => format!("event-bus/{}", env("EVENT_BUS_NAME")),
            // The local stack encrypts nothing with it; see `SERVICE_USES`.
            "AWS::KMS::Key" => format!("key/{logical}"),
            "AWS::SQS::Queue" => {
                let url = env(&gateway::queue::url_variable(logical));
                format!("queue/{}", url.rsplit('/').next().unwrap_or_default())
            }
            other => panic!("a policy names a {other}, which this test does not map"),
        }
    };
    let Value::Tagged(tagged) = value else { panic!("a policy resource that is not !GetAtt/!Sub: {value:?}") };
    let text = tagged.value.as_str().expect("a string after the tag");
    match tagged.tag.to_string().as_str() {
        "!GetAtt" => arn_of(text.strip_suffix(".Arn").expect("!GetAtt X.Arn")),
        "!Sub" => {
            let (logical, rest) = text.strip_prefix("${").and_then(|t| t.split_once(".Arn}")).expect("!Sub ${X.Arn}…");
            format!("{}{rest}", arn_of(logical))
        }
        // The session token secret is the platform's: any secret, locally the gateway's.
        "!Ref" if text == "SessionTokenSecretArn" => "secret:*".to_owned(),
        other => panic!("unexpected tag {other} {text}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().map(|v| v.as_str().expect("a string").to_owned()).collect(),
        Value::String(one) => vec![one.clone()],
        other => panic!("expected a string or a list: {other:?}"),
    }
}

fn policies(template: &Value) -> BTreeMap<String, Vec<Statement>> {
    let mut out = BTreeMap::new();
    for (id, res) in template["Resources"].as_mapping().expect("Resources") {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let mut statements = Vec::new();
        for policy in res["Properties"]["Policies"].as_sequence().expect("every function has inline policies") {
            for st in policy["Statement"].as_sequence().expect("Statement") {
                assert_eq!(st["Effect"].as_str(), Some("Allow"), "{id:?}: only Allow statements");
                let resources = match &st["Resource"] {
                    Value::Sequence(items) => items.iter().map(|r| resource(template, r)).collect(),
                    one => vec![resource(template, one)],
                };
                let condition = &st["Condition"];
                let leading_keys =
                    condition.get("ForAllValues:StringLike").map(|c| strings(&c["dynamodb:LeadingKeys"]));
                if leading_keys.is_none() {
                    assert!(condition.is_null(), "{id:?}: a condition this test does not evaluate: {condition:?}");
                }
                statements.push(Statement { actions: strings(&st["Action"]), resources, leading_keys });
            }
        }
        out.insert(id.as_str().unwrap().to_owned(), statements);
    }
    out
}

fn allows(statement: &Statement, used: &PermissionUse) -> bool {
    statement.actions.contains(&used.action)
        && statement.resources.iter().any(|r| glob(r, &used.resource))
        && match (&statement.leading_keys, &used.leading_key) {
            (None, _) => true,
            (Some(patterns), Some(key)) => patterns.iter().any(|p| glob(p, key)),
            (Some(_), None) => false,
        }
}

/// Read once per container and cached (`api::secret`): the local gateway runs every HTTP function in
/// one process with one copy, so only the first to authenticate records the read. Which functions may
/// read it is checked by `template::only_http_functions_may_read_the_session_secret_and_none_has_it_in_its_environment`;
/// here, that each read was granted and that reads happen.
const SHARED_READ: &str = "secretsmanager:GetSecretValue";

/// Actions SQS and Lambda call with a function's role on its behalf (KMS data keys for an encrypted
/// queue it writes or reads, or that its failures go to): never seen by the recorder. Which functions
/// may, is checked by `template::queues_of_whole_events_use_the_services_key_and_only_their_writers_and_readers_may`.
const SERVICE_USES: [&str; 2] = ["kms:GenerateDataKey", "kms:Decrypt"];

#[test]
fn every_function_is_granted_exactly_the_permissions_it_uses() {
    let template: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap(),
    )
    .unwrap();
    let granted = policies(&template);
    let dir = env(RECORD_DIR_VAR);
    let uses = read_uses(std::path::Path::new(&dir)).expect("the end-to-end tests' records");
    let mut by_function: BTreeMap<&str, Vec<&PermissionUse>> = BTreeMap::new();
    for used in &uses {
        by_function.entry(used.function.as_str()).or_default().push(used);
    }

    let mut problems = Vec::new();
    for (function, statements) in &granted {
        let used = by_function.remove(function.as_str()).unwrap_or_default();
        let seen: BTreeSet<&str> = used.iter().map(|u| u.action.as_str()).collect();
        let allowed: BTreeSet<&str> = statements.iter().flat_map(|s| s.actions.iter().map(String::as_str)).collect();
        eprintln!("{function}\n  seen:    {}\n  granted: {}", join(&seen), join(&allowed));
        if used.is_empty() {
            problems.push(format!("{function}: the end-to-end tests never ran it"));
        }
        for u in &used {
            if !statements.iter().any(|s| allows(s, u)) {
                problems.push(format!(
                    "{function}: uses {} on {} (key {:?}) without a grant",
                    u.action, u.resource, u.leading_key
                ));
            }
        }
        for s in statements {
            for action in &s.actions {
                if action == SHARED_READ || SERVICE_USES.contains(&action.as_str()) {
                    continue;
                }
                for resource in &s.resources {
                    let needed =
                        used.iter().any(|u| &u.action == action && glob(resource, &u.resource) && allows(s, u));
                    if !needed {
                        problems.push(format!("{function}: grants {action} on {resource}, never used"));
                    }
                }
            }
            // Each partition a condition lets it write is one it writes: no pattern wider than needed.
            for pattern in s.leading_keys.iter().flatten() {
                let needed = used.iter().any(|u| {
                    s.actions.contains(&u.action) && u.leading_key.as_deref().is_some_and(|key| glob(pattern, key))
                });
                if !needed {
                    problems.push(format!("{function}: lets {:?} write partitions {pattern}, never used", s.actions));
                }
            }
        }
    }
    for (function, _) in by_function {
        problems.push(format!("{function}: recorded, but no such function in template.yaml"));
    }
    if !uses.iter().any(|u| u.action == SHARED_READ) {
        problems.push(format!("no function used {SHARED_READ}"));
    }
    assert!(problems.is_empty(), "IAM policies and what the functions do differ:\n  {}", problems.join("\n  "));
}

fn join(actions: &BTreeSet<&str>) -> String {
    actions.iter().copied().collect::<Vec<_>>().join(", ")
}

#[test]
fn globs_match_like_iam() {
    assert!(glob("ORG#*#RATE#*", "ORG#*#RATE#*#*"));
    assert!(glob("table/t/index/*", "table/t/index/GSI1"));
    assert!(!glob("table/t/index/*", "table/t"));
    assert!(glob("b/exports/*", "b/exports/o/2026/11/x.csv"));
    assert!(!glob("ORG#*#RATE#*", "ORG#*#ASG#*"));
}
