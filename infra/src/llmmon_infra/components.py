"""Pulumi components: the log bucket, the log fan-out topic, one MetricService per declaration,
the alarms, and the dashboard.

Why one module of this length: the components share the naming, tagging and policy helpers and
are read together when a resource changes; the policy documents themselves are in policies.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from llmmon_infra import policies
from llmmon_infra.config import StackConfig
from llmmon_shared.alarms import AlarmNames, AlarmSet, MetricAlarmDef
from llmmon_shared.capacity import ServicePlan
from llmmon_shared.spec import ServiceSpec


@dataclass(frozen=True)
class Account:
    id: str
    region: str
    partition: str = "aws"


def _json(value: Any) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(value)


class LogBucket(pulumi.ComponentResource):
    """The bucket Bedrock writes invocation logs to: encrypted, private, TLS only, expiring.
    With ``existing_bucket`` set, nothing is created: the bucket is adopted by name."""

    name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: StackConfig,
        account: Account,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmmon:storage:LogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if config.existing_bucket:
            self.name = pulumi.Output.from_input(config.existing_bucket)
            self.register_outputs({"name": self.name})
            return
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=f"{config.prefix}-logs-",
            force_destroy=False,
            opts=child,
        )
        self.name = bucket.bucket
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        kms = config.bucket_kms_key_arn
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": (
                        {"sse_algorithm": "aws:kms", "kms_master_key_id": kms}
                        if kms
                        else {"sse_algorithm": "AES256"}
                    ),
                    "bucket_key_enabled": bool(kms),
                }
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=bucket.bucket.apply(
                lambda b: json.dumps(
                    policies.bucket_policy(
                        b, config.log_prefix, account.id, account.region, account.partition
                    )
                )
            ),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-invocation-logs",
                    "status": "Enabled",
                    "filter": {
                        "prefix": f"{config.log_prefix.strip('/')}/"
                        if config.log_prefix.strip("/")
                        else ""
                    },
                    "expiration": {"days": config.log_expiration_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=child,
        )
        self.register_outputs({"name": self.name})


class LogFanout(pulumi.ComponentResource):
    """ObjectCreated events for log objects -> one encrypted SNS topic; the topic only accepts
    our bucket's events. Also owns the KMS key of the topics."""

    topic: aws.sns.Topic
    key: aws.kms.Key

    def __init__(
        self,
        name: str,
        config: StackConfig,
        bucket: pulumi.Output[str],
        account: Account,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmmon:events:LogFanout", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key = aws.kms.Key(
            f"{name}-key",
            description="llmmon SNS topics",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(policies.topic_key_policy(account.id, account.partition)),
            opts=child,
        )
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=f"{config.prefix}-invocation-logs",
            kms_master_key_id=self.key.arn,
            opts=child,
        )
        policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, bucket).apply(
                lambda args: json.dumps(
                    policies.topic_policy(args[0], args[1], account.id, account.partition)
                )
            ),
            opts=child,
        )
        if config.manage_bucket_notification:
            prefix = config.log_prefix.strip("/")
            aws.s3.BucketNotification(
                f"{name}-notification",
                bucket=bucket,
                topics=[
                    {
                        "topic_arn": self.topic.arn,
                        "events": ["s3:ObjectCreated:*"],
                        "filter_prefix": f"{prefix}/AWSLogs/" if prefix else "AWSLogs/",
                        "filter_suffix": ".json.gz",
                    }
                ],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
            )
        self.register_outputs({"topic_arn": self.topic.arn})


class MetricService(pulumi.ComponentResource):
    """One metric service from its declaration: queue + DLQ, subscription, role, log group,
    function, and the SQS event source mapping with ReportBatchItemFailures."""

    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue
    function: aws.lambda_.Function

    def __init__(
        self,
        name: str,
        spec: ServiceSpec,
        config: StackConfig,
        topic: aws.sns.Topic,
        bucket: pulumi.Output[str],
        account: Account,
        names: AlarmNames,
        idempotency: aws.dynamodb.Table,
        opts: pulumi.ResourceOptions | None = None,
        artefacts: aws.s3.Bucket | None = None,
        size: ServicePlan | None = None,
    ) -> None:
        super().__init__("llmmon:service:MetricService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = config.service(spec.name)
        # Memory, timeout, batch size and maximum concurrency: sized for the stack's declared
        # volume (llmmon_shared.capacity), the stack's own settings kept.
        size = size or config.capacity({spec.name: spec}).services[0]
        timeout = size.timeout_s
        memory = size.memory_mb
        window = int(settings.get("batchingWindowS", spec.batching_window_s))
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=names.dlq(spec.name),
            message_retention_seconds=14 * 24 * 3600,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=names.queue(spec.name),
            # Lambda's guidance for SQS sources: six times the function timeout, plus the
            # batching window the messages may wait in before the invocation starts.
            visibility_timeout_seconds=6 * timeout + window,
            message_retention_seconds=4 * 24 * 3600,
            sqs_managed_sse_enabled=True,
            redrive_policy=self.dlq.arn.apply(
                lambda arn: json.dumps(
                    {
                        "deadLetterTargetArn": arn,
                        "maxReceiveCount": int(
                            settings.get("maxReceiveCount", config.max_receive_count)
                        ),
                    }
                )
            ),
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.dlq.url,
            policy=self.dlq.arn.apply(lambda arn: json.dumps(policies.dlq_policy(arn))),
            opts=child,
        )
        queue_policy = aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, topic.arn).apply(
                lambda args: json.dumps(policies.queue_policy(args[0], args[1]))
            ),
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{name}-subscription",
            topic=topic.arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            raw_message_delivery=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[queue_policy]),
        )
        function_name = names.function(spec.name)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=config.log_retention_days,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role", assume_role_policy=json.dumps(policies.assume_lambda()), opts=child
        )
        aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=pulumi.Output.all(self.queue.arn, bucket, log_group.arn, idempotency.arn).apply(
                lambda args: json.dumps(
                    policies.service_role_policy(
                        queue_arn=args[0],
                        bucket=args[1],
                        log_prefix=config.log_prefix,
                        log_group_arn=args[2],
                        permissions=spec.permissions,
                        region=account.region,
                        namespace=config.namespace,
                        put_metric_data=config.metrics_sink == "putmetricdata",
                        bucket_kms_key_arn=config.bucket_kms_key_arn,
                        idempotency_table_arn=args[3],
                        service=spec.name,
                        partition=account.partition,
                    )
                )
            ),
            opts=child,
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            role=role.arn,
            runtime=artefact_runtime(config, spec),
            handler=spec.handler,
            architectures=[spec.architecture],
            memory_size=memory,
            timeout=timeout,
            **function_code(config, spec, name, artefacts, child),
            environment={
                "variables": pulumi.Output.all(idempotency.name, bucket).apply(
                    lambda args: {
                        **service_environment(spec, config),
                        "LLMMON_IDEMPOTENCY_TABLE": args[0],
                        "LLMMON_LOG_BUCKET": args[1],
                    }
                )
            },
            logging_config={"log_format": "JSON", "log_group": log_group.name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        aws.lambda_.EventSourceMapping(
            f"{name}-events",
            event_source_arn=self.queue.arn,
            function_name=self.function.arn,
            batch_size=size.batch_size,
            maximum_batching_window_in_seconds=int(
                settings.get("batchingWindowS", spec.batching_window_s)
            ),
            function_response_types=["ReportBatchItemFailures"],
            scaling_config={"maximum_concurrency": size.max_concurrency},
            opts=child,
        )
        self.register_outputs(
            {
                "queue_url": self.queue.url,
                "dlq_url": self.dlq.url,
                "function_name": self.function.name,
            }
        )


class CanaryService(pulumi.ComponentResource):
    """The canary: a function EventBridge Scheduler invokes (``canarySchedule``), allowed to
    invoke the canary models and nothing else; the answers reach the metric services through
    invocation logging."""

    def __init__(
        self,
        name: str,
        spec: ServiceSpec,
        config: StackConfig,
        account: Any,
        names: AlarmNames,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmmon:service:CanaryService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        function_name = names.function(spec.name)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=config.log_retention_days,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role", assume_role_policy=json.dumps(policies.assume_lambda()), opts=child
        )
        aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: json.dumps(
                    policies.canary_role_policy(
                        models=list(config.canary_models),
                        log_group_arn=arn,
                        namespace=config.namespace,
                        put_metric_data=config.metrics_sink == "putmetricdata",
                        partition=account.partition,
                        region=account.region,
                        account=account.id,
                    )
                )
            ),
            opts=child,
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            role=role.arn,
            runtime=artefact_runtime(config, spec),
            handler=spec.handler,
            architectures=[spec.architecture],
            memory_size=spec.memory_mb,
            timeout=spec.timeout_s,
            code=pulumi.FileArchive(str(zip_path(config, spec))),
            environment={
                "variables": {
                    "LLMMON_SERVICE": spec.name,
                    "LLMMON_NAMESPACE": config.namespace,
                    "LLMMON_SINK": config.metrics_sink,
                    "LLMMON_CANARY_MODELS": ",".join(config.canary_models),
                    "LLMMON_CANARY_MAX_TOKENS": str(config.canary_max_tokens),
                    "POWERTOOLS_SERVICE_NAME": spec.name,
                    "HOME": "/tmp",
                    **{
                        str(k): str(v)
                        for k, v in config.service(spec.name).get("environment", {}).items()
                    },
                }
            },
            logging_config={"log_format": "JSON", "log_group": log_group.name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        scheduler_role = aws.iam.Role(
            f"{name}-scheduler-role",
            assume_role_policy=json.dumps(policies.assume_scheduler(account.id)),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-scheduler-policy",
            role=scheduler_role.id,
            policy=self.function.arn.apply(
                lambda arn: json.dumps(policies.scheduler_role_policy(arn))
            ),
            opts=child,
        )
        self.schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            name=function_name,
            schedule_expression=config.canary_schedule,
            flexible_time_window={"mode": "OFF"},
            target={
                "arn": self.function.arn,
                "role_arn": scheduler_role.arn,
                "input": json.dumps({"source": "llmmon-canary-schedule"}),
                "retry_policy": {"maximum_retry_attempts": 0},
            },
            opts=child,
        )
        self.register_outputs({"function_name": self.function.name})


DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
"""Lambda's limit for a zip uploaded with the function (CreateFunction's ZipFile); a larger one
must come from S3 (the unzipped limit, 250 MB, is checked by ``llmmon build``)."""


def zip_path(config: StackConfig, spec: ServiceSpec) -> Path:
    return Path(config.artifact_dir) / f"{spec.name}.zip"


def needs_s3(config: StackConfig, spec: ServiceSpec) -> bool:
    """Whether the service's built zip is over the direct-upload limit."""
    path = zip_path(config, spec)
    return path.exists() and path.stat().st_size > DIRECT_UPLOAD_LIMIT


def function_code(
    config: StackConfig,
    spec: ServiceSpec,
    name: str,
    artefacts: aws.s3.Bucket | None,
    opts: pulumi.ResourceOptions,
) -> dict[str, Any]:
    """The function's code: the zip itself, or, over 50 MB, an object in the artefact bucket
    (keyed by the zip's hash, so a new build is a new object and the function updates)."""
    path = zip_path(config, spec)
    if artefacts is None or not needs_s3(config, spec):
        return {"code": pulumi.FileArchive(str(path))}
    import hashlib

    with path.open("rb") as zipped:
        digest = hashlib.file_digest(zipped, "sha256").hexdigest()[:16]
    code = aws.s3.BucketObject(
        f"{name}-code",
        bucket=artefacts.id,
        key=f"{spec.name}/{digest}.zip",
        source=pulumi.FileAsset(str(path)),
        opts=opts,
    )
    return {"s3_bucket": artefacts.id, "s3_key": code.key}


def artefact_runtime(config: StackConfig, spec: ServiceSpec) -> str:
    """The runtime the artefact was built for (its manifest from ``llmmon build``)."""
    manifest = Path(config.artifact_dir) / f"{spec.name}.json"
    if manifest.exists():
        return str(json.loads(manifest.read_text())["runtime"])
    return "python3.11"


def detail_metrics(spec: ServiceSpec, config: StackConfig) -> bool:
    """The service's detail scores are on (``detailMetrics: true`` under ``services``)."""
    value = config.service(spec.name).get("detailMetrics", False)
    if not isinstance(value, bool):
        raise ValueError(f"services.{spec.name}.detailMetrics must be true or false")
    return value


def service_environment(spec: ServiceSpec, config: StackConfig) -> dict[str, str]:
    """The function's environment: the stack's shared settings, the service's declaration,
    then the stack's per-service overrides."""
    env = {
        "LLMMON_SERVICE": spec.name,
        "LLMMON_NAMESPACE": config.namespace,
        "LLMMON_SINK": config.metrics_sink,
        "LLMMON_SAMPLE_RATE": str(config.sample_rate),
        "LLMMON_MAX_CHARS": str(config.max_chars),
        "LLMMON_METADATA_DIMENSIONS": json.dumps(list(config.metadata_dimensions)),
        "LLMMON_EMBEDDING_BACKEND": config.embedding_backend,
        "LLMMON_COMPREHEND_BACKEND": config.comprehend_backend,
        "LLMMON_TITAN_DIMENSIONS": str(config.titan_dimensions),
        "LLMMON_LOG_PREFIX": config.log_prefix.strip("/"),
        "POWERTOOLS_SERVICE_NAME": spec.name,
        "HOME": "/tmp",
    }
    env.update(spec.environment)
    env["LLMMON_EMBEDDING_BACKEND"] = config.embedding_backend
    env["LLMMON_COMPREHEND_BACKEND"] = config.comprehend_backend
    if detail_metrics(spec, config):
        env["LLMMON_DETAIL_METRICS"] = "true"
    env.update(
        {str(k): str(v) for k, v in config.service(spec.name).get("environment", {}).items()}
    )
    from llmmon_shared.settings import split_list

    dropped = set(split_list(env.get("LLMMON_DROP_METRICS", "")))
    alarmed = sorted(dropped & {a.metric for a in spec.alarms})
    if alarmed:
        raise ValueError(
            f"services.{spec.name}.environment.LLMMON_DROP_METRICS turns off "
            f"{', '.join(alarmed)}, which an alarm of {spec.name} reads: keep it, or disable "
            "that alarm"
        )
    return env


def _metric_alarm(
    definition: MetricAlarmDef, opts: pulumi.ResourceOptions, actions: Sequence[pulumi.Input[str]]
) -> aws.cloudwatch.MetricAlarm:
    common: dict[str, Any] = {
        "name": definition.name,
        "alarm_description": definition.description,
        "comparison_operator": definition.comparison,
        "evaluation_periods": definition.evaluation_periods,
        "datapoints_to_alarm": definition.datapoints_to_alarm,
        "treat_missing_data": definition.treat_missing_data,
        "alarm_actions": list(actions),
        "ok_actions": list(actions),
        "opts": opts,
    }
    if definition.anomaly_band is None and definition.min_samples is None and not definition.less:
        return aws.cloudwatch.MetricAlarm(
            definition.name,
            namespace=definition.namespace,
            metric_name=definition.metric,
            dimensions=dict(definition.dimensions),
            statistic=definition.statistic,
            period=definition.period_s,
            threshold=definition.threshold,
            **common,
        )

    def metric(stat: str) -> dict[str, Any]:
        return {
            "namespace": definition.namespace,
            "metric_name": definition.metric,
            "dimensions": dict(definition.dimensions),
            "period": definition.period_s,
            "stat": stat,
        }

    judged = "m"
    plain = definition.min_samples is None and definition.less is None
    queries: list[Any] = [
        {
            "id": "m",
            "return_data": plain,
            "metric": metric(definition.statistic),
        }
    ]
    if definition.less is not None:
        # Sum of the series minus another's Sum over the same period (missing counts 0).
        namespace, name, dims = definition.less
        judged = "net"
        queries += [
            {
                "id": "l",
                "return_data": False,
                "metric": {
                    "namespace": namespace,
                    "metric_name": name,
                    "dimensions": dict(dims),
                    "period": definition.period_s,
                    "stat": "Sum",
                },
            },
            {
                "id": judged,
                "label": f"{definition.metric} less {name}",
                "return_data": True,
                "expression": "m - FILL(l, 0)",
            },
        ]
    if definition.min_samples is not None:
        # Judge only periods with enough values: the statistic where SampleCount >= N, no
        # datapoint otherwise (treat_missing_data decides), so thin traffic cannot fire a ratio.
        judged = "judged"
        queries += [
            {"id": "n", "return_data": False, "metric": metric("SampleCount")},
            {
                "id": judged,
                "label": f"{definition.metric} over periods with >= {definition.min_samples}",
                "return_data": True,
                "expression": f"IF(n >= {definition.min_samples}, m)",
            },
        ]
    if definition.anomaly_band is None:
        return aws.cloudwatch.MetricAlarm(
            definition.name, threshold=definition.threshold, metric_queries=queries, **common
        )
    # An anomaly-detection alarm on the (gated) series: CloudWatch learns the band of that
    # expression, so thin periods neither fire it nor shape its baseline.
    queries.append(
        {
            "id": "band",
            "label": "expected band",
            "return_data": True,
            "expression": f"ANOMALY_DETECTION_BAND({judged}, {definition.anomaly_band:g})",
        }
    )
    return aws.cloudwatch.MetricAlarm(
        definition.name, threshold_metric_id="band", metric_queries=queries, **common
    )


def idempotency_table(name: str, names: AlarmNames) -> aws.dynamodb.Table:
    """One table for the stack; each service's records are keyed ``<service>#<hash>`` and its
    role may touch only those (``dynamodb:LeadingKeys``). Records expire by TTL."""
    return aws.dynamodb.Table(
        name,
        name=names.idempotency_table(),
        billing_mode="PAY_PER_REQUEST",
        hash_key="id",
        attributes=[{"name": "id", "type": "S"}],
        ttl={"attribute_name": "expiration", "enabled": True},
        server_side_encryption={"enabled": True},
    )


class Alarms(pulumi.ComponentResource):
    """Metric alarms (quality per model, health per service) and the composite alarms. Only
    the top composites notify the alarm topic: children and parts reach it through them, so
    the pipeline alarm can suppress the quality alarm's notifications."""

    def __init__(
        self,
        name: str,
        alarm_set: AlarmSet,
        topic_arn: pulumi.Output[str],
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmmon:alarms:Alarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))
        created: dict[str, pulumi.Resource] = {}
        for definition in alarm_set.metric_alarms:
            created[definition.name] = _metric_alarm(definition, child, [])
        notifying = {c.name for c in alarm_set.notifying}
        for composite in alarm_set.composites:
            actions = [topic_arn] if composite.name in notifying else []
            suppressor = None
            if composite.suppressor:
                suppressor = aws.cloudwatch.CompositeAlarmActionsSuppressorArgs(
                    alarm=composite.suppressor,
                    wait_period=composite.suppressor_wait_s,
                    extension_period=composite.suppressor_extension_s,
                )
            created[composite.name] = aws.cloudwatch.CompositeAlarm(
                composite.name,
                alarm_name=composite.name,
                alarm_rule=composite.rule,
                alarm_description=composite.description,
                alarm_actions=actions,
                ok_actions=actions,
                actions_suppressor=suppressor,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(created.values())),
            )
        self.register_outputs({"alarms": list(created)})


BEDROCK_METRICS = (
    ("Invocations", "Sum"),
    ("InvocationLatency", "Average"),
    ("InvocationThrottles", "Sum"),
    ("InvocationClientErrors", "Sum"),
    ("InputTokenCount", "Sum"),
    ("OutputTokenCount", "Sum"),
)
"""Bedrock's own per-model runtime metrics, shown beside llmmon's."""


def _section(title: str, y: int, graphs: Sequence[tuple[str, str, str]], region: str) -> list[Any]:
    """A heading and, three to a row, one graph per ``(namespace, metric, statistic)`` with every
    model (a SEARCH over ModelId)."""
    widgets: list[dict[str, Any]] = [
        {
            "type": "text",
            "x": 0,
            "y": y,
            "width": 24,
            "height": 1,
            "properties": {"markdown": title},
        }
    ]
    for index, (namespace, metric, statistic) in enumerate(graphs):
        query = f"SEARCH('{{{namespace},ModelId}} MetricName=\"{metric}\"', '{statistic}', 300)"
        suffix = "" if namespace != "AWS/Bedrock" else ", AWS/Bedrock"
        widgets.append(
            {
                "type": "metric",
                "x": (index % 3) * 8,
                "y": y + 1 + (index // 3) * 6,
                "width": 8,
                "height": 6,
                "properties": {
                    "title": f"{metric} ({statistic}{suffix})",
                    "region": region,
                    "view": "timeSeries",
                    "stat": statistic,
                    "period": 300,
                    "metrics": [[{"expression": query, "id": "e1"}]],
                },
            }
        )
    return widgets


def dashboard_body(
    services: Mapping[str, ServiceSpec], config: StackConfig, region: str, alarm_arns: Sequence[str]
) -> dict[str, Any]:
    """One graph per metric with every model, an alarm panel, and Bedrock's own metrics."""
    widgets: list[dict[str, Any]] = []
    y = 0
    if alarm_arns:
        widgets.append(
            {
                "type": "alarm",
                "x": 0,
                "y": y,
                "width": 24,
                "height": 6,
                "properties": {"title": "Alarms", "alarms": list(alarm_arns)},
            }
        )
        y += 6
    sections = [
        (
            f"## {spec.name}: {spec.description}",
            [
                (config.namespace, m.name, m.statistic)
                for m in spec.emitted(detail_metrics(spec, config))
            ],
        )
        for spec in services.values()
    ]
    sections.append(
        (
            "## AWS/Bedrock: what Bedrock itself publishes (free)",
            [("AWS/Bedrock", metric, statistic) for metric, statistic in BEDROCK_METRICS],
        )
    )
    for title, graphs in sections:
        widgets += _section(title, y, graphs, region)
        y += 1 + ((len(graphs) + 2) // 3) * 6
    return {"widgets": widgets}


def artefact_bucket(
    config: StackConfig, services: Mapping[str, ServiceSpec]
) -> aws.s3.Bucket | None:
    """A private bucket for the zips over Lambda's direct-upload limit (local-model builds are
    72 to 100 MB zipped), or None when every zip can go with its function."""
    if not any(needs_s3(config, spec) for spec in services.values()):
        return None
    bucket = aws.s3.Bucket(
        "artefacts", bucket_prefix=f"{config.prefix}-artefacts-"[:37], force_destroy=True
    )
    aws.s3.BucketPublicAccessBlock(
        "artefacts-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    return bucket
