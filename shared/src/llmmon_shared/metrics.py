"""Metric points, the dimension policy and the sinks that deliver points to CloudWatch.

Three sinks share one interface (:class:`MetricSink`):

* :class:`EmfSink` prints CloudWatch Embedded Metric Format lines (the Lambda default: no API call);
* :class:`PutMetricDataSink` calls PutMetricData, packing many values per datum (``Values`` /
  ``Counts``) and up to 1,000 datums per request (the local stack uses it: moto ignores EMF);
* :class:`MemorySink` keeps points for tests.

The :class:`DimensionPolicy` is the single place that decides dimensions: ``ModelId`` always, plus
allow-listed ``requestMetadata`` keys whose distinct values are capped (overflow becomes
``Other``). Metric names and dimension values are checked so no prompt or response text can be
turned into a dimension or a name.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import IO, Any, Protocol

from llmmon_shared.admission import Admission, LocalAdmission

__all__ = [
    "EMF_MAX_METRICS",
    "EMF_MAX_VALUES",
    "PUT_MAX_DATUMS",
    "PUT_MAX_VALUES",
    "DimensionPolicy",
    "DimensionRule",
    "EmfSink",
    "EmitError",
    "MemorySink",
    "MetricPoint",
    "MetricSink",
    "PutMetricDataSink",
    "Unit",
    "cloudwatch_value",
    "looks_personal",
    "rollup",
]

EMF_MAX_METRICS = 100
EMF_MAX_VALUES = 100
PUT_MAX_DATUMS = 1000
PUT_MAX_VALUES = 150
MAX_DIMENSIONS = 30
OTHER = "Other"
# Conservative size estimates for the 1 MB PutMetricData payload limit (query-protocol encoding).
_DATUM_OVERHEAD = 600
_VALUE_BYTES = 120
_REQUEST_BUDGET = 800_000

MAX_VALUE = 2.0**360
"""CloudWatch rejects values whose magnitude is above 2^360 (about 1.17e108) or, other than 0,
below 2^-360 (about 8.5e-109), and NaN and infinities: one such value fails the whole
PutMetricData request, and with it every value of the request."""
MIN_MAGNITUDE = 2.0**-360

_METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_DIMENSION_VALUE = re.compile(r"^[A-Za-z0-9._:/@+=,\-]{1,128}$")


class Unit(StrEnum):
    NONE = "None"
    COUNT = "Count"
    PERCENT = "Percent"
    MILLISECONDS = "Milliseconds"


Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One observation. ``dimensions`` is a sorted tuple so points group and hash cleanly."""

    name: str
    value: float
    unit: Unit = Unit.NONE
    dimensions: Dimensions = ()
    timestamp: datetime | None = None

    def __post_init__(self) -> None:
        if not _METRIC_NAME.match(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        if cloudwatch_value(self.value) != self.value:
            raise ValueError(f"metric {self.name} has a value CloudWatch does not accept")
        if len(self.dimensions) > MAX_DIMENSIONS:
            raise ValueError(f"metric {self.name} has more than {MAX_DIMENSIONS} dimensions")

    @property
    def dimension_map(self) -> dict[str, str]:
        return dict(self.dimensions)


def cloudwatch_value(value: float) -> float | None:
    """``value`` as CloudWatch accepts it: None when it is not finite or its magnitude is over
    2^360; a nonzero magnitude under 2^-360 becomes 0.0 (it is 0 at any precision a metric has)."""
    if not math.isfinite(value) or abs(value) > MAX_VALUE:
        return None
    return value if value == 0 or abs(value) >= MIN_MAGNITUDE else 0.0


def _safe_value(value: str) -> str | None:
    """A dimension value we accept: short, no spaces, identifier-like. Free text never passes."""
    return value if _DIMENSION_VALUE.match(value) else None


_DIGIT_RUN = re.compile(r"\d(?:[\W_]{0,3}\d)*")
"""Digits grouped by any punctuation or spaces (up to three characters between groups), the
shape of card, account, social security and phone numbers however they are written."""
MAX_DIGITS = 6
"""A digit run holding more digits than this is personal unless it is a date or a version."""
_DATE_OR_VERSION = re.compile(
    "|".join(
        (
            # 2026-11-28, 2026/11/28, 2026.11.28, 2026_11_28, with an optional time of day
            r"(?:19|20)\d\d([-/._])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
            r"(?:[T_-](?:[01]\d|2[0-3])[:.]?[0-5]\d(?:[:.]?[0-5]\d)?)?",
            r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])",  # 20261128 (model ids)
            r"(?:0?[1-9]|[12]\d|3[01])([-/.])(?:0?[1-9]|1[0-2])\2(?:19|20)\d\d",  # 28-11-2026
            r"(?:0?[1-9]|1[0-2])([-/.])(?:0?[1-9]|[12]\d|3[01])\3(?:19|20)\d\d",  # 11/28/2026
            r"\d{1,4}(?:\.\d{1,3}){1,3}",  # versions: 2024.11.1, 10.2.30
        )
    )
)
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
_SECRET_SHAPES = (
    re.compile(r"@"),  # e-mail addresses
    re.compile(r"^arn:", re.IGNORECASE),  # IAM and other ARNs
    re.compile(r"="),  # key=value pairs (ssn=..., token=...)
    re.compile(r"^eyJ|^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\."),  # JWT-like tokens
    # Provider keys by their documented prefixes: OpenAI, Anthropic and Stripe (sk-, sk_live_,
    # rk_, pk_), GitHub, Slack, Google, Hugging Face, GitLab, npm.
    re.compile(r"^(?:sk|rk|pk)[-_][A-Za-z0-9_-]{16,}"),
    re.compile(r"^(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]{16,}"),
    re.compile(r"^xox[abposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"^AIza[0-9A-Za-z_-]{20,}"),
    re.compile(r"^(?:hf_|glpat-|npm_)[A-Za-z0-9_-]{16,}"),
    # AWS access key ids (16 to 128 characters; AKIA long-term, ASIA temporary, and the other
    # unique-id prefixes of IAM).
    re.compile(r"(?:AKIA|ASIA|AIDA|AROA|AGPA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{12,}"),
    # Opaque tokens: 20 or more key characters holding letters and digits, or 16 or more
    # mixing upper case, lower case and digits (base62 secrets). Words joined by - or _
    # (customer-support-bot2) are not one token.
    re.compile(r"(?=[A-Za-z0-9+/]*\d)(?=[A-Za-z0-9+/]*[A-Za-z])[A-Za-z0-9+/]{20,}"),
    re.compile(r"(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])[A-Za-z0-9]{16,}"),
)


def looks_personal(value: str) -> bool:
    """Values shaped like personal data or secrets, which never become dimension values:
    e-mail addresses, ARNs, card, account, social security and phone numbers whatever their
    separators (more than six digits in one run that is not a date or a version), IPv4
    addresses, provider API keys, AWS access key ids, JWTs and other opaque tokens."""
    if _IPV4.search(value):
        return True
    for run in _DIGIT_RUN.finditer(value):
        digits = sum(ch.isdigit() for ch in run.group())
        if digits > MAX_DIGITS and not _DATE_OR_VERSION.fullmatch(run.group()):
            return True
    return any(pattern.search(value) for pattern in _SECRET_SHAPES)


def identifier_value(raw: str) -> str | None:
    """``raw`` when it may stand where ids stand (a dimension value, an investigation report):
    identifier-like and not shaped like personal data or a secret; else None."""
    value = _safe_value(raw)
    return None if value is None or looks_personal(value) else value


@dataclass(frozen=True)
class DimensionRule:
    """One ``requestMetadata`` key allowed as a dimension, with what its values may be:
    ``key=a|b|c`` (these values), ``key~REGEX`` (values the pattern matches in full). Anything
    else, and anything shaped like personal data, is ``Other``: the number of values is bounded
    by the declaration, for the whole deployment, not per container."""

    key: str
    values: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, spec: str) -> DimensionRule:
        if "~" in spec:
            key, _, regex = spec.partition("~")
            return cls(key.strip(), pattern=re.compile(regex.strip()))
        if "=" in spec:
            key, _, values = spec.partition("=")
            return cls(key.strip(), values=frozenset(v.strip() for v in values.split("|") if v))
        return cls(spec.strip())

    @property
    def declared(self) -> bool:
        return bool(self.values) or self.pattern is not None

    def admit(self, raw: str) -> str:
        value = identifier_value(raw)
        if value is None:
            return OTHER
        if value in self.values:
            return value
        if self.pattern is not None and self.pattern.fullmatch(value):
            return value
        return OTHER


@dataclass
class DimensionPolicy:
    """Which dimensions a point carries. ``ModelId`` always; allow-listed metadata optionally,
    each key as a :class:`DimensionRule` (``app=support-bot|search``, ``tenant~[a-z]{2,12}``).

    A key listed without values or a pattern yields only ``Other`` (its values are unbounded).
    Matching values are still capped at ``max_values_per_key``, a second guard for broad
    patterns: by ``admission``, one cap for the deployment where the services share a table
    (:class:`~llmmon_shared.admission.DynamoAdmission`), else for this process.
    """

    metadata_keys: Sequence[str] = ()
    max_values_per_key: int = 20
    admission: Admission = field(default_factory=LocalAdmission)
    _rules: list[DimensionRule] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._rules = [DimensionRule.parse(spec) for spec in self.metadata_keys if spec.strip()]

    def dimensions(self, model_id: str, metadata: Mapping[str, str] | None = None) -> Dimensions:
        model = _safe_value(model_id) or OTHER
        dims = [("ModelId", model)]
        for rule in self._rules:
            raw = (metadata or {}).get(rule.key)
            if raw is None:
                continue
            dims.append((rule.key, self._cap(rule.key, rule.admit(raw))))
        return tuple(sorted(dims))

    def _cap(self, key: str, value: str) -> str:
        if value == OTHER:
            return value
        return value if self.admission.admit(key, value, self.max_values_per_key) else OTHER


class MetricSink(Protocol):
    """Where points go. ``flush`` delivers everything added so far."""

    namespace: str

    def add(self, points: Iterable[MetricPoint]) -> None: ...

    def flush(self) -> None: ...


ROLLUP_KEYS = frozenset({"Service", "ModelId", "Reason"})


def rollup(dimensions: Dimensions) -> Dimensions | None:
    """The per-model series a point also belongs to when it carries metadata dimensions (alarms
    and dashboards read ``ModelId`` alone), or None when it has no extra dimensions."""
    kept = tuple((k, v) for k, v in dimensions if k in ROLLUP_KEYS)
    return kept if kept != dimensions else None


def _minute(timestamp: datetime | None, now: datetime) -> datetime:
    moment = timestamp or now
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.replace(second=0, microsecond=0)


GroupKey = tuple[Dimensions, datetime]


Grouped = dict[GroupKey, dict[tuple[str, Unit], list[float]]]


def _group(points: Iterable[MetricPoint], now: datetime) -> Grouped:
    """Points by (dimensions, minute), then by (metric name, unit)."""
    groups: dict[GroupKey, dict[tuple[str, Unit], list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for point in points:
        groups[(point.dimensions, _minute(point.timestamp, now))][(point.name, point.unit)].append(
            point.value
        )
    return groups


def _dimension_sets(dimensions: Dimensions) -> list[list[str]]:
    sets = [[name for name, _ in dimensions]]
    rolled = rollup(dimensions)
    if rolled is not None:
        sets.append([name for name, _ in rolled])
    return sets


@dataclass
class MemorySink:
    """Keeps points in memory; ``flushed`` holds what ``flush`` delivered."""

    namespace: str = "llmmon"
    pending: list[MetricPoint] = field(default_factory=list)
    flushed: list[MetricPoint] = field(default_factory=list)

    def add(self, points: Iterable[MetricPoint]) -> None:
        self.pending.extend(points)

    def flush(self) -> None:
        points, self.pending = self.pending, []
        self.flushed.extend(points)

    def values(self, name: str, **dimensions: str) -> list[float]:
        return [
            point.value
            for point in self.flushed
            if point.name == name
            and all(point.dimension_map.get(k) == v for k, v in dimensions.items())
        ]


@dataclass
class EmfSink:
    """Writes CloudWatch Embedded Metric Format lines, one per (dimension set, minute, chunk).

    Each line holds at most 100 metrics and 100 values per metric (the EMF limits); values of one
    metric beyond 100 continue on the next line.
    """

    namespace: str
    stream: IO[str] | None = None
    pending: list[MetricPoint] = field(default_factory=list)

    def add(self, points: Iterable[MetricPoint]) -> None:
        self.pending.extend(points)

    def render(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        lines: list[str] = []
        for (dimensions, minute), metrics in _group(self.pending, now).items():
            remaining = {key: list(values) for key, values in metrics.items()}
            while remaining:
                batch = list(remaining.items())[:EMF_MAX_METRICS]
                document: dict[str, Any] = {
                    "_aws": {
                        "Timestamp": int(minute.timestamp() * 1000),
                        "CloudWatchMetrics": [
                            {
                                "Namespace": self.namespace,
                                "Dimensions": _dimension_sets(dimensions),
                                "Metrics": [
                                    {"Name": name, "Unit": str(unit)} for (name, unit), _ in batch
                                ],
                            }
                        ],
                    },
                    **dict(dimensions),
                }
                for (name, unit), values in batch:
                    chunk, rest = values[:EMF_MAX_VALUES], values[EMF_MAX_VALUES:]
                    document[name] = chunk[0] if len(chunk) == 1 else chunk
                    if rest:
                        remaining[(name, unit)] = rest
                    else:
                        del remaining[(name, unit)]
                lines.append(json.dumps(document, separators=(",", ":")))
        return lines

    def flush(self) -> None:
        stream = self.stream or sys.stdout
        lines = self.render()
        self.pending = []  # whatever happens next, these points never leave twice
        for line in lines:
            stream.write(line + "\n")
        stream.flush()


class EmitError(Exception):
    """Delivering metrics failed after ``sent`` of ``total`` requests had gone out."""

    def __init__(self, sent: int, total: int, lost_values: int) -> None:
        super().__init__(f"metrics delivery failed after {sent} of {total} requests")
        self.sent, self.total, self.lost_values = sent, total, lost_values


class _PutMetricDataClient(Protocol):
    def put_metric_data(self, **kwargs: Any) -> Any: ...


@dataclass
class PutMetricDataSink:
    """Calls PutMetricData with ``Values``/``Counts`` datums, up to 1,000 datums per request."""

    namespace: str
    client: _PutMetricDataClient
    storage_resolution: int = 60
    pending: list[MetricPoint] = field(default_factory=list)
    requests: int = 0

    def add(self, points: Iterable[MetricPoint]) -> None:
        self.pending.extend(points)

    def datums(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or datetime.now(UTC)
        datums: list[dict[str, Any]] = []
        expanded = list(self.pending)
        for point in self.pending:
            rolled = rollup(point.dimensions)
            if rolled is not None:
                expanded.append(replace(point, dimensions=rolled))
        for (dimensions, minute), metrics in _group(expanded, now).items():
            for (name, unit), values in metrics.items():
                counts: dict[float, int] = defaultdict(int)
                for value in values:
                    counts[value] += 1
                distinct = list(counts.items())
                for start in range(0, len(distinct), PUT_MAX_VALUES):
                    chunk = distinct[start : start + PUT_MAX_VALUES]
                    datums.append(
                        {
                            "MetricName": name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
                            "Timestamp": minute,
                            "Values": [value for value, _ in chunk],
                            "Counts": [float(count) for _, count in chunk],
                            "Unit": str(unit),
                            "StorageResolution": self.storage_resolution,
                        }
                    )
        return datums

    def requests_for(self, datums: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Split datums into requests of at most 1,000 datums and about 800 KB (limit 1 MB)."""
        requests: list[list[dict[str, Any]]] = [[]]
        size = 0
        for datum in datums:
            datum_size = _DATUM_OVERHEAD + _VALUE_BYTES * len(datum["Values"])
            if requests[-1] and (
                len(requests[-1]) >= PUT_MAX_DATUMS or size + datum_size > _REQUEST_BUDGET
            ):
                requests.append([])
                size = 0
            requests[-1].append(datum)
            size += datum_size
        return [request for request in requests if request]

    def _put(self, request: list[dict[str, Any]]) -> None:
        self.client.put_metric_data(Namespace=self.namespace, MetricData=request)

    def flush(self) -> None:
        """Send every pending point once. Pending points are taken first, so a failure never
        leaves them to go out again with the next flush. Each request is retried on throttling
        and transient errors; if one still fails, :class:`EmitError` says how many requests went
        out before it (0: nothing was emitted, the whole object may be retried)."""
        from llmmon_shared.aws import call_with_backoff

        requests = self.requests_for(self.datums())
        self.pending = []
        for index, request in enumerate(requests):
            try:
                call_with_backoff(partial(self._put, request), attempts=4)
            except Exception as exc:
                # Values, not datums' distinct entries: each entry stands for ``Counts`` values.
                lost = int(sum(sum(d["Counts"]) for r in requests[index:] for d in r))
                raise EmitError(sent=index, total=len(requests), lost_values=lost) from exc
            self.requests += 1
