"""The declaration every metric service exports: what the Pulumi program, the local stack and the
demo read to build, run and alarm on a service. Nothing about a service's topology is written
anywhere else.

A service registers its ``SERVICE`` under the ``llmmon.services`` entry-point group (one line in its
pyproject); :func:`discover` finds every installed service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import entry_points

from llmmon_shared.metrics import Unit

__all__ = [
    "MEASURED_ON",
    "AlarmSpec",
    "Comparison",
    "MetricSpec",
    "Permission",
    "ScoringCost",
    "ServiceSpec",
    "discover",
]


class Comparison(StrEnum):
    GREATER = "GreaterThanThreshold"
    GREATER_OR_EQUAL = "GreaterThanOrEqualToThreshold"
    LESS = "LessThanThreshold"
    LESS_OR_EQUAL = "LessThanOrEqualToThreshold"
    ABOVE_BAND = "GreaterThanUpperThreshold"
    """Anomaly detection: above the metric's own expected band (the threshold is the band's
    width in standard deviations)."""
    BELOW_BAND = "LessThanLowerThreshold"
    OUTSIDE_BAND = "LessThanLowerOrGreaterThanUpperThreshold"

    @property
    def is_band(self) -> bool:
        return self in (Comparison.ABOVE_BAND, Comparison.BELOW_BAND, Comparison.OUTSIDE_BAND)


class Permission(StrEnum):
    """AWS capabilities a service's role needs beyond reading its queue and the log objects."""

    BEDROCK_EMBEDDINGS = "bedrock-embeddings"
    COMPREHEND = "comprehend"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: Unit
    description: str
    statistic: str = "Average"
    """The statistic that makes sense on a dashboard (Average of a 0/1 metric is a ratio)."""
    default: bool | None = None
    """Emitted by default? None: when an alarm of the service reads it (the lean set); the
    rest is opt-in detail (``LLMMON_DETAIL_METRICS``, ``detailMetrics`` in the stack). True
    keeps a metric no alarm reads in the default set."""
    binary: bool = False
    """A 0/1 metric per interaction: its Average is a share, shown as a percentage."""
    headline: bool | None = None
    """A column of the per-model tables and a chart of the reports (``llmmon score``, the
    demo). None: when an alarm of the service reads it."""

    @property
    def format(self) -> str:
        """How the tables print the metric's statistic."""
        if self.binary:
            return "{:.1%}"
        return "{:.0f}" if self.statistic == "Sum" else "{:.3f}"


@dataclass(frozen=True)
class AlarmSpec:
    """A default quality alarm on one metric, per model (thresholds overridable per stack).

    With a band comparison (``Comparison.ABOVE_BAND``...) it is an anomaly-detection alarm: the
    metric is judged against its own expected band, learnt from its history per model, and
    ``threshold`` is the band's width in standard deviations."""

    name: str
    metric: str
    statistic: str
    comparison: Comparison
    threshold: float
    period_s: int = 300
    evaluation_periods: int = 3
    datapoints_to_alarm: int = 2
    treat_missing_data: str = "notBreaching"
    description: str = ""
    min_samples: int = 20
    """An Average (a ratio of 0/1 values, or a mean score) is judged only over a period with at
    least this many values; a thinner period is missing data (``treat_missing_data``), so two
    calls and one refusal are not a 50% refusal ratio. Other statistics ignore it."""


MEASURED_ON = "AMD EPYC (AVX2, AVX-512F/BW, AVX-512 VNNI), 2 cores: benchmarks/capacity.py --n 640"
"""Where the services' declared scoring costs were last measured (one run, every service)."""


@dataclass(frozen=True)
class ScoringCost:
    """What one interaction costs the service's function, measured per backend by
    ``benchmarks/capacity.py`` (the whole pipeline: read, parse, extract, score, points):
    ``cpu_s`` CPU-seconds over all of its threads, ``wait_s`` seconds waiting on an API
    (managed backends). Keys: ``local``, ``managed`` (Bedrock, Comprehend), ``cascade``. Read by
    ``llmmon_shared.capacity`` (the stack's sizes, ``llmmon capacity``) and ``llmmon cost``: a
    detector change re-measures and updates them."""

    cpu_s: Mapping[str, float]
    wait_s: Mapping[str, float] = field(default_factory=dict)
    measured_on: str = ""
    """The CPU (model, ISA) and the command the figures come from."""
    api_per_s: Mapping[str, float] = field(default_factory=dict)
    """Interactions a second the backend's API quota admits in an account and Region (none:
    not the limit); ``api_quota`` says which quota."""
    api_quota: str = ""

    def at(self, backend: str) -> tuple[float, float]:
        """(CPU-seconds, wait seconds) per interaction on ``backend`` (a backend the service
        does not distinguish falls back to ``managed`` for ``cascade``, else to ``local``)."""
        key = backend
        if key not in self.cpu_s:
            key = "managed" if key == "cascade" and "managed" in self.cpu_s else "local"
        return self.cpu_s[key], self.wait_s.get(key, 0.0)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    description: str
    handler: str
    """``module.function`` of the Lambda handler."""
    metrics: tuple[MetricSpec, ...]
    alarms: tuple[AlarmSpec, ...] = ()
    permissions: frozenset[Permission] = frozenset()
    scoring: ScoringCost = field(default_factory=lambda: ScoringCost({"local": 0.001}))
    """Measured cost of one interaction (CPU-seconds, API wait) per backend."""
    backend_setting: str | None = None
    """The stack setting that picks this service's backend (``embeddingBackend``...)."""
    memory_mb: int = 1024
    """The least memory the service runs in (its models); the stack's plan may give more."""
    timeout_s: int = 120
    batch_size: int = 10
    batching_window_s: int = 5
    max_concurrency: int = 5
    max_receive_count: int = 5
    architecture: str = "x86_64"
    """Lambda architecture; the build command installs wheels for the matching platform."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Environment of the deployed function (the managed backends, typically)."""
    data_files: tuple[str, ...] = ()
    """Package data the artefact must carry (for example reference phrases)."""
    local_model: bool = False
    """The service runs a local model whatever the backend (similarity's Relevance reads
    MiniLM's word pieces): its artefact carries the ``local`` extra and MiniLM on the managed
    backend too."""
    anomaly_metric: str | None = None
    """The metric that gets an anomaly-detection alarm per model when a stack turns
    ``anomalyDetection`` on (a rise above the model's own band). Anomaly alarms that every stack
    gets are declared in ``alarms`` with a band comparison."""

    @property
    def visibility_timeout_s(self) -> int:
        """Six times the function timeout plus the batching window (AWS's guidance for SQS
        event sources)."""
        return 6 * self.timeout_s + int(self.batching_window_s)

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def package(self) -> str:
        return self.handler.split(".", 1)[0]

    @property
    def units(self) -> dict[str, Unit]:
        return {metric.name: metric.unit for metric in self.metrics}

    @property
    def detail_metrics(self) -> frozenset[str]:
        """Declared scores emitted only when detail is turned on: those no alarm of the service
        reads (its own, the anomaly alarm's) and not declared ``default=True``. Every metric
        an alarm, a composite or the dashboard's default view reads stays in the default set,
        and so do the pipeline's own counts (they are not declared scores)."""
        alarmed = {alarm.metric for alarm in self.alarms}
        if self.anomaly_metric:
            alarmed.add(self.anomaly_metric)
        return frozenset(
            metric.name
            for metric in self.metrics
            if metric.default is False or (metric.default is None and metric.name not in alarmed)
        )

    @property
    def headline_metrics(self) -> tuple[MetricSpec, ...]:
        """The metrics the per-model tables and reports show for this service: those declared
        ``headline=True``, and those an alarm reads unless declared ``headline=False``."""
        alarmed = {alarm.metric for alarm in self.alarms}
        return tuple(
            metric
            for metric in self.metrics
            if metric.headline or (metric.headline is None and metric.name in alarmed)
        )

    def emitted(self, detail: bool = False) -> tuple[MetricSpec, ...]:
        """The declared metrics a deployment emits: the default set, or all with detail on."""
        hidden = frozenset() if detail else self.detail_metrics
        return tuple(metric for metric in self.metrics if metric.name not in hidden)


INTERACTIONS = MetricSpec(
    "Interactions", Unit.COUNT, "Interactions scored (the pipeline's count)", "Sum"
)
"""The first column of every per-model table: a count every service's pipeline emits."""


def headline_columns(services: Mapping[str, ServiceSpec]) -> list[MetricSpec]:
    """The columns of the per-model tables, derived from the services' declarations: the
    interaction count, then each service's headline metrics in the services' order."""
    return [INTERACTIONS, *(m for spec in services.values() for m in spec.headline_metrics)]


def discover(group: str = "llmmon.services") -> dict[str, ServiceSpec]:
    """Every installed service's declaration, by name: the log consumers (``llmmon.services``),
    or the scheduled functions (``llmmon.scheduled``: the canary)."""
    found: dict[str, ServiceSpec] = {}
    for entry in entry_points(group=group):
        spec = entry.load()
        if not isinstance(spec, ServiceSpec):
            raise TypeError(f"entry point {entry.name} is not a ServiceSpec")
        found[spec.name] = spec
    return dict(sorted(found.items()))
