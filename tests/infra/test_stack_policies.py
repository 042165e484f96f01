"""The Pulumi program, read as policies (Pulumi mocks, offline)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmmon_infra.config import StackConfig
from llmmon_infra.policies import UNSCOPED_ACTIONS
from llmmon_shared.alarm_rules import referenced_alarms
from llmmon_shared.spec import discover
from tests.infra.conftest import ACCOUNT_ID, Stack, run_stack

MODELS = ("anthropic.claude-3-haiku-20240307-v1:0", "meta.llama3-8b-instruct-v1:0")
QUEUE = "aws:sqs/queue:Queue"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


@pytest.fixture(scope="module")
def config() -> StackConfig:
    return StackConfig(
        stack="test",
        models=MODELS,
        alarm_emails=("oncall@example.com",),
        metrics_sink="putmetricdata",
        anomaly_detection=True,
    )


@pytest.fixture(scope="module")
def stack(config: StackConfig, services: dict[str, Any]) -> Stack:
    return run_stack(config, services)


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:{name}"


def test_every_service_in_the_registry_got_its_resources(
    stack: Stack, services: dict[str, Any], config: StackConfig
) -> None:
    sizes = {s.service: s for s in config.capacity(services).services}
    queues = {q["name"] for q in stack.inputs(QUEUE)}
    functions = {f["name"]: f for f in stack.inputs(FUNCTION)}
    mappings = stack.inputs(MAPPING)
    subscriptions = [s for s in stack.inputs(SUBSCRIPTION) if s["protocol"] == "sqs"]
    for name, spec in services.items():
        assert f"llmmon-test-{name}" in queues
        assert f"llmmon-test-{name}-dlq" in queues
        function = functions[f"llmmon-test-{name}"]
        assert function["handler"] == spec.handler
        assert function["architectures"] == [spec.architecture]
        mapping = [m for m in mappings if m["eventSourceArn"] == queue_arn(f"llmmon-test-{name}")]
        assert len(mapping) == 1
        assert mapping[0]["functionResponseTypes"] == ["ReportBatchItemFailures"]
        # Sized for the stack's declared volume (llmmon_shared.capacity).
        assert mapping[0]["batchSize"] == sizes[name].batch_size
        assert mapping[0]["scalingConfig"]["maximumConcurrency"] == sizes[name].max_concurrency
        assert function["memorySize"] == sizes[name].memory_mb >= spec.memory_mb
        assert [
            s
            for s in subscriptions
            if s["endpoint"] == queue_arn(f"llmmon-test-{name}") and s["rawMessageDelivery"] is True
        ]
        alarms = [a for a in stack.inputs(ALARM) if a["name"].startswith(f"llmmon-test-{name}-")]
        assert len(alarms) >= 3 + len(spec.alarms) * len(MODELS)


def test_every_queue_has_a_dead_letter_queue_with_an_alarm(stack: Stack) -> None:
    queues = stack.inputs(QUEUE)
    names = {q["name"] for q in queues}
    dlq_alarms = {
        a["dimensions"]["QueueName"]
        for a in stack.inputs(ALARM)
        if a.get("metricName") == "ApproximateNumberOfMessagesVisible"
    }
    for queue in queues:
        if queue["name"].endswith("-dlq"):
            assert queue["name"] in dlq_alarms
            continue
        redrive = json.loads(queue["redrivePolicy"])
        assert redrive["deadLetterTargetArn"] == queue_arn(f"{queue['name']}-dlq")
        assert f"{queue['name']}-dlq" in names
        assert redrive["maxReceiveCount"] == 5


def test_visibility_timeout_is_at_least_six_times_the_function_timeout(stack: Stack) -> None:
    functions = {f["name"]: f for f in stack.inputs(FUNCTION)}
    for queue in stack.inputs(QUEUE):
        if not queue["name"].endswith("-dlq"):
            assert queue["visibilityTimeoutSeconds"] >= 6 * functions[queue["name"]]["timeout"]


def test_every_alarm_reaches_the_alarm_topic(stack: Stack) -> None:
    """Composites notify; every metric alarm is a child (directly or through a part) of a
    composite that notifies the alarm topic."""
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:llmmon-test-alarms"
    composites = {c["alarmName"]: c for c in stack.inputs(COMPOSITE)}
    notifying = {n for n, c in composites.items() if c.get("alarmActions") == [topic]}
    assert notifying == {
        "llmmon-test-monitoring-pipeline-unhealthy",
        "llmmon-test-model-quality-degraded",
    }

    def reaches(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name in notifying:
            return True
        parents = [
            p
            for p, c in composites.items()
            if name in referenced_alarms(c["alarmRule"]) and p not in seen
        ]
        return any(reaches(p, seen | {name}) for p in parents)

    for alarm in stack.inputs(ALARM):
        assert reaches(alarm["name"]), alarm["name"]
    emails = [s for s in stack.inputs(SUBSCRIPTION) if s["protocol"] == "email"]
    assert [e["endpoint"] for e in emails] == ["oncall@example.com"]


def test_composite_rules_reference_only_alarms_that_exist(stack: Stack) -> None:
    existing = {a["name"] for a in stack.inputs(ALARM)} | {
        c["alarmName"] for c in stack.inputs(COMPOSITE)
    }
    for composite in stack.inputs(COMPOSITE):
        assert referenced_alarms(composite["alarmRule"]) <= existing


def test_pipeline_alarm_suppresses_the_quality_alarm(stack: Stack) -> None:
    quality = [
        c for c in stack.inputs(COMPOSITE) if c["alarmName"] == "llmmon-test-model-quality-degraded"
    ][0]
    assert quality["actionsSuppressor"]["alarm"] == "llmmon-test-monitoring-pipeline-unhealthy"
    pipeline_rule = [
        c
        for c in stack.inputs(COMPOSITE)
        if c["alarmName"] == "llmmon-test-monitoring-pipeline-unhealthy"
    ][0]["alarmRule"]
    assert all("Refusal" not in name for name in referenced_alarms(pipeline_rule))


def test_anomaly_detection_alarms_when_enabled(stack: Stack) -> None:
    drift = [a for a in stack.inputs(ALARM) if "Drift" in a["name"]]
    # refusal ratio, negative sentiment and guardrail interventions, per model: every service
    # that declares an anomaly metric
    declared = [spec for spec in discover().values() if spec.anomaly_metric]
    assert len(declared) == 3
    assert len(drift) == len(declared) * len(MODELS)
    for alarm in drift:
        assert_band_over_gated_series(alarm)


def assert_band_over_gated_series(alarm: dict[str, Any]) -> None:
    """The band is learnt from, and compared with, the series of periods with enough samples."""
    assert alarm["thresholdMetricId"] == "band" and "threshold" not in alarm
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert queries["band"]["expression"] == "ANOMALY_DETECTION_BAND(judged, 2)"
    assert queries["judged"]["expression"] == "IF(n >= 20, m)"
    assert queries["band"]["returnData"] and queries["judged"]["returnData"]
    assert not queries["m"]["returnData"] and not queries["n"]["returnData"]


def test_canary_rise_alarms_on_every_stack(stack: Stack) -> None:
    """The canary's ratios get a band alarm (a rise over the model's own history) beside the
    ceiling, without the stack's opt-in anomaly detection."""
    alarms = {a["name"]: a for a in stack.inputs(ALARM)}
    for model in MODELS:
        for name in ("CanaryOverRefusal", "CanaryUnderRefusal"):
            rise = alarms[f"llmmon-test-refusal-{name}Rise-{model}"]
            assert rise["comparisonOperator"] == "GreaterThanUpperThreshold"
            assert rise["metricQueries"][0]["metric"]["metricName"] == name
            assert rise["metricQueries"][0]["metric"]["period"] == 3600
            assert_band_over_gated_series(rise)
            assert alarms[f"llmmon-test-refusal-{name}-{model}"]["threshold"] > 0


def test_ratio_alarms_judge_only_periods_with_enough_samples(stack: Stack) -> None:
    """Average alarms (ratios and mean scores) are metric math: the Average where the period's
    SampleCount reaches the floor, no datapoint otherwise; other statistics stay plain."""
    alarms = [a for a in stack.inputs(ALARM) if "thresholdMetricId" not in a]
    gated = [
        a for a in alarms if "metricQueries" in a and not a["name"].endswith("MessagesReceived")
    ]
    plain = [a for a in alarms if "metricQueries" not in a]
    assert any(a["name"].endswith("HighRefusalRatio-" + MODELS[0]) for a in gated)
    assert any(a["name"].endswith("HighUnreadableRecords") for a in gated)
    for alarm in gated:
        queries = {q["id"]: q for q in alarm["metricQueries"]}
        assert queries["m"]["metric"]["stat"] == "Average"
        assert queries["n"]["metric"]["stat"] == "SampleCount"
        assert queries["n"]["metric"]["metricName"] == queries["m"]["metric"]["metricName"]
        assert queries["judged"]["expression"] == "IF(n >= 20, m)"
        assert queries["judged"]["returnData"] and not queries["m"]["returnData"]
        assert "threshold" in alarm and "metricName" not in alarm
    assert all(a["statistic"] != "Average" for a in plain)


def test_no_iam_statement_allows_wildcard_actions_or_unscoped_resources(stack: Stack) -> None:
    """Wildcards are for denying only (the bucket's TLS rule denies s3:* without TLS)."""
    for typ, policy in stack.policies():
        for statement in policy["Statement"]:
            if statement["Effect"] == "Deny":
                continue
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            assert all(a != "*" and not a.endswith(":*") for a in actions), (typ, statement)
            if typ == "aws:kms/key:Key":
                continue  # in a key policy "*" is the key itself
            resources = statement.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else resources
            if "*" in resources:
                assert set(actions) <= UNSCOPED_ACTIONS, (typ, statement)


def role_policies(stack: Stack) -> dict[str, dict[str, Any]]:
    found = {}
    for resource in stack.of("aws:iam/rolePolicy:RolePolicy"):
        found[resource.name.removesuffix("-role-policy")] = json.loads(resource.inputs["policy"])
    return found


def test_each_role_reads_only_its_own_queue_and_the_log_prefix(stack: Stack) -> None:
    for service, policy in role_policies(stack).items():
        statements = {s["Sid"]: s for s in policy["Statement"]}
        assert statements["OwnQueue"]["Resource"] == queue_arn(f"llmmon-test-{service}")
        assert statements["ReadLogObjects"]["Resource"].endswith("/bedrock/AWSLogs/*")
        put = statements["PutMetricsInNamespace"]
        assert put["Condition"]["StringEquals"]["cloudwatch:namespace"] == "llmmon"
        sqs_resources = [
            s["Resource"]
            for s in policy["Statement"]
            if any(
                str(a).startswith("sqs:")
                for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            )
        ]
        assert sqs_resources == [queue_arn(f"llmmon-test-{service}")]


def test_capabilities_follow_the_declaration(stack: Stack) -> None:
    policies = role_policies(stack)
    sids = {service: {s["Sid"] for s in p["Statement"]} for service, p in policies.items()}
    assert "Comprehend" in sids["comprehend"]
    assert "Comprehend" not in sids["similarity"] | sids["refusal"]
    assert "EmbeddingModel" in sids["similarity"] & sids["refusal"]
    assert "EmbeddingModel" not in sids["comprehend"]
    embed = [s for s in policies["refusal"]["Statement"] if s["Sid"] == "EmbeddingModel"][0]
    assert embed["Resource"] == (
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
    )


def test_put_metric_data_is_granted_only_with_that_sink(services: dict[str, Any]) -> None:
    stack = run_stack(StackConfig(stack="emf", metrics_sink="emf"), services)
    for policy in role_policies(stack).values():
        assert all(s["Sid"] != "PutMetricsInNamespace" for s in policy["Statement"])


def test_bucket_is_private_encrypted_tls_only_and_bedrock_may_write(stack: Stack) -> None:
    (block,) = stack.inputs("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        block[k]
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    (sse,) = stack.inputs(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    (policy,) = [json.loads(p["policy"]) for p in stack.inputs("aws:s3/bucketPolicy:BucketPolicy")]
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"][0]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    bedrock = [s for s in policy["Statement"] if s.get("Sid") == "AmazonBedrockLogsWrite"][0]
    assert bedrock["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert bedrock["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    assert bedrock["Condition"]["ArnLike"]["aws:SourceArn"] == (
        f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:*"
    )
    assert f"/bedrock/AWSLogs/{ACCOUNT_ID}/BedrockModelInvocationLogs/*" in bedrock["Resource"]
    (lifecycle,) = stack.inputs("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert lifecycle["rules"][0]["expiration"]["days"] == 90


def test_kms_bucket_encryption_when_configured(services: dict[str, Any]) -> None:
    key = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/abc"
    stack = run_stack(StackConfig(stack="kms", bucket_kms_key_arn=key), services)
    (sse,) = stack.inputs(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    rule = sse["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key}
    for policy in role_policies(stack).values():
        assert {
            "Sid": "DecryptLogObjects",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key,
        } in policy["Statement"]


def test_topics_and_queues_are_encrypted_and_topic_accepts_only_our_bucket(stack: Stack) -> None:
    assert all(q["sqsManagedSseEnabled"] for q in stack.inputs(QUEUE))
    assert all(t.get("kmsMasterKeyId") for t in stack.inputs("aws:sns/topic:Topic"))
    bucket = stack.outputs["bucket"]
    (log_policy,) = [
        json.loads(p["policy"])
        for p in stack.inputs("aws:sns/topicPolicy:TopicPolicy")
        if "s3.amazonaws.com" in p["policy"]
    ]
    deny, statement = log_policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    (notification,) = stack.inputs("aws:s3/bucketNotification:BucketNotification")
    (topic,) = notification["topics"]
    assert topic["events"] == ["s3:ObjectCreated:*"]
    assert topic["filterPrefix"] == "bedrock/AWSLogs/" and topic["filterSuffix"] == ".json.gz"
    queue_policies = [
        json.loads(q["policy"]) for q in stack.inputs("aws:sqs/queuePolicy:QueuePolicy")
    ]
    assert len(queue_policies) == len(stack.inputs(QUEUE))  # every queue, DLQs too
    for policy in queue_policies:
        deny, *allow = policy["Statement"]
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in allow:
            assert s["Principal"] == {"Service": "sns.amazonaws.com"}
            assert s["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(
                ":llmmon-test-invocation-logs"
            )
    for topic_policy in stack.inputs("aws:sns/topicPolicy:TopicPolicy"):
        statements = json.loads(topic_policy["policy"])["Statement"]
        assert statements[0]["Sid"] == "DenyInsecureTransport"


def test_invocation_logging__text_on_and_optional(stack: Stack, services: dict[str, Any]) -> None:
    (logging_config,) = stack.inputs(
        "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"
    )
    config = logging_config["loggingConfig"]
    assert config["textDataDeliveryEnabled"] is True
    assert config["s3Config"]["keyPrefix"] == "bedrock"
    without = run_stack(StackConfig(stack="x", manage_invocation_logging=False), services)
    assert not without.of(
        "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"
    )


def test_existing_bucket_is_adopted_not_created(services: dict[str, Any]) -> None:
    stack = run_stack(
        StackConfig(
            stack="adopt",
            existing_bucket="team-logs",
            log_prefix="llm",
            manage_bucket_notification=False,
        ),
        services,
    )
    assert not stack.of("aws:s3/bucket:Bucket")
    assert not stack.of("aws:s3/bucketPolicy:BucketPolicy")
    assert not stack.of("aws:s3/bucketNotification:BucketNotification")  # the owners' to add
    for policy in role_policies(stack).values():
        read = [s for s in policy["Statement"] if s["Sid"] == "ReadLogObjects"][0]
        assert read["Resource"] == "arn:aws:s3:::team-logs/llm/AWSLogs/*"


def test_removing_a_service_removes_its_resources(services: dict[str, Any]) -> None:
    remaining = {k: v for k, v in services.items() if k != "comprehend"}
    stack = run_stack(StackConfig(stack="test", models=MODELS), remaining)
    assert all("comprehend" not in r.name for r in stack.resources)
    assert all("comprehend" not in (r.inputs.get("name") or "") for r in stack.resources)
    for composite in stack.inputs(COMPOSITE):
        assert "comprehend" not in composite["alarmRule"]
    disabled = run_stack(
        StackConfig(stack="test", models=MODELS, services={"comprehend": {"enabled": False}}),
        services,
    )
    assert {r.name for r in disabled.resources} == {r.name for r in stack.resources}


def test_sizes_follow_the_declared_volume_and_preview_warns_past_it(
    services: dict[str, Any],
) -> None:
    small = run_stack(StackConfig(stack="s", models=MODELS[:1]), services)
    big = run_stack(
        StackConfig(
            stack="b",
            models=MODELS[:1],
            expected_invocations_per_day=50_000_000,
            embedding_backend="local",
            comprehend_backend="local",
        ),
        services,
    )

    def concurrency(stack: Stack, service: str) -> int:
        (mapping,) = [
            m for m in stack.inputs(MAPPING) if m["eventSourceArn"].endswith(f"-{service}")
        ]
        return int(mapping["scalingConfig"]["maximumConcurrency"])

    assert concurrency(big, "similarity") > 10 * concurrency(small, "similarity")
    # CPU-bound local scoring gets a full vCPU (1,769 MB): the same cost, 3.5x the speed of 512
    comprehend = big.named(FUNCTION, "llmmon-b-comprehend")
    assert comprehend["memorySize"] == 1769
    detail = run_stack(
        StackConfig(stack="d", models=MODELS[:1], services={"traffic": {"detailMetrics": True}}),
        services,
    )
    env = detail.named(FUNCTION, "llmmon-d-traffic")["environment"]["variables"]
    assert env["LLMMON_DETAIL_METRICS"] == "true"
    assert (
        "LLMMON_DETAIL_METRICS"
        not in small.named(FUNCTION, "llmmon-s-traffic")["environment"]["variables"]
    )


def test_stack_overrides_reach_functions_mappings_and_alarms(services: dict[str, Any]) -> None:
    config = StackConfig(
        stack="tuned",
        models=MODELS[:1],
        services={
            "refusal": {
                "batchSize": 50,
                "batchingWindowS": 20,
                "maxConcurrency": 2,
                "memoryMb": 2048,
                "timeoutS": 60,
                "alarms": {"HighRefusalRatio": {"threshold": 0.4}},
                "environment": {"LLMMON_EXPLAIN": "true"},
            },
            "comprehend": {"alarms": {"NegativeSentiment": {"enabled": False}}},
        },
    )
    stack = run_stack(config, services)
    function = stack.named(FUNCTION, "llmmon-tuned-refusal")
    assert function["memorySize"] == 2048 and function["timeout"] == 60
    assert function["environment"]["variables"]["LLMMON_EXPLAIN"] == "true"
    # six times the function timeout plus the batching window (20 s here)
    assert stack.named(QUEUE, "llmmon-tuned-refusal")["visibilityTimeoutSeconds"] == 6 * 60 + 20
    mapping = [
        m for m in stack.inputs(MAPPING) if m["eventSourceArn"].endswith(":llmmon-tuned-refusal")
    ][0]
    assert mapping["batchSize"] == 50 and mapping["maximumBatchingWindowInSeconds"] == 20
    alarm = [a for a in stack.inputs(ALARM) if "HighRefusalRatio" in a["name"]][0]
    assert alarm["threshold"] == 0.4
    assert not [a for a in stack.inputs(ALARM) if "NegativeSentiment" in a["name"]]


def test_dashboard_shows_every_emitted_metric_of_every_service(
    stack: Stack, services: dict[str, Any]
) -> None:
    (dashboard,) = stack.inputs("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard["dashboardBody"])
    expressions = [
        m[0]["expression"]
        for w in body["widgets"]
        if w["type"] == "metric"
        for m in w["properties"]["metrics"]
    ]
    for spec in services.values():
        for metric in spec.metrics:
            shown = any(
                f'MetricName="{metric.name}"' in e and "{llmmon,ModelId}" in e for e in expressions
            )
            # The lean default: detail scores are not emitted, so not charted either.
            assert shown == (metric.name not in spec.detail_metrics), metric.name
    assert any(w["type"] == "alarm" for w in body["widgets"])
    for metric in ("Invocations", "InvocationLatency", "InvocationThrottles", "OutputTokenCount"):
        assert any(
            f'MetricName="{metric}"' in e and "{AWS/Bedrock,ModelId}" in e for e in expressions
        ), metric


def test_functions_get_the_stack_settings(stack: Stack) -> None:
    env = stack.named(FUNCTION, "llmmon-test-similarity")["environment"]["variables"]
    assert env["LLMMON_SINK"] == "putmetricdata"
    assert env["LLMMON_EMBEDDING_BACKEND"] == "bedrock"
    assert env["LLMMON_NAMESPACE"] == "llmmon"
    assert env["HOME"] == "/tmp"


def test_idempotency_table__encrypted_expiring_and_each_role_only_its_own_keys(
    stack: Stack,
) -> None:
    (table,) = stack.inputs("aws:dynamodb/table:Table")
    assert table["serverSideEncryption"] == {"enabled": True}
    assert table["ttl"] == {"attributeName": "expiration", "enabled": True}
    assert table["hashKey"] == "id"
    for service, policy in role_policies(stack).items():
        statement = next(s for s in policy["Statement"] if s["Sid"] == "OwnIdempotencyRecords")
        assert statement["Resource"].endswith(":llmmon-test-idempotency") or statement[
            "Resource"
        ].startswith("arn:")
        assert statement["Condition"]["ForAllValues:StringLike"] == {
            "dynamodb:LeadingKeys": [f"{service}#*"]
        }
        # The shared dimension admission: one update action on its own keys only.
        shared = next(s for s in policy["Statement"] if s["Sid"] == "SharedDimensionAdmission")
        assert shared["Action"] == "dynamodb:UpdateItem"
        assert shared["Condition"]["ForAllValues:StringLike"] == {
            "dynamodb:LeadingKeys": ["dimensions#*"]
        }
    env = stack.named(FUNCTION, "llmmon-test-refusal")["environment"]["variables"]
    assert env["LLMMON_IDEMPOTENCY_TABLE"] == "llmmon-test-idempotency"


def test_everything_that_stores_data_is_encrypted(stack: Stack) -> None:
    assert all(q["sqsManagedSseEnabled"] for q in stack.inputs(QUEUE))
    assert all(t.get("kmsMasterKeyId") for t in stack.inputs("aws:sns/topic:Topic"))
    assert all(
        t["serverSideEncryption"]["enabled"] for t in stack.inputs("aws:dynamodb/table:Table")
    )
    assert stack.inputs(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert all(k["enableKeyRotation"] for k in stack.inputs("aws:kms/key:Key"))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"existingBucket": "team-logs"}, "would replace the bucket's whole notification"),
        ({"logPrefix": "data"}, "contains a 'data' or 'AWSLogs' folder"),
        ({"logPrefix": "x/data"}, "contains a 'data' or 'AWSLogs' folder"),
        ({"logPrefix": "AWSLogs"}, "contains a 'data' or 'AWSLogs' folder"),
    ],
)
def test_config_refuses_settings_that_lose_logs_or_notifications(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        StackConfig.from_mapping("prod", values)


def test_canary__scheduled_function_may_invoke_only_its_models(services: dict[str, Any]) -> None:
    models = ("meta.llama3-70b-instruct-v1:0", "us.anthropic.claude-3-5-sonnet-20241022-v2:0")
    stack = run_stack(
        StackConfig(
            stack="test", models=MODELS, canary_models=models, canary_schedule="rate(2 hours)"
        ),
        services,
    )
    (function,) = [f for f in stack.inputs(FUNCTION) if f["name"] == "llmmon-test-canary"]
    assert function["handler"] == "llmmon_canary.handler.lambda_handler"
    variables = function["environment"]["variables"]
    assert variables["LLMMON_CANARY_MODELS"] == ",".join(models)
    (schedule,) = stack.inputs("aws:scheduler/schedule:Schedule")
    assert schedule["scheduleExpression"] == "rate(2 hours)"
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    policy = role_policies(stack)["canary"]
    invoke = [s for s in policy["Statement"] if s["Sid"] == "CanaryModels"][0]
    assert invoke["Action"] == "bedrock:InvokeModel"
    assert invoke["Resource"] == sorted(
        [
            "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-70b-instruct-v1:0",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:inference-profile/"
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-sonnet-20241022-v2:0",
        ]
    )
    assert not any("s3:" in json.dumps(s) or "sqs:" in json.dumps(s) for s in policy["Statement"])
    scheduler = [
        json.loads(r.inputs["policy"])
        for r in stack.of("aws:iam/rolePolicy:RolePolicy")
        if r.name == "canary-scheduler-policy"
    ][0]
    assert scheduler["Statement"][0]["Action"] == "lambda:InvokeFunction"
    # No canary models, no canary.
    plain = run_stack(StackConfig(stack="test", models=MODELS), services)
    assert not plain.inputs("aws:scheduler/schedule:Schedule")
    assert all(f["name"] != "llmmon-test-canary" for f in plain.inputs(FUNCTION))


def test_the_watchers_received_count__less_the_messages_naming_no_log_object(
    stack: Stack,
) -> None:
    (alarm,) = [
        a for a in stack.inputs(ALARM) if a["name"] == "llmmon-test-traffic-MessagesReceived"
    ]
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert queries["m"]["metric"]["metricName"] == "NumberOfMessagesReceived"
    assert queries["l"]["metric"]["metricName"] == "MessagesWithoutLogObject"
    assert queries["l"]["metric"]["dimensions"] == {"Service": "traffic"}
    assert queries["net"]["expression"] == "m - FILL(l, 0)" and queries["net"]["returnData"]
