"""An alarm engine with CloudWatch's semantics, for the local stack (moto stores alarms but never
evaluates them, and has no composite alarms) and for backtests against stored metric history.

Metric alarms (per evaluation, at time ``now``):

* the evaluation range is the last ``evaluation_periods`` (M) periods up to ``now``, the newest
  being the period that contains ``now`` (periods aligned to multiples of ``period_s`` since the
  epoch), so fresh datapoints count at once, as they do in CloudWatch;
* each period's datapoint is the alarm's statistic over that period, or missing;
* a datapoint breaches when it compares true against the threshold (``GreaterThanThreshold`` ...),
  or lies outside the anomaly band (``GreaterThanUpperThreshold`` ...);
* missing datapoints follow ``treat_missing_data``: ``breaching`` / ``notBreaching`` fill them in;
  ``missing``: all missing -> INSUFFICIENT_DATA, else the present ones are counted; ``ignore``: all
  missing -> the state stays, else ALARM when enough breach, OK once ALARM is impossible, the
  state stays otherwise;
* ALARM when at least ``datapoints_to_alarm`` (N) datapoints breach, else OK.

Composite alarms are evaluated after the metric alarms, children first: ALARM when the rule is
true, else OK. Actions (notifications to the alarm topic) fire on state changes of alarms that
have actions, unless suppressed: while the ``suppressor`` is in ALARM, for
``suppressor_extension_s`` after it leaves ALARM, and, when the composite changes state, for up to
``suppressor_wait_s`` while the engine waits to see whether the suppressor goes into ALARM.

The anomaly band is a stand-in for CloudWatch's model: mean +/- ``anomaly_band`` standard
deviations of the metric over the 24 periods before the evaluation range.
"""

from __future__ import annotations

import bisect
import json
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from llmmon_shared.alarm_rules import evaluate as evaluate_rule
from llmmon_shared.alarm_rules import parse, referenced_alarms
from llmmon_shared.alarms import AlarmSet, CompositeAlarmDef, MetricAlarmDef

ALARM, OK, INSUFFICIENT = "ALARM", "OK", "INSUFFICIENT_DATA"
ANOMALY_HISTORY = 24

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


class MetricSource(Protocol):
    def datapoints(
        self, alarm: MetricAlarmDef, start: datetime, end: datetime
    ) -> dict[datetime, float]:
        """The alarm's statistic per period starting in [start, end), keyed by period start,
        from the values recorded before ``end`` (the newest period may be partial)."""
        ...


def period_starts(now: datetime, period_s: int, count: int) -> list[datetime]:
    """Starts of the last ``count`` periods up to ``now`` (the newest contains ``now``), oldest
    first."""
    end = (int(now.timestamp()) // period_s + 1) * period_s
    return [datetime.fromtimestamp(end - period_s * (count - i), UTC) for i in range(count)]


def breaches(alarm: MetricAlarmDef, value: float, band: tuple[float, float] | None = None) -> bool:
    if alarm.anomaly_band is not None:
        if band is None:
            return False
        low, high = band
        if alarm.comparison == "GreaterThanUpperThreshold":
            return value > high
        if alarm.comparison == "LessThanLowerThreshold":
            return value < low
        return value < low or value > high
    return _COMPARE[alarm.comparison](value, alarm.threshold)


def evaluate_datapoints(
    alarm: MetricAlarmDef,
    values: Sequence[float | None],
    current: str,
    band: tuple[float, float] | None = None,
) -> tuple[str, str]:
    """The state for the datapoints of one evaluation range (oldest first), and why."""
    m, n = len(values), alarm.datapoints_to_alarm
    treat = alarm.treat_missing_data
    flags: list[bool | None] = [None if v is None else breaches(alarm, v, band) for v in values]
    if alarm.anomaly_band is not None and band is None and any(v is not None for v in values):
        return INSUFFICIENT, "not enough history for the anomaly band"
    if treat == "breaching":
        flags = [True if f is None else f for f in flags]
    elif treat == "notBreaching":
        flags = [False if f is None else f for f in flags]
    present = [f for f in flags if f is not None]
    breaching = sum(present)
    shown = [("-" if v is None else f"{v:.4g}") for v in values]
    against = (
        f"{alarm.comparison} of the band [{band[0]:.4g}, {band[1]:.4g}]"
        if band is not None
        else f"{alarm.comparison} {alarm.threshold}"
    )
    reason = (
        f"{breaching} of the last {m} datapoints [{', '.join(shown)}] breach ({against}); "
        f"{n} needed"
    )
    if not present:
        if treat == "ignore":
            return current, "no data; state kept (ignore)"
        return INSUFFICIENT, "no data in the evaluation range"
    if breaching >= n:
        return ALARM, reason
    if treat == "ignore" and len(present) - breaching <= m - n:
        return current, reason + "; state kept (ignore)"
    return OK, reason


@dataclass(frozen=True)
class Transition:
    time: datetime
    alarm: str
    old: str
    new: str
    reason: str
    notified: bool = False
    suppressed_by: str | None = None
    decided_at: datetime | None = None
    """When a composite's notification waited for its suppressor (``suppressor_wait_s``): the
    round that sent or suppressed it, after ``time`` (when the state changed)."""

    def line(self) -> str:
        """One console line, stamped with the round that printed it: lines stay in time order
        even when a notification was held back for a while."""
        shown = self.decided_at or self.time
        note = (
            " (notified)"
            if self.notified
            else f" (suppressed by {self.suppressed_by})"
            if self.suppressed_by
            else ""
        )
        held = f"; changed at {self.time:%H:%M:%S}" if self.decided_at else ""
        if held:
            note = f"{note[:-1]}{held})" if note else f" ({held[2:]})"
        return f"{shown:%H:%M:%S} {self.alarm}: {self.old} -> {self.new}{note}"


@dataclass
class _Pending:
    composite: CompositeAlarmDef
    transition: Transition
    deadline: datetime


@dataclass
class AlarmEngine:
    """Evaluates an AlarmSet over time; keeps states and the transition history."""

    alarms: AlarmSet
    source: MetricSource
    notify: Callable[[Transition, Any], None] | None = None
    """Called for each state change that is notified (the alarm topic, in the local stack)."""
    set_state: Callable[[str, str, str], None] | None = None
    """Called for each metric alarm state change (``set_alarm_state`` in the local stack)."""
    states: dict[str, str] = field(default_factory=dict)
    history: list[Transition] = field(default_factory=list)
    _left_alarm: dict[str, datetime] = field(default_factory=dict)
    _pending: list[_Pending] = field(default_factory=list)

    def update(self, alarms: AlarmSet) -> None:
        """Replace the definitions (new models, new thresholds); known states are kept."""
        self.alarms = alarms

    def _band(self, alarm: MetricAlarmDef, first: datetime) -> tuple[float, float] | None:
        start = first - timedelta(seconds=alarm.period_s * ANOMALY_HISTORY)
        history = list(self.source.datapoints(alarm, start, first).values())
        if len(history) < 5:
            return None
        mean = statistics.fmean(history)
        spread = statistics.pstdev(history) or 1e-6
        band = float(alarm.anomaly_band or 0)
        return mean - band * spread, mean + band * spread

    def _metric(self, alarm: MetricAlarmDef, now: datetime) -> tuple[str, str]:
        starts = period_starts(now, alarm.period_s, alarm.evaluation_periods)
        end = starts[-1] + timedelta(seconds=alarm.period_s)
        # Only what was recorded by now: a backtest must not see the rest of the current period.
        found = self.source.datapoints(alarm, starts[0], min(end, now))
        values = [found.get(start) for start in starts]
        band = self._band(alarm, starts[0]) if alarm.anomaly_band is not None else None
        return evaluate_datapoints(alarm, values, self.states.get(alarm.name, INSUFFICIENT), band)

    def _composites_in_order(self) -> list[CompositeAlarmDef]:
        composites = {c.name: c for c in self.alarms.composites}
        ordered: list[CompositeAlarmDef] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen or name not in composites:
                return
            seen.add(name)
            for child in referenced_alarms(composites[name].rule):
                visit(child)
            ordered.append(composites[name])

        for name in composites:
            visit(name)
        return ordered

    def _suppressor_active(self, suppressor: str, now: datetime, extension_s: int) -> bool:
        if self.states.get(suppressor) == ALARM:
            return True
        left = self._left_alarm.get(suppressor)
        return left is not None and now - left < timedelta(seconds=extension_s)

    def _change(self, name: str, new: str, reason: str, now: datetime) -> Transition | None:
        old = self.states.get(name, INSUFFICIENT)
        if old == new:
            return None
        self.states[name] = new
        if old == ALARM:
            self._left_alarm[name] = now
        return Transition(now, name, old, new, reason)

    def _act(self, transition: Transition, decided_at: datetime | None = None) -> Transition:
        notified = Transition(
            transition.time,
            transition.alarm,
            transition.old,
            transition.new,
            transition.reason,
            notified=True,
            decided_at=decided_at,
        )
        if self.notify is not None:
            self.notify(notified, self)
        return notified

    def evaluate(self, now: datetime | None = None) -> list[Transition]:
        """One evaluation round at ``now``; returns the state changes it made."""
        now = now or datetime.now(UTC)
        changes: list[Transition] = []
        for alarm in self.alarms.metric_alarms:
            state, reason = self._metric(alarm, now)
            change = self._change(alarm.name, state, reason, now)
            if change:
                if self.set_state is not None:
                    self.set_state(alarm.name, state, reason)
                changes.append(change)
        notifying = {c.name for c in self.alarms.notifying}
        for composite in self._composites_in_order():
            rule = parse(composite.rule)
            firing = sorted(n for n in referenced_alarms(rule) if self.states.get(n) == ALARM)
            state = ALARM if evaluate_rule(rule, self.states) else OK
            reason = (
                f"alarms in ALARM: {', '.join(firing)}" if firing else "no child alarm in ALARM"
            )
            change = self._change(composite.name, state, reason, now)
            if change is None:
                continue
            if composite.name not in notifying:
                changes.append(change)
                continue
            suppressor = composite.suppressor
            if suppressor and self._suppressor_active(
                suppressor, now, composite.suppressor_extension_s
            ):
                changes.append(
                    Transition(
                        now,
                        change.alarm,
                        change.old,
                        change.new,
                        change.reason,
                        suppressed_by=suppressor,
                    )
                )
            elif suppressor and composite.suppressor_wait_s > 0:
                deadline = now + timedelta(seconds=composite.suppressor_wait_s)
                self._pending = [p for p in self._pending if p.composite.name != composite.name]
                self._pending.append(_Pending(composite, change, deadline))
                changes.append(change)
            else:
                changes.append(self._act(change))
        changes.extend(self._flush_pending(now))
        self.history.extend(changes)
        return changes

    def _flush_pending(self, now: datetime) -> list[Transition]:
        done: list[Transition] = []
        keep: list[_Pending] = []
        for pending in self._pending:
            composite = pending.composite
            if self.states.get(composite.name) != pending.transition.new:
                continue  # superseded by a later change
            assert composite.suppressor is not None
            if self.states.get(composite.suppressor) == ALARM:
                done.append(
                    Transition(
                        pending.transition.time,
                        composite.name,
                        pending.transition.old,
                        pending.transition.new,
                        pending.transition.reason,
                        suppressed_by=composite.suppressor,
                        decided_at=now,
                    )
                )
            elif now >= pending.deadline:
                done.append(self._act(pending.transition, decided_at=now))
            else:
                keep.append(pending)
        self._pending = keep
        return done


def drift_scores(
    history: Iterable[Transition], alarms: Iterable[str], drift_start: datetime
) -> dict[str, dict[str, float | int | None]]:
    """Per alarm, for a backtest over a window whose drift starts at ``drift_start``: the
    transitions to ALARM before it (false alarms, the stable part) and the seconds from it to the
    first ALARM at or after it (the detection delay; None when it never fired)."""
    scores: dict[str, dict[str, float | int | None]] = {
        name: {"false_alarms": 0, "detection_delay_s": None} for name in alarms
    }
    for change in history:
        if change.new != ALARM or change.old == ALARM or change.alarm not in scores:
            continue
        score = scores[change.alarm]
        if change.time < drift_start:
            score["false_alarms"] = int(score["false_alarms"] or 0) + 1
        elif score["detection_delay_s"] is None:
            score["detection_delay_s"] = (change.time - drift_start).total_seconds()
    return scores


def cloudwatch_message(
    transition: Transition, alarm: Any, account: str, region: str, description: str = ""
) -> tuple[str, str]:
    """The (subject, message) CloudWatch publishes to an alarm's SNS topic."""
    arn = f"arn:aws:cloudwatch:{region}:{account}:alarm:{transition.alarm}"
    message = {
        "AlarmName": transition.alarm,
        "AlarmDescription": description,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": transition.time.isoformat(),
        "NewStateValue": transition.new,
        "NewStateReason": transition.reason,
        "StateChangeTime": transition.time.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "Region": region,
        "AlarmArn": arn,
        "OldStateValue": transition.old,
    }
    subject = f'{transition.new}: "{transition.alarm}" in {region}'
    return subject[:100], json.dumps(message)


@dataclass
class CloudWatchSource:
    """Datapoints from CloudWatch's GetMetricStatistics (real, or moto's)."""

    client: Any

    def datapoints(
        self, alarm: MetricAlarmDef, start: datetime, end: datetime
    ) -> dict[datetime, float]:
        return _less(self._datapoints, alarm, start, end)

    def _datapoints(
        self, alarm: MetricAlarmDef, start: datetime, end: datetime
    ) -> dict[datetime, float]:
        # CloudWatch reads whole seconds and wants StartTime < EndTime: a period that began
        # under a second ago is asked for up to the next whole second (nothing is recorded
        # after now yet).
        if end.microsecond:
            end = end.replace(microsecond=0) + timedelta(seconds=1)
        if end <= start:
            return {}
        response = self.client.get_metric_statistics(
            Namespace=alarm.namespace,
            MetricName=alarm.metric,
            Dimensions=[{"Name": k, "Value": v} for k, v in alarm.dimensions.items()],
            StartTime=start,
            EndTime=end,
            Period=alarm.period_s,
            Statistics=[alarm.statistic, "SampleCount"] if alarm.min_samples else [alarm.statistic],
        )
        found: dict[datetime, float] = {}
        for point in response.get("Datapoints", []):
            if alarm.min_samples and point.get("SampleCount", 0) < alarm.min_samples:
                continue  # too few values to judge: missing data, as CloudWatch's IF(n >= N, m)
            stamp = point["Timestamp"]
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
            aligned = int(stamp.timestamp()) // alarm.period_s * alarm.period_s
            found[datetime.fromtimestamp(aligned, UTC)] = float(point[alarm.statistic])
        return found


def _less(
    read: Callable[[MetricAlarmDef, datetime, datetime], dict[datetime, float]],
    alarm: MetricAlarmDef,
    start: datetime,
    end: datetime,
) -> dict[datetime, float]:
    """The alarm's datapoints, less another series' Sum per period where the alarm says so
    (``MetricAlarmDef.less``: CloudWatch's ``m - FILL(l, 0)``)."""
    found = read(alarm, start, end)
    if alarm.less is None:
        return found
    namespace, metric, dims = alarm.less
    other = replace(
        alarm,
        namespace=namespace,
        metric=metric,
        dimensions=dict(dims),
        statistic="Sum",
        min_samples=None,
        less=None,
    )
    taken = read(other, start, end)
    return {period: value - taken.get(period, 0.0) for period, value in found.items()}


MINUTE = 60
_AGGREGATE: dict[str, Callable[[list[tuple[float, float, float, float]]], float]] = {
    "Average": lambda p: sum(x[0] for x in p) / sum(x[1] for x in p),
    "Sum": lambda p: sum(x[0] for x in p),
    "SampleCount": lambda p: sum(x[1] for x in p),
    "Maximum": lambda p: max(x[2] for x in p),
    "Minimum": lambda p: min(x[3] for x in p),
}


@dataclass
class HistorySource:
    """Datapoints for a backtest window, read once per alarm metric for the whole window (plus the
    look-back the first evaluations and the anomaly band need) and served from memory: a
    backtest of R rounds over A alarms makes A requests instead of R x A.

    The history is read per minute (Sum, SampleCount, Maximum, Minimum) and summed up to each
    evaluation's moment, so an evaluation at 10:32 sees the 10:30 period's values up to 10:32,
    as a live alarm would, never the rest of that period (a backtest that sees ahead reports a
    drift's alarm before the drift starts)."""

    client: Any
    start: datetime
    end: datetime
    _cache: dict[tuple[Any, ...], dict[datetime, tuple[float, float, float, float]]] = field(
        default_factory=dict
    )
    _sorted: dict[tuple[Any, ...], list[datetime]] = field(default_factory=dict)

    @staticmethod
    def _key(alarm: MetricAlarmDef) -> tuple[Any, ...]:
        dims = tuple(sorted(alarm.dimensions.items()))
        return (alarm.namespace, alarm.metric, dims)

    def prefetch(self, alarm: MetricAlarmDef) -> dict[datetime, tuple[float, float, float, float]]:
        """Per minute: (Sum, SampleCount, Maximum, Minimum)."""
        key = self._key(alarm)
        if key not in self._cache:
            back = alarm.period_s * (alarm.evaluation_periods + ANOMALY_HISTORY + 1)
            first = self.start - timedelta(seconds=back)
            last = self.end + timedelta(seconds=alarm.period_s)
            found: dict[datetime, tuple[float, float, float, float]] = {}
            span = timedelta(seconds=MINUTE * 1440)  # GetMetricStatistics' limit
            while first < last:
                response = self.client.get_metric_statistics(
                    Namespace=alarm.namespace,
                    MetricName=alarm.metric,
                    Dimensions=[{"Name": k, "Value": v} for k, v in alarm.dimensions.items()],
                    StartTime=first,
                    EndTime=min(last, first + span),
                    Period=MINUTE,
                    Statistics=["Sum", "SampleCount", "Maximum", "Minimum"],
                )
                for point in response.get("Datapoints", []):
                    stamp = point["Timestamp"]
                    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
                    minute = datetime.fromtimestamp(int(stamp.timestamp()) // MINUTE * MINUTE, UTC)
                    found[minute] = (
                        float(point["Sum"]),
                        float(point["SampleCount"]),
                        float(point["Maximum"]),
                        float(point["Minimum"]),
                    )
                first += span
            self._cache[key] = found
        return self._cache[key]

    def datapoints(
        self, alarm: MetricAlarmDef, start: datetime, end: datetime
    ) -> dict[datetime, float]:
        return _less(self._datapoints, alarm, start, end)

    def _datapoints(
        self, alarm: MetricAlarmDef, start: datetime, end: datetime
    ) -> dict[datetime, float]:
        history = self.prefetch(alarm)
        minutes = self._sorted.get(self._key(alarm))
        if minutes is None or len(minutes) != len(history):
            minutes = self._sorted[self._key(alarm)] = sorted(history)
        # Only the minutes in [start, end - 1 minute]: a backtest of days evaluates thousands
        # of rounds, each over a few periods.
        first = bisect.bisect_left(minutes, start)
        last = bisect.bisect_right(minutes, end - timedelta(seconds=MINUTE))
        periods: dict[datetime, list[tuple[float, float, float, float]]] = {}
        for minute in minutes[first:last]:  # a minute not over yet at ``end`` is left out
            stamp = int(minute.timestamp()) // alarm.period_s * alarm.period_s
            period = datetime.fromtimestamp(stamp, UTC)
            if start <= period < end:
                periods.setdefault(period, []).append(history[minute])
        found: dict[datetime, float] = {}
        for period, points in periods.items():
            if alarm.min_samples and sum(p[1] for p in points) < alarm.min_samples:
                continue  # too few values to judge: missing data, as CloudWatch's IF(n >= N, m)
            found[period] = _AGGREGATE[alarm.statistic](points)
        return found


def models_in_history(client: Any, namespace: str, metrics: Iterable[str]) -> list[str]:
    """Model ids that have any of these metrics in the namespace (from ListMetrics)."""
    models: set[str] = set()
    for metric in metrics:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Namespace": namespace, "MetricName": metric}
            if token:
                kwargs["NextToken"] = token
            page = client.list_metrics(**kwargs)
            for item in page.get("Metrics", []):
                dims = {d["Name"]: d["Value"] for d in item.get("Dimensions", [])}
                if set(dims) == {"ModelId"}:
                    models.add(dims["ModelId"])
            token = page.get("NextToken")
            if not token:
                break
    return sorted(models)


def states_table(engine: AlarmEngine, names: Mapping[str, str] | None = None) -> list[str]:
    """``NAME  STATE`` lines for every alarm the engine knows, composites first."""
    lines = []
    for composite in engine.alarms.composites:
        lines.append(f"{engine.states.get(composite.name, INSUFFICIENT):<18} {composite.name}")
    for alarm in engine.alarms.metric_alarms:
        lines.append(f"{engine.states.get(alarm.name, INSUFFICIENT):<18} {alarm.name}")
    return lines
