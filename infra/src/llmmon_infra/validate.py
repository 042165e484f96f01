"""Every resource the program declares, checked the way AWS will check it, without an account.

Each declaration is rendered as the request the AWS API receives (PutMetricAlarm,
PutCompositeAlarm, PutDashboard, CreateQueue's attributes, CreateFunction) and checked with
botocore's own parameter validator against the service model, then by named rules for what the
shapes do not carry, each with the AWS limit it enforces. :func:`check` takes the recorded
inputs of a run (``[(pulumi type, inputs), ...]``, as Pulumi's mocks or a preview see them) and
returns the findings; an empty list is a stack AWS will accept as far as can be known offline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
QUEUE = "aws:sqs/queue:Queue"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
SCHEDULE = "aws:scheduler/schedule:Schedule"

ALARM_NAME_MAX = 255
"""PutMetricAlarm / PutCompositeAlarm: AlarmName, 1 to 255 characters."""
METRICS_PER_ALARM = 10
"""A metric-math alarm reads at most 10 metrics (MetricStat queries)."""
COMPOSITE_RULE_MAX = 10_240
"""PutCompositeAlarm: AlarmRule, at most 10,240 characters."""
COMPOSITE_CHILDREN_MAX = 100
"""A composite's rule names at most 100 alarms."""
DASHBOARD_WIDGETS_MAX = 500
"""A dashboard body holds 0 to 500 widgets."""
DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""CreateFunction: a function name, 1 to 64 letters, digits, hyphens and underscores."""
FUNCTION_TIMEOUT_MAX, MEMORY_RANGE = 900, (128, 10_240)
ACCOUNT_CONCURRENCY = 1000
"""Lambda's default concurrent executions per Region; the mappings' maximum concurrency must
fit under it."""
METRIC_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")
"""Metric-math query ids start with a lower-case letter."""
SCHEDULE_EXPRESSION = re.compile(
    r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\((\S+ ){5}\S+\)|at\(\S+\))$"
)


@dataclass(frozen=True)
class Finding:
    resource: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.rule}: {self.message}"


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _present(params: Mapping[str, Any]) -> dict[str, Any]:
    """A request's members that were declared (the API takes absence, not null)."""
    return {k: v for k, v in params.items() if v is not None}


def _dimensions(raw: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in (raw or {}).items()]


def metric_alarm_request(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm's parameters for a ``aws.cloudwatch.MetricAlarm``'s inputs."""
    params: dict[str, Any] = {
        "AlarmName": inputs.get("name"),
        "AlarmDescription": inputs.get("alarmDescription"),
        "ActionsEnabled": inputs.get("actionsEnabled"),
        "OKActions": inputs.get("okActions"),
        "AlarmActions": inputs.get("alarmActions"),
        "InsufficientDataActions": inputs.get("insufficientDataActions"),
        "MetricName": inputs.get("metricName"),
        "Namespace": inputs.get("namespace"),
        "Statistic": inputs.get("statistic"),
        "Dimensions": _dimensions(inputs.get("dimensions")) if inputs.get("dimensions") else None,
        "Period": _int(inputs.get("period")),
        "EvaluationPeriods": _int(inputs.get("evaluationPeriods")),
        "DatapointsToAlarm": _int(inputs.get("datapointsToAlarm")),
        "Threshold": inputs.get("threshold"),
        "ComparisonOperator": inputs.get("comparisonOperator"),
        "TreatMissingData": inputs.get("treatMissingData"),
        "ThresholdMetricId": inputs.get("thresholdMetricId"),
    }
    queries = []
    for query in inputs.get("metricQueries") or []:
        rendered: dict[str, Any] = {
            "Id": query.get("id"),
            "Expression": query.get("expression"),
            "Label": query.get("label"),
            "ReturnData": query.get("returnData"),
        }
        metric = query.get("metric")
        if metric:
            rendered["MetricStat"] = {
                "Metric": {
                    "Namespace": metric.get("namespace"),
                    "MetricName": metric.get("metricName"),
                    "Dimensions": _dimensions(metric.get("dimensions")),
                },
                "Period": _int(metric.get("period")),
                "Stat": metric.get("stat"),
            }
        queries.append(_present(rendered))
    if queries:
        params["Metrics"] = queries
    return _present(params)


def composite_request(inputs: Mapping[str, Any]) -> dict[str, Any]:
    suppressor = inputs.get("actionsSuppressor") or {}
    return _present(
        {
            "AlarmName": inputs.get("alarmName"),
            "AlarmRule": inputs.get("alarmRule"),
            "AlarmDescription": inputs.get("alarmDescription"),
            "ActionsEnabled": inputs.get("actionsEnabled"),
            "AlarmActions": inputs.get("alarmActions"),
            "OKActions": inputs.get("okActions"),
            "ActionsSuppressor": suppressor.get("alarm"),
            "ActionsSuppressorWaitPeriod": _int(suppressor.get("waitPeriod")),
            "ActionsSuppressorExtensionPeriod": _int(suppressor.get("extensionPeriod")),
        }
    )


def dashboard_request(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "DashboardName": inputs.get("dashboardName"),
        "DashboardBody": inputs.get("dashboardBody"),
    }


def function_request(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """CreateFunction's parameters (the code as an empty zip: its size is checked on the zips)."""
    params = {
        "FunctionName": inputs.get("name"),
        "Runtime": inputs.get("runtime"),
        "Role": inputs.get("role"),
        "Handler": inputs.get("handler"),
        "Code": {"ZipFile": b""},
        "Timeout": _int(inputs.get("timeout")),
        "MemorySize": _int(inputs.get("memorySize")),
        "Architectures": inputs.get("architectures"),
        "Environment": {"Variables": (inputs.get("environment") or {}).get("variables", {})},
    }
    return _present(params)


def botocore_findings(
    service: str, operation: str, params: Mapping[str, Any], resource: str
) -> list[Finding]:
    """botocore's parameter validation against the service model (types, required members,
    minimum lengths and values, enums where the model has them)."""
    import botocore.session
    from botocore.exceptions import ParamValidationError
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model(service)
    try:
        validate_parameters(dict(params), model.operation_model(operation).input_shape)
    except ParamValidationError as exc:
        return [Finding(resource, f"{service}.{operation}", str(exc).replace("\n", " "))]
    return []


# --------------------------------------------------------------------------------------------
# The named rules


ALARM_ACTIONS_MAX = 5
"""Actions per state of one alarm."""
EVALUATION_RANGE_MAX = 86_400
"""An alarm's period times its evaluation periods: at most one day."""
ANOMALY_MODELS_MAX = 500
"""Anomaly detection models per Region and account (adjustable)."""


def alarm_rules(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(rule, message) for one PutMetricAlarm request."""
    found = []
    for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        if len(params.get(key) or []) > ALARM_ACTIONS_MAX:
            found.append(("alarm-actions", f"{len(params[key])} {key} (at most 5)"))
    periods = [int(params.get("Period", 0) or 0)] + [
        int(q["MetricStat"]["Period"]) for q in params.get("Metrics") or [] if "MetricStat" in q
    ]
    span = max(periods) * int(params.get("EvaluationPeriods", 1) or 1)
    if span > EVALUATION_RANGE_MAX:
        found.append(("evaluation-range", f"{span} s evaluated (at most one day, 86,400 s)"))
    name = str(params.get("AlarmName", ""))
    if not 1 <= len(name) <= ALARM_NAME_MAX:
        found.append(("alarm-name-length", f"{len(name)} characters (1 to {ALARM_NAME_MAX})"))
    queries = params.get("Metrics") or []
    if queries:
        for query in queries:
            if not METRIC_ID.match(str(query.get("Id", ""))):
                found.append(("metric-id", f"id {query.get('Id')!r} must start lower-case"))
        stats = sum(1 for q in queries if "MetricStat" in q)
        if stats > METRICS_PER_ALARM:
            found.append(("metrics-per-alarm", f"{stats} metrics (at most {METRICS_PER_ALARM})"))
        returning = [q["Id"] for q in queries if q.get("ReturnData", True)]
        band = params.get("ThresholdMetricId")
        if band is not None:
            expression = next((q.get("Expression", "") for q in queries if q.get("Id") == band), "")
            if "ANOMALY_DETECTION_BAND" not in expression:
                found.append(
                    ("anomaly-threshold-metric", f"ThresholdMetricId {band!r} is not a band")
                )
            if len(returning) != 2 or band not in returning:
                found.append(
                    (
                        "return-data",
                        f"an anomaly alarm returns the metric and its band, not {returning}",
                    )
                )
        elif len(returning) != 1:
            found.append(("return-data", f"exactly one query returns data, not {returning}"))
    operator = str(params.get("ComparisonOperator", ""))
    if "Upper" in operator or "Lower" in operator:  # the band comparisons
        if params.get("ThresholdMetricId") is None:
            found.append(("anomaly-threshold-metric", "a band comparison needs ThresholdMetricId"))
    elif params.get("Threshold") is None:
        found.append(("threshold", "a threshold alarm needs Threshold"))
    return found


def composite_rules(params: Mapping[str, Any], alarms: set[str]) -> list[tuple[str, str]]:
    from llmmon_shared.alarm_rules import RuleError, referenced_alarms

    found = []
    rule = str(params.get("AlarmRule", ""))
    if len(rule) > COMPOSITE_RULE_MAX:
        return [("composite-rule-length", f"{len(rule)} characters (at most 10,240)")]
    try:
        children = referenced_alarms(rule)
    except RuleError as exc:
        return [("composite-rule", str(exc))]
    if len(children) > COMPOSITE_CHILDREN_MAX:
        found.append(("composite-children", f"{len(children)} alarms (at most 100)"))
    missing = sorted(set(children) - alarms)
    if missing:
        found.append(("composite-unknown-alarm", f"names alarms not declared: {missing[:3]}"))
    name = str(params.get("AlarmName", ""))
    if not 1 <= len(name) <= ALARM_NAME_MAX:
        found.append(("alarm-name-length", f"{len(name)} characters (1 to {ALARM_NAME_MAX})"))
    return found


def dashboard_rules(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    if not DASHBOARD_NAME.match(str(params.get("DashboardName", ""))):
        found.append(("dashboard-name", "1 to 255 letters, digits, '-' and '_'"))
    try:
        body = json.loads(str(params.get("DashboardBody", "")))
    except ValueError:
        return [*found, ("dashboard-body", "not JSON")]
    widgets = body.get("widgets")
    if not isinstance(widgets, list):
        found.append(("dashboard-body", "no widgets array"))
    elif len(widgets) > DASHBOARD_WIDGETS_MAX:
        found.append(("dashboard-widgets", f"{len(widgets)} widgets (at most 500)"))
    return found


DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
"""A zip uploaded with CreateFunction (ZipFile) is at most 50 MB; larger ones come from S3."""


def code_rules(inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A zip sent with the function must be under the direct-upload limit."""
    from pathlib import Path

    path = getattr(inputs.get("code"), "path", None)
    if path is None or inputs.get("s3Bucket"):
        return []
    file = Path(str(path))
    if file.exists() and file.stat().st_size > DIRECT_UPLOAD_LIMIT:
        size = file.stat().st_size / 2**20
        return [("lambda-zip-direct-upload", f"{size:.0f} MB zip over the 50 MB direct upload")]
    return []


def function_rules(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    if not FUNCTION_NAME.match(str(params.get("FunctionName", ""))):
        found.append(("function-name", "1 to 64 letters, digits, '-' and '_'"))
    timeout = params.get("Timeout", 3)
    if not 1 <= timeout <= FUNCTION_TIMEOUT_MAX:
        found.append(("function-timeout", f"{timeout} s (1 to 900)"))
    memory = params.get("MemorySize", 128)
    if not MEMORY_RANGE[0] <= memory <= MEMORY_RANGE[1]:
        found.append(("function-memory", f"{memory} MB (128 to 10,240)"))
    return found


def _queue_checks(
    resources: Sequence[tuple[str, Mapping[str, Any]]],
) -> Iterable[Finding]:
    """Visibility timeout at least six times the function timeout plus the batching window
    (Lambda's guidance for SQS sources), and a retention longer than the visibility timeout
    times maxReceiveCount (else messages expire before they reach the dead-letter queue)."""
    functions = {i.get("name"): i for t, i in resources if t == FUNCTION}
    queues = {i.get("name"): i for t, i in resources if t == QUEUE}
    for typ, mapping in resources:
        if typ != MAPPING:
            continue
        queue_name = str(mapping.get("eventSourceArn", "")).rsplit(":", 1)[-1]
        function_name = str(mapping.get("functionName", "")).rsplit(":", 1)[-1]
        queue, function = queues.get(queue_name), functions.get(function_name)
        if queue is None or function is None:
            continue
        visibility = int(queue.get("visibilityTimeoutSeconds", 30))
        timeout = int(function.get("timeout", 3))
        window = int(mapping.get("maximumBatchingWindowInSeconds", 0) or 0)
        if visibility < 6 * timeout + window:
            yield Finding(
                f"queue {queue_name}",
                "visibility-timeout",
                f"{visibility} s is under 6 x the function's {timeout} s + {window} s window",
            )
        redrive = queue.get("redrivePolicy")
        receives = int(json.loads(redrive).get("maxReceiveCount", 1)) if redrive else 1
        retention = int(queue.get("messageRetentionSeconds", 345_600))
        if retention <= visibility * receives:
            yield Finding(
                f"queue {queue_name}",
                "message-retention",
                f"{retention} s is not longer than {visibility} s x {receives} receives",
            )


ROLE_POLICY_MAX = 10_240
"""IAM: a role's inline policies, at most 10,240 characters together (whitespace aside)."""
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def queue_request(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """CreateQueue's parameters: every attribute as the string SQS takes."""
    names = {
        "visibilityTimeoutSeconds": "VisibilityTimeout",
        "messageRetentionSeconds": "MessageRetentionPeriod",
        "redrivePolicy": "RedrivePolicy",
        "sqsManagedSseEnabled": "SqsManagedSseEnabled",
        "kmsMasterKeyId": "KmsMasterKeyId",
        "delaySeconds": "DelaySeconds",
        "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    }
    attributes = {}
    for key, name in names.items():
        value = inputs.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        attributes[name] = str(value)
    return {"QueueName": inputs.get("name"), "Attributes": attributes}


def _role_policy_sizes(resources: Sequence[tuple[str, Mapping[str, Any]]]) -> Iterable[Finding]:
    sizes: dict[str, int] = {}
    for typ, inputs in resources:
        if typ == ROLE_POLICY and isinstance(inputs.get("policy"), str):
            role = str(inputs.get("role"))
            compact = json.dumps(json.loads(inputs["policy"]), separators=(",", ":"))
            sizes[role] = sizes.get(role, 0) + len(compact)
    for role, size in sizes.items():
        if size > ROLE_POLICY_MAX:
            yield Finding(
                f"role {role}",
                "role-policy-size",
                f"inline policies of {size} characters (at most {ROLE_POLICY_MAX})",
            )


def check(resources: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Finding]:
    """Every finding for one run's declarations."""
    findings: list[Finding] = []
    names = {str(i.get("name")) for t, i in resources if t == METRIC_ALARM}
    names |= {str(i.get("alarmName")) for t, i in resources if t == COMPOSITE}

    # type -> (what the resource is called, service, operation, request, its named rules)
    requests: dict[str, tuple[str, str, str, Any, Any]] = {
        METRIC_ALARM: (
            "alarm",
            "cloudwatch",
            "PutMetricAlarm",
            metric_alarm_request,
            lambda p, i: alarm_rules(p),
        ),
        COMPOSITE: (
            "composite",
            "cloudwatch",
            "PutCompositeAlarm",
            composite_request,
            lambda p, i: composite_rules(p, names),
        ),
        DASHBOARD: (
            "dashboard",
            "cloudwatch",
            "PutDashboard",
            dashboard_request,
            lambda p, i: dashboard_rules(p),
        ),
        FUNCTION: (
            "function",
            "lambda",
            "CreateFunction",
            function_request,
            lambda p, i: function_rules(p) + code_rules(i),
        ),
        QUEUE: ("queue", "sqs", "CreateQueue", queue_request, lambda p, i: []),
    }
    name_keys = ("AlarmName", "DashboardName", "FunctionName", "QueueName")
    for typ, inputs in resources:
        if typ in requests:
            kind, service, operation, render, rules = requests[typ]
            params = render(inputs)
            label = next((params[k] for k in name_keys if k in params), None)
            resource = f"{kind} {label}"
            findings.extend(botocore_findings(service, operation, params, resource))
            findings.extend(Finding(resource, r, m) for r, m in rules(params, inputs))
        elif typ == TOPIC_POLICY and isinstance(inputs.get("policy"), str):
            params = {
                "TopicArn": str(inputs.get("arn", "arn:aws:sns:us-east-1:123456789012:topic")),
                "AttributeName": "Policy",
                "AttributeValue": inputs["policy"],
            }
            findings.extend(botocore_findings("sns", "SetTopicAttributes", params, "topic policy"))
        elif typ == SCHEDULE:
            expression = str(inputs.get("scheduleExpression", ""))
            if not SCHEDULE_EXPRESSION.match(expression):
                findings.append(
                    Finding(
                        f"schedule {inputs.get('name')}",
                        "schedule-expression",
                        f"{expression!r} is not rate(...), cron(6 fields) or at(...)",
                    )
                )
    findings.extend(_queue_checks(resources))
    findings.extend(quota_findings(resources))
    findings.extend(_role_policy_sizes(resources))
    return findings


def quota_findings(resources: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Finding]:
    """Per-account default quotas the stack would pass: the anomaly detection models (one per
    anomaly alarm's metric) and Lambda's concurrent executions. The program says these at
    preview time (``pulumi.log.warn``), naming the quota to raise."""
    found = []
    anomaly = sum(1 for t, i in resources if t == METRIC_ALARM and i.get("thresholdMetricId"))
    if anomaly > ANOMALY_MODELS_MAX:
        found.append(
            Finding(
                "anomaly alarms",
                "anomaly-detection-models",
                f"{anomaly} anomaly detection models, over the default of {ANOMALY_MODELS_MAX} "
                "per Region: raise the CloudWatch quota 'Anomaly detection models', or turn "
                "anomalyDetection off",
            )
        )
    concurrency = sum(
        int((i.get("scalingConfig") or {}).get("maximumConcurrency", 0))
        for t, i in resources
        if t == MAPPING
    )
    if concurrency > ACCOUNT_CONCURRENCY:
        found.append(
            Finding(
                "event source mappings",
                "account-concurrency",
                f"their maximum concurrency adds up to {concurrency}, over the account default "
                f"of {ACCOUNT_CONCURRENCY}: raise the Lambda quota 'Concurrent executions'",
            )
        )
    return found
