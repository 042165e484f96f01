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
    plain = bill(Deployment(models=2, canary_runs_per_day=0)).facts
    apps = bill(Deployment(models=2, apps_per_model=3, canary_runs_per_day=0)).facts
    # a score per model becomes one series per model and one per (model, application)
    assert apps["custom_metrics"] > 3 * plain["custom_metrics"] * 0.8
    three = bill(Deployment(models=3, canary_runs_per_day=0)).facts
    per_model = three["custom_metrics"] - plain["custom_metrics"]
    assert per_model > 0 and plain["custom_metrics"] >= 2 * per_model  # + per-service counts
    alarms = build_alarms(
        services, [f"model-{n}.example-v1:0" for n in range(2)], "llmmon", AlarmNames("llmmon")
    )
    assert plain["metric_alarms"] == len(alarms.metric_alarms)


def test_dropping_what_no_alarm_reads__halves_cloudwatch_and_keeps_every_alarmed_metric() -> None:
    medium = Deployment(models=5, apps_per_model=3, backend="local")
    full, series = cloudwatch(medium)
    names = tuple(bill(medium).facts["not_alarmed"])
    alarmed = {a.metric for s in discover().values() for a in s.alarms}
    assert names and not set(names) & alarmed
    lean, fewer = cloudwatch(Deployment(**{**medium.__dict__, "drop_metrics": names}))
    assert lean <= 0.5 * full and fewer < series / 2


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
    assert "LLMMON_DROP_METRICS" in out
    assert main(["cost", "--json", "--sample-rate", "0.1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == pytest.approx(sum(line["usd"] for line in report["lines"]), abs=0.1)
    assert main(["cost", "--sample-rate", "2"]) == 2


def test_pipeline__never_emits_a_dropped_metric() -> None:
    from llmmon_shared.metrics import MemorySink
    from llmmon_shared.runtime import Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import FIXTURE_BUCKET, DictS3Reader, fixture_key

    def compute(batch: list) -> list[dict[str, float]]:
        return [{"Kept": 1.0, "Dropped": 2.0} for _ in batch]

    sink = MemorySink()
    pipeline = Pipeline(
        "t",
        compute,
        {},
        DictS3Reader.from_fixtures(),
        sink,
        ServiceSettings(drop_metrics="Dropped"),
    )
    from llmmon_shared.events import ObjectRef

    pipeline.process_object(ObjectRef(FIXTURE_BUCKET, fixture_key("converse"), None, None))
    sink.flush()
    names = {p.name for p in sink.flushed}
    assert "Kept" in names and "Dropped" not in names
