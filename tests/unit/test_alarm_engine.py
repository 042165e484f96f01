"""The alarm engine: M-of-N evaluation with each missing-data treatment, composites, suppression."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmmon.alarm_eval import (
    ALARM,
    INSUFFICIENT,
    OK,
    AlarmEngine,
    Transition,
    evaluate_datapoints,
    period_starts,
)
from llmmon_shared.alarms import (
    PIPELINE_UNHEALTHY,
    AlarmNames,
    AlarmSet,
    CompositeAlarmDef,
    MetricAlarmDef,
    build_alarms,
    check_overrides,
)

NOW = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)


def alarm(
    name: str = "refusal-high",
    treat: str = "missing",
    m: int = 3,
    n: int = 2,
    comparison: str = "GreaterThanThreshold",
    threshold: float = 0.25,
) -> MetricAlarmDef:
    return MetricAlarmDef(
        name=name,
        namespace="llmmon",
        metric="Refusal",
        dimensions={"ModelId": "m"},
        statistic="Average",
        comparison=comparison,
        threshold=threshold,
        period_s=300,
        evaluation_periods=m,
        datapoints_to_alarm=n,
        treat_missing_data=treat,
        description="",
        kind="quality",
        service="refusal",
    )


X, N, _ = 0.9, 0.1, None  # breaching, not breaching, missing


@pytest.mark.parametrize(
    ("points", "treat", "current", "expected"),
    [
        ([N, N, N], "missing", INSUFFICIENT, OK),
        ([N, X, X], "missing", OK, ALARM),
        ([X, N, X], "missing", OK, ALARM),
        ([N, N, X], "missing", OK, OK),
        ([_, _, X], "missing", OK, OK),  # one present breaching point, 2 needed
        ([_, X, X], "missing", OK, ALARM),
        ([_, _, _], "missing", ALARM, INSUFFICIENT),
        ([_, _, _], "breaching", OK, ALARM),
        ([_, _, X], "breaching", OK, ALARM),
        ([_, _, _], "notBreaching", ALARM, OK),
        ([_, X, _], "notBreaching", OK, OK),
        ([_, _, _], "ignore", ALARM, ALARM),  # state kept
        ([_, _, X], "ignore", OK, OK),  # ALARM still possible: kept
        ([_, _, X], "ignore", ALARM, ALARM),
        ([N, N, _], "ignore", ALARM, OK),  # ALARM impossible now
        ([X, _, X], "ignore", OK, ALARM),
    ],
)
def test_m_of_n_with_each_missing_data_treatment(
    points: list[float | None], treat: str, current: str, expected: str
) -> None:
    state, reason = evaluate_datapoints(alarm(treat=treat), points, current)
    assert state == expected, reason


@pytest.mark.parametrize(
    ("comparison", "value", "breach"),
    [
        ("GreaterThanThreshold", 0.25, False),
        ("GreaterThanOrEqualToThreshold", 0.25, True),
        ("LessThanThreshold", 0.25, False),
        ("LessThanOrEqualToThreshold", 0.25, True),
        ("LessThanThreshold", 0.1, True),
    ],
)
def test_comparisons(comparison: str, value: float, breach: bool) -> None:
    state, _ = evaluate_datapoints(alarm(comparison=comparison, m=1, n=1), [value], OK)
    assert state == (ALARM if breach else OK)


def test_periods_end_with_the_one_that_contains_now() -> None:
    starts = period_starts(NOW, 300, 3)
    assert starts == [
        datetime(2026, 11, 28, 11, 50, tzinfo=UTC),
        datetime(2026, 11, 28, 11, 55, tzinfo=UTC),
        datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
    ]


class FakeSource:
    def __init__(self) -> None:
        self.series: dict[str, dict[datetime, float]] = {}

    def feed(self, name: str, values: list[float | None], now: datetime = NOW) -> None:
        starts = period_starts(now, 300, len(values))
        self.series[name] = {s: v for s, v in zip(starts, values, strict=True) if v is not None}

    def datapoints(
        self, alarm: MetricAlarmDef, start: datetime, end: datetime
    ) -> dict[datetime, float]:
        return {s: v for s, v in self.series.get(alarm.name, {}).items() if start <= s < end}


def composite_set(wait: int = 0, extension: int = 300) -> AlarmSet:
    quality, health = (
        alarm("quality-a"),
        alarm("health-dlq", treat="notBreaching", m=1, n=1, threshold=0),
    )
    return AlarmSet(
        (quality, health),
        (
            CompositeAlarmDef("pipeline", 'ALARM("health-dlq")', ""),
            CompositeAlarmDef(
                "quality",
                'ALARM("quality-a")',
                "",
                suppressor="pipeline",
                suppressor_wait_s=wait,
                suppressor_extension_s=extension,
            ),
        ),
    )


def engine_with(source: FakeSource, alarms: AlarmSet) -> tuple[AlarmEngine, list[Transition]]:
    sent: list[Transition] = []
    engine = AlarmEngine(alarms, source, notify=lambda t, _: sent.append(t))
    return engine, sent


def test_composite_fires_and_notifies_when_a_child_alarms() -> None:
    source = FakeSource()
    source.feed("quality-a", [0.1, 0.5, 0.6])
    engine, sent = engine_with(source, composite_set())
    engine.evaluate(NOW)
    assert engine.states["quality-a"] == ALARM
    assert engine.states["quality"] == ALARM
    assert engine.states["pipeline"] == OK
    assert [(t.alarm, t.new) for t in sent] == [("pipeline", OK), ("quality", ALARM)]


def test_pipeline_alarm_suppresses_quality_notifications() -> None:
    source = FakeSource()
    source.feed("quality-a", [0.5, 0.5, 0.6])
    source.feed("health-dlq", [3.0])
    engine, sent = engine_with(source, composite_set())
    changes = engine.evaluate(NOW)
    assert engine.states["quality"] == ALARM  # the state changes ...
    assert ("quality", ALARM) not in [(t.alarm, t.new) for t in sent]  # ... silently
    assert any(t.alarm == "quality" and t.suppressed_by == "pipeline" for t in changes)
    assert ("pipeline", ALARM) in [(t.alarm, t.new) for t in sent]


def test_wait_period__action_fires_after_the_wait_unless_suppressor_alarms() -> None:
    source = FakeSource()
    source.feed("quality-a", [0.5, 0.5, 0.6])
    engine, sent = engine_with(source, composite_set(wait=60))
    engine.evaluate(NOW)
    assert ("quality", ALARM) not in [(t.alarm, t.new) for t in sent]
    engine.evaluate(NOW + timedelta(seconds=30))
    assert ("quality", ALARM) not in [(t.alarm, t.new) for t in sent]
    engine.evaluate(NOW + timedelta(seconds=61))
    assert ("quality", ALARM) in [(t.alarm, t.new) for t in sent]


def test_extension_period__suppression_outlasts_the_suppressor() -> None:
    source = FakeSource()
    source.feed("health-dlq", [3.0])
    engine, sent = engine_with(source, composite_set(extension=300))
    engine.evaluate(NOW)
    assert engine.states["pipeline"] == ALARM
    assert ("pipeline", ALARM) in [(t.alarm, t.new) for t in sent]
    source.series["health-dlq"] = {}
    later = NOW + timedelta(seconds=60)
    source.feed("quality-a", [0.5, 0.6, 0.7], now=later)
    changes = engine.evaluate(later)
    assert engine.states["pipeline"] == OK and engine.states["quality"] == ALARM
    assert any(t.alarm == "quality" and t.suppressed_by == "pipeline" for t in changes)


def test_update_keeps_known_states() -> None:
    source = FakeSource()
    source.feed("quality-a", [0.5, 0.5, 0.6])
    engine, _ = engine_with(source, composite_set())
    engine.evaluate(NOW)
    tuned = composite_set()
    engine.update(
        replace(
            tuned,
            metric_alarms=(replace(tuned.metric_alarms[0], threshold=0.9), tuned.metric_alarms[1]),
        )
    )
    engine.evaluate(NOW)
    assert engine.states["quality-a"] == OK
    assert [t.new for t in engine.history if t.alarm == "quality-a"] == [ALARM, OK]


def watched_set() -> tuple[AlarmSet, AlarmNames]:
    from llmmon_shared.spec import discover

    names = AlarmNames("w")
    services = {"traffic": discover()["traffic"]}
    return build_alarms(services, [], "llmmon", names), names


def fed(points: dict[str, list[float | None]], names: AlarmNames) -> FakeSource:
    source = FakeSource()
    for alarm, values in points.items():
        source.feed(names.alarm("traffic", alarm), values)
    return source


@pytest.mark.parametrize(
    ("received", "processed", "expected"),
    [
        ([4.0, 3.0, 5.0], [None, None, None], "ALARM"),  # messages in, nothing scored: stopped
        ([4.0, 3.0, 5.0], [None, 1.0, None], "OK"),  # an object scored: alive
        ([None, None, None], [None, None, None], "OK"),  # no traffic at all: quiet, not stopped
    ],
)
def test_watcher__a_service_that_stops_emitting_while_messages_arrive(
    received: list[float | None], processed: list[float | None], expected: str
) -> None:
    alarms, names = watched_set()
    source = fed({"MessagesReceived": received, "NoObjectsScored": processed}, names)
    engine = AlarmEngine(alarms, source)
    engine.evaluate(NOW)
    assert engine.states[names.alarm("traffic", "StoppedEmitting")] == expected
    assert engine.states[names.composite(PIPELINE_UNHEALTHY)] == expected


def test_watcher__unreadable_records_and_bad_lines_as_ratios() -> None:
    alarms, names = watched_set()
    source = fed(
        {"HighUnreadableRecords": [0.0, 0.5, 0.6], "HighBadLines": [0.0, 0.01, 0.0]}, names
    )
    engine = AlarmEngine(alarms, source)
    engine.evaluate(NOW)
    assert engine.states[names.alarm("traffic", "HighUnreadableRecords")] == ALARM
    assert engine.states[names.alarm("traffic", "HighBadLines")] == OK
    assert engine.states[names.composite(PIPELINE_UNHEALTHY)] == ALARM


class FakeStatistics:
    """GetMetricStatistics answering Average and SampleCount per period (the request's), the
    last one containing NOW, within the request's time range."""

    def __init__(self, periods: list[tuple[float, int]]) -> None:
        self.periods = periods  # (average, sample count), oldest first
        self.asked: list[list[str]] = []

    def get_metric_statistics(self, **request: Any) -> dict[str, Any]:
        self.asked.append(request["Statistics"])
        starts = period_starts(NOW, request["Period"], len(self.periods))
        return {
            "Datapoints": [
                {"Timestamp": start, "Average": average, "SampleCount": float(count)}
                for start, (average, count) in zip(starts, self.periods, strict=True)
                if request["StartTime"] <= start < request["EndTime"]
            ]
        }


@pytest.mark.parametrize(
    ("periods", "expected"),
    [
        ([(0.5, 2), (1.0, 1), (0.5, 2)], OK),  # thin traffic: 1 refusal of 2 calls is no 50%
        ([(0.5, 40), (0.6, 25), (0.5, 30)], ALARM),  # the same ratios over enough calls
        ([(0.5, 40), (1.0, 1), (0.5, 30)], ALARM),  # one thin period is missing, 2 of 3 breach
    ],
)
def test_ratio_alarm__judges_only_periods_with_enough_samples(
    periods: list[tuple[float, int]], expected: str
) -> None:
    from llmmon.alarm_eval import CloudWatchSource
    from llmmon_shared.spec import discover

    services = {"refusal": discover()["refusal"]}
    alarms = build_alarms(services, ["m"], "llmmon", AlarmNames("t"))
    ratio = next(a for a in alarms.metric_alarms if a.metric == "Refusal")
    assert ratio.statistic == "Average" and ratio.min_samples == 20
    client = FakeStatistics(periods)
    engine = AlarmEngine(AlarmSet((ratio,)), CloudWatchSource(client))
    engine.evaluate(NOW)
    assert engine.states[ratio.name] == expected
    assert ["Average", "SampleCount"] in client.asked


def test_min_samples__stack_default_and_per_alarm_override() -> None:
    from llmmon_shared.spec import discover

    services = discover()
    alarms = build_alarms(
        services,
        ["m"],
        "llmmon",
        AlarmNames("t"),
        overrides={"refusal": {"HighRefusalRatio": {"min_samples": "50"}}},
        min_samples=5,
    )
    by_metric = {a.name.split("-")[2]: a for a in alarms.metric_alarms if a.kind == "quality"}
    assert by_metric["HighRefusalRatio"].min_samples == 50
    assert all(
        a.min_samples == 5
        for n, a in by_metric.items()
        if n != "HighRefusalRatio" and a.statistic == "Average"
    )
    assert all(a.min_samples is None for a in alarms.metric_alarms if a.statistic != "Average")
    with pytest.raises(ValueError, match="not a whole number"):
        check_overrides(services, {"refusal": {"HighRefusalRatio": {"min_samples": "0"}}})


def canary_rise_alarms() -> dict[str, MetricAlarmDef]:
    from llmmon_shared.spec import discover

    alarms = build_alarms({"refusal": discover()["refusal"]}, ["m"], "llmmon", AlarmNames("t"))
    return {a.name.split("-")[2]: a for a in alarms.metric_alarms}


def test_canary_rise__a_default_anomaly_alarm_in_the_quality_composite() -> None:
    from llmmon_shared.spec import discover

    alarms = build_alarms({"refusal": discover()["refusal"]}, ["m"], "llmmon", AlarmNames("t"))
    by_name = {a.name.split("-")[2]: a for a in alarms.metric_alarms}
    for name, metric in [
        ("CanaryOverRefusalRise", "CanaryOverRefusal"),
        ("CanaryUnderRefusalRise", "CanaryUnderRefusal"),
    ]:
        rise = by_name[name]
        assert rise.metric == metric and rise.kind == "quality"
        assert rise.anomaly_band == 2.0 and rise.comparison == "GreaterThanUpperThreshold"
        assert rise.min_samples == 20 and rise.period_s == 3600
        # beside the absolute ceiling on the same metric
        assert by_name[metric].anomaly_band is None and by_name[metric].threshold > 0
    quality = next(c for c in alarms.composites if c.name.endswith("model-quality-degraded"))
    assert 'ALARM("t-refusal-CanaryOverRefusalRise-m")' in quality.rule


HOURS_STABLE = [(0.04, 50), (0.06, 50), (0.04, 50), (0.06, 50), (0.04, 50), (0.06, 50)]


@pytest.mark.parametrize(
    ("periods", "expected"),
    [
        ([*HOURS_STABLE, (0.06, 50)], OK),  # inside its own band
        ([*HOURS_STABLE, (0.16, 50)], ALARM),  # under the 0.2 ceiling, far above its band
        ([*HOURS_STABLE, (0.5, 4)], OK),  # a run cut short: too few probes, missing data
        ([*HOURS_STABLE[:3], (0.16, 50)], INSUFFICIENT),  # not enough history for a band
        # thin runs in the history neither count towards the band nor widen it
        ([(0.9, 3), *HOURS_STABLE, (0.16, 50)], ALARM),
    ],
)
def test_canary_rise__over_the_models_own_band_judged_on_enough_probes(
    periods: list[tuple[float, int]], expected: str
) -> None:
    from llmmon.alarm_eval import CloudWatchSource

    rise = canary_rise_alarms()["CanaryOverRefusalRise"]
    engine = AlarmEngine(AlarmSet((rise,)), CloudWatchSource(FakeStatistics(periods)))
    engine.evaluate(NOW)
    assert engine.states.get(rise.name, INSUFFICIENT) == expected


def test_drift_alarms_are_gated_by_sample_size_too() -> None:
    from llmmon_shared.spec import discover

    alarms = build_alarms(discover(), ["m"], "llmmon", AlarmNames("t"), anomaly_band=2.0)
    drift = [a for a in alarms.metric_alarms if a.name.split("-")[2].endswith("Drift")]
    assert len(drift) == 3 and all(a.min_samples == 20 for a in drift)
    floored = build_alarms(
        discover(), ["m"], "llmmon", AlarmNames("t"), anomaly_band=2.0, min_samples=5
    )
    assert all(
        a.min_samples == 5 for a in floored.metric_alarms if a.name.split("-")[2].endswith("Drift")
    )


def test_drift_scores__false_alarms_before_the_drift_and_delay_after() -> None:
    from llmmon.alarm_eval import drift_scores

    start = NOW - timedelta(minutes=30)

    def change(minutes: int, alarm: str, old: str, new: str) -> Transition:
        return Transition(start + timedelta(minutes=minutes), alarm, old, new, "")

    history = [
        change(-20, "flappy", OK, ALARM),  # in the stable part: a false alarm
        change(-15, "flappy", ALARM, OK),
        change(12, "flappy", OK, ALARM),
        change(13, "steady", INSUFFICIENT, OK),
        change(9, "steady", OK, ALARM),
        change(20, "steady", ALARM, ALARM),  # not a new alarm
    ]
    scores = drift_scores(history, ["flappy", "steady", "silent"], start)
    assert scores["flappy"] == {"false_alarms": 1, "detection_delay_s": 720.0}
    assert scores["steady"] == {"false_alarms": 0, "detection_delay_s": 540.0}
    assert scores["silent"] == {"false_alarms": 0, "detection_delay_s": None}


class MinuteHistory:
    """GetMetricStatistics over per-minute values (value, count) keyed by minute offset from
    NOW's 5-minute period start."""

    def __init__(self, minutes: dict[int, tuple[float, int]]) -> None:
        self.base = period_starts(NOW, 300, 1)[0]
        self.minutes = minutes
        self.requests = 0

    def get_metric_statistics(self, **request: Any) -> dict[str, Any]:
        self.requests += 1
        assert request["Period"] == 60
        points = []
        for offset, (value, count) in self.minutes.items():
            stamp = self.base + timedelta(minutes=offset)
            if request["StartTime"] <= stamp < request["EndTime"]:
                points.append(
                    {
                        "Timestamp": stamp,
                        "Sum": value * count,
                        "SampleCount": float(count),
                        "Maximum": value,
                        "Minimum": value,
                    }
                )
        return {"Datapoints": points}


def test_backtest_history__sees_a_period_only_up_to_the_evaluation() -> None:
    """At minute 2 of a period the backtest judges the values of minutes 0 and 1, not the
    drift recorded at minute 3 of the same period (a live alarm could not see it yet)."""
    from llmmon.alarm_eval import HistorySource

    ratio = replace(alarm(m=1, n=1, threshold=0.2), min_samples=20)
    history = MinuteHistory({-5: (0.0, 30), 0: (0.0, 10), 1: (0.1, 10), 3: (0.9, 10), 4: (0.9, 10)})
    source = HistorySource(history, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    base = history.base
    at = base + timedelta(minutes=2)
    assert source.datapoints(ratio, base - timedelta(minutes=5), at) == {
        base - timedelta(minutes=5): 0.0,
        base: pytest.approx(0.05),
    }
    # a minute still running is not counted; thin so far is missing data
    assert source.datapoints(ratio, base, base + timedelta(seconds=90)) == {}
    whole = source.datapoints(ratio, base, base + timedelta(minutes=5))
    assert whole == {base: pytest.approx(0.475)}
    engine = AlarmEngine(AlarmSet((ratio,)), source)
    engine.evaluate(at)
    assert engine.states[ratio.name] == OK
    engine.evaluate(base + timedelta(seconds=299))  # minutes 0 to 3: 10 of 40 are refusals
    assert engine.states[ratio.name] == ALARM
    assert history.requests == 1  # read once, served from memory


class WholeSeconds:
    """GetMetricStatistics as CloudWatch (and moto) validate it: whole seconds, start < end."""

    def get_metric_statistics(self, **request: Any) -> dict[str, Any]:
        start, end = (request[k].replace(microsecond=0) for k in ("StartTime", "EndTime"))
        if not start < end:
            raise ValueError("The parameter StartTime must be less than the parameter EndTime.")
        return {"Datapoints": []}


@pytest.mark.parametrize("offset_s", [0, 0.2, 0.999, 60, 300.4])
def test_live_evaluation__at_the_first_instant_of_a_period(offset_s: float) -> None:
    """Evaluating right as a period begins asks for at least one whole second, never for an
    empty range (the demo failed this way when an evaluation fell on a minute boundary)."""
    from llmmon.alarm_eval import CloudWatchSource
    from llmmon_shared.spec import discover

    alarms = build_alarms(discover(), ["m"], "llmmon", AlarmNames("t"))
    engine = AlarmEngine(alarms, CloudWatchSource(WholeSeconds()))
    engine.evaluate(datetime(2026, 12, 1, 3, 0, tzinfo=UTC) + timedelta(seconds=offset_s))


def test_console_lines__in_time_order_and_the_return_to_ok_shown() -> None:
    """A notification held for the suppressor's wait prints when it is sent, saying when the
    state changed; the way back to OK prints like the way in."""
    source = FakeSource()
    source.feed("quality-a", [0.5, 0.5, 0.6])
    engine, _ = engine_with(source, composite_set(wait=60))
    lines = [t.line() for t in engine.evaluate(NOW)]
    lines += [t.line() for t in engine.evaluate(NOW + timedelta(seconds=61))]
    later = NOW + timedelta(seconds=400)
    source.feed("quality-a", [0.1, 0.1, 0.1], now=later)
    lines += [t.line() for t in engine.evaluate(later)]
    stamps = [line.split()[0] for line in lines]
    assert stamps == sorted(stamps)
    held = f"quality: INSUFFICIENT_DATA -> ALARM (notified; changed at {NOW:%H:%M:%S})"
    assert f"{NOW + timedelta(seconds=61):%H:%M:%S} {held}" in lines
    assert any(line.endswith("quality-a: ALARM -> OK") for line in lines)
    assert any("quality: ALARM -> OK" in line for line in lines)
