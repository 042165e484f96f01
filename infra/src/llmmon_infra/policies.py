"""Pure builders of IAM, bucket, topic and queue policy documents (no Pulumi, no AWS)."""

from __future__ import annotations

from typing import Any

from llmmon_shared.admission import ADMISSION_KEY_PREFIX
from llmmon_shared.spec import Permission

Document = dict[str, Any]

# Actions that have no resource-level scope in IAM; they are allowed on "*" with a condition
# where one exists. Everything else must name its resources.
UNSCOPED_ACTIONS = frozenset(
    {
        "cloudwatch:PutMetricData",
        "comprehend:DetectSentiment",
        "comprehend:BatchDetectSentiment",
        "comprehend:DetectToxicContent",
    }
)


def put_metrics_statement(namespace: str) -> dict[str, Any]:
    """PutMetricData, only into the stack's namespace (the PutMetricData sink)."""
    return {
        "Sid": "PutMetricsInNamespace",
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}},
    }


def document(*statements: Document) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def bucket_policy(
    bucket: str, log_prefix: str, account: str, region: str, partition: str = "aws"
) -> Document:
    """TLS only, and Bedrock may write invocation logs under the prefix for this account."""
    arn = f"arn:{partition}:s3:::{bucket}"
    prefix = f"{log_prefix.strip('/')}/" if log_prefix.strip("/") else ""
    return document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "AmazonBedrockLogsWrite",
            "Effect": "Allow",
            "Principal": {"Service": "bedrock.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{arn}/{prefix}AWSLogs/{account}/BedrockModelInvocationLogs/*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:bedrock:{region}:{account}:*"},
            },
        },
    )


def deny_insecure_transport(action: str, resource: str) -> dict[str, Any]:
    """Every request without TLS is refused (topics and queues, as the bucket)."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resource,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def topic_policy(topic_arn: str, bucket: str, account: str, partition: str = "aws") -> Document:
    """TLS only; only our bucket, in our account, may publish object events to the log topic."""
    return document(
        deny_insecure_transport("SNS:Publish", topic_arn),
        {
            "Sid": "AllowLogBucketEvents",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::{bucket}"},
                "StringEquals": {"aws:SourceAccount": account},
            },
        },
    )


def alarm_topic_policy(topic_arn: str, account: str) -> Document:
    """TLS only; CloudWatch alarms of this account may publish."""
    return document(
        deny_insecure_transport("SNS:Publish", topic_arn),
        {
            "Sid": "AllowCloudWatchAlarms",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        },
    )


def dlq_policy(queue_arn: str) -> Document:
    """A dead-letter queue: TLS only (SQS's redrive needs no grant)."""
    return document(deny_insecure_transport("sqs:*", queue_arn))


def queue_policy(queue_arn: str, topic_arn: str) -> Document:
    """TLS only; the log topic may send to a service's queue (and, through its role's own
    policy, the service's function: its continuations)."""
    return document(
        deny_insecure_transport("sqs:*", queue_arn),
        {
            "Sid": "AllowLogTopic",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        },
    )


# In a key policy, "Resource": "*" means the key itself.
KEY_ADMIN_ACTIONS = [
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:UpdateKeyDescription",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:UpdateAlias",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:RevokeGrant",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey",
]


def topic_key_policy(account: str, partition: str = "aws") -> Document:
    """KMS key for the SNS topics: the account administers it; S3 (log events) and CloudWatch
    (alarms) may encrypt messages for the topics; SNS may decrypt to deliver to SQS."""
    root = f"arn:{partition}:iam::{account}:root"
    return document(
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": KEY_ADMIN_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "ServicesPublishToTopics",
            "Effect": "Allow",
            "Principal": {"Service": ["s3.amazonaws.com", "cloudwatch.amazonaws.com"]},
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        },
    )


def assume_lambda() -> Document:
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )


def service_role_policy(
    *,
    queue_arn: str,
    bucket: str,
    log_prefix: str,
    log_group_arn: str,
    permissions: frozenset[Permission],
    region: str,
    namespace: str,
    put_metric_data: bool,
    embedding_model: str = "amazon.titan-embed-text-v2:0",
    bucket_kms_key_arn: str | None = None,
    idempotency_table_arn: str | None = None,
    service: str = "",
    partition: str = "aws",
) -> Document:
    """Least privilege for one service: its own queue, the log objects, its log group, and only
    the AWS capabilities its declaration asks for."""
    prefix = f"{log_prefix.strip('/')}/" if log_prefix.strip("/") else ""
    statements: list[Document] = [
        {
            "Sid": "OwnQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
                # Continuations of objects stopped midway, and messages an invocation had no
                # time to start, go back on the service's own queue as new messages.
                "sqs:SendMessage",
                "sqs:GetQueueUrl",
            ],
            "Resource": queue_arn,
        },
        {
            "Sid": "ReadLogObjects",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}AWSLogs/*",
        },
        {
            "Sid": "OwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        },
    ]
    if put_metric_data:
        statements.append(put_metrics_statement(namespace))
    if Permission.COMPREHEND in permissions:
        statements.append(
            {
                "Sid": "Comprehend",
                "Effect": "Allow",
                "Action": [
                    "comprehend:DetectSentiment",
                    "comprehend:BatchDetectSentiment",
                    "comprehend:DetectToxicContent",
                ],
                "Resource": "*",
            }
        )
    if Permission.BEDROCK_EMBEDDINGS in permissions:
        statements.append(
            {
                "Sid": "EmbeddingModel",
                "Effect": "Allow",
                "Action": "bedrock:InvokeModel",
                "Resource": f"arn:{partition}:bedrock:{region}::foundation-model/{embedding_model}",
            }
        )
    if idempotency_table_arn:
        statements.append(
            {
                "Sid": "OwnIdempotencyRecords",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                "Resource": idempotency_table_arn,
                "Condition": {
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{service}#*"]}
                },
            },
        )
        # The admitted dimension values of each metadata key: one item per key, shared by every
        # service so that the cap is one for the deployment (llmmon_shared.admission).
        statements.append(
            {
                "Sid": "SharedDimensionAdmission",
                "Effect": "Allow",
                "Action": "dynamodb:UpdateItem",
                "Resource": idempotency_table_arn,
                "Condition": {
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [f"{ADMISSION_KEY_PREFIX}*"]
                    }
                },
            }
        )
    if bucket_kms_key_arn:
        statements.append(
            {
                "Sid": "DecryptLogObjects",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": bucket_kms_key_arn,
            }
        )
    return document(*statements)


_PROFILE_GEOGRAPHY = ("us.", "eu.", "apac.", "us-gov.", "global.")


def model_arns(model: str, partition: str, region: str, account: str) -> list[str]:
    """What ``bedrock:InvokeModel`` (Converse included) must allow for one canary model id: the
    foundation model; for a cross-region inference profile (``us.anthropic...``), the profile and
    its foundation model in the regions it routes to; an ARN as given."""
    if model.startswith("arn:"):
        return [model]
    if model.startswith(_PROFILE_GEOGRAPHY):
        base = model.split(".", 1)[1]
        return [
            f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model}",
            f"arn:{partition}:bedrock:*::foundation-model/{base}",
        ]
    return [f"arn:{partition}:bedrock:{region}::foundation-model/{model}"]


def canary_role_policy(
    *,
    models: list[str],
    log_group_arn: str,
    namespace: str,
    put_metric_data: bool,
    partition: str,
    region: str,
    account: str,
) -> Document:
    """The canary may invoke the configured models and nothing else, and write its own logs."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        },
        {
            "Sid": "CanaryModels",
            "Effect": "Allow",
            "Action": "bedrock:InvokeModel",
            "Resource": sorted(
                {arn for model in models for arn in model_arns(model, partition, region, account)}
            ),
        },
    ]
    if put_metric_data:
        statements.append(put_metrics_statement(namespace))
    return document(*statements)


def scheduler_role_policy(function_arn: str) -> Document:
    return document(
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arn}
    )


def assume_scheduler(account: str) -> Document:
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }
    )
