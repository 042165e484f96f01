"""The per-model tables' columns come from the services' declarations: a metric an alarm reads,
or one declared ``headline=True``, is a column; the rest is not."""

from __future__ import annotations

import dataclasses

import pytest

from llmmon_shared.spec import INTERACTIONS, discover, headline_columns
from tests.functional.answer_length_service import SERVICE


def test_an_alarmed_metric_is_a_column_and_an_unalarmed_one_is_not() -> None:
    columns = [c.name for c in headline_columns({"lengths": SERVICE})]
    assert columns == [INTERACTIONS.name, "LongAnswer"]


def test_headline_true_adds_a_metric_and_false_removes_an_alarmed_one() -> None:
    chars, long = SERVICE.metrics
    declared = dataclasses.replace(
        SERVICE,
        metrics=(
            dataclasses.replace(chars, headline=True),
            dataclasses.replace(long, headline=False),
        ),
    )
    assert [c.name for c in headline_columns({"lengths": declared})][1:] == ["AnswerChars"]


def test_installed_services__every_alarmed_ordinary_metric_is_a_column() -> None:
    services = discover()
    columns = {c.name for c in headline_columns(services)}
    for spec in services.values():
        for alarm in spec.alarms:
            if not alarm.metric.startswith("Canary"):
                assert alarm.metric in columns, alarm.metric
    assert not {c for c in columns if c.startswith("Canary")}  # the canary's runs, not traffic


def test_formats__shares_as_percentages_counts_whole() -> None:
    by_name = {c.name: c for c in headline_columns(discover())}
    assert by_name["Refusal"].format.format(0.25) == "25.0%"
    assert by_name["Interactions"].format.format(12.0) == "12"
    assert by_name["PromptResponseSimilarity"].format.format(0.5) == "0.500"


class _CloudWatch:
    """Every metric of every model: two values in the window, 1 and 0."""

    def get_metric_statistics(self, **kwargs: object) -> dict[str, object]:
        return {"Datapoints": [{"Sum": 1.0, "SampleCount": 2.0}]}


def test_demo_table__columns_from_the_declarations(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    import llmmon.local.demo as demo

    monkeypatch.setattr(demo, "discover", lambda: {"lengths": SERVICE})
    assert [c.name for c in demo.table_metrics()] == ["Interactions", "LongAnswer"]
    now = datetime.now(UTC)
    rows = demo.model_table(_CloudWatch(), "llmmon", ["m"], now, now)
    assert rows == [["m", "1", "50.0%"]]
