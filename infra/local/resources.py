#!/usr/bin/env python3
"""Create the local stack's resources (table, buckets, event bus) from template.yaml itself,
so local and deployed resources cannot drift.

Usage: resources.py create --stack NAME   (endpoints and region from the AWS_* environment)
Prints shell `export` lines for the names it created.
"""
import argparse
import json
import os
import re
import sys

import boto3
from cfnlint.decode import cfn_yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def only(resources, type_name):
    found = [(k, v) for k, v in resources.items() if v["Type"] == type_name]
    if len(found) != 1:
        sys.exit(f"template.yaml: expected exactly one {type_name}, found {len(found)}")
    return found[0]


def sub(value, stack):
    """Resolve the only intrinsic the local resources use: Fn::Sub with ${AWS::StackName}."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"].replace("${AWS::StackName}", stack)
    return value


def client(service):
    return boto3.client(service, endpoint_url=os.environ[f"AWS_ENDPOINT_URL_{service.upper()}"])


def create(stack):
    # Round-trip through JSON: cfn-lint decodes into its own node classes, boto3 wants plain data.
    template = json.loads(json.dumps(cfn_yaml.load(os.path.join(ROOT, "template.yaml"))))
    resources = template["Resources"]

    _, table = only(resources, "AWS::DynamoDB::Table")
    props = table["Properties"]
    table_name = f"{stack}-assignments"
    ddb = client("dynamodb")
    if table_name not in ddb.list_tables()["TableNames"]:
        ddb.create_table(
            TableName=table_name,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
            BillingMode=props["BillingMode"],
            # The outbox publisher reads the stream (the gateway, locally): CloudFormation's spelling
            # has no StreamEnabled.
            **({"StreamSpecification": {"StreamEnabled": True, **props["StreamSpecification"]}}
               if "StreamSpecification" in props else {}),
        )
        ddb.get_waiter("table_exists").wait(TableName=table_name)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)

    buckets = {k for k, v in resources.items() if v["Type"] == "AWS::S3::Bucket"}
    if buckets != {"ExportBucket", "SarifUploadBucket"}:
        sys.exit(f"template.yaml: expected the buckets ExportBucket and SarifUploadBucket, found {sorted(buckets)}")
    s3 = client("s3")
    export_bucket = create_bucket(s3, f"{stack}-exports", resources["ExportBucket"]["Properties"])
    sarif_bucket = create_bucket(s3, f"{stack}-sarif-uploads", resources["SarifUploadBucket"]["Properties"])

    _, bus = only(resources, "AWS::Events::EventBus")
    bus_name = sub(bus["Properties"]["Name"], stack)
    events = client("events")
    if bus_name not in [b["Name"] for b in events.list_event_buses()["EventBuses"]]:
        events.create_event_bus(Name=bus_name)

    queue_urls = create_queues(stack, resources)

    # The webhook signing secrets' key (moto's KMS): sealed by the endpoints function, opened by the
    # delivery function, each bound to its org and endpoint as deployed.
    if resources.get("WebhookSecretsKey", {}).get("Type") != "AWS::KMS::Key":
        sys.exit("template.yaml: expected the KMS key WebhookSecretsKey")
    kms = client("kms")
    alias = f"alias/{stack}-webhook-secrets"
    known = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == alias]
    if known:
        key_arn = kms.describe_key(KeyId=known[0]["TargetKeyId"])["KeyMetadata"]["Arn"]
    else:
        key_arn = kms.create_key(Description=resources["WebhookSecretsKey"]["Properties"]["Description"])["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_arn)

    print(f"export TABLE_NAME={table_name}")
    print(f"export EXPORT_BUCKET={export_bucket}")
    print(f"export SARIF_BUCKET={sarif_bucket}")
    print(f"export EVENT_BUS_NAME={bus_name}")
    print(f"export WEBHOOK_SECRETS_KEY_ARN={key_arn}")
    for variable, url in queue_urls.items():
        print(f"export {variable}={url}")


# The visibility timeout the local queues get instead of the template's (a failed message comes again in
# seconds, not minutes); the local gateway keeps a batch that is still running invisible.
LOCAL_VISIBILITY_SECONDS = os.environ.get("LOCAL_QUEUE_VISIBILITY_SECONDS", "5")


def url_variable(logical_id):
    """OrgJobsQueue -> ORG_JOBS_QUEUE_URL: the variable the template passes a queue's URL in (and the
    local gateway reads, gateway::queue::url_variable)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", logical_id).upper() + "_URL"


def create_queues(stack, resources):
    """Every queue of the template, named `<stack>-<logical id in kebab case without Queue>`, with its
    attributes (DelaySeconds, retention, RedrivePolicy to its dead-letter queue) but a short visibility
    timeout. Dead-letter queues first. Returns each queue's URL by its variable."""
    sqs = client("sqs")
    queues = {k: v.get("Properties", {}) for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    urls, arns = {}, {}
    for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]):
        props = queues[logical_id]
        name = f"{stack}-" + re.sub(r"(?<!^)([A-Z])", r"-\1", logical_id.removesuffix("Queue")).lower()
        attributes = {"VisibilityTimeout": LOCAL_VISIBILITY_SECONDS}
        for attribute in ["DelaySeconds", "MessageRetentionPeriod"]:
            if attribute in props:
                attributes[attribute] = str(props[attribute])
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            target = policy["deadLetterTargetArn"]["Fn::GetAtt"][0]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arns[target], "maxReceiveCount": int(policy["maxReceiveCount"])}
            )
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        urls[url_variable(logical_id)] = url
        arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return urls


def create_bucket(s3, bucket_name, bucket_props):
    """A bucket as the template describes it: encryption, public access, versioning, lifecycle and
    EventBridge notifications."""
    s3.create_bucket(Bucket=bucket_name)
    s3.put_bucket_encryption(
        Bucket=bucket_name, ServerSideEncryptionConfiguration={
            # CloudFormation and the S3 API spell this member differently.
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in bucket_props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
        }
    )
    s3.put_public_access_block(
        Bucket=bucket_name, PublicAccessBlockConfiguration=bucket_props["PublicAccessBlockConfiguration"]
    )
    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration=bucket_props["VersioningConfiguration"])
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket_name,
        LifecycleConfiguration={"Rules": [lifecycle_rule(r) for r in bucket_props["LifecycleConfiguration"]["Rules"]]},
    )
    if bucket_props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=bucket_name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    return bucket_name


def lifecycle_rule(rule):
    """A lifecycle rule as CloudFormation spells it, in the S3 API's spelling."""
    out = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if "ExpiredObjectDeleteMarker" in rule:
        out["Expiration"] = {"ExpiredObjectDeleteMarker": rule["ExpiredObjectDeleteMarker"]}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["create"])
    parser.add_argument("--stack", default="local")
    args = parser.parse_args()
    create(args.stack)
