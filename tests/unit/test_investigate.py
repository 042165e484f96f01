"""``llmmon investigate``'s analysis, pinned on hand-built windows: which attribute explains a
rise, which records rank first, where a breach began, and what an alarm's definition says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmmon.errors import CliError
from llmmon.evidence import (
    Row,
    Target,
    analyse,
    breach_start,
    metadata_value,
    ranked,
    target_from_alarm,
    what_changed,
)
from llmmon.investigate import capped, scorer_settings
from llmmon_shared.spec import discover

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
REFUSAL = Target("refusal", "Refusal", "m", {"ModelId": "m"}, threshold=0.25)


def row(n: int, value: float, app: str, minute: int = 0, **extra: str) -> Row:
    return Row(
        request_id=f"r{n:04d}",
        key="k",
        line=n,
        time=T0 + timedelta(minutes=minute),
        value=value,
        attributes={"model": "m", "requestMetadata.app": app, **extra},
    )


def windows() -> tuple[list[Row], list[Row]]:
    """Baseline: three apps, 5% refused. Window: the same three at 5%, and a new app whose
    requests are refused 90% of the time."""
    baseline = [row(n, float(n % 20 == 0), ["a", "b", "c"][n % 3]) for n in range(300)]
    window = [row(n, float(n % 20 == 0), ["a", "b", "c"][n % 3]) for n in range(300)]
    window += [row(1000 + n, float(n % 10 != 0), "new", system="fp:1") for n in range(100)]
    for r in [*baseline, *window]:
        r.attributes.setdefault("system", "none")
    return window, baseline


def test_what_changed__the_new_application_explains_the_rise() -> None:
    window, baseline = windows()
    findings = analyse(REFUSAL, window, baseline)
    changes = findings["changes"]
    top = changes[0]
    assert (top.attribute, top.value) == ("requestMetadata.app", "new")
    assert top.baseline_share == 0.0 and top.window_share == 0.25
    assert top.explained is not None and top.explained > 0.9
    # The app and its system prompt hold the same records: the app, which a person acts on,
    # ranks first; the model, held by every record in both windows, explains nothing.
    assert (changes[1].attribute, changes[1].value) == ("system", "fp:1")
    assert all(c.attribute != "model" for c in changes)
    assert findings["window_bad"] == 15 + 90 and findings["baseline_bad"] == 15


def test_what_changed__leaves_out_the_definition_of_bad() -> None:
    """An attribute that is bad by definition (a guardrail's stop reason for the guardrail
    metric) holds exactly the bad records in both windows: it explains nothing new."""
    baseline = [row(n, float(n < 10), "a", stop="g" if n < 10 else "end") for n in range(100)]
    window = [
        row(n, float(n < 60), "a", stop="g" if n < 60 else "end", guardrail="v2")
        for n in range(100)
    ]
    for r in baseline:
        r.attributes["guardrail"] = "v1"
    target = Target("traffic", "GuardrailIntervened", "m", {"ModelId": "m"}, threshold=0.2)
    mark = analyse(target, window, baseline)
    pairs = [(c.attribute, c.value) for c in mark["changes"]]
    assert ("stop", "g") not in pairs
    assert pairs[0] == ("guardrail", "v2")


def test_what_changed__without_a_baseline_ranks_by_share_of_bad_records() -> None:
    window = [row(n, float(n % 2 == 0), "a" if n < 80 else "b") for n in range(100)]
    analyse(REFUSAL, window, [])  # marks the bad records
    changes = what_changed(window, [])
    assert changes[0].value == "a" and changes[0].baseline_share is None


def test_ranked__bad_first_then_worst_then_most_confident() -> None:
    low = Target(
        "similarity", "PromptResponseSimilarity", "m", {}, "Average", "LessThanThreshold", 0.2
    )
    rows = [row(0, 0.9, "a"), row(1, 0.1, "a"), row(2, -0.05, "a"), row(3, 0.15, "a")]
    analyse(low, rows, [])
    assert [r.request_id for r in ranked(rows, low)] == ["r0002", "r0001", "r0003", "r0000"]
    refusals = [row(0, 1.0, "a"), row(1, 1.0, "a"), row(2, 0.0, "a")]
    refusals[0].reasons = {"similarity": 0.5, "fuzzy": 0.9}
    refusals[1].reasons = {"similarity": 0.97, "fuzzy": 0.4}
    analyse(REFUSAL, refusals, [])
    assert [r.request_id for r in ranked(refusals, REFUSAL)] == ["r0001", "r0000", "r0002"]


def test_breach_start__walks_back_over_consecutive_breaching_periods() -> None:
    values = {T0 + timedelta(minutes=5 * i): v for i, v in enumerate([0.1, 0.3, 0.5, 0.6, 0.4])}
    entered = T0 + timedelta(minutes=22)  # in the last period

    def value_at(start: datetime) -> float | None:
        return values.get(start)

    assert breach_start(value_at, REFUSAL, entered) == T0 + timedelta(minutes=5)
    # the period of the move is empty yet: the walk starts from the latest one with a value
    assert breach_start(value_at, REFUSAL, entered + timedelta(minutes=5)) == T0 + timedelta(
        minutes=5
    )
    band = Target("refusal", "Refusal", "m", {}, threshold=2.0, band=True)
    assert breach_start(value_at, band, entered) is None


def test_target_from_alarm__plain_and_metric_math_and_not_ours() -> None:
    services = discover()
    plain = {
        "AlarmName": "llmmon-refusal-HighRefusalRatio-m",
        "Namespace": "llmmon",
        "MetricName": "Refusal",
        "Dimensions": [{"Name": "ModelId", "Value": "m"}],
        "Statistic": "Average",
        "Period": 300,
        "EvaluationPeriods": 3,
        "Threshold": 0.25,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    target = target_from_alarm(plain, services)
    assert (target.service, target.metric, target.model, target.threshold) == (
        "refusal",
        "Refusal",
        "m",
        0.25,
    )
    math_alarm = {
        "AlarmName": "llmmon-refusal-CanaryOverRefusal-m",
        "EvaluationPeriods": 1,
        "Threshold": 0.2,
        "ComparisonOperator": "GreaterThanThreshold",
        "Metrics": [
            {"Id": "r", "Expression": "IF(n >= 5, m)"},
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "llmmon",
                        "MetricName": "CanaryOverRefusal",
                        "Dimensions": [{"Name": "ModelId", "Value": "m"}],
                    },
                    "Period": 3600,
                    "Stat": "Average",
                },
            },
        ],
    }
    canary = target_from_alarm(math_alarm, services)
    assert canary.canary and canary.score_name == "OverRefusal" and canary.period_s == 3600
    health = {
        **plain,
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": "q"}],
    }
    with pytest.raises(CliError, match="not an llmmon quality alarm"):
        target_from_alarm(health, services)


def test_metadata_values__identifiers_stay_and_personal_shapes_become_fingerprints() -> None:
    assert metadata_value("claims-assistant") == "claims-assistant"
    for value in ("jane.doe@example.com", "4111 1111 1111 1111", "the user asked about cats"):
        shown = metadata_value(value)
        assert shown.startswith("fp:") and value not in shown


def test_capped__a_deterministic_sample_and_delivery_settings_dropped() -> None:
    objects = [(f"k{n}", n) for n in range(50)]
    assert capped(objects, 10) == capped(list(reversed(objects)), 10)
    assert len(capped(objects, 10)) == 10 and capped(objects, None) == objects
    settings = scorer_settings(
        {
            "LLMMON_SINK": "emf",
            "LLMMON_IDEMPOTENCY_TABLE": "t",
            "LLMMON_SAMPLE_RATE": "0.5",
            "AWS_REGION": "x",
        }
    )
    assert settings == {
        "LLMMON_SAMPLE_RATE": "0.5",
        "LLMMON_SINK": "memory",
        "LLMMON_LOG_LEVEL": "ERROR",
    }


def test_verdict__names_the_cause_or_says_the_model_changed() -> None:
    window, baseline = windows()
    findings = analyse(REFUSAL, window, baseline)
    assert findings["verdict"].startswith("the rise comes with requestMetadata.app = new")
    # The same requests, answered worse: no request attribute explains it.
    apps = ["a", "b", "c", "d", "e"]
    same = [row(n, float(n % 3 == 0), apps[n % 5]) for n in range(300)]
    before = [row(n, float(n % 20 == 0), apps[n % 5]) for n in range(300)]
    for r in same:
        r.attributes["output tokens"] = "0-99 tokens" if r.value else "100-499 tokens"
    changed = analyse(REFUSAL, same, before)
    assert "the model itself changed" in changed["verdict"]
    # what the answers look like is an effect, ranked apart from the causes
    assert all(c.attribute != "output tokens" for c in changed["changes"])
    assert any(c.attribute == "output tokens" for c in changed["answer_changes"])


class LocalEndpoint:
    """CloudWatch as the local endpoint answers: no alarm history (HTTP 500), the alarm's
    current state only, and the refusal ratio per period."""

    def __init__(self, values: dict[datetime, float]) -> None:
        self.values = values

    def get_paginator(self, name: str) -> object:
        raise RuntimeError("500 Internal Server Error")  # DescribeAlarmHistory

    def describe_alarms(self, AlarmNames: list[str]) -> dict[str, object]:
        return {
            "MetricAlarms": [
                {"StateValue": "OK", "StateUpdatedTimestamp": T0 + timedelta(minutes=40)}
            ]
        }

    def get_metric_statistics(self, **kwargs: object) -> dict[str, object]:
        start = kwargs["StartTime"]
        value = self.values.get(start)  # type: ignore[arg-type]
        if value is None:
            return {"Datapoints": []}
        return {
            "Datapoints": [
                {"Timestamp": start, "Average": value, "SampleCount": 40, "Sum": value * 40}
            ]
        }


def test_alarm_back_to_ok__investigates_its_most_recent_alarm_episode(tmp_path: object) -> None:
    """A minute after the alarm went back to OK, the local stack's own record of its changes
    gives the episode (the endpoint has no history): the window is that episode's, and the
    report says which one it chose."""
    from pathlib import Path

    from llmmon.investigate import Where, breach_window
    from llmmon.local.stack import record_transition

    history = Path(str(tmp_path)) / "alarm-history.jsonl"
    alarm = "llmmon-local-refusal-HighRefusalRatio-m"
    record_transition(history, "another-alarm", "ALARM", T0)
    record_transition(history, alarm, "ALARM", T0 + timedelta(minutes=5))
    record_transition(history, alarm, "OK", T0 + timedelta(minutes=12))
    record_transition(history, alarm, "ALARM", T0 + timedelta(minutes=22))
    record_transition(history, alarm, "OK", T0 + timedelta(minutes=39))
    values = {
        T0 + timedelta(minutes=5 * i): v
        for i, v in enumerate([0.1, 0.1, 0.1, 0.5, 0.6, 0.4, 0.5, 0.1, 0.1])
    }
    where = Where(LocalEndpoint(values), None, "local", alarm_history=str(history))
    target = Target("refusal", "Refusal", "m", {"ModelId": "m"}, threshold=0.25, alarm=alarm)
    window, episode = breach_window(where, target, T0 + timedelta(minutes=41))
    assert window.start == T0 + timedelta(minutes=15) and window.end == T0 + timedelta(minutes=40)
    assert episode == (
        "the most recent ALARM episode of 2: ALARM at 2026-12-01 10:22Z, OK again at 10:39Z"
    )
    # Without the record, the alarm looks as if it had never been in ALARM.
    with pytest.raises(CliError, match="has not been in ALARM"):
        breach_window(Where(LocalEndpoint(values), None, "local"), target, T0)


def test_first_screen__alarm_window_figures_and_verdict_before_the_records() -> None:
    """The verdict, in percentage points of the metric's bad-record rate, comes before any
    record, in the terminal and in the HTML; the measure is defined once."""
    import io

    from llmmon.evidence import Window
    from llmmon.investigate_report import html_report, print_report, public_report

    window, baseline = windows()
    findings = analyse(REFUSAL, window, baseline)
    # Baseline 15 of 300 bad (5%); window 15 + 90 of 400 (26.25%): a 21-point rise, all of it
    # from the new application's 90 bad records (22.5 points of the 400) less what the old
    # applications' share of the traffic gave up.
    assert findings["verdict"] == (
        "the rise comes with requestMetadata.app = new: +22 points of the +21-point rise in "
        "bad records"
    )
    span = Window(T0, T0 + timedelta(minutes=15))
    report = public_report(
        REFUSAL,
        span,
        Window(T0 - timedelta(minutes=15), T0),
        "just before the breach",
        findings,
        {"window": 0.2625, "baseline": 0.05, "agreement": "agrees"},
        {"objects": 3, "bytes": 1000, "note": "", "where": "local"},
        "the most recent ALARM episode: ALARM at 2026-12-01 10:05Z, still in ALARM",
    )
    assert report["rise_points"] == pytest.approx(21.25, abs=0.1)
    out = io.StringIO()
    print_report(report, findings["records"][:5], out)
    lines = out.getvalue().splitlines()
    verdict_at = next(i for i, line in enumerate(lines) if line.startswith("  => "))
    records_at = next(i for i, line in enumerate(lines) if line.startswith("records behind"))
    assert verdict_at <= 6 < records_at
    assert lines[1].startswith("  episode  the most recent ALARM episode")
    assert sum("points: percentage points" in line for line in lines) == 1
    assert any("requestMetadata.app = new: +22 points of the rise" in line for line in lines)
    page = html_report(report, window, baseline, 300)
    assert page.index(findings["verdict"]) < page.index("Records behind the alarm")
    assert "rate points" not in page.lower()


def test_html_without_a_baseline__no_rise_is_charted() -> None:
    """No baseline, no rise to split: the page ranks nothing as points of a rise."""
    from llmmon.evidence import Window
    from llmmon.investigate_report import html_report, public_report

    window, _ = windows()
    findings = analyse(REFUSAL, window, [])
    span = Window(T0, T0 + timedelta(minutes=15))
    report = public_report(
        REFUSAL,
        span,
        None,
        "no earlier baseline exists",
        findings,
        {"window": 0.2625, "baseline": None, "agreement": "agrees"},
        {"objects": 3, "bytes": 1000, "note": "", "where": "local"},
        None,
    )
    page = html_report(report, window, [], 300)
    assert "What changed" not in page and "-point rise" not in page
    assert "no earlier baseline exists" in page


def test_refusal_evidence__the_rules_that_rose_in_the_summary_and_the_page() -> None:
    from llmmon.evidence import Window
    from llmmon.investigate_report import html_report, public_report, rising_reasons, summary

    window, baseline = windows()
    findings = analyse(REFUSAL, window, baseline)
    report = public_report(
        REFUSAL,
        Window(T0, T0 + timedelta(minutes=15)),
        Window(T0 - timedelta(minutes=15), T0),
        "just before the breach",
        findings,
        {"window": 0.2625, "baseline": 0.05, "agreement": "agrees"},
        {"objects": 3, "bytes": 1000, "note": "", "where": "local"},
        None,
    )
    report["refusal_reasons"] = [
        {"reason": "rule fuzzy", "window_share": 0.2, "baseline_share": 0.05, "rise": 0.15},
        {"reason": "cue judgement", "window_share": 0.01, "baseline_share": 0.02, "rise": -0.01},
    ]
    assert rising_reasons(report) == ["rule fuzzy 5% -> 20%"]  # what fell is not a cause
    assert any(line.startswith("refusal rules that rose most") for line in summary(report))
    assert "Refusal rules, reference phrases and cues" in html_report(report, window, baseline, 300)


def test_verdict__an_attack_wave_from_one_application() -> None:
    """The new app's refused requests answer jailbreak prompts: the verdict says the rise is an
    attack wave and where it comes from, not that the model changed."""
    window, baseline = windows()
    for r in [*window, *baseline]:
        attack = r.attributes["requestMetadata.app"] == "new" and r.value == 1.0
        r.attributes["prompt attack"] = "jailbreak" if attack else "none"
    findings = analyse(REFUSAL, window, baseline)
    assert findings["verdict"].startswith(
        "the rise comes with prompt attacks from requestMetadata.app = new: "
    )
    assert "of the bad records answer attack prompts (jailbreak; 0% before)" in findings["verdict"]


def test_verdict__attacks_among_a_few_bad_records_are_not_the_story() -> None:
    window, baseline = windows()
    for n, r in enumerate([*window, *baseline]):
        r.attributes["prompt attack"] = "jailbreak" if n % 50 == 0 else "none"
    findings = analyse(REFUSAL, window, baseline)
    assert findings["verdict"].startswith("the rise comes with requestMetadata.app = new")


def test_canary_split__its_own_earlier_runs_are_the_baseline() -> None:
    """Four runs of 50 probes: two of version 1 (8 refused), two of version 2 (20 refused). The
    first breaching run starts the window; the runs before it are the baseline, whatever the
    hour they fall in."""
    from llmmon.evidence import canary_split

    target = Target("refusal", "CanaryOverRefusal", "m", {"ModelId": "m"}, threshold=0.2)
    rows = [
        row(run * 100 + n, float(n < refused), "canary", minute=15 * run)
        for run, refused in enumerate([8, 8, 20, 20])
        for n in range(50)
    ]
    first, breach, earlier = canary_split(rows, target) or (None, None, 0)
    assert (first, breach, earlier) == (T0, T0 + timedelta(minutes=30), 2)
    assert canary_split(rows[100:], target) is None  # the first run breaches: nothing earlier
