"""What each service's declared scoring cost (``ServiceSpec.scoring``) is measured from: per
interaction, the CPU-seconds of the whole pipeline (read, parse, extract, score, metric points;
all of the process's threads, ``time.process_time``) for each backend, and for the managed
backends the API wait (the price table's assumed latencies, divided by the calls the code makes
at once), as ``benchmarks/cost.py`` counts them.

Lambda gives a function one vCPU at 1,769 MB and a share of one below: CPU-seconds, not the wall
time of this 2-core machine, are what the function pays for and waits on
(``llmmon_shared.capacity``). Prints the CPU (model and ISA) first: figures differ by CPU class.

Run: ``uv run python benchmarks/capacity.py [--n 640]``; one JSON line at the end.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRICES = ROOT / "cli" / "src" / "llmmon" / "data" / "prices.json"


def api_wait_s(usage: Any, latency: dict[str, float]) -> float:
    """Seconds of API wait of a run, as the cost model counts them (Titan 8 calls at once,
    Comprehend's toxicity 4)."""
    return (
        usage.calls["InvokeModel"] * latency["bedrock_invoke_model_embedding"] / 8
        + usage.calls["BatchDetectSentiment"] * latency["comprehend_batch_detect_sentiment"]
        + usage.calls["DetectToxicContent"] * latency["comprehend_detect_toxic_content"] / 4
    ) / 1000


def pipeline_cpu_s(service: str, work: Any) -> float:
    """CPU-seconds of a service's whole pipeline (its local backend) over the workload: every
    service without a managed backend (traffic, and any service added since)."""
    from benchmarks.cost import Reader
    from llmmon_shared.events import ObjectRef
    from llmmon_shared.metrics import MemorySink
    from llmmon_shared.spec import discover

    handler = importlib.import_module(discover()[service].module)
    pipeline = handler.create_pipeline(s3=Reader(work.objects), sink=MemorySink())
    started = time.process_time()
    for key in work.objects:
        pipeline.score_object(ObjectRef("bench", key, None, None))
    return time.process_time() - started


def measure(n: int) -> dict[str, Any]:
    from benchmarks.bench import cpu_info
    from benchmarks.cost import run_local, run_managed
    from benchmarks.workload import build

    prices = json.loads(PRICES.read_text())
    latency = prices["assumed_latency_ms"]
    work = build(n)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    managed = run_managed(work, prices)
    local_cpu: dict[str, float] = {}
    run_local(work, local_cpu)
    figures: dict[str, dict[str, Any]] = {}
    for name in ("similarity", "comprehend", "refusal"):
        figures[name] = {
            "local": {"cpu_s": local_cpu[name] / n},
            "managed": {
                "cpu_s": managed[name]["cpu_s"] / n,
                "wait_s": api_wait_s(managed[name]["usage"], latency) / n,
            },
        }
    cascade = managed["comprehend-cascade"]
    figures["comprehend"]["cascade"] = {
        "cpu_s": cascade["cpu_s"] / n,
        "wait_s": api_wait_s(cascade["usage"], latency) / n,
    }
    from llmmon_shared.spec import discover

    for name in discover():
        if name not in figures:
            figures[name] = {"local": {"cpu_s": pipeline_cpu_s(name, work) / n}}
    return {"cpu": cpu_info(), "interactions": n, "per_interaction": figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=640, help="interactions (100 per object)")
    args = parser.parse_args(argv)
    from benchmarks.bench import cpu_info

    cpu = cpu_info()
    print(f"CPU: {cpu['model']} ({', '.join(cpu['isa'])}), {cpu['cores']} cores", flush=True)
    result = measure(args.n)
    print("| service | backend | CPU-s per interaction | API wait per interaction |")
    print("|---|---|---|---|")
    for service, backends in result["per_interaction"].items():
        for backend, f in backends.items():
            wait = f"{f['wait_s'] * 1000:.1f} ms" if "wait_s" in f else "-"
            print(f"| {service} | {backend} | {f['cpu_s'] * 1000:.1f} ms | {wait} |")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
