//! `template.yaml` is the source of the table the code runs against, locally and deployed; these tests
//! hold it to the key names the store builds.

use serde_yaml_ng::Value;
use store::keys;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("template.yaml readable"))
        .expect("template.yaml parses")
}

fn table(template: &Value) -> &Value {
    let resources = template["Resources"].as_mapping().expect("Resources");
    let tables: Vec<&Value> =
        resources.values().filter(|r| r["Type"].as_str() == Some("AWS::DynamoDB::Table")).collect();
    assert_eq!(tables.len(), 1, "one table for everything");
    tables[0]
}

fn key_schema(schema: &Value) -> Vec<(String, String)> {
    schema
        .as_sequence()
        .expect("KeySchema")
        .iter()
        .map(|k| (k["AttributeName"].as_str().unwrap().to_owned(), k["KeyType"].as_str().unwrap().to_owned()))
        .collect()
}

/// The first resource of a CloudFormation type.
fn resource_of_type<'t>(template: &'t Value, resource_type: &str) -> Option<&'t Value> {
    template["Resources"].as_mapping()?.values().find(|r| r["Type"].as_str() == Some(resource_type))
}

#[test]
fn table_keys_and_indexes_match_the_store() {
    let template = template();
    let table = table(&template);
    let props = &table["Properties"];
    let hash_range = |pk: &str, sk: &str| vec![(pk.to_owned(), "HASH".to_owned()), (sk.to_owned(), "RANGE".to_owned())];
    assert_eq!(key_schema(&props["KeySchema"]), hash_range(keys::PK, keys::SK));

    let indexes = props["GlobalSecondaryIndexes"].as_sequence().expect("GSIs");
    let expected = [
        (keys::GSI1, keys::GSI1PK, keys::GSI1SK),
        (keys::GSI2, keys::GSI2PK, keys::GSI2SK),
        (keys::GSI3, keys::GSI3PK, keys::GSI3SK),
        (keys::GSI4, keys::GSI4PK, keys::GSI4SK),
    ];
    assert_eq!(indexes.len(), expected.len());
    for (name, pk, sk) in expected {
        let index =
            indexes.iter().find(|i| i["IndexName"].as_str() == Some(name)).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(key_schema(&index["KeySchema"]), hash_range(pk, sk), "{name}");
        assert_eq!(index["Projection"]["ProjectionType"].as_str(), Some("ALL"), "{name}");
    }

    let defined: Vec<&str> = props["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .inspect(|d| assert_eq!(d["AttributeType"].as_str(), Some("S"), "every key attribute is a string"))
        .map(|d| d["AttributeName"].as_str().unwrap())
        .collect();
    let attributes =
        [keys::PK, keys::SK, keys::GSI1PK, keys::GSI1SK, keys::GSI2PK, keys::GSI2SK, keys::GSI3PK, keys::GSI3SK];
    for name in attributes.into_iter().chain([keys::GSI4PK, keys::GSI4SK]) {
        assert!(defined.contains(&name), "{name} not defined");
    }
}

#[test]
fn table_is_on_demand_recoverable_retained_and_expires_ttl_items() {
    let template = template();
    let table = table(&template);
    let props = &table["Properties"];
    assert_eq!(props["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(props["TimeToLiveSpecification"]["AttributeName"].as_str(), Some(keys::TTL_ATTRIBUTE));
    assert_eq!(props["TimeToLiveSpecification"]["Enabled"].as_bool(), Some(true));
    assert_eq!(props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(table["UpdateReplacePolicy"].as_str(), Some("Retain"));
}

#[test]
fn export_bucket_is_private_and_encrypted() {
    let template = template();
    let bucket = resource_of_type(&template, "AWS::S3::Bucket").expect("export bucket");
    let block = &bucket["Properties"]["PublicAccessBlockConfiguration"];
    for setting in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(block[setting].as_bool(), Some(true), "{setting}");
    }
    let rules = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"].as_sequence().unwrap();
    assert!(!rules.is_empty());
}

/// Every route of the template is documented in the OpenAPI document, and every documented operation
/// is a route of the template.
#[test]
fn openapi_documents_exactly_the_template_routes() {
    let openapi: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/api/openapi.yaml")).unwrap(),
    )
    .unwrap();
    let base = "/api/public/v1";
    assert!(openapi["servers"][0]["url"].as_str().unwrap().ends_with(base));
    let mut documented = Vec::new();
    for (path, item) in openapi["paths"].as_mapping().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.push(format!("{} {base}{}", method.to_uppercase(), path.as_str().unwrap()));
            }
        }
    }
    let template = template();
    let mut routes = Vec::new();
    for resource in template["Resources"].as_mapping().unwrap().values() {
        if let Some(events) = resource["Properties"]["Events"].as_mapping() {
            for event in events.values().filter(|e| e["Type"].as_str() == Some("HttpApi")) {
                let props = &event["Properties"];
                routes.push(format!("{} {}", props["Method"].as_str().unwrap(), props["Path"].as_str().unwrap()));
            }
        }
    }
    documented.sort();
    routes.sort();
    assert_eq!(documented, routes);
}

fn functions(template: &Value) -> Vec<(String, &Value)> {
    let resources = template["Resources"].as_mapping().unwrap();
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r))
        .collect()
}

fn serves_http(function: &Value) -> bool {
    function["Properties"]["Events"]
        .as_mapping()
        .is_some_and(|events| events.values().any(|e| e["Type"].as_str() == Some("HttpApi")))
}

/// The session secret's ARN, the issuer and the audience reach exactly the functions that verify
/// session tokens: those behind the HTTP API; only they may read the secret, and only that one. No
/// function gets a secret itself in its environment (anyone allowed `lambda:GetFunctionConfiguration`
/// reads those). Consumers and scheduled jobs never see it.
#[test]
fn only_http_functions_may_read_the_session_secret_and_none_has_it_in_its_environment() {
    let template = template();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert!(globals.get("SESSION_TOKEN_SECRET_ARN").is_none(), "not in Globals: every function would get it");
    let all = functions(&template);
    assert!(all.iter().any(|(_, f)| !serves_http(f)), "there are non-HTTP functions to check");
    for (id, function) in all {
        let variables = &function["Properties"]["Environment"]["Variables"];
        for name in ["SESSION_TOKEN_SECRET_ARN", "SESSION_TOKEN_ISSUER", "SESSION_TOKEN_AUDIENCE"] {
            assert_eq!(variables.get(name).is_some(), serves_http(function), "{id}: {name}");
        }
        for (name, _) in variables.as_mapping().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            assert!(!name.contains("SECRET") || name.ends_with("_ARN"), "{id}: a secret in the environment: {name}");
        }
        let statements: Vec<&Value> = function["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
            .collect();
        let reads: Vec<&&Value> = statements
            .iter()
            .filter(|st| serde_yaml_ng::to_string(&st["Action"]).unwrap_or_default().contains("secretsmanager:"))
            .collect();
        if serves_http(function) {
            assert_eq!(reads.len(), 1, "{id}: one statement reads the secret");
            assert_eq!(
                serde_yaml_ng::to_string(&reads[0]["Action"]).unwrap().trim(),
                "- secretsmanager:GetSecretValue"
            );
            assert_eq!(serde_yaml_ng::to_string(&reads[0]["Resource"]).unwrap().trim(), "!Ref SessionTokenSecretArn");
        } else {
            assert!(reads.is_empty(), "{id} may read a secret");
        }
    }
    let parameters = &template["Parameters"];
    for name in ["SessionTokenIssuer", "SessionTokenAudience"] {
        assert!(parameters[name].get("Default").is_none(), "{name} is required: every token must carry it");
        assert_eq!(parameters[name]["MinLength"].as_u64(), Some(1), "{name}");
    }
}

/// The stage throttles everyone together, in front of the per-key/per-user limits, and each route a
/// setting names gets less than the default.
#[test]
fn api_stage_is_throttled_per_route() {
    let template = template();
    let api = resource_of_type(&template, "AWS::Serverless::HttpApi").expect("HTTP API");
    let route = &api["Properties"]["DefaultRouteSettings"];
    assert!(route["ThrottlingBurstLimit"].as_u64().is_some_and(|b| b > 0), "{route:?}");
    assert!(route["ThrottlingRateLimit"].as_f64().is_some_and(|r| r > 0.0), "{route:?}");
    // Every route a stage setting names is a route of the API, and gets less than the default.
    let routes: Vec<String> = functions(&template)
        .iter()
        .flat_map(|(_, f)| f["Properties"]["Events"].as_mapping().into_iter().flat_map(|e| e.values()))
        .filter(|e| e["Type"].as_str() == Some("HttpApi"))
        .map(|e| {
            format!("{} {}", e["Properties"]["Method"].as_str().unwrap(), e["Properties"]["Path"].as_str().unwrap())
        })
        .collect();
    for (key, setting) in api["Properties"]["RouteSettings"].as_mapping().expect("per-route throttling") {
        let key = key.as_str().unwrap();
        assert!(routes.iter().any(|r| r.eq_ignore_ascii_case(key)), "RouteSettings names no route: {key}");
        let (rate, default) = (setting["ThrottlingRateLimit"].as_f64(), route["ThrottlingRateLimit"].as_f64());
        assert!(rate.zip(default).is_some_and(|(rate, default)| rate < default), "{key}: {rate:?} vs {default:?}");
    }
}

/// The queue workers (org jobs, rosters, exports) have reserved concurrency from a parameter with a
/// default between 1 and 10 whose 0 reserves none (an account with a low concurrency quota still
/// deploys: reserving 0 would stop the function), and their mapping runs fewer batches at once than
/// that, leaving a slot for an operator's direct run.
#[test]
fn queue_workers_reserve_concurrency_by_parameter_and_zero_reserves_none() {
    let template = template();
    let tag_of = |value: &Value| match value {
        Value::Tagged(tagged) => (tagged.tag.to_string(), tagged.value.clone()),
        other => panic!("not a tagged value: {other:?}"),
    };
    for function in ["OrgJobsFunction", "RosterWorkerFunction", "ExportWorkerFunction"] {
        let props = &template["Resources"][function]["Properties"];
        let (tag, args) = tag_of(&props["ReservedConcurrentExecutions"]);
        assert_eq!(tag, "!If", "{function}");
        let condition = args[0].as_str().expect("a condition name");
        let (_, parameter) = tag_of(&args[1]);
        let parameter = parameter.as_str().expect("!Ref <parameter>");
        assert_eq!(tag_of(&args[2]), ("!Ref".to_owned(), Value::from("AWS::NoValue")), "{function}");
        // The condition: the parameter is not 0.
        let (not, inner) = tag_of(&template["Conditions"][condition]);
        assert_eq!(not, "!Not", "{condition}");
        let (equals, operands) = tag_of(&inner[0]);
        assert_eq!(equals, "!Equals", "{condition}");
        assert_eq!(tag_of(&operands[0]), ("!Ref".to_owned(), Value::from(parameter)), "{condition}");
        // A Ref to a Number parameter is a string in CloudFormation.
        assert_eq!(operands[1].as_str(), Some("0"), "{condition}");
        let declared = &template["Parameters"][parameter];
        assert_eq!(declared["MinValue"].as_u64(), Some(0), "{parameter}");
        let reserved = declared["Default"].as_u64().expect("a default");
        assert!((1..=10).contains(&reserved), "{parameter}: {reserved}");
        let mapping = props["Events"].as_mapping().unwrap().values().find(|e| e["Type"].as_str() == Some("SQS"));
        let (_, batches) =
            tag_of(&mapping.expect("an SQS mapping")["Properties"]["ScalingConfig"]["MaximumConcurrency"]);
        let batches = template["Parameters"][batches.as_str().unwrap()]["Default"].as_u64().unwrap();
        assert!((2..reserved).contains(&batches), "{function}: {batches} batches at once, {reserved} reserved");
    }
    // A worker's request holds its org's lane while it runs: longer than the worker may run.
    for (function, lane) in
        [("RosterWorkerFunction", domain::Lane::Roster), ("ExportWorkerFunction", domain::Lane::Export)]
    {
        let timeout = template["Resources"][function]["Properties"]["Timeout"].as_u64().unwrap();
        assert!(service::lanes::running_hold(lane).as_secs() > timeout, "{function}");
    }
}

/// Every statement that lets a function write to the table names the partitions it may write
/// (`dynamodb:LeadingKeys`), and none of them can be an API key's or a catalog node's: a function holding
/// an org's token of trust (or one parsing an untrusted SARIF log) cannot mint a key for any org. The IAM
/// coverage test checks that each pattern is one the function writes.
#[test]
fn writers_are_limited_to_their_partitions_and_none_writes_an_api_key() {
    let template = template();
    let forbidden = [keys::api_key_pk(&"0".repeat(64)), keys::catalog_pk(domain::ContentArea::Practice)];
    let writes = [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    ];
    let mut writers = 0;
    for (id, function) in functions(&template) {
        for policy in function["Properties"]["Policies"].as_sequence().unwrap() {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                assert!(statement.get("NotAction").is_none(), "{id}: a NotAction grants what it does not name");
                let actions: Vec<&str> = match &statement["Action"] {
                    Value::Sequence(list) => list.iter().filter_map(Value::as_str).collect(),
                    one => one.as_str().into_iter().collect(),
                };
                // An action may be a pattern (`dynamodb:*`, `dynamodb:Put*`): it writes if it matches a write.
                let writing = |action: &&str| writes.iter().any(|w| gateway::iam::string_like(action, w));
                if !actions.iter().any(writing) {
                    continue;
                }
                writers += 1;
                let patterns = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                    .as_sequence()
                    .unwrap_or_else(|| panic!("{id}: {actions:?} without a dynamodb:LeadingKeys condition"));
                for pattern in patterns.iter().map(|p| p.as_str().unwrap()) {
                    for key in &forbidden {
                        assert!(!gateway::iam::string_like(pattern, key), "{id}: {pattern} lets it write {key}");
                    }
                }
            }
        }
    }
    assert!(writers >= 10, "the template's writers were found ({writers})");
}

/// Export objects, and their old versions, expire 30 days after they were written (docs/exports-and-audit.md).
#[test]
fn exports_expire_after_30_days() {
    let template = template();
    let bucket = resource_of_type(&template, "AWS::S3::Bucket").expect("export bucket");
    let rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"].as_sequence().unwrap();
    let expiry = rules.iter().find(|r| r["ExpirationInDays"].as_u64().is_some()).expect("a rule that expires objects");
    assert_eq!(expiry["Status"].as_str(), Some("Enabled"));
    assert_eq!(expiry["Prefix"].as_str(), Some("exports/"));
    assert_eq!(expiry["ExpirationInDays"].as_u64(), Some(30));
    assert_eq!(expiry["NoncurrentVersionExpiration"]["NoncurrentDays"].as_u64(), Some(1), "old versions go too");
}

/// `sam build` runs `make build-<LogicalId>` for each function: the Makefile names exactly the template's
/// functions, each built from its own package under `functions/`, and every such package is deployed.
#[test]
fn sam_builds_every_function_from_its_own_package() {
    let template = template();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let makefile = std::fs::read_to_string(format!("{root}/Makefile")).expect("Makefile readable");
    let built: std::collections::BTreeMap<String, String> = makefile
        .lines()
        .filter_map(|line| {
            let (target, package) = line.strip_prefix("build-")?.split_once(": PACKAGE := ")?;
            Some((target.to_owned(), package.trim().to_owned()))
        })
        .collect();
    let mut ids = Vec::new();
    for (id, function) in functions(&template) {
        assert_eq!(function["Metadata"]["BuildMethod"].as_str(), Some("makefile"), "{id}");
        assert!(built.contains_key(&id), "{id}: no build-{id} target in the Makefile");
        ids.push(id);
    }
    ids.sort();
    assert_eq!(built.keys().cloned().collect::<Vec<_>>(), ids, "Makefile targets = functions");
    let mut packages: Vec<String> = built.values().cloned().collect();
    packages.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(format!("{root}/functions"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    assert_eq!(packages, on_disk, "each package under functions/ is one function of the template");
}

/// Every function logs to a group of the stack's own, made before it and kept for a set time. (The
/// serverless rule WS1004 is off because it only recognises groups named after the function: the
/// template's Metadata says so.)
#[test]
fn every_function_logs_to_its_own_group_with_a_retention() {
    let template = template();
    let mut groups = std::collections::HashSet::new();
    for (id, function) in functions(&template) {
        let Value::Tagged(reference) = &function["Properties"]["LoggingConfig"]["LogGroup"] else {
            panic!("{id}: LoggingConfig.LogGroup is not a !Ref");
        };
        assert_eq!(reference.tag.to_string(), "!Ref", "{id}");
        let group_id = reference.value.as_str().expect("a logical id").to_owned();
        let group = &template["Resources"][group_id.as_str()];
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{id}: {group_id}");
        assert!(group["Properties"].get("RetentionInDays").is_some(), "{id}: {group_id} has no retention");
        assert!(groups.insert(group_id), "{id} shares its log group");
    }
}

/// Every SQS event source: its queue's visibility timeout outlasts the function's timeout six times (as
/// AWS advises, so a running batch never comes again), the queue parks what keeps failing in a
/// dead-letter queue, and every function that names a queue's URL gets it in the variable the local
/// stack exports (`OrgJobsQueue` → `ORG_JOBS_QUEUE_URL`).
#[test]
fn queue_mappings_outlast_their_functions_and_dead_letter_what_keeps_failing() {
    let template = template();
    let resources = &template["Resources"];
    let mut mapped = 0;
    for (id, function) in functions(&template) {
        for event in function["Properties"]["Events"].as_mapping().into_iter().flat_map(|e| e.values()) {
            if event["Type"].as_str() != Some("SQS") {
                continue;
            }
            mapped += 1;
            let Value::Tagged(queue) = &event["Properties"]["Queue"] else { panic!("{id}: Queue is !GetAtt X.Arn") };
            let queue_id = queue.value.as_str().unwrap().strip_suffix(".Arn").unwrap();
            let queue = &resources[queue_id]["Properties"];
            let timeout = function["Properties"]["Timeout"].as_u64().expect("a mapped function sets its timeout");
            let visibility = queue["VisibilityTimeout"].as_u64().unwrap_or(30);
            assert!(visibility >= 6 * timeout, "{queue_id}: visibility {visibility} s for {id}'s {timeout} s");
            assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64().is_some(), "{queue_id}: no dead-letter queue");
            assert_eq!(
                event["Properties"]["FunctionResponseTypes"][0].as_str(),
                Some("ReportBatchItemFailures"),
                "{id}: one failing message must not make its batch come again"
            );
        }
        let variables = function["Properties"]["Environment"]["Variables"].as_mapping();
        for (name, value) in variables.into_iter().flatten() {
            if let Value::Tagged(reference) = value
                && reference.tag == "Ref"
                && resources[reference.value.as_str().unwrap()]["Type"].as_str() == Some("AWS::SQS::Queue")
            {
                let expected = gateway::queue::url_variable(reference.value.as_str().unwrap());
                assert_eq!(name.as_str(), Some(expected.as_str()), "{id}");
            }
        }
    }
    assert!(mapped >= 3, "the job queue's and the workers' mappings");
}

/// The logical id a `!GetAtt X.Arn` or `!Ref X` names.
fn logical_id(value: &Value) -> Option<&str> {
    let Value::Tagged(tagged) = value else { return None };
    let text = tagged.value.as_str()?;
    match tagged.tag.to_string().as_str() {
        "!GetAtt" => text.strip_suffix(".Arn"),
        "!Ref" => Some(text),
        _ => None,
    }
}

/// Every logical id a resource list (or one resource) names.
fn logical_ids(value: &Value) -> Vec<&str> {
    match value {
        Value::Sequence(items) => items.iter().filter_map(logical_id).collect(),
        one => logical_id(one).into_iter().collect(),
    }
}

fn statements(function: &Value) -> Vec<&Value> {
    function["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| p["Statement"].as_sequence().into_iter().flatten())
        .collect()
}

fn actions(statement: &Value) -> Vec<&str> {
    match &statement["Action"] {
        Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
        one => one.as_str().into_iter().collect(),
    }
}

/// The queues that hold whole events (Lambda's on-failure records, parked platform events: names and
/// emails) are encrypted with the service's own key, rotated, and kept no longer than the outbox items
/// their records name, yet longer than any queue that dead-letters into them (SQS keeps a message's
/// first enqueue time). Exactly the functions that write or read them — or whose failures Lambda (an
/// on-failure destination) or SQS (a mapped queue's dead-letter move, during the function's receive)
/// writes there with the function's role — may use that key, and only for data keys and decryption;
/// EventBridge may use it only for this account.
#[test]
fn queues_of_whole_events_use_the_services_key_and_only_their_writers_and_readers_may() {
    let template = template();
    let resources = &template["Resources"];
    let key = "DeadLetterKey";
    let holding: Vec<&str> = resources
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| logical_id(&r["Properties"]["KmsMasterKeyId"]) == Some(key))
        .map(|(id, _)| id.as_str().unwrap())
        .collect();
    assert_eq!(holding, ["FailedEventsQueue", "ParkedEventsQueue"]);
    let keep = u64::try_from(store::OUTBOX_KEEP_DAYS * 86_400).unwrap();
    let retention_of = |queue: &str| resources[queue]["Properties"]["MessageRetentionPeriod"].as_u64().unwrap();
    assert_eq!(retention_of("ParkedEventsQueue"), retention_of("FailedEventsQueue"), "the same data, kept as long");
    for queue in &holding {
        let properties = &resources[*queue]["Properties"];
        assert!(properties.get("SqsManagedSseEnabled").is_none(), "{queue}: one key, the service's");
        let retention = properties["MessageRetentionPeriod"].as_u64().unwrap();
        assert!(retention <= keep, "{queue}: kept {retention} s, past the outbox items' {keep} s");
        for (source, r) in resources.as_mapping().unwrap() {
            if logical_id(&r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]) == Some(*queue) {
                let kept = r["Properties"]["MessageRetentionPeriod"].as_u64().unwrap_or(345_600);
                assert!(kept < retention, "{source:?} keeps {kept} s: its dead letters would expire at once");
            }
        }
    }
    let properties = &resources[key]["Properties"];
    assert_eq!(properties["EnableKeyRotation"].as_bool(), Some(true));
    let mut services = Vec::new();
    for statement in properties["KeyPolicy"]["Statement"].as_sequence().unwrap() {
        if let Some(service) = statement["Principal"].get("Service") {
            services.push(service.as_str().unwrap());
            assert_eq!(service.as_str(), Some("events.amazonaws.com"), "{statement:?}");
            assert_eq!(actions(statement), ["kms:GenerateDataKey", "kms:Decrypt"]);
            let account = &statement["Condition"]["StringEquals"]["aws:SourceAccount"];
            assert_eq!(logical_id(account), Some("AWS::AccountId"), "EventBridge only for this account");
        } else {
            let root = serde_yaml_ng::to_string(&statement["Principal"]["AWS"]).unwrap();
            assert!(root.contains("${AWS::AccountId}:root"), "only this account, through IAM: {statement:?}");
        }
    }
    // Without it, EventBridge's dead-letter deliveries to the queues would fail (and be lost).
    assert_eq!(services, ["events.amazonaws.com"]);

    let holds = |value: &Value| logical_id(value).is_some_and(|id| holding.contains(&id));
    let mut users = Vec::new();
    let mut webhook_key_grants = Vec::new();
    for (id, function) in functions(&template) {
        let properties = &function["Properties"];
        let mut needs = holds(&properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]);
        for event in properties["Events"].as_mapping().into_iter().flat_map(|e| e.values()) {
            let event = &event["Properties"];
            needs |= holds(&event["DestinationConfig"]["OnFailure"]["Destination"]);
            if let Some(queue) = logical_id(&event["Queue"]) {
                needs |= holds(&resources[queue]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]);
            }
        }
        let mut uses_key = false;
        for statement in statements(function) {
            let named = logical_ids(&statement["Resource"]);
            let kms = actions(statement).iter().any(|a| a.starts_with("kms:"));
            if named.contains(&key) {
                assert_eq!(
                    (actions(statement), named.clone()),
                    (vec!["kms:GenerateDataKey", "kms:Decrypt"], vec![key]),
                    "{id}"
                );
                uses_key = true;
            } else if named == ["WebhookSecretsKey"] {
                // Its own test: `webhook_secrets_are_sealed_by_the_endpoints_function_and_opened_only_by_the_delivery`.
                webhook_key_grants.push(id.clone());
            } else {
                assert!(!kms, "{id}: a KMS grant on another key: {statement:?}");
            }
            let on_queue = actions(statement).iter().any(|a| a.starts_with("sqs:"));
            needs |= on_queue && named.iter().any(|q| holding.contains(q));
        }
        assert_eq!(uses_key, needs, "{id}: may use the key iff it writes or reads a queue of whole events");
        if uses_key {
            users.push(id);
        }
    }
    assert_eq!(users.len(), 12, "{users:?}");
    assert_eq!(webhook_key_grants, ["WebhookEndpointsFunction", "WebhookDeliveryFunction"]);
}

/// The webhook signing secrets' key: the endpoints function may only seal (encrypt), the delivery
/// function may only open (decrypt), no other function may use it, and the key policy leaves its use to
/// IAM (no service principal). The dispatcher's rule routes exactly the catalog's published types. And
/// nothing the local stack allows (loopback receivers, its test CA, a shorter schedule) can be set
/// through the template: no function's environment names a `LOCAL_` variable, and the deployed
/// functions build their sender, URL rule and schedule without reading one (their `from_env`).
#[test]
fn webhook_secrets_are_sealed_by_the_endpoints_function_and_opened_only_by_the_delivery() {
    let template = template();
    let resources = &template["Resources"];
    let mut grants = Vec::new();
    for (id, function) in functions(&template) {
        for statement in statements(function) {
            if logical_ids(&statement["Resource"]).contains(&"WebhookSecretsKey") {
                grants.push(format!("{id}: {:?}", actions(statement)));
            }
        }
        let environment = serde_yaml_ng::to_string(&function["Properties"]["Environment"]).unwrap();
        assert!(!environment.contains("LOCAL_"), "{id}: a local-only setting in a deployed function's environment");
    }
    assert_eq!(grants, ["WebhookEndpointsFunction: [\"kms:Encrypt\"]", "WebhookDeliveryFunction: [\"kms:Decrypt\"]"]);
    let policy = &resources["WebhookSecretsKey"]["Properties"]["KeyPolicy"]["Statement"];
    for statement in policy.as_sequence().unwrap() {
        assert!(statement["Principal"].get("Service").is_none(), "no service may use it: {statement:?}");
    }
    assert_eq!(resources["WebhookSecretsKey"]["Properties"]["EnableKeyRotation"].as_bool(), Some(true));

    let rule = &resources["WebhookDispatcherFunction"]["Properties"]["Events"]["Published"]["Properties"];
    assert_eq!(logical_id(&rule["EventBusName"]), Some("AssignmentsEventBus"));
    let routed: Vec<&str> =
        rule["Pattern"]["detail-type"].as_sequence().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let published: Vec<&str> =
        domain::event::public_types().iter().copied().filter(|t| *t != domain::event::WEBHOOK_TEST).collect();
    assert_eq!(routed, published, "the dispatcher's rule routes the catalog's published types");
    for source in ["webhook-endpoints", "webhook-delivery"] {
        let code = std::fs::read_to_string(format!("{}/../functions/{source}/src/lib.rs", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
        assert!(!code.contains("std::env::var"), "{source} reads no setting of its own beyond the shared ones");
    }
}

/// The platform's detail types the consumers' rules route are exactly those the parser reads
/// (`events::platform::DETAIL_TYPES`), source by source: a type the parser knows but no rule routes
/// (or one a rule routes that every consumer would refuse as poison) fails here, not in production.
#[test]
fn the_consumers_rules_route_exactly_the_platform_events_the_parser_reads() {
    use std::collections::{BTreeMap, BTreeSet};
    let template = template();
    let mut routed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let strings = |v: &Value| -> Vec<String> {
        v.as_sequence().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
    };
    for resource in template["Resources"].as_mapping().unwrap().values() {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for event in events.values().filter(|e| e["Type"].as_str() == Some("EventBridgeRule")) {
            let pattern = &event["Properties"]["Pattern"];
            for source in strings(&pattern["source"]).into_iter().filter(|s| s.starts_with("platform.")) {
                routed.entry(source).or_default().extend(strings(&pattern["detail-type"]));
            }
        }
    }
    let parsed: BTreeMap<String, BTreeSet<String>> = events::platform::DETAIL_TYPES
        .iter()
        .map(|(source, types)| ((*source).to_owned(), types.iter().map(|t| (*t).to_owned()).collect()))
        .collect();
    assert!(!parsed.is_empty());
    assert_eq!(routed, parsed);
}
