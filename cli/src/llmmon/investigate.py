"""``llmmon investigate``: from an alarm to its evidence.

The alarm says a metric of a model crossed a line. This reads the log objects of the alarm's
breaching periods (and of a baseline before them) from the log bucket, scores them again with the
deployed service's own code and settings, and reports:

1. the metric recomputed over the window and the baseline, next to CloudWatch's value;
2. the records behind the alarm, ranked, each with its decision and reasons (ids and scores);
3. what changed: for every attribute the log holds without its text (request metadata, model and
   inference profile, operation, guardrail, a fingerprint of the system prompt, length and token
   buckets, stop reason, caller), how much of the rise in bad records it accounts for;
4. for refusal, the rules and reference phrases whose share rose most.

Nothing that leaves the terminal holds prompt or response text: the JSON and HTML carry ids, scores
and fingerprints only. ``--show-text`` adds short excerpts to the terminal output, never to a file.

The analysis (:func:`analyse`) is pure: rows in, findings out. :class:`Evidence` does the I/O.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmmon.errors import CliError, UsageError
from llmmon_shared.events import ObjectRef, classify_key
from llmmon_shared.extract import Interaction
from llmmon_shared.logs import InvocationLogRecord
from llmmon_shared.metrics import MemorySink, looks_personal
from llmmon_shared.runtime import CANARY_EXPECT_KEY, CANARY_KEY, Boto3S3Reader, Scores
from llmmon_shared.spec import ServiceSpec, discover

CANARY_KEYS = frozenset({CANARY_KEY, CANARY_EXPECT_KEY, "llmmon-probe"})
TOP_RECORDS = 20
CONSTANT_SHARE = 0.98
"""An attribute value held by this share of the records in both windows explains nothing."""
EXCERPT_CHARS = 80


# --------------------------------------------------------------------------------------------
# What is investigated


@dataclass(frozen=True)
class Target:
    """One alarm's metric series and rule."""

    service: str
    metric: str
    """As emitted (``Refusal``, ``CanaryOverRefusal``)."""
    model: str | None
    dimensions: Mapping[str, str]
    statistic: str = "Average"
    comparison: str = "GreaterThanThreshold"
    threshold: float | None = None
    period_s: int = 300
    evaluation_periods: int = 3
    alarm: str | None = None
    namespace: str = "llmmon"
    band: bool = False
    """An anomaly-detection alarm: ``threshold`` is a band width, not a value."""

    @property
    def high_is_bad(self) -> bool:
        return not self.comparison.startswith("LessThan")

    @property
    def canary(self) -> bool:
        return self.metric.startswith("Canary")

    @property
    def score_name(self) -> str:
        """The name the scorer gives the value (the pipeline adds ``Canary`` for probes)."""
        return self.metric[len("Canary") :] if self.canary else self.metric


def service_of(metric: str, services: Mapping[str, ServiceSpec]) -> str:
    for name, spec in services.items():
        names = {m.name for m in spec.metrics}
        if metric in names or metric.removeprefix("Canary") in names:
            return name
    raise CliError(
        f"metric {metric!r} is not one llmmon's services emit (services: {', '.join(services)})"
    )


def target_from_alarm(alarm: Mapping[str, Any], services: Mapping[str, ServiceSpec]) -> Target:
    """A CloudWatch ``MetricAlarm`` (DescribeAlarms) as a target: a plain metric alarm, or an
    anomaly or metric-math alarm whose metric is one of llmmon's quality metrics."""
    name = str(alarm["AlarmName"])
    stat: Mapping[str, Any] | None = None
    if alarm.get("MetricName"):
        stat = {
            "Metric": {
                "Namespace": alarm.get("Namespace"),
                "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions", []),
            },
            "Period": alarm.get("Period", 300),
            "Stat": alarm.get("Statistic") or alarm.get("ExtendedStatistic") or "Average",
        }
    else:
        for query in alarm.get("Metrics", []):
            if query.get("MetricStat", {}).get("Metric", {}).get("MetricName"):
                stat = query["MetricStat"]
                break
    if stat is None:
        raise CliError(f"alarm {name!r} watches no metric llmmon could re-score")
    metric = stat["Metric"]
    dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
    if "ModelId" not in dimensions:
        raise CliError(
            f"alarm {name!r} is not an llmmon quality alarm (it watches "
            f"{metric.get('Namespace')}/{metric['MetricName']} without a ModelId): its evidence "
            "is in the queues and function logs, see docs/operations.md"
        )
    comparison = str(alarm.get("ComparisonOperator", "GreaterThanThreshold"))
    return Target(
        service=service_of(str(metric["MetricName"]), services),
        metric=str(metric["MetricName"]),
        model=dimensions["ModelId"],
        dimensions=dimensions,
        statistic=str(stat.get("Stat", "Average")),
        comparison=comparison,
        threshold=float(alarm["Threshold"]) if "Threshold" in alarm else None,
        period_s=int(stat.get("Period", 300)),
        evaluation_periods=int(alarm.get("EvaluationPeriods", 3)),
        alarm=name,
        namespace=str(metric.get("Namespace") or "llmmon"),
        band="UpperThreshold" in comparison or "LowerThreshold" in comparison,
    )


# --------------------------------------------------------------------------------------------
# One scored record, without its text


@dataclass
class Row:
    request_id: str
    key: str
    line: int
    time: datetime
    value: float
    bad: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, Any] = field(default_factory=dict)
    excerpt: tuple[str, str] | None = None
    """(prompt, response) excerpts: the terminal's, with ``--show-text``; never written."""

    def public(self) -> dict[str, Any]:
        """The row as JSON and HTML may hold it: ids, scores, fingerprints."""
        out = asdict(self)
        out.pop("excerpt")
        out["time"] = self.time.isoformat(timespec="seconds")
        return out


def fingerprint(text: str) -> str:
    return "fp:" + hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=5).hexdigest()


def bucket(value: int | None, edges: Sequence[int], unit: str) -> str:
    if value is None:
        return "-"
    low = 0
    for edge in edges:
        if value < edge:
            return f"{low}-{edge - 1} {unit}"
        low = edge
    return f">={low} {unit}"


def metadata_value(value: str) -> str:
    """A request-metadata value as the report may show it: an identifier-like value as it is,
    anything else (free text, personal shapes) as a fingerprint."""
    plain = len(value) <= 64 and value.replace("-", "").replace("_", "").replace(".", "").isalnum()
    return value if plain and not looks_personal(value) else fingerprint(value)


def _guardrail_config(record: InvocationLogRecord) -> str | None:
    body = record.input.input_body_json if record.input is not None else None
    if not isinstance(body, dict):
        return None
    config = body.get("guardrailConfig") or body.get("guardrail_config")
    if not isinstance(config, dict):
        return None
    ident = config.get("guardrailIdentifier") or config.get("guardrailId")
    version = config.get("guardrailVersion")
    if not ident:
        return None
    return f"{str(ident).rsplit('/', 1)[-1]}:{version or '-'}"


def attributes(record: InvocationLogRecord, interaction: Interaction) -> dict[str, str]:
    """What the log says about a record besides its text, each as a short value."""
    found = {"model": interaction.model_id, "operation": interaction.operation or "-"}
    if interaction.raw_model_id and interaction.raw_model_id != interaction.model_id:
        found["inference profile"] = interaction.raw_model_id
    for key, value in sorted(interaction.request_metadata.items()):
        if key not in CANARY_KEYS:  # the canary's own tags: which probe, not why
            found[f"requestMetadata.{metadata_value(key)}"] = metadata_value(str(value))
    found["system prompt"] = fingerprint(interaction.system) if interaction.system else "none"
    found["prompt length"] = bucket(len(interaction.prompt), (200, 1000, 4000), "chars")
    found["stop reason"] = interaction.stop_reason or "-"
    found["input tokens"] = bucket(interaction.input_tokens, (100, 500, 2000), "tokens")
    found["output tokens"] = bucket(interaction.output_tokens, (100, 500, 2000), "tokens")
    found["caller"] = interaction.identity_arn or "-"
    guardrail = _guardrail_config(record)
    if guardrail:
        found["guardrail"] = guardrail
    if interaction.guardrail is not None and interaction.guardrail.acted:
        policies = sorted(interaction.guardrail.blocked_policies) or ["intervened"]
        found["guardrail policies"] = ",".join(policies)
    return found


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


# --------------------------------------------------------------------------------------------
# The analysis: pure


@dataclass(frozen=True)
class Change:
    attribute: str
    value: str
    window_bad_share: float
    """Of the window's bad records, the share with this value."""
    baseline_bad_share: float | None
    window_share: float
    """Of all the window's records, the share with this value."""
    baseline_share: float | None
    contribution: float
    """How much of the window's bad-record rate, over the baseline's, records with this value
    account for (rate points)."""
    explained: float | None
    """``contribution`` over the whole rise (None without a rise)."""


def bad_threshold(target: Target, baseline: Sequence[Row]) -> float:
    """The value beyond which one record is bad: the alarm's threshold, or for an anomaly
    alarm the baseline's 90th percentile (its 10th where low is bad)."""
    if target.threshold is not None and not target.band:
        return target.threshold
    values = sorted(r.value for r in baseline)
    if not values:
        return 0.5
    index = int(0.9 * (len(values) - 1)) if target.high_is_bad else int(0.1 * (len(values) - 1))
    return values[index]


def mark_bad(rows: Iterable[Row], target: Target, threshold: float) -> None:
    for row in rows:
        row.bad = row.value > threshold if target.high_is_bad else row.value < threshold


def what_changed(window: Sequence[Row], baseline: Sequence[Row]) -> list[Change]:
    """Every attribute value, ranked by how much of the rise in the bad-record rate (window
    against baseline) the records holding it account for. Values held by nearly every record in
    both windows (the model itself) are left out: they explain nothing."""
    if not window:
        return []
    n_w, n_b = len(window), len(baseline)
    bad_w = [r for r in window if r.bad]
    bad_b = [r for r in baseline if r.bad]
    rise = len(bad_w) / n_w - (len(bad_b) / n_b if n_b else 0.0)

    def counts(rows: Iterable[Row]) -> Counter[tuple[str, str]]:
        return Counter((a, v) for r in rows for a, v in r.attributes.items())

    all_w, all_b, c_bad_w, c_bad_b = counts(window), counts(baseline), counts(bad_w), counts(bad_b)
    changes = []
    for pair in set(all_w) | set(all_b):
        share_w = all_w[pair] / n_w
        share_b = all_b[pair] / n_b if n_b else None
        if share_w >= CONSTANT_SHARE and (share_b is None or share_b >= CONSTANT_SHARE):
            continue
        if c_bad_w[pair] == all_w[pair] == len(bad_w) and c_bad_b[pair] == all_b[pair] == len(
            bad_b
        ):
            continue  # the definition of bad itself (stop reason guardrail_intervened)
        contribution = c_bad_w[pair] / n_w - (c_bad_b[pair] / n_b if n_b else 0.0)
        changes.append(
            Change(
                attribute=pair[0],
                value=pair[1],
                window_bad_share=c_bad_w[pair] / len(bad_w) if bad_w else 0.0,
                baseline_bad_share=(c_bad_b[pair] / len(bad_b) if bad_b else 0.0) if n_b else None,
                window_share=share_w,
                baseline_share=share_b,
                contribution=contribution,
                explained=contribution / rise if rise > 0 else None,
            )
        )

    def rank(change: Change) -> tuple[float, float, int, str, str]:
        # Ties (an application and its system prompt hold the same records) go to the
        # attribute a person acts on first: request metadata, then the rest in name order.
        within = change.window_bad_share / change.window_share if change.window_share else 0.0
        first = 0 if change.attribute.startswith("requestMetadata.") else 1
        return (-round(change.contribution, 9), -within, first, change.attribute, change.value)

    return sorted(changes, key=rank)


def ranked(rows: Iterable[Row], target: Target) -> list[Row]:
    """Bad records first, the worst value first, then the most confident decision."""

    def confidence(row: Row) -> float:
        numbers = [
            float(row.reasons.get(k, 0.0) or 0.0)
            for k in ("similarity", "fuzzy")
            if k in row.reasons
        ]
        return max(numbers, default=0.0)

    sign = -1.0 if target.high_is_bad else 1.0
    return sorted(rows, key=lambda r: (not r.bad, sign * r.value, -confidence(r), r.request_id))


def reference_shift(window: Sequence[Row], baseline: Sequence[Row]) -> list[dict[str, Any]]:
    """Refusal: which rules, reference phrases and cues decided the bad records, and how their
    share of all records moved from the baseline."""

    def tally(rows: Sequence[Row]) -> Counter[str]:
        found: Counter[str] = Counter()
        for row in rows:
            if not row.bad:
                continue
            reasons = row.reasons
            if reasons.get("rule"):
                found[f"rule {reasons['rule']}"] += 1
            if reasons.get("rule") == "embedding" and reasons.get("similarity_reference"):
                found[f"phrase {reasons['similarity_reference']}"] += 1
            if reasons.get("rule") == "fuzzy" and reasons.get("fuzzy_reference"):
                found[f"phrase {reasons['fuzzy_reference']}"] += 1
            for cue in reasons.get("cues", ()) or ():
                found[f"cue {cue}"] += 1
        return found

    in_w, in_b = tally(window), tally(baseline)
    out = []
    for name in set(in_w) | set(in_b):
        share_w = in_w[name] / len(window) if window else 0.0
        share_b = in_b[name] / len(baseline) if baseline else 0.0
        out.append(
            {
                "reason": name,
                "window_share": round(share_w, 4),
                "baseline_share": round(share_b, 4) if baseline else None,
                "rise": round(share_w - share_b, 4),
            }
        )
    return sorted(out, key=lambda r: (-r["rise"], r["reason"]))


def statistic(values: Sequence[float], name: str) -> float | None:
    if not values:
        return None
    if name == "Sum":
        return float(sum(values))
    if name == "SampleCount":
        return float(len(values))
    if name == "Maximum":
        return max(values)
    if name == "Minimum":
        return min(values)
    return float(sum(values) / len(values))


def per_period(rows: Iterable[Row], period_s: int) -> dict[datetime, list[float]]:
    found: dict[datetime, list[float]] = defaultdict(list)
    for row in rows:
        start = int(row.time.timestamp()) // period_s * period_s
        found[datetime.fromtimestamp(start, UTC)].append(row.value)
    return dict(sorted(found.items()))


@dataclass
class Window:
    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def public(self) -> dict[str, str]:
        return {
            "from": self.start.isoformat(timespec="seconds"),
            "to": self.end.isoformat(timespec="seconds"),
        }


def analyse(
    target: Target,
    window: Sequence[Row],
    baseline: Sequence[Row],
    top: int = TOP_RECORDS,
) -> dict[str, Any]:
    """The findings over scored rows of both windows (marks each row bad or not)."""
    threshold = bad_threshold(target, baseline)
    mark_bad([*window, *baseline], target, threshold)
    found: dict[str, Any] = {
        "bad_threshold": threshold,
        "window_records": len(window),
        "window_bad": sum(r.bad for r in window),
        "baseline_records": len(baseline),
        "baseline_bad": sum(r.bad for r in baseline),
        "window_value": statistic([r.value for r in window], target.statistic),
        "baseline_value": statistic([r.value for r in baseline], target.statistic),
        "records": ranked(window, target)[:top],
        "changes": what_changed(window, baseline),
    }
    if target.service == "refusal":
        found["reasons"] = reference_shift(window, baseline)
    return found


# --------------------------------------------------------------------------------------------
# Windows from the alarm's history


def breach_start(
    value_at: Callable[[datetime], float | None], target: Target, entered: datetime
) -> datetime | None:
    """The first of the consecutive breaching periods that led to ``entered`` (the alarm's
    move to ALARM): walking back, one period at a time (``value_at(period start)``), from the
    latest period with a value at ``entered`` while each period's value is beyond the threshold
    (at most a day back)."""
    if target.threshold is None or target.band:
        return None
    period = timedelta(seconds=target.period_s)
    start = _align(entered, target.period_s)
    value = value_at(start)
    # The current period may be empty or partial: start from the latest one with a value.
    for _ in range(target.evaluation_periods):
        if value is not None and _beyond(value, target):
            break
        start -= period
        value = value_at(start)
    first = None
    oldest = entered - timedelta(days=1)
    while value is not None and _beyond(value, target) and start >= oldest:
        first = start
        start -= period
        value = value_at(start)
    return first


def _beyond(value: float, target: Target) -> bool:
    assert target.threshold is not None
    if target.high_is_bad:
        return value > target.threshold
    return value < target.threshold


def alarm_transitions(cloudwatch: Any, name: str) -> list[tuple[datetime, str]]:
    """``(time, new state)`` of the alarm's state changes, oldest first: from its history where
    the endpoint keeps one (CloudWatch: 14 days), else its current state's time."""
    moves: list[tuple[datetime, str]] = []
    with contextlib.suppress(Exception):  # a local endpoint has no alarm history
        pages = cloudwatch.get_paginator("describe_alarm_history").paginate(
            AlarmName=name, HistoryItemType="StateUpdate"
        )
        for page in pages:
            for item in page.get("AlarmHistoryItems", []):
                data = json.loads(item.get("HistoryData") or "{}")
                state = data.get("newState", {}).get("stateValue")
                if state:
                    moves.append((item["Timestamp"], state))
    if not moves:
        alarms = cloudwatch.describe_alarms(AlarmNames=[name]).get("MetricAlarms", [])
        if alarms and alarms[0].get("StateUpdatedTimestamp"):
            moves.append((alarms[0]["StateUpdatedTimestamp"], alarms[0]["StateValue"]))
    return sorted((_utc(t), s) for t, s in moves)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def span_stats(
    cloudwatch: Any, target: Target, start: datetime, end: datetime
) -> dict[str, float] | None:
    """CloudWatch's statistics of the target's series over ``[start, end)`` as one datapoint
    (the statistic, SampleCount and Sum), or None without data. One period spanning the whole
    range: the same answer from CloudWatch and from a local endpoint that counts periods from
    the first datapoint rather than the clock."""
    seconds = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
    wanted = sorted({target.statistic, "SampleCount", "Sum"} & _PLAIN_STATS)
    response = cloudwatch.get_metric_statistics(
        Namespace=target.namespace,
        MetricName=target.metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in target.dimensions.items()],
        StartTime=start,
        EndTime=end,
        Period=seconds,
        Statistics=wanted,
    )
    points = response.get("Datapoints", [])
    if not points:
        return None
    merged: dict[str, float] = {}
    for name in wanted:
        values = [float(p[name]) for p in points if name in p]
        if not values:
            continue
        pick = {"Maximum": max, "Minimum": min}.get(name, sum)
        merged[name] = pick(values)
    if "Average" in merged and merged.get("SampleCount"):
        merged["Average"] = merged.get("Sum", 0.0) / merged["SampleCount"]
    return merged


_PLAIN_STATS = frozenset({"Average", "Sum", "SampleCount", "Maximum", "Minimum"})


# --------------------------------------------------------------------------------------------
# Reading the log bucket


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour <= end:
        yield hour
        hour += timedelta(hours=1)


def _common_prefixes(s3: Any, bucket: str, prefix: str) -> list[str]:
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    ):
        found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return found


def log_objects(
    s3: Any, bucket: str, log_prefix: str, start: datetime, end: datetime
) -> list[tuple[str, int]]:
    """The log objects of the hourly partitions that can hold records of ``[start, end)``
    (Bedrock files a record under the hour its object was written: up to an hour later)."""
    root = f"{log_prefix.strip('/')}/AWSLogs/" if log_prefix.strip("/") else "AWSLogs/"
    found: list[tuple[str, int]] = []
    for account in _common_prefixes(s3, bucket, root):
        for region in _common_prefixes(s3, bucket, f"{account}BedrockModelInvocationLogs/"):
            for hour in hours(start, end + timedelta(hours=1)):
                partition = f"{region}{hour:%Y/%m/%d/%H}/"
                for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=partition, Delimiter="/"
                ):
                    for item in page.get("Contents", []):
                        if classify_key(item["Key"], int(item["Size"])) is None:
                            found.append((item["Key"], int(item["Size"])))
    return sorted(found)


def capped(objects: Sequence[tuple[str, int]], most: int | None) -> list[tuple[str, int]]:
    """At most ``most`` objects, a sample deterministic by key (the same on every run)."""
    if most is None or len(objects) <= most:
        return list(objects)

    def digest(item: tuple[str, int]) -> bytes:
        return hashlib.blake2b(item[0].encode(), digest_size=8).digest()

    return sorted(sorted(objects, key=digest)[:most])


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """The deployed function's settings for the length of a scoring run."""
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


SCORER_ONLY = ("LLMMON_SINK", "LLMMON_IDEMPOTENCY_TABLE", "LLMMON_EXPLAIN", "LLMMON_LOG_LEVEL")


def scorer_settings(function_env: Mapping[str, str]) -> dict[str, str]:
    """The function's ``LLMMON_*`` settings, less what belongs to delivery, not scoring."""
    keep = {k: v for k, v in function_env.items() if k.startswith("LLMMON_")}
    for name in SCORER_ONLY:
        keep.pop(name, None)
    keep.update(LLMMON_SINK="memory", LLMMON_LOG_LEVEL="ERROR")
    return keep


@dataclass
class Evidence:
    """Reads and re-scores the log objects of a window with one service's deployed code."""

    target: Target
    s3: Any
    bucket: str
    log_prefix: str
    settings: Mapping[str, str]
    show_text: bool = False
    progress: Callable[[str], None] = lambda _: None
    decisions: dict[str, Any] = field(default_factory=dict)

    def pipeline(self) -> Any:
        spec = discover()[self.target.service]
        handler = importlib.import_module(spec.module)
        with environment(self.settings):
            made = handler.create_pipeline(s3=Boto3S3Reader(self.s3), sink=MemorySink())
        if hasattr(made.compute, "explain"):  # refusal: every decision, with its reasons

            def collect(request_id: str, decision: Any) -> None:
                self.decisions[request_id] = asdict(decision)

            made.compute.explain = collect
        return made

    def rows(self, objects: Sequence[tuple[str, int]], windows: Sequence[Window]) -> list[Row]:
        """The target model's scored records of ``objects`` that fall in any of ``windows``."""
        target, pipeline = self.target, self.pipeline()

        def keep(interaction: Interaction) -> bool:
            moment = interaction.timestamp
            return (
                interaction.model_id == target.model
                and (CANARY_KEY in interaction.request_metadata) == target.canary
                and moment is not None
                and any(_utc(moment) in w for w in windows)
            )

        found: list[Row] = []
        for number, (key, _) in enumerate(objects, start=1):
            self.progress(f"{number}/{len(objects)} objects")
            ref = ObjectRef(self.bucket, key, None, None)
            try:
                scored = list(pipeline.evidence(ref, keep))
            except Exception as exc:  # an unreadable object: the DLQ has it; say so and go on
                self.progress(f"skipped {key.rsplit('/', 1)[-1]}: {type(exc).__name__}")
                continue
            for line, record, interaction, scores in scored:
                row = self._row(key, line, record, interaction, scores)
                if row is not None:
                    found.append(row)
        return found

    def _row(
        self,
        key: str,
        line: int,
        record: InvocationLogRecord,
        interaction: Interaction,
        scores: Scores | None,
    ) -> Row | None:
        if scores is None or self.target.score_name not in scores:
            return None
        value = float(scores[self.target.score_name])
        if not math.isfinite(value):
            return None
        name = self.target.score_name
        reasons: dict[str, Any] = {
            k: round(float(v), 4) for k, v in scores.items() if k == name or float(v) != 0.0
        }
        decision = self.decisions.pop(interaction.request_id, {})
        if decision:  # the scores repeat the decision's own figures
            reasons = {name: reasons[name]} if name in reasons else {}
            reasons.update(
                (k, round(v, 4) if isinstance(v, float) else v)
                for k, v in decision.items()
                if k != "refusal" and v not in (None, (), [])
            )
        if self.target.service == "similarity":
            reasons["prompt_chars_read"] = len(interaction.prompt)
        assert interaction.timestamp is not None
        return Row(
            request_id=interaction.request_id,
            key=key,
            line=line,
            time=_utc(interaction.timestamp),
            value=value,
            attributes=attributes(record, interaction),
            reasons=reasons,
            excerpt=(
                (_excerpt(interaction.prompt), _excerpt(interaction.completion))
                if self.show_text
                else None
            ),
        )


# --------------------------------------------------------------------------------------------
# Reports


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def public_report(
    target: Target,
    window: Window,
    baseline: Window | None,
    baseline_note: str,
    findings: Mapping[str, Any],
    cloudwatch: Mapping[str, Any],
    reading: Mapping[str, Any],
) -> dict[str, Any]:
    """The one JSON object ``--json`` prints and the HTML is made from: no text."""
    changes = [asdict(c) for c in findings["changes"][:15]]
    return {
        "alarm": target.alarm,
        "service": target.service,
        "metric": target.metric,
        "model": target.model,
        "statistic": target.statistic,
        "threshold": target.threshold,
        "window": window.public(),
        "baseline": baseline.public() if baseline else None,
        "baseline_note": baseline_note,
        "read": dict(reading),
        "recomputed": {
            "window": findings["window_value"],
            "baseline": findings["baseline_value"],
            "window_records": findings["window_records"],
            "window_bad": findings["window_bad"],
            "baseline_records": findings["baseline_records"],
            "baseline_bad": findings["baseline_bad"],
            "bad_means": (
                f"{target.score_name} {'>' if target.high_is_bad else '<'} "
                f"{findings['bad_threshold']:g}"
            ),
        },
        "cloudwatch": dict(cloudwatch),
        "records": [r.public() for r in findings["records"]],
        "what_changed": changes,
        "refusal_reasons": findings.get("reasons", [])[:10],
    }


def print_report(report: Mapping[str, Any], rows: Sequence[Row], out: Any = sys.stdout) -> None:
    """The terminal's view of the report (with excerpts when the rows carry them)."""

    def say(text: str = "") -> None:
        print(text, file=out)

    recomputed, cw = report["recomputed"], report["cloudwatch"]
    say(f"{report['alarm'] or report['metric']}: {report['metric']} of {report['model']}")
    say(f"  window   {report['window']['from']} .. {report['window']['to']}")
    if report["baseline"]:
        base = report["baseline"]
        say(f"  baseline {base['from']} .. {base['to']} ({report['baseline_note']})")
    else:
        say(f"  baseline: {report['baseline_note']}")
    read = report["read"]
    say(
        f"  read {read['objects']} log objects ({read['bytes'] / 1e6:.1f} MB){read.get('note', '')}"
    )
    say("")
    say(f"1. {report['statistic']} of {report['metric']}")
    say(f"   {'':<10} {'llmmon':>8} {'CloudWatch':>11} {'records':>8} {'bad':>6}")
    say(
        f"   {'window':<10} {_fmt(recomputed['window']):>8} {_fmt(cw.get('window')):>11} "
        f"{recomputed['window_records']:>8} {recomputed['window_bad']:>6}"
    )
    say(
        f"   {'baseline':<10} {_fmt(recomputed['baseline']):>8} {_fmt(cw.get('baseline')):>11} "
        f"{recomputed['baseline_records']:>8} {recomputed['baseline_bad']:>6}"
    )
    say(f"   {cw.get('agreement', '')}")
    say(f"   a record is bad when {recomputed['bad_means']}")
    say("")
    say(f"2. records behind the alarm (top {len(rows)}; object key and line to read them)")
    for row in rows:
        reasons = ", ".join(
            f"{k}={v}"
            for k, v in row.reasons.items()
            if v not in (None, "", (), []) and k != "refusal"
        )
        say(
            f"   {'BAD ' if row.bad else '    '}{row.time:%H:%M:%S} {row.request_id} "
            f"{row.value:.3f}  {row.key.rsplit('/', 1)[-1]}:{row.line}"
        )
        say(f"        {reasons}")
        if row.excerpt is not None:
            say(f"        prompt:   {row.excerpt[0]}")
            say(f"        response: {row.excerpt[1]}")
    say("")
    say("3. what changed (share of bad records with the value: window vs baseline)")
    for change in report["what_changed"][:8]:
        base = change["baseline_bad_share"]
        explained = change["explained"]
        say(
            f"   {change['attribute']} = {change['value']}: "
            f"{change['window_bad_share']:.0%} vs {'-' if base is None else f'{base:.0%}'}"
            f" of bad records; {change['window_share']:.0%} of traffic"
            + (f"; explains {explained:.0%} of the rise" if explained is not None else "")
        )
    if report["refusal_reasons"]:
        say("")
        say("4. refusal rules and reference phrases (share of all records: window vs baseline)")
        for reason in report["refusal_reasons"][:6]:
            base = reason["baseline_share"]
            say(
                f"   {reason['reason']}: {reason['window_share']:.1%} vs "
                f"{'-' if base is None else f'{base:.1%}'}"
            )


def html_report(
    report: Mapping[str, Any], window_rows: Sequence[Row], base_rows: Sequence[Row], period_s: int
) -> str:
    from llmmon.report import Chart, Report, Series, Threshold, render

    def series(label: str, rows: Sequence[Row], shift: timedelta) -> Series:
        points = per_period(rows, period_s)
        return Series(
            label,
            [(t + shift, statistic(v, report["statistic"]) or 0.0) for t, v in points.items()],
        )

    charts = []
    if window_rows:
        shift = timedelta(0)
        if report["baseline"] and base_rows:
            shift = datetime.fromisoformat(report["window"]["from"]) - datetime.fromisoformat(
                report["baseline"]["from"]
            )
        lines = [series("window", window_rows, timedelta(0))]
        if base_rows:
            lines.append(series("baseline (shifted onto the window)", base_rows, shift))
        thresholds = (
            [Threshold("alarm threshold", float(report["threshold"]))]
            if report["threshold"] is not None
            else []
        )
        charts.append(
            Chart(
                f"{report['metric']} of {report['model']}",
                "Recomputed per period from the log objects: the window against its baseline.",
                lines,
                thresholds,
            )
        )
    page = Report(
        title=f"llmmon investigate: {report['alarm'] or report['metric']}",
        generated=datetime.now(UTC),
        summary=[
            ("metric", f"{report['statistic']} of {report['metric']} ({report['model']})"),
            ("window", f"{report['window']['from']} .. {report['window']['to']}"),
            (
                "baseline",
                f"{report['baseline']['from']} .. {report['baseline']['to']}"
                if report["baseline"]
                else report["baseline_note"],
            ),
            (
                "recomputed",
                f"{_fmt(report['recomputed']['window'])} (window), "
                f"{_fmt(report['recomputed']['baseline'])} (baseline)",
            ),
            ("CloudWatch", report["cloudwatch"].get("agreement", "")),
        ],
        charts=charts,
        bars=[
            (
                "What changed",
                "Rate points of the rise in bad records that records with each value account for.",
                {
                    f"{c['attribute']}={c['value']}": max(0.0, c["contribution"])
                    for c in report["what_changed"][:8]
                },
            )
        ],
        tables=[
            (
                "Records behind the alarm",
                ["request id", "time", "value", "bad", "object", "line", "reasons"],
                [
                    [
                        r["request_id"],
                        r["time"],
                        f"{r['value']:.3f}",
                        "ALARM" if r["bad"] else "",
                        r["key"].rsplit("/", 1)[-1],
                        str(r["line"]),
                        json.dumps(r["reasons"], sort_keys=True),
                    ]
                    for r in report["records"]
                ],
            )
        ],
    )
    return render(page)


# --------------------------------------------------------------------------------------------
# The command


@dataclass
class Where:
    """The deployment investigated: a running local stack, or AWS."""

    cloudwatch: Any
    s3: Any
    label: str
    bucket: str | None = None
    log_prefix: str = ""
    settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Per service, the function's environment (AWS: read on demand)."""
    functions: Any = None
    """AWS: a Lambda client, to read a function's configuration."""


def _settings_for(where: Where, target: Target, prefix: str) -> tuple[dict[str, str], str, str]:
    """The service's scorer settings, and the log bucket and prefix it reads."""
    env: Mapping[str, str] = where.settings.get(target.service, {})
    if where.functions is not None:
        function = f"{prefix}-{target.service}"
        try:
            config = where.functions.get_function_configuration(FunctionName=function)
        except Exception as exc:
            raise CliError(
                f"cannot read the configuration of function {function} ({type(exc).__name__}): "
                "llmmon investigate re-scores with the deployed settings; check --prefix and "
                "lambda:GetFunctionConfiguration"
            ) from None
        env = config.get("Environment", {}).get("Variables", {})
    bucket = where.bucket or env.get("LLMMON_LOG_BUCKET")
    if not bucket:
        raise CliError(f"no log bucket known for {target.service}: give --bucket")
    prefix_in_bucket = env.get("LLMMON_LOG_PREFIX", where.log_prefix)
    return scorer_settings(env), bucket, prefix_in_bucket


def _align(moment: datetime, period_s: int, up: bool = False) -> datetime:
    seconds = int(moment.timestamp())
    aligned = seconds // period_s * period_s
    if up and aligned < seconds:
        aligned += period_s
    return datetime.fromtimestamp(aligned, UTC)


def breach_window(where: Where, target: Target, now: datetime) -> Window:
    """The alarm's breaching periods: from the first of the consecutive periods beyond the
    threshold that led to its last move to ALARM, to when it left ALARM (or now)."""
    assert target.alarm is not None
    moves = alarm_transitions(where.cloudwatch, target.alarm)
    entered = next((t for t, s in reversed(moves) if s == "ALARM"), None)
    if entered is None:
        state = f"{moves[-1][1]} since {moves[-1][0]:%Y-%m-%d %H:%M}Z" if moves else "no state yet"
        raise CliError(
            f"alarm {target.alarm} has not been in ALARM ({state}): give --from and --to"
        )
    left = next((t for t, s in moves if t > entered and s != "ALARM"), None) or now
    period = timedelta(seconds=target.period_s)

    def value_at(start: datetime) -> float | None:
        found = span_stats(where.cloudwatch, target, start, start + period)
        return None if found is None else found.get(target.statistic)

    first = breach_start(value_at, target, entered)
    start = first or _align(entered, target.period_s) - period * target.evaluation_periods
    return Window(start, _align(left, target.period_s, up=True))


def cloudwatch_figures(
    where: Where, target: Target, window: Window, baseline: Window | None
) -> dict[str, Any]:
    """CloudWatch's value of the statistic over each window (periods combined)."""

    def combined(span: Window) -> tuple[float | None, int]:
        found = span_stats(where.cloudwatch, target, span.start, span.end)
        if not found or not found.get("SampleCount"):
            return None, 0
        return found.get(target.statistic), int(found["SampleCount"])

    value, count = combined(window)
    base, base_count = combined(baseline) if baseline else (None, 0)
    return {
        "window": value,
        "window_samples": count,
        "baseline": base,
        "baseline_samples": base_count,
    }


def agreement(
    recomputed: float | None, cw: float | None, records: int, samples: int, capped_note: str
) -> str:
    if cw is None and recomputed is None:
        return "no records and no CloudWatch datapoints in the window"
    if cw is None:
        return "CloudWatch has no datapoints for the window (not scored yet, or scored elsewhere)"
    if recomputed is None:
        return "no records of the model in the window's log objects" + capped_note
    close = abs(recomputed - cw) <= max(0.01 * abs(cw), 1e-9)
    if close and records == samples:
        return f"agrees with CloudWatch ({records} values on both sides)"
    reasons = []
    if capped_note:
        reasons.append(capped_note.strip(" ;()"))
    if records < samples:
        reasons.append(
            f"CloudWatch holds {samples - records} values more: objects not listed here "
            "(written after the window's partitions) or a redelivery counted before the "
            "idempotency record existed"
        )
    elif records > samples:
        reasons.append(
            f"{records - samples} records are not in CloudWatch yet: their objects are still "
            "queued, retried, or in the dead-letter queue"
        )
    state = "agrees within 1%" if close else "differs"
    return f"{state} (llmmon {recomputed:.4f}, CloudWatch {cw:.4f}): " + "; ".join(reasons)


@dataclass
class Request:
    """What the user asked for (the command line, parsed)."""

    alarm: str | None = None
    service: str | None = None
    metric: str | None = None
    model: str | None = None
    dimensions: Mapping[str, str] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    baseline_start: datetime | None = None
    baseline_end: datetime | None = None
    max_objects: int | None = None
    show_text: bool = False
    json: bool = False
    html: str | None = None
    prefix: str = "llmmon"
    top: int = TOP_RECORDS


def resolve(request: Request, where: Where) -> Target:
    services = discover()
    if request.alarm:
        response = where.cloudwatch.describe_alarms(
            AlarmNames=[request.alarm], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        if response.get("CompositeAlarms"):
            rule = response["CompositeAlarms"][0].get("AlarmRule", "")
            raise CliError(
                f"{request.alarm} is a composite alarm: investigate the child alarm in ALARM "
                f"(its rule: {rule[:200]})"
            )
        found = response.get("MetricAlarms", [])
        if not found:
            raise CliError(f"no alarm named {request.alarm!r} in {where.label}")
        return target_from_alarm(found[0], services)
    assert request.service
    assert request.metric
    assert request.model
    if request.service not in services:
        raise UsageError(f"unknown service {request.service!r} (services: {', '.join(services)})")
    spec = services[request.service]
    if service_of(request.metric, {request.service: spec}) != request.service:
        raise UsageError(f"{request.service} does not emit {request.metric}")
    rule = next((a for a in spec.alarms if a.metric == request.metric), None)
    return Target(
        service=request.service,
        metric=request.metric,
        model=request.model,
        dimensions={"ModelId": request.model, **request.dimensions},
        statistic=rule.statistic if rule else "Average",
        comparison=str(rule.comparison) if rule else "GreaterThanThreshold",
        threshold=rule.threshold if rule and not rule.comparison.is_band else None,
        period_s=rule.period_s if rule else 300,
        evaluation_periods=rule.evaluation_periods if rule else 3,
        band=bool(rule and rule.comparison.is_band),
    )


def investigate(request: Request, where: Where, out: Any = sys.stdout) -> dict[str, Any]:
    """Run the whole investigation; prints the report (terminal or JSON) and returns it."""
    now = datetime.now(UTC)
    target = resolve(request, where)
    if bool(request.start) != bool(request.end):
        raise UsageError("--from and --to go together")
    if request.start and request.end:
        if request.start >= request.end:
            raise UsageError("--from must be before --to")
        window = Window(request.start, request.end)
    elif target.alarm:
        window = breach_window(where, target, now)
    else:
        raise UsageError("without an alarm name, give the window: --from and --to")
    prefix = request.prefix
    if target.alarm and f"-{target.service}-" in target.alarm:
        prefix = target.alarm.split(f"-{target.service}-", 1)[0]
    settings, bucket, log_prefix = _settings_for(where, target, prefix)

    def listed(span: Window) -> list[tuple[str, int]]:
        try:
            return log_objects(where.s3, bucket, log_prefix, span.start, span.end)
        except Exception as exc:
            raise CliError(
                f"cannot list s3://{bucket}/{log_prefix} ({type(exc).__name__}): "
                "investigate reads the log objects with your credentials"
            ) from None

    objects = listed(window)
    if not objects:
        raise CliError(
            f"no log objects in s3://{bucket}/{log_prefix} for {window.start:%Y-%m-%d %H:%M}Z .. "
            f"{window.end:%H:%M}Z"
        )
    length = window.end - window.start
    baseline, note = None, ""
    if bool(request.baseline_start) != bool(request.baseline_end):
        raise UsageError("--baseline-from and --baseline-to go together")
    if request.baseline_start and request.baseline_end:
        baseline, note = Window(request.baseline_start, request.baseline_end), "as given"
    else:
        day = Window(window.start - timedelta(days=1), window.end - timedelta(days=1))
        if [o for o in listed(day) if o not in objects]:
            baseline, note = day, "the same time a day earlier"
        else:
            baseline, note = Window(window.start - length, window.start), "just before the breach"
    base_objects = [o for o in listed(baseline) if o not in objects]
    everything = capped(sorted(set(objects) | set(base_objects)), request.max_objects)
    total = len(set(objects) | set(base_objects))
    size = sum(s for _, s in everything)
    capped_note = (
        f"; sampled {len(everything)} of {total} objects (--max-objects, by key)"
        if len(everything) < total
        else ""
    )
    tell = _progress_printer()
    tell(f"reading {len(everything)} log objects ({size / 1e6:.1f} MB) from s3://{bucket}", True)
    evidence = Evidence(
        target, where.s3, bucket, log_prefix, settings, request.show_text, progress=tell
    )
    rows = evidence.rows(everything, [window, baseline])
    window_rows = [r for r in rows if r.time in window]
    base_rows = [r for r in rows if r.time in baseline]
    if not base_rows:
        baseline, base_rows = None, []
        note = (
            "no earlier baseline exists: no records of this model before the breach"
            if not request.baseline_start
            else "no records of this model in the given baseline"
        )
    findings = analyse(target, window_rows, base_rows, request.top)
    cw = cloudwatch_figures(where, target, window, baseline)
    cw["agreement"] = agreement(
        findings["window_value"],
        cw["window"],
        len(window_rows),
        cw["window_samples"],
        capped_note,
    )
    report = public_report(
        target,
        window,
        baseline,
        note,
        findings,
        cw,
        {"objects": len(everything), "bytes": size, "note": capped_note, "where": where.label},
    )
    if request.json:
        print(json.dumps(report, default=str), file=out)
    else:
        print_report(report, findings["records"], out)
    if request.html:
        from pathlib import Path

        Path(request.html).write_text(
            html_report(report, window_rows, base_rows, target.period_s), encoding="utf-8"
        )
        if not request.json:
            print(f"\nHTML report: {request.html}", file=out)
    return report


def _progress_printer() -> Callable[..., None]:
    """Progress on stderr: every line on a terminal, only the first one elsewhere."""
    terminal = sys.stderr.isatty()

    def tell(message: str, always: bool = False) -> None:
        if always:
            print(message, file=sys.stderr)
        elif terminal:
            print(f"\r{message}   ", end="", file=sys.stderr, flush=True)

    return tell


def command(request: Request, stack: str | None, region: str | None, bucket: str | None) -> int:
    """``llmmon investigate``: against AWS with ``region``, else the running local stack."""
    if region:
        import boto3

        where = Where(
            boto3.client("cloudwatch", region_name=region),
            boto3.client("s3", region_name=region),
            f"CloudWatch in {region}",
            bucket=bucket,
            functions=boto3.client("lambda", region_name=region),
        )
    else:
        from llmmon.local import state
        from llmmon.local.endpoint import client

        if not state.running() and stack is None:
            raise UsageError(
                "no local stack is running: start one (`llmmon demo` or `llmmon local up`), "
                "or give --region for AWS"
            )
        topology = state.find(stack)
        where = Where(
            client("cloudwatch", topology.endpoint),
            client("s3", topology.endpoint),
            f"local stack {topology.name!r}",
            bucket=bucket or topology.bucket,
            log_prefix=topology.log_prefix,
            settings=topology.settings,
        )
    investigate(request, where)
    return 0
