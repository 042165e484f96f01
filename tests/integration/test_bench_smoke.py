"""A smoke run of the benchmark suite (small sizes, no end-to-end part): it runs and reports
every figure. Speed targets are checked by the full run, not here (this machine is noisy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.bench import main

pytestmark = pytest.mark.integration


def test_benchmark_smoke_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["--quick", "--skip-e2e", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    # Where it ran: the CPU model and the instruction sets that decide int8 speed.
    assert report["cpu"]["model"] and isinstance(report["cpu"]["isa"], list)
    assert report["embedder"]["model_id"].startswith("all-MiniLM-L6-v2")
    assert report["cpu"]["minilm_variant"] in ("fp32", "int8")
    assert report["embedder"]["variant"] in ("fp32", "int8")
    for service in ("similarity", "comprehend", "refusal"):
        assert report["throughput"][service]["pipeline_per_s"] > 0
        cold = report["cold_start_memory"][service]
        assert 0 < cold["cold_start_s"] < 30
        assert cold["cold_start_to_baseline"] > 1  # a multiple of importing boto3 and pydantic
        assert cold["peak_rss_mb"] > 0
    assert report["cold_start_memory"]["baseline_import_boto3_pydantic_s"] > 0
    # The embedding cache, on and off in the same run: distinct texts gain nothing, a shared
    # prompt is embedded once per container.
    cache = report["embedding_cache"]
    assert cache["benchmark"]["distinct_texts_share"] == 1.0
    assert cache["shared_prompt"]["distinct_texts_share"] < 0.75
    cost = report["cost"]
    assert cost["ours_managed"]["total"] > 0
    assert 0 < cost["naive_shared_calls"]["total"] < cost["naive"]["total"]
    assert cost["ours_managed_by_sample_rate"]["0.1"] < cost["ours_managed"]["total"]
    calls = cost["calls_per_interaction"]
    assert calls["comprehend"]["BatchDetectSentiment"] <= 1 / 25 + 0.05  # 25 documents a call
    assert calls["comprehend"]["DetectToxicContent"] == 1  # one document per call
    # The canary, priced from a run of the real sender: every probe answered for every priced
    # model, tokens within the budget, and its monthly cost grows with the model's price.
    canary = cost["canary"]
    for figures in canary["models"].values():
        assert figures["probes"] == canary["probes"] >= 100
        assert 0 < figures["output_tokens"] <= canary["probes"] * canary["max_tokens"]
        assert figures["per_month_hourly_managed"] > figures["per_month_hourly_local"] > 0
    months = {m: f["per_month_hourly_local"] for m, f in canary["models"].items()}
    assert months["anthropic.claude-3-5-sonnet-20240620-v1:0"] > months["amazon.nova-micro-v1:0"]
