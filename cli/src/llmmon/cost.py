"""``llmmon cost``: the whole monthly bill of a deployment, by line item.

Counted from the same declarations the Pulumi program deploys, not from a hand-kept list:

* the **custom metrics** are the distinct series the shared pipeline itself emits (EMF, with its
  per-model roll-ups) for a synthetic log object with the deployment's models and applications,
  each service's declared scores standing in for real scores;
* the **alarms** are ``build_alarms``' output for the same models, priced by kind: a standard
  alarm per metric it reads, an anomaly-detection alarm as three, a metric-math alarm (the
  sample floor ``IF(n >= N, m)``) per metric in its expression, composites apart;
* the **EMF log bytes** are the lines that synthetic object produced, per interaction;
* scoring (Comprehend units, Titan tokens), Lambda, S3, SQS, SNS, DynamoDB and the canary's
  Bedrock calls follow from the traffic and the list prices in ``data/prices.json`` (with
  their date).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

from llmmon_shared.alarms import AlarmNames, AlarmSet, build_alarms
from llmmon_shared.spec import ServiceSpec, discover

DAYS = 30
"""A month, for the per-day figures."""


def load_prices() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(files("llmmon").joinpath("data/prices.json").read_text())
    return data


@dataclass(frozen=True)
class Deployment:
    """What the bill depends on."""

    models: int = 5
    apps_per_model: int = 0
    """Distinct ``requestMetadata`` values per model that become a dimension (0: none)."""
    invocations_per_day: int = 100_000
    backend: str = "managed"
    sample_rate: float = 1.0
    canary_runs_per_day: int = 24
    canary_models: int = 1
    prompt_chars: int = 400
    response_chars: int = 1500
    services: tuple[str, ...] = ()
    """Enabled services (empty: all)."""
    drop_metrics: tuple[str, ...] = ()
    anomaly_detection: bool = False
    detail_metrics: bool = False
    """Every service's detail scores on (``detailMetrics``); off: the lean default set."""


@dataclass
class Bill:
    lines: list[tuple[str, str, float]] = field(default_factory=list)
    """(group, item, USD a month)."""
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, group: str, item: str, usd: float) -> None:
        self.lines.append((group, item, usd))

    def total(self, group: str | None = None) -> float:
        return sum(u for g, _, u in self.lines if group is None or g == group)


def model_ids(count: int) -> list[str]:
    return [f"model-{n}.example-v1:0" for n in range(count)]


def _record(n: int, model: str, app: str | None, moment: datetime, canary: bool) -> bytes:
    from llmmon_shared.runtime import CANARY_EXPECT_KEY, CANARY_KEY

    metadata: dict[str, str] = {}
    if app is not None:
        metadata["app"] = app
    if canary:
        metadata.update({CANARY_KEY: "v1", CANARY_EXPECT_KEY: "answer"})
    from llmmon.local.corpus import bodies

    operation, body_in, body_out = bodies("converse", "q" * 40, "a" * 80, False)
    record = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "requestId": f"{n:032x}",
        "operation": operation,
        "modelId": model,
        "requestMetadata": metadata,
        "input": {"inputBodyJson": body_in, "inputTokenCount": 20},
        "output": {"outputBodyJson": body_out, "outputTokenCount": 40},
    }
    return json.dumps(record).encode() + b"\n"


def declared_scores(spec: ServiceSpec, deployment: Deployment, canary: bool) -> dict[str, float]:
    """The scores a service gives one interaction, from its declaration: the canary's own
    metrics only for probes (the pipeline names them ``Canary...``), the prompt's and the
    cascade's only where those are on, error counters never (they need errors)."""
    names = [m.name for m in spec.metrics]
    if canary:
        names = [n.removeprefix("Canary") for n in names if spec.name == "refusal"]
        names += ["OverRefusal"] if "OverRefusal" not in names else []
    else:
        names = [n for n in names if not n.startswith("Canary")]
    # (The prompt's own toxicity only where prompt scoring is on; PromptResponseSimilarity is
    # the response's score and always emitted.)
    names = [n for n in names if not n.startswith("PromptToxic") and n != "ScoringErrors"]
    if deployment.backend != "cascade":
        names = [n for n in names if n not in ("ToxicityByComprehend", "ToxicityLocal")]
    return dict.fromkeys(names, 0.5)


def emitted(deployment: Deployment, services: Mapping[str, ServiceSpec]) -> dict[str, Any]:
    """Series and EMF bytes the pipeline emits for one synthetic object holding every model and
    application (one record per pair, probes for the canary models)."""
    import gzip

    from llmmon_shared.events import ObjectRef
    from llmmon_shared.metrics import EmfSink
    from llmmon_shared.runtime import Pipeline
    from llmmon_shared.settings import ServiceSettings

    models = model_ids(deployment.models)
    apps: list[str | None] = [f"app-{k}" for k in range(deployment.apps_per_model)] or [None]
    now = datetime.now(UTC).replace(microsecond=0)
    lines, canary_ids = [], set()
    n = 0
    for model in models:
        for app in apps:
            lines.append(_record(n, model, app, now - timedelta(seconds=n % 60), False))
            n += 1
    if deployment.canary_runs_per_day:
        for model in models[: deployment.canary_models]:
            canary_ids.add(n)
            lines.append(_record(n, model, None, now, True))
            n += 1
    body = gzip.compress(b"".join(lines))

    class Reader:
        def open(self, bucket: str, key: str) -> io.BytesIO:
            return io.BytesIO(body)

    series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    per_service: dict[str, int] = {}
    emf_bytes = 0
    for name, spec in services.items():
        stream = io.StringIO()

        def compute(batch: Sequence[Any], spec: ServiceSpec = spec) -> list[dict[str, float]]:
            return [
                declared_scores(spec, deployment, int(i.request_id, 16) in canary_ids)
                for i in batch
            ]

        pipeline = Pipeline(
            name,
            compute,
            spec.units,
            Reader(),
            EmfSink("llmmon", stream),
            ServiceSettings(
                metadata_dimensions=["app~app-[0-9]+"] if deployment.apps_per_model else [],
                metadata_max_values=max(20, deployment.apps_per_model),
                drop_metrics=list(deployment.drop_metrics),
                detail_metrics=deployment.detail_metrics,
            ),
            detail=spec.detail_metrics,
        )
        pipeline.process_object(ObjectRef("bucket", "AWSLogs/x.json.gz", None, None))
        before = len(series)
        for line in stream.getvalue().splitlines():
            emf_bytes += len(line) + 1
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for dimension_set in directive["Dimensions"]:
                    dims = tuple(sorted((d, str(document[d])) for d in dimension_set))
                    for metric in directive["Metrics"]:
                        series.add((metric["Name"], dims))
        per_service[name] = len(series) - before
    return {
        "series": series,
        "per_service": per_service,
        "emf_bytes_per_interaction": emf_bytes / max(1, n),
    }


def alarm_units(alarms: AlarmSet) -> dict[str, float]:
    """Alarm metrics by kind, as CloudWatch prices them."""
    standard = anomaly = 0.0
    for alarm in alarms.metric_alarms:
        # IF(n >= N, m): the metric and its count; m - FILL(l, 0): a second metric
        metrics = 1 + (1 if alarm.min_samples else 0) + (1 if alarm.less else 0)
        if alarm.anomaly_band is not None:
            anomaly += 1
            standard += metrics - 1
        else:
            standard += metrics
    return {"standard": standard, "anomaly": anomaly, "composite": len(alarms.composites)}


def tiered(count: float, tiers: Sequence[Sequence[float]]) -> float:
    """A monthly price over tiers ``[[up to, USD each], ...]`` (the last without a bound)."""
    usd, below = 0.0, 0.0
    for bound, price in tiers:
        take = max(0.0, min(count, bound if bound > 0 else math.inf) - below)
        usd += take * price
        below = bound if bound > 0 else math.inf
        if count <= below:
            break
    return usd


def bill(deployment: Deployment, prices: Mapping[str, Any] | None = None) -> Bill:
    prices = prices or load_prices()
    services = {
        name: spec
        for name, spec in discover().items()
        if (not deployment.services or name in deployment.services) and name != "canary"
    }
    result = Bill()
    month = deployment.invocations_per_day * DAYS
    scored = month * deployment.sample_rate
    objects = month / prices["records_per_log_object"]
    chars_p, chars_r = deployment.prompt_chars, deployment.response_chars

    # Scoring
    if deployment.backend in ("managed", "cascade") and "comprehend" in services:
        unit = prices["comprehend_unit_chars"]
        units = max(prices["comprehend_min_units_per_request"], math.ceil(chars_r / unit))
        share = 1.0 if deployment.backend == "managed" else prices["cascade_toxicity_share"]
        result.add("scoring", "Comprehend sentiment", scored * units * prices["comprehend_unit"])
        result.add(
            "scoring", "Comprehend toxicity", scored * share * units * prices["comprehend_unit"]
        )
    if deployment.backend in ("managed", "cascade"):
        per_1k = prices["titan_embed_v2_per_1k_tokens"]
        tokens = 0.0
        if "similarity" in services:
            tokens += (chars_p + chars_r) / prices["titan_chars_per_token"]
        if "refusal" in services:
            tokens += min(chars_r, 1000) / prices["titan_chars_per_token"]
        result.add("scoring", "Bedrock Titan embeddings", scored * tokens / 1000 * per_1k)
    # Lambda: each service's declared CPU-seconds and API wait per interaction, at the memory
    # the stack sizes it with for this volume (a share of one vCPU below 1,769 MB).
    sizes = capacity_plan(
        deployment.invocations_per_day,
        3.0,
        deployment.sample_rate,
        deployment.backend,
        1000,
        services,
    )
    lambda_usd = sum(s.usd_per_million for s in sizes.services) * scored / 1e6
    result.add(
        "compute",
        "Lambda (" + ", ".join(f"{s.service} {s.memory_mb} MB" for s in sizes.services) + ")",
        lambda_usd,
    )

    # Delivery
    fanout = len(services)
    result.add(
        "delivery",
        "S3 GET (one per object per service)",
        objects * fanout / 1000 * prices["s3_get_per_1k"],
    )
    sqs_requests = objects * fanout * (1 + 2 / prices["sqs_batch_size"])
    result.add("delivery", "SQS requests", sqs_requests / 1e6 * prices["sqs_per_1m_requests"])
    result.add("delivery", "SNS publishes", objects / 1e6 * prices["sns_per_1m_publishes"])
    writes = objects * fanout * prices["dynamodb_writes_per_object"]
    result.add(
        "delivery",
        "DynamoDB idempotency and checkpoints",
        writes / 1e6 * prices["dynamodb_per_1m_write_units"]
        + objects * fanout / 1e6 * prices["dynamodb_per_1m_read_units"],
    )

    # CloudWatch
    found = emitted(deployment, services)
    series = len(found["series"])
    result.add(
        "cloudwatch",
        f"custom metrics ({series})",
        tiered(series, prices["cloudwatch_metric_tiers"]),
    )
    alarms = build_alarms(
        services,
        model_ids(deployment.models),
        "llmmon",
        AlarmNames("llmmon"),
        anomaly_band=2.0 if deployment.anomaly_detection else None,
    )
    units = alarm_units(alarms)
    result.add(
        "cloudwatch",
        f"alarms ({len(alarms.metric_alarms)} metric, {units['composite']} composite)",
        units["standard"] * prices["cloudwatch_alarm_per_metric"]
        + units["anomaly"] * prices["cloudwatch_anomaly_alarm"]
        + units["composite"] * prices["cloudwatch_composite_alarm"],
    )
    result.add("cloudwatch", "dashboard", prices["cloudwatch_dashboard"])
    emf_gb = scored * found["emf_bytes_per_interaction"] / 1e9
    result.add(
        "cloudwatch", "EMF log ingestion", emf_gb * prices["cloudwatch_logs_ingestion_per_gb"]
    )

    # Canary
    if deployment.canary_runs_per_day and "refusal" in services:
        from llmmon_canary.probes import load_probes

        probes = len(load_probes().probes)
        calls = probes * deployment.canary_runs_per_day * deployment.canary_models * DAYS
        price_in, price_out = prices["canary_model_per_1k_tokens"]
        per_call = 60 / 1000 * price_in + 300 / 1000 * price_out
        result.add("canary", f"Bedrock probes ({probes} a run)", calls * per_call)

    # The scores (the services' declared metrics, a probe's under its Canary name) that no
    # alarm reads; the pipeline's own counts are not scores and stay.
    scores = {m.name for spec in services.values() for m in spec.metrics}
    dropped_candidates = sorted(
        name
        for name in {name for name, _ in found["series"]}
        if name.removeprefix("Canary") in scores or name in scores
        if name not in {a.metric for a in alarms.metric_alarms}
    )
    result.facts = {
        "custom_metrics": series,
        "series_per_service": found["per_service"],
        "emf_bytes_per_interaction": round(found["emf_bytes_per_interaction"], 1),
        "metric_alarms": len(alarms.metric_alarms),
        "composite_alarms": units["composite"],
        "not_alarmed": dropped_candidates,
        "prices_as_of": prices["_as_of"],
    }
    return result


def capacity_plan(
    invocations_per_day: int,
    peak_factor: float,
    sample_rate: float,
    backend: str,
    concurrency: int,
    services: Mapping[str, ServiceSpec] | None = None,
) -> Any:
    """The stack's sizing (``llmmon_shared.capacity.plan``) for the scoring services."""
    from llmmon_shared.capacity import Volume, plan

    specs = (
        services
        if services is not None
        else {name: spec for name, spec in discover().items() if name != "canary"}
    )
    volume = Volume(invocations_per_day, peak_factor, sample_rate, account_concurrency=concurrency)
    backends = {
        name: (backend if spec.backend_setting else "local") for name, spec in specs.items()
    }
    return plan(specs, backends, volume)


def capacity_command(
    invocations_per_day: int,
    peak_factor: float,
    sample_rate: float,
    backend: str,
    concurrency: int,
    as_json: bool,
) -> int:
    from llmmon_shared.capacity import as_json as plan_json
    from llmmon_shared.capacity import render as plan_text

    result = capacity_plan(invocations_per_day, peak_factor, sample_rate, backend, concurrency)
    if as_json:
        print(json.dumps(plan_json(result)))
    else:
        print(plan_text(result))
        cpus = {s.scoring.measured_on for s in discover().values() if s.scoring.measured_on}
        print("CPU-seconds measured on: " + "; ".join(sorted(cpus)))
    return 0


def render(deployment: Deployment, result: Bill) -> str:
    out = [
        f"llmmon, monthly ({DAYS} days), {deployment.models} models x "
        f"{max(1, deployment.apps_per_model)} application(s), "
        f"{deployment.invocations_per_day:,} invocations a day, backend {deployment.backend}, "
        f"sample rate {deployment.sample_rate:g}; list prices of {result.facts['prices_as_of']}"
    ]
    for group in ("scoring", "compute", "delivery", "cloudwatch", "canary"):
        items = [(i, u) for g, i, u in result.lines if g == group]
        if not items:
            continue
        out.append(f"  {group:<10} {result.total(group):>12,.2f} USD")
        out.extend(f"    {item:<52} {usd:>12,.2f}" for item, usd in items)
    out.append(f"  {'total':<10} {result.total():>12,.2f} USD")
    return "\n".join(out)


def command(deployment: Deployment, as_json: bool) -> int:
    result = bill(deployment)
    if as_json:
        print(
            json.dumps(
                {
                    "deployment": deployment.__dict__,
                    "lines": [
                        {"group": g, "item": i, "usd": round(u, 2)} for g, i, u in result.lines
                    ],
                    "total": round(result.total(), 2),
                    **result.facts,
                }
            )
        )
        return 0
    print(render(deployment, result))
    cw = result.total("cloudwatch")
    other = bill(
        Deployment(**{**deployment.__dict__, "detail_metrics": not deployment.detail_metrics})
    )
    if deployment.detail_metrics:
        print(
            f"\nCloudWatch is {cw / max(result.total(), 1e-9):.0%} of the bill. With detail off "
            f"(the default: each service's scores no alarm reads are not emitted) it is "
            f"{other.total('cloudwatch'):,.2f} USD ({other.facts['custom_metrics']} custom "
            f"metrics instead of {result.facts['custom_metrics']})."
        )
    else:
        print(
            f"\nCloudWatch is {cw / max(result.total(), 1e-9):.0%} of the bill: the lean default "
            f"set ({result.facts['custom_metrics']} custom metrics). Turning every service's "
            f"detail scores on (detailMetrics, LLMMON_DETAIL_METRICS) would make it "
            f"{other.total('cloudwatch'):,.2f} USD ({other.facts['custom_metrics']} custom "
            "metrics)."
        )
    return 0
