"""Alarm definitions as plain data, built from the service declarations.

The Pulumi program turns these into CloudWatch alarms; the local stack evaluates the very same
definitions against moto's metric history. Nothing here talks to AWS.

Three kinds:

* quality alarms, per service default (``AlarmSpec``) and per watched model, on the per-model series
  (dimension ``ModelId``);
* pipeline-health alarms per service: the dead-letter queue is not empty, the function errors, the
  oldest message waits too long;
* two composite alarms: ``model-quality-degraded`` (any quality alarm) and
  ``monitoring-pipeline-unhealthy`` (any health alarm); the second suppresses the first's actions
  while the pipeline is broken, because quality metrics are not trustworthy then.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmmon_shared.spec import AlarmSpec, Comparison, ServiceSpec

__all__ = [
    "AlarmNames",
    "AlarmSet",
    "CompositeAlarmDef",
    "MetricAlarmDef",
    "build_alarms",
    "check_overrides",
]

QUALITY = "quality"
HEALTH = "health"
WATCH = "watch"
"""Building blocks of a per-service composite (never alarm-worthy alone)."""
PIPELINE_UNHEALTHY = "monitoring-pipeline-unhealthy"
HEALTH_MIN_SAMPLES = 20
"""Lines or records a period needs before the health ratios (bad lines, unreadable records)
are judged."""
QUALITY_DEGRADED = "model-quality-degraded"


@dataclass(frozen=True)
class MetricAlarmDef:
    name: str
    namespace: str
    metric: str
    dimensions: Mapping[str, str]
    statistic: str
    comparison: str
    threshold: float
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str
    description: str
    kind: str
    service: str
    anomaly_band: float | None = None
    """When set, an anomaly-detection alarm: the threshold is a band of this many deviations."""
    min_samples: int | None = None
    """When set, a period counts only with at least this many values (its SampleCount); a
    thinner period is missing data. CloudWatch: metric math ``IF(n >= N, m)``."""
    less: tuple[str, str, tuple[tuple[str, str], ...]] | None = None
    """When set, ``(namespace, metric, dimensions)`` of a series whose Sum is taken off the
    alarm's own per period. CloudWatch: metric math ``m - FILL(l, 0)``."""


@dataclass(frozen=True)
class CompositeAlarmDef:
    name: str
    rule: str
    description: str
    suppressor: str | None = None
    suppressor_wait_s: int = 120
    suppressor_extension_s: int = 300


@dataclass(frozen=True)
class AlarmNames:
    """How a stack names things; the Pulumi program and the local stack share one instance."""

    prefix: str
    region: str | None = None
    """Where the stack runs (AWS), for the command an alarm's description gives; None for a
    local stack, which ``llmmon investigate`` finds by itself."""

    def investigate(self, alarm: str) -> str:
        """The command that takes an alarm's subscriber from the alarm to its evidence."""
        where = f" --region {self.region}" if self.region else ""
        return f"llmmon investigate {alarm}{where}"

    def queue(self, service: str) -> str:
        return f"{self.prefix}-{service}"

    def dlq(self, service: str) -> str:
        return f"{self.prefix}-{service}-dlq"

    def function(self, service: str) -> str:
        return f"{self.prefix}-{service}"

    def alarm(self, service: str, alarm: str, model: str | None = None) -> str:
        base = f"{self.prefix}-{service}-{alarm}"
        return f"{base}-{_slug(model)}" if model else base

    def composite(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def idempotency_table(self) -> str:
        return f"{self.prefix}-idempotency"


ALARM_NAME_LIMIT = 255


def _slug(model: str, budget: int = 120) -> str:
    """The model id as it may stand in an alarm name. Characters outside ``[A-Za-z0-9._:-]`` become
    ``-``; when that changed anything, or the id is longer than ``budget``, a hash of the whole id
    is appended, so two ids never give one name (``application-inference-profile/abc`` and
    ``provisioned-model/abc`` stay apart)."""
    slug = re.sub(r"[^A-Za-z0-9._:-]+", "-", model)
    if slug == model and len(slug) <= budget:
        return slug
    digest = hashlib.sha256(model.encode()).hexdigest()[:10]
    return f"{slug[: budget - 11].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class AlarmSet:
    metric_alarms: tuple[MetricAlarmDef, ...]
    composites: tuple[CompositeAlarmDef, ...] = field(default=())

    @property
    def notifying(self) -> tuple[CompositeAlarmDef, ...]:
        """The top composites: the only alarms with actions (children and parts notify through
        them, so the pipeline alarm can suppress the quality one)."""
        parts = {c.name for c in self.composites if c.name.rsplit("-part", 1)[0] != c.name}
        children = {
            name for c in self.composites for name in re.findall(r'ALARM\("([^"]+)"\)', c.rule)
        }
        return tuple(c for c in self.composites if c.name not in parts and c.name not in children)

    def by_name(self) -> dict[str, MetricAlarmDef]:
        return {alarm.name: alarm for alarm in self.metric_alarms}


def _quality(
    spec: ServiceSpec,
    alarm: AlarmSpec,
    model: str,
    namespace: str,
    names: AlarmNames,
) -> MetricAlarmDef:
    name = names.alarm(spec.name, alarm.name, model)
    return MetricAlarmDef(
        name=name,
        namespace=namespace,
        metric=alarm.metric,
        dimensions={"ModelId": model},
        statistic=alarm.statistic,
        comparison=str(alarm.comparison),
        threshold=alarm.threshold,
        period_s=alarm.period_s,
        evaluation_periods=alarm.evaluation_periods,
        datapoints_to_alarm=alarm.datapoints_to_alarm,
        treat_missing_data=alarm.treat_missing_data,
        description=f"{alarm.description} ({model}). Evidence: {names.investigate(name)}",
        kind=QUALITY,
        service=spec.name,
        min_samples=alarm.min_samples if alarm.statistic == "Average" else None,
        anomaly_band=alarm.threshold if Comparison(alarm.comparison).is_band else None,
    )


def _health(
    spec: ServiceSpec, names: AlarmNames, oldest_message_s: int, namespace: str = "llmmon"
) -> list[MetricAlarmDef]:
    common: dict[str, Any] = {
        "kind": HEALTH,
        "service": spec.name,
        "period_s": 60,
        "treat_missing_data": "notBreaching",
    }
    return [
        MetricAlarmDef(
            name=names.alarm(spec.name, "DeadLetterQueueNotEmpty"),
            namespace="AWS/SQS",
            metric="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": names.dlq(spec.name)},
            statistic="Maximum",
            comparison=str(Comparison.GREATER),
            threshold=0,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            description=f"Log objects {spec.name} could not process are waiting in its DLQ",
            **common,
        ),
        MetricAlarmDef(
            name=names.alarm(spec.name, "FunctionErrors"),
            namespace="AWS/Lambda",
            metric="Errors",
            dimensions={"FunctionName": names.function(spec.name)},
            statistic="Sum",
            comparison=str(Comparison.GREATER),
            threshold=0,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            description=f"The {spec.name} function fails whole invocations",
            **common,
        ),
        MetricAlarmDef(
            name=names.alarm(spec.name, "OldestMessageAge"),
            namespace="AWS/SQS",
            metric="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": names.queue(spec.name)},
            statistic="Maximum",
            comparison=str(Comparison.GREATER),
            threshold=oldest_message_s,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            description=f"{spec.name} falls behind: messages wait over {oldest_message_s} s",
            **common,
        ),
        MetricAlarmDef(
            name=names.alarm(spec.name, "HighUnreadableRecords"),
            namespace=namespace,
            metric="UnreadableRecord",
            dimensions={"Service": spec.name},
            statistic="Average",
            comparison=str(Comparison.GREATER),
            threshold=0.2,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description=f"{spec.name} cannot read over a fifth of the records it gets",
            min_samples=HEALTH_MIN_SAMPLES,
            **{**common, "period_s": 300},
        ),
        MetricAlarmDef(
            name=names.alarm(spec.name, "HighBadLines"),
            namespace=namespace,
            metric="BadLine",
            dimensions={"Service": spec.name},
            statistic="Average",
            comparison=str(Comparison.GREATER),
            threshold=0.05,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description=f"Over 5% of the lines {spec.name} reads are not log records",
            min_samples=HEALTH_MIN_SAMPLES,
            **{**common, "period_s": 300},
        ),
        # The watcher watched: messages arrive but no object is scored (a broken deployment
        # that acknowledges everything and emits nothing looks healthy otherwise). Together in
        # the composite ``stopped_emitting``; each alone means nothing.
        MetricAlarmDef(
            name=names.alarm(spec.name, "NoObjectsScored"),
            namespace=namespace,
            metric="ObjectsProcessed",
            dimensions={"Service": spec.name},
            statistic="Sum",
            comparison=str(Comparison.LESS),
            threshold=1,
            period_s=300,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            treat_missing_data="breaching",  # no datapoint is exactly what it watches for
            description=f"{spec.name} scored no log object in 15 minutes",
            kind=WATCH,
            service=spec.name,
        ),
        # Messages that name no log object (S3's test event at every deploy that touches the
        # notification, large-body data objects, keys outside the prefix) are skipped and
        # counted by the service itself (``MessagesWithoutLogObject``, stamped with the
        # message's receive time): they are taken off SQS's count, so they are no evidence of
        # a broken scorer. A scorer whose metrics do not arrive at all takes nothing off.
        MetricAlarmDef(
            name=names.alarm(spec.name, "MessagesReceived"),
            namespace="AWS/SQS",
            metric="NumberOfMessagesReceived",
            dimensions={"QueueName": names.queue(spec.name)},
            statistic="Sum",
            comparison=str(Comparison.GREATER),
            threshold=0,
            period_s=300,
            evaluation_periods=3,
            datapoints_to_alarm=1,
            treat_missing_data="notBreaching",
            description=f"{spec.name}'s queue received messages naming log objects in 15 minutes",
            kind=WATCH,
            service=spec.name,
            less=(namespace, "MessagesWithoutLogObject", (("Service", spec.name),)),
        ),
    ]


def stopped_emitting(spec: ServiceSpec, names: AlarmNames) -> CompositeAlarmDef:
    """Messages reached the service's queue, yet it scored no object for 15 minutes."""
    return CompositeAlarmDef(
        name=names.alarm(spec.name, "StoppedEmitting"),
        rule=(
            f'ALARM("{names.alarm(spec.name, "NoObjectsScored")}") AND '
            f'ALARM("{names.alarm(spec.name, "MessagesReceived")}")'
        ),
        description=f"{spec.name} receives messages but emits no metrics",
    )


def _anomaly(
    spec: ServiceSpec,
    model: str,
    namespace: str,
    names: AlarmNames,
    band: float,
    min_samples: int = AlarmSpec.min_samples,
) -> MetricAlarmDef | None:
    metric = spec.anomaly_metric
    if metric is None:
        return None
    name = names.alarm(spec.name, f"{metric}Drift", model)
    return MetricAlarmDef(
        name=name,
        namespace=namespace,
        metric=metric,
        dimensions={"ModelId": model},
        statistic="Average",
        comparison="GreaterThanUpperThreshold",
        threshold=band,
        period_s=900,
        evaluation_periods=4,
        datapoints_to_alarm=3,
        treat_missing_data="notBreaching",
        description=(
            f"{metric} of {model} drifts above its usual band. Evidence: {names.investigate(name)}"
        ),
        kind=QUALITY,
        service=spec.name,
        anomaly_band=band,
        min_samples=min_samples,
    )


MAX_CHILDREN = 100
MAX_RULE_CHARS = 10_240


def any_of(alarms: Iterable[str]) -> str:
    names = [f'ALARM("{name}")' for name in alarms]
    return " OR ".join(names) if names else "FALSE"


def _or_tree(
    name: str, children: Sequence[str], description: str, suppressor: str | None = None
) -> list[CompositeAlarmDef]:
    """A composite alarm that is ALARM when any child is, split into parts when the children
    exceed CloudWatch's limits (100 children, 10,240 characters of rule). The last item is the
    top of the tree."""
    parts: list[list[str]] = [[]]
    for child in children:
        candidate = [*parts[-1], child]
        if len(candidate) > MAX_CHILDREN or len(any_of(candidate)) > MAX_RULE_CHARS:
            parts.append([child])
        else:
            parts[-1] = candidate
    if len(parts) == 1:
        return [CompositeAlarmDef(name, any_of(parts[0]), description, suppressor)]
    subs = [
        CompositeAlarmDef(f"{name}-part{i + 1}", any_of(part), f"{description} (part)")
        for i, part in enumerate(parts)
    ]
    return [*subs, *_or_tree(name, [s.name for s in subs], description, suppressor)]


_OVERRIDABLE: dict[str, type] = {
    "threshold": float,
    "period_s": int,
    "evaluation_periods": int,
    "datapoints_to_alarm": int,
    "treat_missing_data": str,
    "comparison": Comparison,
    "min_samples": int,
    "enabled": bool,
}
_TREAT_MISSING = ("breaching", "notBreaching", "ignore", "missing")


def check_overrides(
    services: Mapping[str, ServiceSpec], overrides: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """``overrides[service][alarm][field]`` checked against the declarations and converted to the
    fields' types (stack files and the command line give strings). Anything misspelt is an error
    that names what exists, so a threshold someone believes applied cannot be silently ignored."""
    checked: dict[str, dict[str, dict[str, Any]]] = {}
    for service, by_alarm in overrides.items():
        if service not in services:
            raise ValueError(
                f"unknown service {service!r} in alarm overrides (services: "
                f"{', '.join(sorted(services))})"
            )
        declared = {a.name: a for a in services[service].alarms}
        for alarm, fields_ in by_alarm.items():
            if alarm not in declared:
                raise ValueError(
                    f"{service} has no alarm {alarm!r} (its alarms: "
                    f"{', '.join(sorted(declared)) or 'none'})"
                )
            for name, value in fields_.items():
                if name not in _OVERRIDABLE:
                    raise ValueError(
                        f"{service}.{alarm}: {name!r} cannot be overridden (fields: "
                        f"{', '.join(_OVERRIDABLE)})"
                    )
                checked.setdefault(service, {}).setdefault(alarm, {})[name] = _convert(
                    f"{service}.{alarm}.{name}", _OVERRIDABLE[name], value
                )
    for service, by_alarm in checked.items():
        for alarm, changes in by_alarm.items():
            merged = replace(
                {a.name: a for a in services[service].alarms}[alarm],
                **{k: v for k, v in changes.items() if k != "enabled"},
            )
            if not 1 <= merged.datapoints_to_alarm <= merged.evaluation_periods:
                raise ValueError(
                    f"{service}.{alarm}: datapoints_to_alarm must be between 1 and "
                    f"evaluation_periods ({merged.evaluation_periods})"
                )
            if merged.period_s < 10 or (merged.period_s >= 60 and merged.period_s % 60):
                raise ValueError(f"{service}.{alarm}: period_s must be 10, 30 or a multiple of 60")
    return checked


def _convert(where: str, kind: type, value: Any) -> Any:
    text = str(value).strip()
    if kind is bool:
        if isinstance(value, bool) or text.lower() in ("true", "false"):
            return value if isinstance(value, bool) else text.lower() == "true"
        raise ValueError(f"{where}: {value!r} is not true or false")
    if kind is Comparison:
        try:
            return Comparison(text)
        except ValueError:
            raise ValueError(
                f"{where}: {value!r} is not one of {', '.join(c.value for c in Comparison)}"
            ) from None
    if kind is str:
        if text not in _TREAT_MISSING:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(_TREAT_MISSING)}")
        return text
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{where}: {value!r} is not a finite number")
    if kind is int:
        if number != int(number) or number < 1:
            raise ValueError(f"{where}: {value!r} is not a whole number of at least 1")
        return int(number)
    return number


def build_alarms(
    services: Mapping[str, ServiceSpec],
    models: Sequence[str],
    namespace: str,
    names: AlarmNames,
    overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    oldest_message_s: int = 900,
    anomaly_band: float | None = None,
    min_samples: int | None = None,
) -> AlarmSet:
    """Every alarm of a stack. ``overrides[service][alarm]`` replaces AlarmSpec fields
    (``threshold``, ``evaluation_periods``, ``datapoints_to_alarm``, ``period_s``...), or
    ``{"enabled": false}`` drops that alarm. ``min_samples`` replaces every quality alarm's
    default sample-size floor (an alarm's own override still wins)."""
    checked = check_overrides(services, overrides or {})
    alarms: list[MetricAlarmDef] = []
    for spec in services.values():
        for default in spec.alarms:
            changes = dict(checked.get(spec.name, {}).get(default.name, {}))
            if changes.pop("enabled", True) is False:
                continue
            if min_samples is not None:
                default = replace(default, min_samples=min_samples)
            alarm = replace(default, **changes)
            alarms.extend(_quality(spec, alarm, model, namespace, names) for model in models)
        if anomaly_band is not None:
            for model in models:
                drift = _anomaly(
                    spec,
                    model,
                    namespace,
                    names,
                    anomaly_band,
                    min_samples or AlarmSpec.min_samples,
                )
                if drift is not None:
                    alarms.append(drift)
        alarms.extend(_health(spec, names, oldest_message_s, namespace))
    quality = [a.name for a in alarms if a.kind == QUALITY]
    watchers = [stopped_emitting(spec, names) for spec in services.values()]
    health = [a.name for a in alarms if a.kind == HEALTH] + [w.name for w in watchers]
    composites = watchers + _or_tree(
        names.composite(PIPELINE_UNHEALTHY),
        health,
        "llmmon cannot process Bedrock logs: DLQ, function errors, backlog, unreadable input, "
        "or a service that stopped emitting",
    )
    if quality:
        composites += _or_tree(
            names.composite(QUALITY_DEGRADED),
            quality,
            "At least one model's quality alarm fired (refusals, toxicity, sentiment or relevance)."
            f" Evidence: {names.investigate('ALARM_NAME')}, for each alarm in ALARM named above",
            suppressor=names.composite(PIPELINE_UNHEALTHY),
        )
    return AlarmSet(tuple(alarms), tuple(composites))
