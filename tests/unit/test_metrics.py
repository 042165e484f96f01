"""Metric points, the dimension policy, and the EMF / PutMetricData / memory sinks."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from llmmon_shared.metrics import (
    EMF_MAX_VALUES,
    DimensionPolicy,
    EmfSink,
    MemorySink,
    MetricPoint,
    PutMetricDataSink,
    Unit,
    cloudwatch_value,
)

T0 = datetime(2026, 11, 28, 7, 5, 31, tzinfo=UTC)
DIMS = (("ModelId", "anthropic.claude-v2"),)


def test_metric_point__rejects_bad_names_and_values() -> None:
    with pytest.raises(ValueError, match="name"):
        MetricPoint("Has spaces in it", 1.0)
    with pytest.raises(ValueError, match="does not accept"):
        MetricPoint("Score", float("nan"))
    with pytest.raises(ValueError, match="does not accept"):
        MetricPoint("Score", float("inf"))
    with pytest.raises(ValueError, match="does not accept"):
        MetricPoint("Tokens", 1e200)  # over 2^360
    with pytest.raises(ValueError, match="does not accept"):
        MetricPoint("Score", 1e-200)  # under 2^-360, not zero
    MetricPoint("Score", -(2.0**360))  # the bounds themselves are accepted
    MetricPoint("Score", 2.0**-360)


@pytest.mark.parametrize(
    ("raw", "accepted"),
    [(0.0, 0.0), (-3.5, -3.5), (2.0**360, 2.0**360), (1e-300, 0.0), (1e108, 1e108)],
)
def test_cloudwatch_value__inside_the_range_or_zero(raw: float, accepted: float) -> None:
    assert cloudwatch_value(raw) == accepted


@pytest.mark.parametrize("raw", [float("nan"), float("inf"), -float("inf"), 1e109, -1e200])
def test_cloudwatch_value__refuses_what_cloudwatch_refuses(raw: float) -> None:
    assert cloudwatch_value(raw) is None


def test_dimension_policy__model_always_metadata_only_when_allowed() -> None:
    policy = DimensionPolicy(metadata_keys=["app=tutor|writer"])
    dims = policy.dimensions(
        "us.anthropic.claude-3-haiku-20240307-v1:0", {"app": "tutor", "user": "alice@example.com"}
    )
    assert dims == (("ModelId", "us.anthropic.claude-3-haiku-20240307-v1:0"), ("app", "tutor"))
    assert policy.dimensions("m", {}) == (("ModelId", "m"),)


def test_dimension_policy__caps_distinct_values() -> None:
    policy = DimensionPolicy(metadata_keys=["tenant~t[0-9]"], max_values_per_key=2)
    seen = [dict(policy.dimensions("m", {"tenant": f"t{i}"}))["tenant"] for i in range(4)]
    assert seen == ["t0", "t1", "Other", "Other"]
    assert dict(policy.dimensions("m", {"tenant": "t1"}))["tenant"] == "t1"


@pytest.mark.parametrize("value", ["What is the capital of France?", "x" * 200, "", "a\nb"])
def test_dimension_policy__free_text_never_becomes_a_dimension(value: str) -> None:
    policy = DimensionPolicy(metadata_keys=["app~.*"])
    assert dict(policy.dimensions(value, {"app": value})) == {"ModelId": "Other", "app": "Other"}


@pytest.mark.parametrize(
    "value",
    [
        "alice@example.com",
        "arn:aws:iam::123456789012:user/alice",
        "ssn=123-45-6789",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc",
        "+1-202-555-0143",
        "4111111111111111",
        "sk_live_51HxQk2eZvKYlo2C0a1b2c3d4",
    ],
)
def test_dimension_policy__personal_data_never_passes(value: str) -> None:
    """Even a key whose pattern admits anything reports these as Other."""
    policy = DimensionPolicy(metadata_keys=["app~.*", f"user={value}"])
    assert dict(policy.dimensions("m", {"app": value, "user": value})) == {
        "ModelId": "m",
        "app": "Other",
        "user": "Other",
    }


def test_dimension_policy__declared_values_and_patterns_bound_the_set() -> None:
    policy = DimensionPolicy(metadata_keys=["app=search|writer", "tenant~[a-z]{2,8}", "team"])
    dims = dict(policy.dimensions("m", {"app": "chat", "tenant": "acme", "team": "blue"}))
    assert dims == {"ModelId": "m", "app": "Other", "tenant": "acme", "team": "Other"}
    assert dict(policy.dimensions("m", {"app": "search"}))["app"] == "search"
    assert dict(policy.dimensions("m", {"tenant": "acme-corp-intl"}))["tenant"] == "Other"


def emf_lines(points: list[MetricPoint], namespace: str = "llmmon") -> list[dict[str, Any]]:
    out = io.StringIO()
    sink = EmfSink(namespace, out)
    sink.add(points)
    sink.flush()
    assert sink.pending == []
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_emf__matches_the_specification() -> None:
    (doc,) = emf_lines(
        [
            MetricPoint("PromptResponseSimilarity", 0.8, Unit.NONE, DIMS, T0),
            MetricPoint("Refusal", 1, Unit.NONE, DIMS, T0),
        ]
    )
    directive = doc["_aws"]
    assert directive["Timestamp"] == int(T0.replace(second=0).timestamp() * 1000)
    (metrics,) = directive["CloudWatchMetrics"]
    assert metrics["Namespace"] == "llmmon"
    assert metrics["Dimensions"] == [["ModelId"]]
    assert {m["Name"] for m in metrics["Metrics"]} == {"PromptResponseSimilarity", "Refusal"}
    assert all(set(m) == {"Name", "Unit"} for m in metrics["Metrics"])
    assert doc["ModelId"] == "anthropic.claude-v2"
    assert doc["PromptResponseSimilarity"] == 0.8 and doc["Refusal"] == 1


def test_emf__many_values_are_arrays_of_at_most_100() -> None:
    points = [MetricPoint("Toxicity", i / 250, Unit.NONE, DIMS, T0) for i in range(250)]
    docs = emf_lines(points)
    sizes = [len(doc["Toxicity"]) for doc in docs]
    assert sizes == [EMF_MAX_VALUES, EMF_MAX_VALUES, 50]
    assert sorted(v for doc in docs for v in doc["Toxicity"]) == sorted(p.value for p in points)


def test_metadata_dimensions__also_roll_up_to_the_model_series() -> None:
    dims = (("ModelId", "m"), ("app", "tutor"))
    (doc,) = emf_lines([MetricPoint("Refusal", 1, Unit.NONE, dims, T0)])
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ModelId", "app"], ["ModelId"]]
    client = RecordingClient()
    sink = PutMetricDataSink("llmmon", client)
    sink.add([MetricPoint("Refusal", 1, Unit.NONE, dims, T0)])
    sink.flush()
    datums = client.calls[0]["MetricData"]
    assert sorted(len(d["Dimensions"]) for d in datums) == [1, 2]


def test_emf__at_most_100_metrics_per_directive() -> None:
    points = [MetricPoint(f"M{i}", 1.0, Unit.COUNT, DIMS, T0) for i in range(130)]
    docs = emf_lines(points)
    assert [len(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for d in docs] == [100, 30]


def test_emf__one_line_per_dimension_set_and_minute() -> None:
    later = T0.replace(minute=9)
    docs = emf_lines(
        [
            MetricPoint("Refusal", 1, Unit.NONE, DIMS, T0),
            MetricPoint("Refusal", 0, Unit.NONE, (("ModelId", "other"),), T0),
            MetricPoint("Refusal", 0, Unit.NONE, DIMS, later),
        ]
    )
    assert len(docs) == 3


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


def test_put_metric_data__packs_values_and_counts() -> None:
    client = RecordingClient()
    sink = PutMetricDataSink("llmmon", client)
    sink.add([MetricPoint("Refusal", v, Unit.NONE, DIMS, T0) for v in [1, 0, 0, 1, 0]])
    sink.flush()
    (call,) = client.calls
    assert call["Namespace"] == "llmmon"
    (datum,) = call["MetricData"]
    assert datum["MetricName"] == "Refusal"
    assert datum["Dimensions"] == [{"Name": "ModelId", "Value": "anthropic.claude-v2"}]
    assert dict(zip(datum["Values"], datum["Counts"], strict=True)) == {1: 2.0, 0: 3.0}


def test_put_metric_data__splits_at_150_values_and_1000_datums() -> None:
    client = RecordingClient()
    sink = PutMetricDataSink("llmmon", client)
    sink.add([MetricPoint("Score", i / 1000, Unit.NONE, DIMS, T0) for i in range(400)])
    sink.add([MetricPoint(f"M{i}", 1.0, Unit.COUNT, DIMS, T0) for i in range(1200)])
    sink.flush()
    datums = [d for call in client.calls for d in call["MetricData"]]
    assert all(len(call["MetricData"]) <= 1000 for call in client.calls)
    assert len(client.calls) == 2 and sink.requests == 2
    assert sorted(len(d["Values"]) for d in datums if d["MetricName"] == "Score") == [100, 150, 150]
    assert len(datums) == 1203


def test_memory_sink__keeps_flushed_points() -> None:
    sink = MemorySink()
    sink.add([MetricPoint("Refusal", 1, Unit.NONE, DIMS, T0)])
    assert sink.flushed == []
    sink.flush()
    assert sink.values("Refusal", ModelId="anthropic.claude-v2") == [1]
