"""The program's declarations checked as AWS will check them, offline: every request botocore's
service model accepts, the documented rules the shapes do not carry, and an IAM linter on every
policy document, for a small, the example prod and a large stack. Each check is also shown to
fail on a declaration broken on purpose."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest

from llmmon_infra.config import StackConfig
from llmmon_infra.validate import (
    COMPOSITE,
    DASHBOARD,
    FUNCTION,
    MAPPING,
    METRIC_ALARM,
    QUEUE,
    SCHEDULE,
    check,
)
from tests.infra.conftest import Stack, run_stack

LARGE_MODELS = tuple(f"vendor.model-{n:02d}-v1:0" for n in range(30))

# IAM linter findings that are right for this program, each with the reason: (resource type,
# issue, a piece of its detail) -> why. The linter reads every document as an identity policy.
JUSTIFIED: dict[tuple[str, str, str], str] = {
    ("aws:kms/key:Key", "RESOURCE_STAR", "kms:"): (
        "a KMS key policy's Resource '*' is the key the policy is attached to"
    ),
    ("aws:iam/role:Role", "MALFORMED", "neither Resource nor NotResource"): (
        "a role's trust policy names the Principal that may assume it, never a Resource"
    ),
    ("aws:iam/rolePolicy:RolePolicy", "RESOURCE_MISMATCH", '"bedrock:InvokeModel"'): (
        "the linter splits ARNs on ':' and a model id holds one (amazon.titan-embed-text-v2:0); "
        "the ARNs are checked against Bedrock's documented formats below instead"
    ),
}
BEDROCK_ARN = re.compile(
    r"^arn:aws:bedrock:[a-z0-9-]+:(:foundation-model/[A-Za-z0-9.:_-]+"
    r"|\d{12}:(inference-profile|application-inference-profile)/[A-Za-z0-9.:_-]+)$"
)


def sizes(services: dict[str, Any]) -> dict[str, Stack]:
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((root / "Pulumi.prod.yaml").read_text())["config"]
    prod = StackConfig.from_mapping("prod", {k.split(":", 1)[1]: v for k, v in raw.items()})
    return {
        "small": run_stack(
            StackConfig(stack="small", models=("anthropic.claude-3-haiku-20240307-v1:0",)),
            services,
        ),
        "prod": run_stack(prod, services),
        "large": run_stack(
            StackConfig(
                stack="large",
                models=LARGE_MODELS,
                alarm_emails=("oncall@example.com",),
                anomaly_detection=True,
                metadata_dimensions=("app=support-bot|search|writer",),
                canary_models=LARGE_MODELS[:3],
            ),
            services,
        ),
    }


@pytest.fixture(scope="module")
def stacks(services: dict[str, Any]) -> dict[str, Stack]:
    return sizes(services)


def declared(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    return [(r.typ, dict(r.inputs)) for r in stack.resources]


@pytest.mark.parametrize("size", ["small", "prod", "large"])
def test_every_request_is_one_aws_accepts(stacks: dict[str, Stack], size: str) -> None:
    resources = declared(stacks[size])
    assert check(resources) == []
    kinds = {t for t, _ in resources}
    assert {METRIC_ALARM, COMPOSITE, DASHBOARD, QUEUE, FUNCTION, MAPPING} <= kinds
    if size == "large":
        assert SCHEDULE in kinds  # the canary's schedule is checked too


def test_resource_counts_per_stack_size(stacks: dict[str, Stack]) -> None:
    """What `pulumi preview` should list (docs/deploying.md keeps these figures)."""
    counts = {
        size: {
            "metric alarms": len(stack.of(METRIC_ALARM)),
            "composites": len(stack.of(COMPOSITE)),
            "functions": len(stack.of(FUNCTION)),
            "resources": len(stack.resources),
        }
        for size, stack in stacks.items()
    }
    assert counts["small"]["metric alarms"] < counts["prod"]["metric alarms"]
    assert counts["large"]["metric alarms"] > counts["prod"]["metric alarms"]
    assert all(c["functions"] >= 4 for c in counts.values())
    print(json.dumps(counts))


def test_every_policy_passes_the_iam_linter(stacks: dict[str, Stack]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string

    seen = 0
    for stack in stacks.values():
        for typ, document in stack.policies():
            findings = analyze_policy_string(json.dumps(document)).findings
            for finding in findings:
                detail = json.dumps(finding.detail, default=str)
                justified = [
                    k for k in JUSTIFIED if (k[0], k[1]) == (typ, finding.issue) and k[2] in detail
                ]
                assert justified, f"{typ}: {finding.issue}: {detail}"
            seen += 1
            for statement in document.get("Statement", []):
                actions = statement.get("Action", [])
                if "bedrock:InvokeModel" in (actions if isinstance(actions, list) else [actions]):
                    resources = statement["Resource"]
                    for arn in resources if isinstance(resources, list) else [resources]:
                        assert BEDROCK_ARN.match(arn), arn
    assert seen >= 10


def test_the_linter_catches_a_misspelt_action_and_a_mismatched_resource() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string

    def issues(statement: dict[str, Any]) -> set[str]:
        document = {"Version": "2012-10-17", "Statement": [statement]}
        return {f.issue for f in analyze_policy_string(json.dumps(document)).findings}

    typo = {"Effect": "Allow", "Action": "sqs:RecieveMessage", "Resource": "arn:aws:sqs:*:*:q"}
    assert "UNKNOWN_ACTION" in issues(typo)
    wrong = {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "arn:aws:s3:::b/*"}
    assert "RESOURCE_MISMATCH" in issues(wrong)


def _alarm(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "llmmon-refusal-HighRefusalRatio-m",
        "comparisonOperator": "GreaterThanThreshold",
        "evaluationPeriods": 3,
        "datapointsToAlarm": 2,
        "threshold": 0.25,
        "treatMissingData": "notBreaching",
        "metricQueries": [
            {
                "id": "m",
                "metric": {
                    "metricName": "Refusal",
                    "namespace": "llmmon",
                    "period": 300,
                    "stat": "Average",
                    "dimensions": {"ModelId": "m"},
                },
                "returnData": False,
            },
            {"id": "judged", "expression": "IF(m > 0, m)", "returnData": True},
        ],
    }
    base.update(changes)
    return base


def _stat(n: int) -> dict[str, Any]:
    return {
        "id": f"s{n}",
        "metric": {
            "metricName": "Refusal",
            "namespace": "llmmon",
            "period": 300,
            "stat": "Average",
        },
        "returnData": False,
    }


def _sqs_source(queue: dict[str, Any], window: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """A queue, a function with a 60 s timeout, and the mapping between them."""
    function = {
        "name": "f",
        "runtime": "python3.11",
        "role": "arn:r",
        "handler": "h",
        "timeout": 60,
    }
    mapping = {
        "eventSourceArn": "arn:aws:sqs:us-east-1:1:q",
        "functionName": "arn:aws:lambda:us-east-1:1:function:f",
        "maximumBatchingWindowInSeconds": window,
    }
    return [(QUEUE, queue), (FUNCTION, function), (MAPPING, mapping)]


BROKEN: list[tuple[str, list[tuple[str, dict[str, Any]]], str]] = [
    ("alarm-name-length", [(METRIC_ALARM, _alarm(name="x" * 256))], "alarm x"),
    ("cloudwatch.PutMetricAlarm", [(METRIC_ALARM, _alarm(threshold="0.25"))], "alarm llmmon"),
    (
        "metric-id",
        [
            (
                METRIC_ALARM,
                _alarm(
                    metricQueries=[
                        {**_alarm()["metricQueries"][0], "id": "M1"},
                        _alarm()["metricQueries"][1],
                    ]
                ),
            )
        ],
        "alarm",
    ),
    (
        "return-data",
        [
            (
                METRIC_ALARM,
                _alarm(
                    metricQueries=[
                        {**_alarm()["metricQueries"][0], "returnData": True},
                        _alarm()["metricQueries"][1],
                    ]
                ),
            )
        ],
        "alarm",
    ),
    (
        "metrics-per-alarm",
        [
            (
                METRIC_ALARM,
                _alarm(
                    metricQueries=[*[_stat(n) for n in range(11)], _alarm()["metricQueries"][1]]
                ),
            )
        ],
        "alarm",
    ),
    (
        "anomaly-threshold-metric",
        [(METRIC_ALARM, _alarm(comparisonOperator="GreaterThanUpperThreshold", threshold=None))],
        "alarm",
    ),
    (
        "composite-rule-length",
        [(COMPOSITE, {"alarmName": "c", "alarmRule": " OR ".join(['ALARM("a")'] * 1100)})],
        "composite c",
    ),
    (
        "composite-children",
        [
            (
                COMPOSITE,
                {"alarmName": "c", "alarmRule": " OR ".join(f'ALARM("a{n}")' for n in range(101))},
            )
        ],
        "composite c",
    ),
    (
        "composite-unknown-alarm",
        [(COMPOSITE, {"alarmName": "c", "alarmRule": 'ALARM("nowhere")'})],
        "composite c",
    ),
    (
        "dashboard-widgets",
        [(DASHBOARD, {"dashboardName": "d", "dashboardBody": json.dumps({"widgets": [{}] * 501})})],
        "dashboard d",
    ),
    (
        "dashboard-name",
        [
            (
                DASHBOARD,
                {"dashboardName": "my dashboard", "dashboardBody": json.dumps({"widgets": []})},
            )
        ],
        "dashboard my dashboard",
    ),
    (
        "function-name",
        [
            (
                FUNCTION,
                {
                    "name": "f" * 65,
                    "runtime": "python3.11",
                    "role": "arn:r",
                    "handler": "h",
                    "timeout": 60,
                },
            )
        ],
        "function f",
    ),
    (
        "function-timeout",
        [
            (
                FUNCTION,
                {
                    "name": "f",
                    "runtime": "python3.11",
                    "role": "arn:r",
                    "handler": "h",
                    "timeout": 901,
                },
            )
        ],
        "function f",
    ),
    ("lambda.CreateFunction", [(FUNCTION, {"name": "f", "timeout": 60})], "function f"),
    (
        "visibility-timeout",
        _sqs_source({"name": "q", "visibilityTimeoutSeconds": 300}, window=5),
        "queue q",
    ),
    (
        "message-retention",
        _sqs_source(
            {
                "name": "q",
                "visibilityTimeoutSeconds": 400,
                "messageRetentionSeconds": 1200,
                "redrivePolicy": json.dumps({"maxReceiveCount": 5}),
            }
        ),
        "queue q",
    ),
    (
        "account-concurrency",
        [
            (MAPPING, {"scalingConfig": {"maximumConcurrency": 600}}),
            (MAPPING, {"scalingConfig": {"maximumConcurrency": 600}}),
        ],
        "event source mappings",
    ),
    (
        "schedule-expression",
        [(SCHEDULE, {"name": "s", "scheduleExpression": "every hour"})],
        "schedule s",
    ),
    ("sqs.CreateQueue", [(QUEUE, {"name": None, "visibilityTimeoutSeconds": 30})], "queue None"),
    (
        "alarm-actions",
        [(METRIC_ALARM, _alarm(alarmActions=[f"arn:aws:sns:r:1:t{n}" for n in range(6)]))],
        "alarm",
    ),
    ("evaluation-range", [(METRIC_ALARM, _alarm(evaluationPeriods=300))], "alarm"),
    (
        "role-policy-size",
        [
            (
                "aws:iam/rolePolicy:RolePolicy",
                {
                    "role": "r",
                    "policy": json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "s3:GetObject",
                                    "Resource": f"arn:aws:s3:::b/{'x' * 11000}",
                                }
                            ],
                        }
                    ),
                },
            )
        ],
        "role r",
    ),
]


@pytest.mark.parametrize(("rule", "resources", "names"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_check_refuses_its_broken_declaration(
    rule: str, resources: list[tuple[str, dict[str, Any]]], names: str
) -> None:
    found = check(resources)
    assert any(f.rule == rule and str(f).startswith(names) for f in found), [str(f) for f in found]


def test_a_zip_over_the_direct_upload_limit_goes_through_s3(
    services: dict[str, Any], tmp_path: Any
) -> None:
    """Local-model zips are 72 to 100 MB: sent with the function, CreateFunction refuses them."""
    import pulumi

    big = tmp_path / "comprehend.zip"
    with big.open("wb") as handle:
        handle.truncate(51 * 1024 * 1024)
    stack = run_stack(StackConfig(stack="big", artifact_dir=str(tmp_path)), services)
    function = stack.named(FUNCTION, "llmmon-big-comprehend")
    assert function.get("s3Bucket") and function.get("s3Key", "").startswith("comprehend/")
    assert "code" not in function
    assert len(stack.of("aws:s3/bucketObject:BucketObject")) == 1
    assert check(declared(stack)) == []
    # the same zip sent with the function is refused, naming the function and the rule
    sent = {
        "name": "f",
        "runtime": "python3.11",
        "role": "arn:r",
        "handler": "h",
        "timeout": 60,
        "code": pulumi.FileArchive(str(big)),
    }
    found = check([(FUNCTION, sent)])
    assert [f.rule for f in found] == ["lambda-zip-direct-upload"] and str(found[0]).startswith(
        "function f"
    )


def test_quotas__said_at_preview_time_with_the_quota_to_raise(services: dict[str, Any]) -> None:
    from llmmon_infra.program import quota_warnings
    from llmmon_shared.alarms import AlarmNames, build_alarms

    models = tuple(f"vendor.model-{n:03d}-v1:0" for n in range(200))
    busy = StackConfig(
        stack="busy",
        models=models,
        anomaly_detection=True,
        services={name: {"maxConcurrency": 400} for name in services},
    )
    alarms = build_alarms(services, models, "llmmon", AlarmNames("x"), anomaly_band=2.0)
    warnings_ = quota_warnings(busy, services, alarms)
    assert any("anomaly detection models" in w and "raise that quota" in w for w in warnings_)
    assert any("concurrent executions" in w for w in warnings_)
    fine = StackConfig(stack="fine", models=models[:2])
    small = build_alarms(services, models[:2], "llmmon", AlarmNames("x"))
    assert quota_warnings(fine, services, small) == []
