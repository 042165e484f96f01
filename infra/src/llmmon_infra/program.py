"""The whole stack, from a StackConfig and the service declarations (wiring only)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from llmmon_infra import policies
from llmmon_infra.components import (
    Account,
    Alarms,
    CanaryService,
    LogBucket,
    LogFanout,
    MetricService,
    artefact_bucket,
    dashboard_body,
    idempotency_table,
)
from llmmon_infra.config import StackConfig
from llmmon_shared.alarms import AlarmNames, build_alarms
from llmmon_shared.spec import ServiceSpec, discover


def current_account() -> Account:
    identity = aws.get_caller_identity()
    region = aws.get_region()
    partition = aws.get_partition()
    return Account(identity.account_id, region.region, partition.partition)


def enabled_services(
    config: StackConfig, services: Mapping[str, ServiceSpec]
) -> dict[str, ServiceSpec]:
    return {
        name: spec
        for name, spec in services.items()
        if config.service(name).get("enabled", True) is not False
    }


def deploy(
    config: StackConfig, services: Mapping[str, ServiceSpec], account: Account | None = None
) -> dict[str, Any]:
    config.validate()
    account = account or current_account()
    services = enabled_services(config, services)
    names = AlarmNames(config.prefix, account.region)

    bucket = LogBucket("logs", config, account)
    if config.manage_invocation_logging:
        prefix = config.log_prefix.strip("/")
        aws.bedrockmodel.InvocationLoggingConfiguration(
            "invocation-logging",
            logging_config={
                "s3_config": {"bucket_name": bucket.name, "key_prefix": prefix},
                "text_data_delivery_enabled": True,
                "embedding_data_delivery_enabled": False,
                "image_data_delivery_enabled": False,
                "video_data_delivery_enabled": False,
            },
            opts=pulumi.ResourceOptions(depends_on=[bucket]),
        )
    fanout = LogFanout("log-events", config, bucket.name, account)

    alarm_topic = aws.sns.Topic(
        "alarm-topic", name=f"{config.prefix}-alarms", kms_master_key_id=fanout.key.arn
    )
    aws.sns.TopicPolicy(
        "alarm-topic-policy",
        arn=alarm_topic.arn,
        policy=alarm_topic.arn.apply(
            lambda arn: json.dumps(policies.alarm_topic_policy(arn, account.id))
        ),
    )
    for index, email in enumerate(config.alarm_emails):
        aws.sns.TopicSubscription(
            f"alarm-email-{index}", topic=alarm_topic.arn, protocol="email", endpoint=email
        )

    table = idempotency_table("idempotency", names)
    artefacts = artefact_bucket(config, services)
    sizes = config.capacity(services)
    for warning in sizes.warnings():
        pulumi.log.warn(warning)  # shown by `pulumi preview`, before anything is created
    components = {
        name: MetricService(
            name,
            spec,
            config,
            fanout.topic,
            bucket.name,
            account,
            names,
            table,
            artefacts=artefacts,
            size=size,
        )
        for (name, spec), size in zip(services.items(), sizes.services, strict=True)
    }
    if config.canary_models:
        CanaryService("canary", discover("llmmon.scheduled")["canary"], config, account, names)
    alarm_set = build_alarms(
        services,
        config.models,
        config.namespace,
        names,
        overrides={name: config.service(name).get("alarms", {}) for name in services},
        oldest_message_s=config.oldest_message_age_s,
        anomaly_band=config.anomaly_band if config.anomaly_detection else None,
        min_samples=config.alarm_min_samples,
    )
    for warning in quota_warnings(config, services, alarm_set):
        pulumi.log.warn(warning)  # shown by `pulumi preview`, before anything is created
    Alarms("alarms", alarm_set, alarm_topic.arn, depends_on=list(components.values()))
    alarm_arns = [
        f"arn:{account.partition}:cloudwatch:{account.region}:{account.id}:alarm:{name}"
        for name in [c.name for c in alarm_set.notifying]
        + [a.name for a in alarm_set.metric_alarms]
    ][:100]
    aws.cloudwatch.Dashboard(
        "dashboard",
        dashboard_name=config.prefix,
        dashboard_body=json.dumps(dashboard_body(services, config, account.region, alarm_arns)),
    )

    outputs = {
        "bucket": bucket.name,
        "log_topic_arn": fanout.topic.arn,
        "alarm_topic_arn": alarm_topic.arn,
        "queues": {name: c.queue.url for name, c in components.items()},
        "dead_letter_queues": {name: c.dlq.url for name, c in components.items()},
        "functions": {name: c.function.name for name, c in components.items()},
        "idempotency_table": table.name,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def quota_warnings(
    config: StackConfig, services: Mapping[str, ServiceSpec], alarm_set: Any
) -> list[str]:
    """The per-account default quotas this stack would pass, and which to raise (the same
    limits ``llmmon_infra.validate`` checks on the declared resources)."""
    from llmmon_infra.validate import ACCOUNT_CONCURRENCY, ANOMALY_MODELS_MAX

    found = []
    anomaly = sum(1 for a in alarm_set.metric_alarms if a.anomaly_band is not None)
    if anomaly > ANOMALY_MODELS_MAX:
        found.append(
            f"{anomaly} anomaly detection alarms, over CloudWatch's default of "
            f"{ANOMALY_MODELS_MAX} anomaly detection models per Region: raise that quota "
            "(Service Quotas, CloudWatch) or set anomalyDetection: false"
        )
    concurrency = config.capacity(services).concurrency
    if concurrency > ACCOUNT_CONCURRENCY:
        found.append(
            f"the services' maxConcurrency adds up to {concurrency}, over Lambda's default of "
            f"{ACCOUNT_CONCURRENCY} concurrent executions: raise that quota (Service Quotas, "
            "Lambda) or lower maxConcurrency"
        )
    return found
