"""The analysis behind ``llmmon investigate``: an alarm's target, one scored record without its
text (:class:`Row`), what the log says about it besides the text (:func:`attributes`), and the
pure findings over two windows of rows (:func:`analyse`): which records are bad, which rank first,
what changed and how much of the rise each attribute value accounts for. Also the alarm's
breaching periods from CloudWatch (:func:`breach_start`, :func:`span_stats`). No file or log
output here: ``llmmon.investigate`` reads the bucket and prints."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmmon.errors import CliError
from llmmon_shared.extract import Interaction
from llmmon_shared.logs import InvocationLogRecord
from llmmon_shared.metrics import identifier_value
from llmmon_shared.runtime import CANARY_EXPECT_KEY, CANARY_KEY
from llmmon_shared.spec import ServiceSpec
from llmmon_shared.text import truncate_chars

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
    return identifier_value(value) or fingerprint(value)


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
    cut = truncate_chars(flat, EXCERPT_CHARS - 1)
    return cut if cut == flat else cut + "…"


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
    z: float | None = None
    """The contribution against chance: a two-proportion z score of the share of all records
    that are bad and hold the value, window against baseline (None without a baseline)."""


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


ANSWER_ATTRIBUTES = frozenset({"stop reason", "output tokens", "guardrail policies"})
"""What the log says about the answer rather than the request: effects of a change, never its
cause, so they are ranked apart (``how the answers changed``)."""


def what_changed(
    window: Sequence[Row], baseline: Sequence[Row], answers: bool = False
) -> list[Change]:
    """Every attribute value of the requests (``answers``: of the answers instead), ranked by
    how much of the rise in the bad-record rate (window against baseline) the records holding
    it account for. Values held by nearly every record in both windows (the model itself) are
    left out: they explain nothing."""
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
        if (pair[0] in ANSWER_ATTRIBUTES) != answers:
            continue
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
                z=_z(c_bad_w[pair], n_w, c_bad_b[pair], n_b) if n_b else None,
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


def canary_split(rows: Sequence[Row], target: Target) -> tuple[datetime, datetime, int] | None:
    """The canary's own history as its baseline: its probe runs (a run's records share one
    time) in order; returns (the first run's time, the first breaching run's time, the runs
    before it), or None when the first run already breaches (no earlier run to compare)."""
    runs: dict[datetime, list[float]] = defaultdict(list)
    for row in rows:
        runs[row.time].append(row.value)
    times = sorted(runs)
    for index, moment in enumerate(times):
        value = statistic(runs[moment], target.statistic)
        if value is not None and _beyond(value, target):
            return (times[0], moment, index) if index else None
    return None


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


EXPLAINS = 0.5
"""The share of the rise one request attribute must account for to be named as its cause."""
SIGNIFICANT_Z = 3.0
"""...and how far from chance its contribution must be (a small baseline explains nothing)."""


def _z(hits_w: int, n_w: int, hits_b: int, n_b: int) -> float:
    p_w, p_b = hits_w / n_w, hits_b / n_b
    pooled = (hits_w + hits_b) / (n_w + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_w + 1 / n_b)) if 0 < pooled < 1 else 0.0
    return (p_w - p_b) / spread if spread else 0.0


ATTACK_ATTRIBUTE = "prompt attack"
"""The attacks service's decision on a record's prompt (its kind, or none), joined by request
id when that service is installed: an attribute of the request like its application."""
ATTACK_SHARE = 0.5
"""Of a rise's bad records, the share that answer attack prompts for the verdict to say so."""


def _attack_verdict(changes: Sequence[Change]) -> str | None:
    """ "The rise comes with prompt attacks from app X: 64% of the bad records answer attack
    prompts": when most bad records of the window answer prompts the attacks service calls
    attacks, and their share of bad records rose."""
    attacks = [c for c in changes if c.attribute == ATTACK_ATTRIBUTE and c.value != "none"]
    share = sum(c.window_bad_share for c in attacks)
    before = sum(c.baseline_bad_share or 0.0 for c in attacks)
    if not attacks or share < ATTACK_SHARE or share <= before:
        return None
    source = next(
        (
            c
            for c in changes
            if c.attribute != ATTACK_ATTRIBUTE
            and c.explained is not None
            and c.explained >= EXPLAINS
            and (c.z or 0.0) >= SIGNIFICANT_Z
        ),
        None,
    )
    kinds = " and ".join(sorted(c.value for c in attacks))
    where = f" from {source.attribute} = {source.value}" if source else ""
    return (
        f"the rise comes with prompt attacks{where}: {share:.0%} of the bad records answer "
        f"attack prompts ({kinds}; {before:.0%} before)"
    )


def verdict(changes: Sequence[Change], has_baseline: bool, baseline_records: int = 0) -> str:
    """One sentence: the request attribute that accounts for most of the rise, or that none
    does (the same requests were answered differently: the model itself changed). When most of
    the bad records answer prompt attacks, it says so first: an attack wave, not a model that
    stopped meeting ordinary requests."""
    if has_baseline and (attack := _attack_verdict(changes)):
        return attack
    if not has_baseline:
        if changes and changes[0].window_bad_share >= 0.8:
            first = changes[0]
            return (
                f"{first.window_bad_share:.0%} of the bad records have {first.attribute} = "
                f"{first.value} (no earlier baseline to compare with)"
            )
        return "no earlier baseline to compare with, and no request attribute sets the bad apart"
    top = changes[0] if changes else None
    if (
        top is not None
        and top.explained is not None
        and top.explained >= EXPLAINS
        and (top.z or 0.0) >= SIGNIFICANT_Z
    ):
        rise = top.contribution / top.explained
        return (
            f"the rise comes with {top.attribute} = {top.value}: {points(top.contribution)} "
            f"of the {round(rise * 100):+d}-point rise in bad records"
        )
    if 0 < baseline_records < THIN_BASELINE:
        return (
            f"no attribute of the requests explains the rise, but the baseline holds only "
            f"{baseline_records} records: give a longer one (--baseline-from/--baseline-to)"
        )
    return (
        "no attribute of the requests explains the rise (the same callers, applications, "
        "settings and model id as before): the model answered the same kind of requests "
        "differently, so the model itself changed"
    )


def points(share: float) -> str:
    """A difference of two rates in percentage points: ``+41 points``."""
    value = round(share * 100)
    return f"{value:+d} point{'' if abs(value) == 1 else 's'}"


POINTS_MEANS = (
    "points: percentage points of the bad-record rate (the share of records beyond the "
    "threshold), window against baseline; a value's points are the part of the rise its records "
    "make (they add up to the rise; a value whose records got better counts negative)"
)


THIN_BASELINE = 50
"""Fewer baseline records than this cannot rule a cause out."""


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
        "answer_changes": what_changed(window, baseline, answers=True),
    }
    found["verdict"] = verdict(found["changes"], bool(baseline), len(baseline))
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


def alarm_transitions(
    cloudwatch: Any, name: str, recorded: Sequence[tuple[datetime, str]] = ()
) -> list[tuple[datetime, str]]:
    """``(time, new state)`` of the alarm's state changes, oldest first: from its history where
    the endpoint keeps one (CloudWatch: 14 days), else the changes ``recorded`` by the local
    stack's alarm engine (the local endpoint has no history), else its current state's time."""
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
        moves = list(recorded)
    if not moves:
        alarms = cloudwatch.describe_alarms(AlarmNames=[name]).get("MetricAlarms", [])
        if alarms and alarms[0].get("StateUpdatedTimestamp"):
            moves.append((alarms[0]["StateUpdatedTimestamp"], alarms[0]["StateValue"]))
    return sorted((_utc(t), s) for t, s in moves)


def _align(moment: datetime, period_s: int, up: bool = False) -> datetime:
    seconds = int(moment.timestamp())
    aligned = seconds // period_s * period_s
    if up and aligned < seconds:
        aligned += period_s
    return datetime.fromtimestamp(aligned, UTC)


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
