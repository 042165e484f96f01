"""``llmmon cost``: the bill counted from the declarations the stack deploys, CloudWatch's part
included, and the setting that halves that part."""

from __future__ import annotations

import json

import pytest

from llmmon.cli import main
from llmmon.cost import Deployment, bill, load_prices, tiered
from llmmon_shared.alarms import AlarmNames, build_alarms
from llmmon_shared.spec import discover


def cloudwatch(deployment: Deployment) -> tuple[float, int]:
    result = bill(deployment)
    return result.total("cloudwatch"), result.facts["custom_metrics"]


def test_custom_metrics__per_model_and_per_application_with_the_roll_up() -> None:
    services = {n: s for n, s in discover().items() if n != "canary"}
    detail = {"canary_runs_per_day": 0}
    plain = bill(Deployment(models=2, **detail)).facts
    apps = bill(Deployment(models=2, apps_per_model=3, **detail)).facts
    # a score per model becomes one series per model and one per (model, application)
    assert apps["custom_metrics"] > plain["custom_metrics"] * 1.8
    refusal = [
        dims
        for name, dims in emitted_series(Deployment(models=2, apps_per_model=3, **detail))
        if name == "Refusal"
    ]
    assert len(refusal) == 2 + 2 * 3
    three = bill(Deployment(models=3, **detail)).facts
    per_model = three["custom_metrics"] - plain["custom_metrics"]
    assert per_model > 0 and plain["custom_metrics"] >= 2 * per_model  # + per-service counts
    alarms = build_alarms(
        services, [f"model-{n}.example-v1:0" for n in range(2)], "llmmon", AlarmNames("llmmon")
    )
    assert plain["metric_alarms"] == len(alarms.metric_alarms)


def test_lean_default__a_fraction_of_detail_and_every_alarmed_metric_kept() -> None:
    medium = Deployment(models=5, apps_per_model=3, backend="local")
    lean, fewer = cloudwatch(medium)
    full, series = cloudwatch(Deployment(**{**medium.__dict__, "detail_metrics": True}))
    # (the alarms' part of the bill stays: 83 alarms for five models)
    assert lean <= 0.7 * full and fewer < 0.6 * series
    emitted = {name for name, _ in emitted_series(medium)}
    alarmed = {a.metric for n, s in discover().items() if n != "canary" for a in s.alarms}
    assert alarmed <= emitted | {"CanaryOverRefusal", "CanaryUnderRefusal"}
    # Detail on: the detail scores are per model only, not per application as well.
    detail = emitted_series(Deployment(**{**medium.__dict__, "detail_metrics": True}))
    assert not [dims for name, dims in detail if name == "ToxicityInsult" and "app" in dict(dims)]
    assert [dims for name, dims in detail if name == "Toxicity" and "app" in dict(dims)]


def emitted_series(deployment: Deployment) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    from llmmon.cost import emitted

    services = {n: s for n, s in discover().items() if n != "canary"}
    found: set[tuple[str, tuple[tuple[str, str], ...]]] = emitted(deployment, services)["series"]
    return found


def test_prices__tiers_and_a_date() -> None:
    prices = load_prices()
    assert prices["_as_of"]
    tiers = prices["cloudwatch_metric_tiers"]
    assert tiered(10_000, tiers) == pytest.approx(3000.0)
    assert tiered(10_001, tiers) == pytest.approx(3000.1)
    assert tiered(0, tiers) == 0


def test_cost_command__prints_the_line_items_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--models", "2", "--backend", "local"]) == 0
    out = capsys.readouterr().out
    for item in ("custom metrics", "alarms", "dashboard", "EMF log ingestion", "Lambda", "SQS"):
        assert item in out
    assert "detailMetrics" in out
    assert main(["cost", "--json", "--sample-rate", "0.1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == pytest.approx(sum(line["usd"] for line in report["lines"]), abs=0.1)
    assert main(["cost", "--sample-rate", "2"]) == 2


def emitted_points(
    scores: dict[str, float], detail: frozenset[str] = frozenset(), **settings: object
) -> list:
    """The points a pipeline emits for the converse fixture when its scorer gives ``scores``."""
    from llmmon_shared.events import ObjectRef
    from llmmon_shared.metrics import MemorySink
    from llmmon_shared.runtime import Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import FIXTURE_BUCKET, DictS3Reader, fixture_key

    sink = MemorySink()
    pipeline = Pipeline(
        "t",
        lambda batch: [dict(scores) for _ in batch],
        {},
        DictS3Reader.from_fixtures(),
        sink,
        ServiceSettings(**settings),  # type: ignore[arg-type]
        detail=detail,
    )
    pipeline.process_object(ObjectRef(FIXTURE_BUCKET, fixture_key("converse"), None, None))
    sink.flush()
    return sink.flushed


def test_pipeline__never_emits_a_dropped_metric() -> None:
    names = {p.name for p in emitted_points({"Kept": 1.0, "Dropped": 2.0}, drop_metrics="Dropped")}
    assert "Kept" in names and "Dropped" not in names


@pytest.mark.parametrize("detail", [False, True])
def test_pipeline__detail_scores_opt_in_and_per_model_only(detail: bool) -> None:
    points = emitted_points(
        {"Alarmed": 1.0, "Detail": 2.0},
        frozenset({"Detail"}),
        detail_metrics=detail,
        metadata_dimensions=["app~[a-z-]+"],
    )
    alarmed = [p for p in points if p.name == "Alarmed"]
    details = [p for p in points if p.name == "Detail"]
    assert alarmed and any("app" in p.dimension_map for p in alarmed)
    assert bool(details) == detail
    assert not [p for p in details if "app" in p.dimension_map]
