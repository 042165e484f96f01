"""The HTML report read as a browser's DOM: what happened first, the evidence above the charts
and the alarm table, incomplete periods left out, one colour per model in every chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from llmmon.report import (
    Bars,
    Chart,
    Evidence,
    Report,
    Series,
    colors_for,
    render,
    series_from_statistics,
)

T0 = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)


class Dom(HTMLParser):
    """Elements in document order: (tag, attributes, text inside until the next element)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self.text.append("")

    def handle_data(self, data: str) -> None:
        if self.text:
            self.text[-1] += data

    def first(self, tag: str, **attrs: str) -> int:
        for index, (name, found) in enumerate(self.elements):
            if name == tag and all(found.get(k) == v for k, v in attrs.items()):
                return index
        raise AssertionError(f"no <{tag} {attrs}>")


HEADLINE = ["HighRefusal: Refusal of model-a 0.03 -> 0.66 from 03:35 UTC. Cause: app X"]


def page(headline: list[str] = HEADLINE) -> str:
    models = ["model-a", "model-b"]
    report = Report(
        "run",
        T0,
        headline=headline,
        summary=[("queues", "refusal: 0 waiting, 0 in flight, 0 in the dead-letter queue")],
        evidence=[
            Evidence(
                "Evidence: HighRefusal",
                ["Refusal of model-a ...", "verdict: the rise comes with app = X"],
                [("What changed", ["attribute", "value"], [["app", "X"]])],
            )
        ],
        charts=[
            Chart("Refusal", "per model", [Series("model-b", [(T0, 0.1)])]),
            Chart("Toxicity", "per model", [Series("model-a", [(T0, 0.2)])]),
        ],
        bars=[Bars("Toxicity by model", "", {"Toxicity model-a": 0.2}, {"Toxicity model-a": "#x"})],
        tables=[("Alarms", ["state", "alarm"], [["ALARM", "HighRefusal"]])],
        colors=colors_for(models),
    )
    return render(report, {"Alarms": "alarms"})


def test_headline_then_evidence_then_charts_then_the_alarm_table() -> None:
    dom = Dom(page())
    headline = dom.first("section", id="headline")
    evidence = dom.first("section", **{"class": "evidence"})
    first_chart = dom.first("svg")
    alarms = dom.first("table", id="alarms")
    assert dom.elements[headline + 1][0] == "h2"  # "What happened" right after the title
    assert headline < evidence < first_chart < alarms
    assert "Cause: app X" in "".join(dom.text[headline:evidence])
    verdict = dom.first("li", **{"class": "verdict"})
    assert evidence < verdict < first_chart


def test_a_model_keeps_its_colour_in_every_chart() -> None:
    dom = Dom(page())
    strokes = [a.get("stroke") for t, a in dom.elements if t == "polyline"]
    a, b = colors_for(["model-a", "model-b"]).values()
    # Refusal: model-b (listed first there) keeps model-b's colour; Toxicity: model-a's.
    assert strokes == [b, a]


def test_no_headline_no_section() -> None:
    assert 'id="headline"' not in page(headline=[])


class _CloudWatch:
    def __init__(self, points: list[tuple[datetime, float]]) -> None:
        self.points = points

    def get_metric_statistics(self, **kwargs: Any) -> dict[str, Any]:
        return {"Datapoints": [{"Timestamp": t, "Average": v} for t, v in self.points]}


def test_periods_covered_only_in_part_are_left_out() -> None:
    """The data runs 03:02 to 04:02: the 03:00 and 04:00 periods hold a few values each."""
    periods = [(T0 + timedelta(minutes=m), 0.1) for m in range(0, 65, 5)]
    covered = (T0 + timedelta(minutes=2), T0 + timedelta(minutes=62))
    (series,) = series_from_statistics(
        _CloudWatch(periods), "ns", "Refusal", ["m"], T0, T0 + timedelta(hours=2), covered=covered
    )
    times = [t for t, _ in series.points]
    assert times[0] == T0 + timedelta(minutes=5)
    assert times[-1] == T0 + timedelta(minutes=55)  # 03:55-04:00 is the last whole period
    assert len(times) == 11
    (whole,) = series_from_statistics(
        _CloudWatch(periods), "ns", "Refusal", ["m"], T0, T0 + timedelta(hours=2)
    )
    assert len(whole.points) == 13
