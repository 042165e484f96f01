"""Capacity of a deployed service, from its declared scoring cost: how many interactions a second
it clears, the concurrency it needs at peak, the first limit it hits, what it costs in Lambda
time, and the sizes (memory, batch, maximum concurrency) that fit a declared volume.

Pure arithmetic over :class:`~llmmon_shared.spec.ScoringCost` (measured CPU-seconds and API wait
per interaction, ``benchmarks/capacity.py``) and Lambda's documented rules: a function gets CPU in
proportion to its memory, one vCPU at 1,769 MB; an SQS event source's maximum concurrency is
2 to 1,000; the account's concurrency (1,000 by default) is shared by every function in the
Region. The Pulumi program sizes each service with :func:`plan`; ``llmmon capacity`` prints it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from llmmon_shared.spec import ScoringCost, ServiceSpec

__all__ = [
    "GB_SECOND_USD",
    "MB_PER_VCPU",
    "Plan",
    "ServicePlan",
    "Volume",
    "as_json",
    "backend_key",
    "backends_of",
    "plan",
    "plan_service",
    "render",
    "vcpu",
]

MB_PER_VCPU = 1769
"""Lambda allocates CPU in proportion to memory: one full vCPU at 1,769 MB."""
MEMORY_CHOICES_MB = (512, 1024, 1536, 1769, 2048, 3008)
GB_SECOND_USD = 0.0000166667
"""Lambda duration, x86, us-east-1 (the price table's ``lambda_per_gb_second``)."""
REQUEST_USD = 0.2 / 1e6
OBJECT_OVERHEAD_S = 0.030 + 4 * 0.008
"""Wall time per log object that is neither scoring nor the scorer's API calls: one S3 GET and
four DynamoDB writes (idempotency record, chunk announcement and confirmation, completion), at
the price table's assumed latencies (30 ms and 8 ms)."""
EVENT_SOURCE_MAX_CONCURRENCY = 1000
EVENT_SOURCE_MIN_CONCURRENCY = 2
HEADROOM = 1.5
"""Maximum concurrency over the concurrency the peak needs: a peak above the declared one, or
slower objects, still drain without a backlog."""
COST_TOLERANCE = 0.05
"""Among memory sizes within this share of the cheapest per interaction, the fastest is taken:
concurrency is the scarce resource, and CPU-bound scoring costs about the same at every size up
to one vCPU."""


@dataclass(frozen=True)
class Volume:
    """The traffic a stack is sized for."""

    invocations_per_day: int = 1_000_000
    peak_factor: float = 3.0
    """Peak hour over the day's average rate."""
    sample_rate: float = 1.0
    records_per_object: int = 100
    """Bedrock writes a log object every few minutes or ~100 records (the price table's)."""
    account_concurrency: int = 1000
    """Lambda concurrency of the account and Region available to llmmon (shared with every
    other function there; cannot be read offline)."""

    @property
    def peak_per_s(self) -> float:
        """Scored interactions a second at the peak."""
        return self.invocations_per_day * self.sample_rate / 86400 * self.peak_factor


def vcpu(memory_mb: int) -> float:
    return memory_mb / MB_PER_VCPU


def backend_key(value: str | None) -> str:
    """The :class:`ScoringCost` key of a backend setting's value: ``local``, ``cascade``, or
    ``managed`` (Bedrock, Comprehend)."""
    if value in (None, "", "local"):
        return "local"
    return "cascade" if value == "cascade" else "managed"


def wall_s(cost: ScoringCost, backend: str, memory_mb: int, records_per_object: int) -> float:
    """Seconds of function time per interaction at ``memory_mb``: the CPU-seconds stretched by
    the vCPU share below one vCPU (above it the measured scorer gains nothing: its figures are
    CPU-seconds over all of its threads), plus the API wait and the object's share of the
    per-object overhead."""
    cpu, wait = cost.at(backend)
    return cpu / min(1.0, vcpu(memory_mb)) + wait + OBJECT_OVERHEAD_S / records_per_object


@dataclass(frozen=True)
class ServicePlan:
    service: str
    backend: str
    memory_mb: int
    timeout_s: int
    batch_size: int
    max_concurrency: int
    cpu_s: float
    """CPU-seconds per interaction (declared)."""
    wall_s: float
    """Function seconds per interaction at ``memory_mb``."""
    peak_per_s: float
    concurrency_at_peak: float
    """Functions busy at the peak (peak rate x seconds each)."""
    capacity_per_s: float
    """Interactions a second the service clears at its maximum concurrency."""
    ceiling_per_s: float
    """Interactions a second at the first limit (the most the service can be sized for)."""
    first_limit: str
    """What stops the service first as the volume grows."""
    usd_per_million: float
    """Lambda duration and requests per million scored interactions."""
    sized: Mapping[str, str]
    """Which sizes came from the stack's settings (``setting``) or the plan (``derived``)."""

    @property
    def falls_behind(self) -> bool:
        return self.peak_per_s > self.capacity_per_s


def _choose_memory(cost: ScoringCost, backend: str, floor_mb: int, records: int) -> int:
    options = sorted({floor_mb, *(m for m in MEMORY_CHOICES_MB if m >= floor_mb)})
    price = {m: m / 1024 * wall_s(cost, backend, m, records) for m in options}
    cheapest = min(price.values())
    near = [m for m in options if price[m] <= cheapest * (1 + COST_TOLERANCE)]
    return min(near, key=lambda m: (wall_s(cost, backend, m, records), m))


def plan_service(
    spec: ServiceSpec,
    backend: str,
    volume: Volume,
    settings: Mapping[str, object] | None = None,
    concurrency_share: int | None = None,
) -> ServicePlan:
    """One service's sizes for ``volume``: the stack's own settings where it has them
    (``memoryMb``, ``batchSize``, ``maxConcurrency``, ``timeoutS``), else derived:

    * memory: the cheapest per interaction among Lambda sizes from the declared ``memory_mb`` up
      (what the models need), the fastest of those within 5% of it;
    * batch size: the objects a fifth of the timeout clears (1 to 10);
    * maximum concurrency: the peak's concurrency x 1.5, within 2 to 1,000 and within
      ``concurrency_share`` of the account's concurrency."""
    given = dict(settings or {})
    cost = spec.scoring
    records = volume.records_per_object
    sized: dict[str, str] = {}

    def pick(key: str, derive: int) -> int:
        if key in given:
            sized[key] = "setting"
            return int(str(given[key]))
        sized[key] = "derived"
        return derive

    timeout = pick("timeoutS", spec.timeout_s)
    memory = pick("memoryMb", _choose_memory(cost, backend, spec.memory_mb, records))
    seconds = wall_s(cost, backend, memory, records)
    per_object_s = seconds * records
    batch = pick("batchSize", max(1, min(10, int(0.2 * timeout / per_object_s))))
    peak = volume.peak_per_s
    busy = peak * seconds
    if peak > cost.api_per_s.get(backend, math.inf):
        busy = cost.api_per_s[backend] * seconds  # more functions would only be throttled
    limit = EVENT_SOURCE_MAX_CONCURRENCY
    if concurrency_share is not None:
        limit = max(EVENT_SOURCE_MIN_CONCURRENCY, min(limit, concurrency_share))
    derived = max(EVENT_SOURCE_MIN_CONCURRENCY, math.ceil(busy * HEADROOM))
    maximum = pick("maxConcurrency", min(limit, derived))
    api = cost.api_per_s.get(backend, math.inf)
    capacity = min(maximum / seconds, api)
    # What stops the service as the volume grows: a fixed maximum concurrency, else (the plan
    # re-sized for each volume) its share of the account's concurrency or the event source's
    # own maximum, or the backend API's quota, whichever is lower.
    if sized["maxConcurrency"] == "setting":
        ceiling, first = maximum, f"maxConcurrency {maximum} (the stack's setting)"
    elif limit < EVENT_SOURCE_MAX_CONCURRENCY:
        ceiling, first = limit, f"its share of the account's concurrency ({limit})"
    else:
        ceiling = EVENT_SOURCE_MAX_CONCURRENCY
        first = f"the event source's maximum concurrency ({EVENT_SOURCE_MAX_CONCURRENCY})"
    ceiling_per_s = ceiling / seconds
    if api < ceiling_per_s:
        ceiling_per_s, first = api, f"the API quota ({cost.api_quota}: {api:,.0f}/s)"
    invocations = 1 / (batch * records)  # Lambda invocations per interaction
    usd = (memory / 1024 * seconds * GB_SECOND_USD + invocations * REQUEST_USD) * 1e6
    return ServicePlan(
        service=spec.name,
        backend=backend,
        memory_mb=memory,
        timeout_s=timeout,
        batch_size=batch,
        max_concurrency=maximum,
        cpu_s=cost.at(backend)[0],
        wall_s=seconds,
        peak_per_s=peak,
        concurrency_at_peak=busy,
        capacity_per_s=capacity,
        ceiling_per_s=ceiling_per_s,
        first_limit=first,
        usd_per_million=usd,
        sized=sized,
    )


@dataclass(frozen=True)
class Plan:
    volume: Volume
    services: tuple[ServicePlan, ...]

    @property
    def concurrency(self) -> int:
        """The services' maximum concurrency, added up."""
        return sum(s.max_concurrency for s in self.services)

    @property
    def concurrency_at_peak(self) -> float:
        return sum(s.concurrency_at_peak for s in self.services)

    def per_day(self, per_s: float) -> float:
        """The daily invocations whose peak is ``per_s`` scored interactions a second."""
        v = self.volume
        return per_s * 86400 / (v.peak_factor * v.sample_rate)

    @property
    def fitting_sample_rate(self) -> float | None:
        """The sample rate whose peak every service clears at the most it can be sized for (the
        account's concurrency, the event source's maximum, an API quota), when this one's does
        not (None: it fits)."""
        v = self.volume
        rates = [
            v.sample_rate * s.ceiling_per_s / s.peak_per_s for s in self.services if s.peak_per_s
        ]
        busy = self.concurrency_at_peak
        if busy > v.account_concurrency:
            rates.append(v.sample_rate * v.account_concurrency / busy)
        fit = min(rates, default=v.sample_rate)
        return fit if fit < v.sample_rate else None

    def warnings(self) -> list[str]:
        """What ``pulumi preview`` says before anything is created."""
        found = []
        v = self.volume
        for s in self.services:
            if s.falls_behind:
                found.append(
                    f"{s.service}: the peak of {v.invocations_per_day:,} invocations a day "
                    f"(x{v.peak_factor:g}, sample rate {v.sample_rate:g}) is "
                    f"{s.peak_per_s:,.1f} interactions/s, over the {s.capacity_per_s:,.1f}/s "
                    f"it clears at maxConcurrency {s.max_concurrency} ({s.first_limit}): "
                    "the queue falls behind at peak"
                )
        if self.concurrency > v.account_concurrency:
            found.append(
                f"the services' maxConcurrency adds up to {self.concurrency}, over the "
                f"{v.account_concurrency} concurrent executions available to llmmon "
                "(lambdaConcurrency): raise the account's quota (Service Quotas, Lambda) or "
                "lower maxConcurrency"
            )
        rate = self.fitting_sample_rate
        if rate is not None:
            found.append(
                f"at this volume a sample rate of {math.floor(rate * 1000) / 1000:g} would fit "
                "every service's first limit (sampleRate)"
            )
        return found


def plan(
    specs: Mapping[str, ServiceSpec],
    backends: Mapping[str, str],
    volume: Volume,
    settings: Mapping[str, Mapping[str, object]] | None = None,
) -> Plan:
    """Every service sized for ``volume``; the account's concurrency is shared among the
    services in proportion to what each needs at peak (at least 2 each)."""
    settings = settings or {}
    first = [
        plan_service(spec, backends.get(name, "local"), volume, settings.get(name))
        for name, spec in specs.items()
    ]
    busy = sum(p.concurrency_at_peak for p in first) or 1.0
    shares = {
        name: max(
            EVENT_SOURCE_MIN_CONCURRENCY,
            int(volume.account_concurrency * p.concurrency_at_peak / busy),
        )
        for name, p in zip(specs, first, strict=True)
    }
    return Plan(
        volume,
        tuple(
            plan_service(
                spec,
                backends.get(name, "local"),
                volume,
                settings.get(name),
                concurrency_share=shares[name],
            )
            for name, spec in specs.items()
        ),
    )


def render(result: Plan) -> str:
    v = result.volume
    lines = [
        f"{v.invocations_per_day:,} invocations a day, peak x{v.peak_factor:g} "
        f"({v.peak_per_s:,.1f} scored interactions/s at sample rate {v.sample_rate:g}), "
        f"{v.account_concurrency} concurrent executions available",
        f"{'service':<11} {'backend':<8} {'memory':>7} {'batch':>5} {'maxconc':>7} "
        f"{'s/interaction':>13} {'clears/s':>9} {'at peak':>8} {'$/1M':>6}  "
        "first limit (a day, at most)",
    ]
    for s in result.services:
        lines.append(
            f"{s.service:<11} {s.backend:<8} {s.memory_mb:>5}MB {s.batch_size:>5} "
            f"{s.max_concurrency:>7} {s.wall_s:>13.3f} {s.capacity_per_s:>9,.1f} "
            f"{s.concurrency_at_peak:>8,.1f} {s.usd_per_million:>6.2f}  {s.first_limit} "
            f"({result.per_day(s.ceiling_per_s):,.0f})"
        )
    lines.append(
        "clears/s: interactions a second at the service's maxConcurrency; at peak: functions "
        "busy at the peak; $/1M: Lambda per million scored interactions"
    )
    warnings = result.warnings()
    lines += [f"warning: {w}" for w in warnings] or ["every service clears the peak"]
    return "\n".join(lines)


def as_json(result: Plan) -> dict[str, object]:
    v = result.volume
    return {
        "volume": v.__dict__ | {"peak_per_s": round(v.peak_per_s, 3)},
        "services": [
            {
                "service": s.service,
                "backend": s.backend,
                "memory_mb": s.memory_mb,
                "timeout_s": s.timeout_s,
                "batch_size": s.batch_size,
                "max_concurrency": s.max_concurrency,
                "cpu_s_per_interaction": s.cpu_s,
                "seconds_per_interaction": round(s.wall_s, 5),
                "clears_per_s": round(s.capacity_per_s, 2),
                "concurrency_at_peak": round(s.concurrency_at_peak, 2),
                "clears_invocations_per_day": round(result.per_day(s.capacity_per_s)),
                "ceiling_per_s": round(s.ceiling_per_s, 2),
                "ceiling_invocations_per_day": round(result.per_day(s.ceiling_per_s)),
                "falls_behind": s.falls_behind,
                "first_limit": s.first_limit,
                "lambda_usd_per_1m": round(s.usd_per_million, 3),
                "sized": dict(s.sized),
            }
            for s in result.services
        ],
        "concurrency": result.concurrency,
        "concurrency_at_peak": round(result.concurrency_at_peak, 2),
        "fitting_sample_rate": result.fitting_sample_rate,
        "warnings": result.warnings(),
    }


def backends_of(specs: Mapping[str, ServiceSpec], values: Mapping[str, str]) -> dict[str, str]:
    """Each service's :class:`ScoringCost` key from the stack's backend settings (by the
    setting's name: ``embeddingBackend``, ``comprehendBackend``)."""
    return {
        name: backend_key(values.get(spec.backend_setting) if spec.backend_setting else None)
        for name, spec in specs.items()
    }
