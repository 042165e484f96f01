"""Capacity and sizing from the declared scoring cost (llmmon_shared.capacity), the lean metric
set, and ``llmmon capacity``."""

from __future__ import annotations

import json

import pytest

from llmmon_shared.capacity import (
    MB_PER_VCPU,
    Volume,
    plan,
    plan_service,
    wall_s,
)
from llmmon_shared.metrics import Unit
from llmmon_shared.spec import AlarmSpec, Comparison, MetricSpec, ScoringCost, ServiceSpec, discover

CPU_BOUND = ScoringCost({"local": 0.25, "managed": 0.02}, {"managed": 0.1})


def spec(cost: ScoringCost = CPU_BOUND, memory_mb: int = 512) -> ServiceSpec:
    return ServiceSpec(
        name="demo",
        description="",
        handler="x.y",
        metrics=(
            MetricSpec("Score", Unit.NONE, ""),
            MetricSpec("Detail", Unit.NONE, ""),
            MetricSpec("Kept", Unit.NONE, "", default=True),
        ),
        alarms=(AlarmSpec("High", "Score", "Average", Comparison.GREATER, 0.5),),
        scoring=cost,
        backend_setting="embeddingBackend",
        memory_mb=memory_mb,
        timeout_s=300,
    )


def test_cpu_seconds_stretch_below_one_vcpu_and_not_above() -> None:
    at_512 = wall_s(CPU_BOUND, "local", 512, 100)
    at_vcpu = wall_s(CPU_BOUND, "local", MB_PER_VCPU, 100)
    at_3008 = wall_s(CPU_BOUND, "local", 3008, 100)
    assert at_512 == pytest.approx(0.25 * MB_PER_VCPU / 512 + 0.062 / 100)
    assert at_vcpu == pytest.approx(at_3008)
    # The figure: comprehend at 512 MB, ~0.25 CPU-s, about 0.86 s an interaction.
    assert 0.85 < at_512 < 0.88


def test_a_cpu_bound_scorer_gets_a_full_vcpu_when_it_costs_about_the_same() -> None:
    sized = plan_service(spec(), "local", Volume(invocations_per_day=1_000_000))
    assert sized.memory_mb == MB_PER_VCPU
    assert sized.sized == {
        "timeoutS": "derived",
        "memoryMb": "derived",
        "batchSize": "derived",
        "maxConcurrency": "derived",
    }
    # An API-bound backend: the wait dominates, more memory only costs more.
    managed = plan_service(spec(), "managed", Volume(invocations_per_day=1_000_000))
    assert managed.memory_mb == 512


def test_concurrency_follows_the_peak_and_the_stacks_settings_win() -> None:
    volume = Volume(invocations_per_day=1_000_000, peak_factor=3)
    sized = plan_service(spec(), "local", volume)
    peak = 1_000_000 / 86400 * 3
    assert sized.peak_per_s == pytest.approx(peak)
    assert sized.concurrency_at_peak == pytest.approx(peak * sized.wall_s)
    assert sized.max_concurrency >= sized.concurrency_at_peak * 1.5
    assert not sized.falls_behind
    fixed = plan_service(spec(), "local", volume, {"maxConcurrency": 5, "memoryMb": 512})
    assert (fixed.max_concurrency, fixed.memory_mb) == (5, 512)
    assert fixed.falls_behind  # the old defaults: about 5.8 interactions/s
    assert fixed.capacity_per_s == pytest.approx(5 / fixed.wall_s)
    assert "the stack's setting" in fixed.first_limit


def test_the_account_concurrency_is_shared_and_a_fitting_sample_rate_is_said() -> None:
    specs = {"a": spec(), "b": spec()}
    big = plan(specs, {"a": "local", "b": "local"}, Volume(100_000_000, account_concurrency=1000))
    assert big.concurrency <= 1000 + 2 * len(specs)
    assert all(s.falls_behind for s in big.services)
    rate = big.fitting_sample_rate
    assert rate is not None and 0 < rate < 1
    warnings = big.warnings()
    assert any("falls behind" in w for w in warnings)
    assert any(f"sample rate of {int(rate * 1000) / 1000:g}" in w for w in warnings)
    small = plan(specs, {"a": "local", "b": "local"}, Volume(1_000_000))
    assert small.fitting_sample_rate is None and small.warnings() == []


def test_batch_size_fits_a_fifth_of_the_timeout() -> None:
    sized = plan_service(spec(), "local", Volume())
    assert 1 <= sized.batch_size <= 10
    assert sized.batch_size * 100 * sized.wall_s <= 0.2 * sized.timeout_s or sized.batch_size == 1


def test_every_service_declares_its_measured_scoring_cost() -> None:
    for name, declared in discover().items():
        if name == "canary":
            continue
        assert declared.scoring.measured_on, name
        assert declared.scoring.cpu_s["local"] > 0, name
        if declared.backend_setting:
            assert declared.scoring.cpu_s["managed"] > 0, name


def test_lean_set__alarmed_and_kept_metrics_by_default_the_rest_detail() -> None:
    declared = spec()
    assert declared.detail_metrics == {"Detail"}
    assert [m.name for m in declared.emitted()] == ["Score", "Kept"]
    assert [m.name for m in declared.emitted(detail=True)] == ["Score", "Detail", "Kept"]
    for name, service in discover().items():
        alarmed = {a.metric for a in service.alarms}
        assert not alarmed & service.detail_metrics, name


def test_capacity_command__json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    from llmmon.cli import main

    assert (
        main(["capacity", "--invocations-per-day", "10000000", "--backend", "local", "--json"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    services = {s["service"]: s for s in result["services"]}
    assert set(services) == {n for n in discover() if n != "canary"}
    for figures in services.values():
        assert figures["clears_per_s"] >= result["volume"]["peak_per_s"]
        assert figures["first_limit"]
    assert result["warnings"] == [] and result["fitting_sample_rate"] is None
    # Managed Comprehend: one DetectToxicContent call an interaction, the API quota first.
    assert main(["capacity", "--invocations-per-day", "10000000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    comprehend = {s["service"]: s for s in result["services"]}["comprehend"]
    assert comprehend["falls_behind"] and "API quota" in comprehend["first_limit"]
    assert 0 < result["fitting_sample_rate"] < 0.1
    assert main(["capacity", "--invocations-per-day", "100000000", "--backend", "local"]) == 0
    text = capsys.readouterr().out
    assert "first limit" in text and "CPU-seconds measured on" in text
