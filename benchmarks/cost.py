"""The cost model: count the API calls and billable units a run actually makes, turn them into
dollars per 1M monitored invocations with the one price table (``prices.json``), and compare
with the naive design and with the local backends. Sampling scales what is per interaction.

The managed backends run for real against botocore clients whose requests are answered by a
``before-call`` hook (the request is built, validated and serialised by botocore; the answer has
the real response shape), so every call and every billable unit is counted from what the code
sends. Lambda duration with managed backends is the measured compute time plus the assumed API
latencies of ``prices.json`` (divided by the calls the code makes concurrently).
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.workload import Workload
from llmmon_shared.events import ObjectRef
from llmmon_shared.metrics import EmfSink

# The answer to every sentiment request (the figures are not what the cost model counts).
SENTIMENT = {
    "Sentiment": "NEUTRAL",
    "SentimentScore": {"Positive": 0.1, "Negative": 0.1, "Neutral": 0.7, "Mixed": 0.1},
}

SCORING_SERVICES = ("similarity", "comprehend", "refusal")
"""The services the cost model prices: the ones that call a model. The traffic service reads log
fields only; it is not in these figures (its own cost is a Lambda and a queue per object)."""
CASCADE_SENTIMENT_RATE = 0.1
"""Sentiment sample rate of the second cascade variant the cost model prices."""
RECORDED_ANSWERS = (
    Path(__file__).resolve().parents[1] / "cli" / "src" / "llmmon" / "data" / "canary-recorded.json"
)
"""Real answers to the canary's probes (GPT-4's on XSTest): what the priced canary run gets."""
RUNS_PER_MONTH = 730  # hourly


def comprehend_units(chars: int, prices: dict[str, Any]) -> int:
    """Units Comprehend bills for one document: 100 characters each, at least 3."""
    unit = prices["comprehend_unit_chars"]
    return max(prices["comprehend_min_units_per_request"], math.ceil(chars / unit))


@dataclass
class Usage:
    calls: Counter[str] = field(default_factory=Counter)
    comprehend_units: int = 0
    titan_tokens: int = 0


class FakeAws:
    """Answers Comprehend and Bedrock calls in their real response shapes, counting usage."""

    def __init__(self, prices: dict[str, Any]) -> None:
        self.prices = prices
        self.usage = Usage()
        self.rng = np.random.default_rng(0)

    def units(self, chars: int) -> int:
        return comprehend_units(chars, self.prices)

    def client(self, service: str) -> Any:
        import boto3
        from botocore.awsrequest import AWSResponse

        client = boto3.client(
            service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )

        def answer(model: Any, params: dict[str, Any], **_: Any) -> Any:
            from botocore.response import StreamingBody

            operation = model.name
            self.usage.calls[operation] += 1
            body = params.get("body") or b"{}"
            request = json.loads(body) if isinstance(body, bytes | str) else body
            if operation == "BatchDetectSentiment":
                texts = request["TextList"]
                self.usage.comprehend_units += sum(self.units(len(t)) for t in texts)
                parsed: dict[str, Any] = {
                    "ResultList": [{"Index": i, **SENTIMENT} for i in range(len(texts))],
                    "ErrorList": [],
                }
            elif operation == "DetectSentiment":
                self.usage.comprehend_units += self.units(len(request["Text"]))
                parsed = dict(SENTIMENT)
            elif operation == "DetectToxicContent":
                segments = request["TextSegments"]
                self.usage.comprehend_units += self.units(sum(len(s["Text"]) for s in segments))
                parsed = {
                    "ResultList": [
                        {"Toxicity": 0.01, "Labels": [{"Name": "INSULT", "Score": 0.01}]}
                        for _ in segments
                    ]
                }
            elif operation == "InvokeModel":
                text = (
                    json.loads(request)["inputText"]
                    if isinstance(request, str)
                    else request["inputText"]
                )
                tokens = math.ceil(len(text) / self.prices["titan_chars_per_token"])
                self.usage.titan_tokens += tokens
                dims = (json.loads(request) if isinstance(request, str) else request)["dimensions"]
                vector = self.rng.normal(size=dims)
                vector /= np.linalg.norm(vector)
                data = json.dumps(
                    {"embedding": vector.tolist(), "inputTextTokenCount": tokens}
                ).encode()
                parsed = {
                    "body": StreamingBody(io.BytesIO(data), len(data)),
                    "contentType": "application/json",
                }
            elif operation == "Converse":
                parsed = self.converse(request)
            else:
                raise AssertionError(f"unexpected call {operation}")
            return AWSResponse("https://fake", 200, {}, None), parsed

        client.meta.events.register(
            f"before-call.{client.meta.service_model.service_id.hyphenize()}", answer
        )
        return client

    def converse(self, request: dict[str, Any]) -> dict[str, Any]:
        """A canary probe's answer: the recorded one for its probe id, with token counts as
        Bedrock reports them (estimated from characters), cut at the request's maxTokens."""
        answers = self.recorded or {}
        probe = request.get("requestMetadata", {}).get("llmmon-probe", "")
        prompt = " ".join(c["text"] for m in request["messages"] for c in m["content"])
        text = answers.get(probe, {}).get("v1", "I can help with that.")
        per_token = self.prices["llm_chars_per_token"]
        output = min(request["inferenceConfig"]["maxTokens"], math.ceil(len(text) / per_token))
        usage = {"inputTokens": math.ceil(len(prompt) / per_token), "outputTokens": output}
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": usage | {"totalTokens": usage["inputTokens"] + output},
            "metrics": {"latencyMs": self.prices["assumed_latency_ms"]["bedrock_converse"]},
        }

    @functools.cached_property
    def recorded(self) -> dict[str, Any]:
        """Read once per FakeAws, not once per Converse call."""
        data: dict[str, Any] = json.loads(RECORDED_ANSWERS.read_text())["answers"]
        return data


def canary_cost(
    prices: dict[str, Any], scoring_per_interaction: dict[str, float]
) -> dict[str, Any]:
    """One canary run of the real sender (the shipped probe set, its default token budget and
    concurrency) against Converse answered with recorded answers: tokens counted from the
    responses, priced per model at its list price, plus the canary function's duration and the
    monitoring cost of scoring the answers (per interaction, from the same cost model)."""
    from llmmon_canary.handler import CanarySettings
    from llmmon_canary.probes import load_probes
    from llmmon_canary.sender import send_probes

    settings = CanarySettings()
    probes = load_probes()
    aws = FakeAws(prices)
    models = prices["bedrock_models_per_1k_tokens"]
    report = send_probes(
        aws.client("bedrock-runtime"),
        list(models),
        probes,
        settings.canary_max_tokens,
        workers=settings.canary_concurrency,
    )
    waves = math.ceil(len(probes.probes) / settings.canary_concurrency)
    run_s = waves * prices["assumed_latency_ms"]["bedrock_converse"] / 1000
    lambda_per_run = run_s * 256 / 1024 * prices["lambda_per_gb_second"]
    per_model: dict[str, Any] = {}
    for model, (input_price, output_price) in models.items():
        tokens = (
            report.input_tokens[model] * input_price + report.output_tokens[model] * output_price
        )
        tokens /= 1e3
        scoring = {k: v * report.sent[model] for k, v in scoring_per_interaction.items()}
        per_run = {
            "bedrock_tokens": round(tokens, 4),
            "canary_lambda": round(lambda_per_run, 5),
            **{f"scoring_{k}": round(v, 4) for k, v in scoring.items()},
        }
        per_model[model] = {
            "probes": report.sent[model],
            "input_tokens": report.input_tokens[model],
            "output_tokens": report.output_tokens[model],
            "per_run": per_run,
            "per_month_hourly_managed": round(
                RUNS_PER_MONTH * (tokens + lambda_per_run + scoring["managed"]), 2
            ),
            "per_month_hourly_local": round(
                RUNS_PER_MONTH * (tokens + lambda_per_run + scoring["local"]), 2
            ),
        }
    return {
        "probes": len(probes.probes),
        "max_tokens": settings.canary_max_tokens,
        "run_seconds_per_model": round(run_s, 1),
        "models": per_model,
    }


class Reader:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def open(self, bucket: str, key: str) -> Any:
        return io.BytesIO(self.objects[key])


class _Bytes(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.bytes += (
            len(
                json.dumps(
                    {
                        "message": record.getMessage(),
                        **{
                            k: str(v)
                            for k, v in record.__dict__.items()
                            if k in ("key", "service", "interactions", "skipped", "parse_errors")
                        },
                    }
                )
            )
            + 80
        )


def run_managed(work: Workload, prices: dict[str, Any]) -> dict[str, Any]:
    """Each service's real pipeline with the managed backends against FakeAws."""
    from llmmon_comprehend.backends import ComprehendBackend
    from llmmon_comprehend.compute import ComprehendScorer, ToxicityGate
    from llmmon_comprehend.settings import ComprehendSettings, local_toxicity
    from llmmon_comprehend.spec import SERVICE as COMPREHEND
    from llmmon_refusal.compute import RefusalDetector, RefusalScorer
    from llmmon_refusal.phrases import load_phrases
    from llmmon_refusal.spec import SERVICE as REFUSAL
    from llmmon_shared.embeddings import LocalMiniLMEmbedder, TitanEmbedder
    from llmmon_shared.runtime import Pipeline
    from llmmon_shared.settings import ServiceSettings
    from llmmon_similarity.compute import SimilarityScorer
    from llmmon_similarity.spec import SERVICE as SIMILARITY

    gate_settings = ComprehendSettings(comprehend_backend="cascade")
    gates = {
        "HATE_SPEECH": gate_settings.toxicity_gate_hate_speech,
        "PROFANITY": gate_settings.toxicity_gate_profanity,
    }

    def cascade(aws: Any, sentiment_rate: float) -> Any:
        managed = ComprehendBackend(aws.client("comprehend"))
        gate = ToxicityGate(
            local_toxicity(gate_settings), gates, gate_settings.toxicity_calibration_rate
        )
        return ComprehendScorer(managed, managed, gate=gate, sentiment_sample_rate=sentiment_rate)

    results = {}
    for label, spec, make in [
        (
            "similarity",
            SIMILARITY,
            # Relevance runs MiniLM beside Titan's cosine (the managed zip carries it).
            lambda aws: SimilarityScorer(
                TitanEmbedder(aws.client("bedrock-runtime")), LocalMiniLMEmbedder()
            ),
        ),
        (
            "comprehend",
            COMPREHEND,
            lambda aws: ComprehendScorer(*(2 * [ComprehendBackend(aws.client("comprehend"))])),
        ),
        (
            "refusal",
            REFUSAL,
            lambda aws: RefusalScorer(
                RefusalDetector(TitanEmbedder(aws.client("bedrock-runtime")), load_phrases())
            ),
        ),
        ("comprehend-cascade", COMPREHEND, lambda aws: cascade(aws, 1.0)),
        (
            f"comprehend-cascade-sentiment-{CASCADE_SENTIMENT_RATE}",
            COMPREHEND,
            lambda aws: cascade(aws, CASCADE_SENTIMENT_RATE),
        ),
    ]:
        aws = FakeAws(prices)
        cold_usage = Counter()
        scorer = make(aws)
        cold_usage.update(aws.usage.calls)  # per cold start (reference embeddings)
        cold_tokens = aws.usage.titan_tokens
        aws.usage = Usage()
        emf = io.StringIO()
        logs = _Bytes()
        logging.getLogger("llmmon").addHandler(logs)
        pipeline = Pipeline(
            spec.name,
            scorer,
            spec.units,
            Reader(work.objects),
            EmfSink("llmmon", emf),
            ServiceSettings(),
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        for key in work.objects:
            pipeline.process_object(ObjectRef("bench", key, None, None))
        compute_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
        logging.getLogger("llmmon").removeHandler(logs)
        results[label] = {
            "usage": aws.usage,
            "compute_s": compute_s,
            "cpu_s": cpu_s,
            "emf_bytes": len(emf.getvalue()),
            "log_bytes": logs.bytes,
            "cold_calls": sum(cold_usage.values()),
            "cold_tokens": cold_tokens,
            "memory_mb": spec.memory_mb,
        }
    return results


def run_local(work: Workload, cpu: dict[str, float] | None = None) -> dict[str, float]:
    """Compute seconds of each service's pipeline with the local backends (and, into ``cpu``,
    the CPU-seconds of all the process's threads)."""
    import importlib

    from llmmon_shared.metrics import MemorySink

    os.environ.update(
        {
            "LLMMON_EMBEDDING_BACKEND": "local",
            "LLMMON_COMPREHEND_BACKEND": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    seconds = {}
    for name in SCORING_SERVICES:
        handler = importlib.import_module(f"llmmon_{name}.handler")
        pipeline = handler.create_pipeline(s3=Reader(work.objects), sink=MemorySink())
        pipeline.score_object(ObjectRef("bench", next(iter(work.objects)), None, None))
        started, cpu_started = time.perf_counter(), time.process_time()
        for key in work.objects:
            pipeline.score_object(ObjectRef("bench", key, None, None))
        seconds[name] = time.perf_counter() - started
        if cpu is not None:
            cpu[name] = time.process_time() - cpu_started
    return seconds


def cost_model(work: Workload, prices_path: Path) -> dict[str, Any]:
    prices = json.loads(prices_path.read_text())
    latency = prices["assumed_latency_ms"]
    n = len(work.pairs)
    scale = 1_000_000 / n
    per_object = prices["records_per_log_object"]
    objects = 1_000_000 / per_object
    invocations = objects / prices["sqs_batch_size"]
    everything = run_managed(work, prices)
    managed = {name: everything[name] for name in SCORING_SERVICES}
    variants = {name: run for name, run in everything.items() if name not in managed}
    local_seconds = run_local(work)
    gb_s = prices["lambda_per_gb_second"]
    log_gb = prices["cloudwatch_logs_ingestion_per_gb"] / 1e9

    def shared_costs(services: int) -> dict[str, float]:
        """What does not depend on the backend: queues, topic, S3 reads, idempotency."""
        return {
            "sns": objects * prices["sns_per_1m_publishes"] / 1e6,
            "sqs": services * invocations * 2 * prices["sqs_per_1m_requests"] / 1e6,
            "s3_get": services * objects * prices["s3_get_per_1k"] / 1e3,
            "dynamodb": services * objects * 2 * prices["dynamodb_per_1m_write_units"] / 1e6,
            "lambda_requests": services * invocations * prices["lambda_per_1m_requests"] / 1e6,
        }

    ours: dict[str, float] = shared_costs(len(SCORING_SERVICES))
    ours.update({"comprehend": 0.0, "titan": 0.0, "lambda_duration": 0.0, "logs_emf": 0.0})
    overhead_ms = latency["s3_get_object"] + 2 * latency["dynamodb_write"]
    for run in managed.values():
        usage: Usage = run["usage"]
        ours["comprehend"] += usage.comprehend_units * scale * prices["comprehend_unit"]
        ours["titan"] += usage.titan_tokens * scale * prices["titan_embed_v2_per_1k_tokens"] / 1e3
        api_ms = (
            usage.calls["InvokeModel"] * latency["bedrock_invoke_model_embedding"] / 8
            + usage.calls["BatchDetectSentiment"] * latency["comprehend_batch_detect_sentiment"]
            + usage.calls["DetectToxicContent"] * latency["comprehend_detect_toxic_content"] / 4
        )
        seconds = (run["compute_s"] + api_ms / 1000) * scale + objects * overhead_ms / 1000
        ours["lambda_duration"] += seconds * run["memory_mb"] / 1024 * gb_s
        ours["logs_emf"] += (run["emf_bytes"] + run["log_bytes"]) * scale * log_gb
    ours_total = sum(ours.values())

    def per_million(run: dict[str, Any]) -> dict[str, float]:
        usage: Usage = run["usage"]
        api_ms = (
            usage.calls["BatchDetectSentiment"] * latency["comprehend_batch_detect_sentiment"]
            + usage.calls["DetectToxicContent"] * latency["comprehend_detect_toxic_content"] / 4
        )
        seconds = (run["compute_s"] + api_ms / 1000) * scale + objects * overhead_ms / 1000
        return {
            "comprehend": usage.comprehend_units * scale * prices["comprehend_unit"],
            "lambda_duration": seconds * run["memory_mb"] / 1024 * gb_s,
            "toxicity_calls_per_interaction": usage.calls["DetectToxicContent"] / n,
        }

    # The comprehend service alone: all-managed against the cascade variants.
    comprehend_alone = per_million(managed["comprehend"])
    cascades = {}
    for name, run in variants.items():
        figures = per_million(run)
        cascades[name] = {
            "comprehend": round(figures["comprehend"], 2),
            "lambda_duration": round(figures["lambda_duration"], 2),
            "toxicity_calls_per_interaction": round(figures["toxicity_calls_per_interaction"], 3),
            "ratio_to_managed": round(
                (figures["comprehend"] + figures["lambda_duration"])
                / (comprehend_alone["comprehend"] + comprehend_alone["lambda_duration"]),
                3,
            ),
        }

    # The naive design the issue describes, at equal coverage: one Lambda invocation per record,
    # one Comprehend call per Comprehend metric per record (each score its own DetectSentiment
    # or DetectToxicContent call; the 0/1 metrics are thresholds of those scores and cost no
    # call), one PutMetricData per metric per record, no batching, no cache of the reference
    # embeddings, no deduplication. Also priced: the same design sharing one call per API per
    # record, the floor at equal coverage (Comprehend's units are per document and character).
    from llmmon_comprehend.backends import SENTIMENT_LABELS, TOXICITY_LABELS
    from llmmon_refusal.phrases import load_phrases
    from llmmon_shared.spec import discover

    chars_prompt = sum(len(p) for p in work.prompts) / n
    chars_response = sum(len(r) for r in work.responses) / n
    references = load_phrases().refusal
    phrases = sum(len(p.text) for p in references)
    # Every metric a record gets by default (the optional prompt and error metrics aside).
    optional = {"PromptToxicity", "PromptToxic", "ScoringErrors"}
    metrics_per_record = sum(
        1
        for name, spec in discover().items()
        if name in SCORING_SERVICES
        for m in spec.metrics
        if m.name not in optional
    )
    # Units per call, per document as Comprehend bills them (100 characters, at least 3).
    sentiment_units = sum(comprehend_units(min(len(r), 5000), prices) for r in work.responses) / n
    toxic_units = sum(comprehend_units(min(len(r), 10_000), prices) for r in work.responses) / n
    naive_titan_tokens = (chars_prompt + 2 * chars_response + phrases) / prices[
        "titan_chars_per_token"
    ]
    naive_titan_calls = 3 + len(references)

    def naive_design(sentiment_calls: int, toxicity_calls: int) -> dict[str, float]:
        per_record_ms = (
            naive_titan_calls * latency["bedrock_invoke_model_embedding"]
            + sentiment_calls * latency["comprehend_detect_sentiment"]
            + toxicity_calls * latency["comprehend_detect_toxic_content"]
            + metrics_per_record * latency["cloudwatch_put_metric_data"]
            + latency["s3_get_object"]
            + 50
        )
        units = sentiment_calls * sentiment_units + toxicity_calls * toxic_units
        return {
            "comprehend": 1e6 * units * prices["comprehend_unit"],
            "titan": 1e6 * naive_titan_tokens * prices["titan_embed_v2_per_1k_tokens"] / 1e3,
            "put_metric_data": 1e6
            * metrics_per_record
            * prices["cloudwatch_put_metric_data_per_1k_requests"]
            / 1e3,
            "lambda_requests": 1e6 * prices["lambda_per_1m_requests"] / 1e6,
            "lambda_duration": 1e6 * per_record_ms / 1000 * 1024 / 1024 * gb_s,
            "s3_get": 1e6 * prices["s3_get_per_1k"] / 1e3,
        }

    naive_calls = {
        "DetectSentiment": len(SENTIMENT_LABELS),
        "DetectToxicContent": 1 + len(TOXICITY_LABELS),
    }
    naive = naive_design(naive_calls["DetectSentiment"], naive_calls["DetectToxicContent"])
    naive_total = sum(naive.values())
    shared = naive_design(1, 1)
    shared_total = sum(shared.values())

    local = shared_costs(3)
    local["lambda_duration"] = sum(
        (local_seconds[name] * scale + objects * overhead_ms / 1000)
        * managed[name]["memory_mb"]
        / 1024
        * gb_s
        for name in managed
    )
    local["logs_emf"] = ours["logs_emf"]
    local_total = sum(local.values())

    per_interaction = {"comprehend", "titan", "lambda_duration", "logs_emf"}
    sampling = {}
    for rate in (1.0, 0.25, 0.1, 0.01):
        sampling[str(rate)] = round(
            sum(v * (rate if k in per_interaction else 1.0) for k, v in ours.items()), 2
        )
    canary = canary_cost(prices, {"managed": ours_total / 1e6, "local": local_total / 1e6})
    result = {
        "ours_managed": {k: round(v, 2) for k, v in ours.items()} | {"total": round(ours_total, 2)},
        "naive": {k: round(v, 2) for k, v in naive.items()} | {"total": round(naive_total, 2)},
        "naive_comprehend_calls_per_record": naive_calls,
        "naive_shared_calls": {k: round(v, 2) for k, v in shared.items()}
        | {"total": round(shared_total, 2)},
        "ours_local": {k: round(v, 2) for k, v in local.items()} | {"total": round(local_total, 2)},
        "ratio_ours_to_naive": round(ours_total / naive_total, 3),
        "ratio_ours_to_naive_shared_calls": round(ours_total / shared_total, 3),
        "ours_managed_by_sample_rate": sampling,
        "calls_per_interaction": {
            name: {op: round(c / n, 3) for op, c in run["usage"].calls.items()}
            for name, run in managed.items()
        },
        "metrics_per_record": metrics_per_record,
        "cold_start_reference_calls": managed["refusal"]["cold_calls"],
        "comprehend_managed_alone": {k: round(v, 2) for k, v in comprehend_alone.items()},
        "comprehend_cascade": cascades,
        "canary": canary,
    }
    print(
        f"  ours (managed backends) ${ours_total:,.2f} per 1M interactions "
        f"(Comprehend ${ours['comprehend']:,.2f}, Titan ${ours['titan']:,.2f}, Lambda "
        f"${ours['lambda_duration'] + ours['lambda_requests']:,.2f}, logs/EMF "
        f"${ours['logs_emf']:,.2f}, queues/S3/DynamoDB "
        f"${ours['sqs'] + ours['sns'] + ours['s3_get'] + ours['dynamodb']:,.2f})",
        flush=True,
    )
    print(
        f"  naive design ${naive_total:,.2f} (PutMetricData ${naive['put_metric_data']:,.2f}, "
        f"Lambda ${naive['lambda_duration'] + naive['lambda_requests']:,.2f}, Comprehend "
        f"${naive['comprehend']:,.2f}, Titan ${naive['titan']:,.2f}); sharing one call per "
        f"API per record: ${shared_total:,.2f}",
        flush=True,
    )
    print(
        f"  ratio ours/naive {result['ratio_ours_to_naive']}, ours/naive sharing calls "
        f"{result['ratio_ours_to_naive_shared_calls']}; local backends "
        f"${local_total:,.2f}",
        flush=True,
    )
    print(
        "  ours by sample rate: " + ", ".join(f"{r}: ${v:,.2f}" for r, v in sampling.items()),
        flush=True,
    )
    print(
        f"  comprehend service, managed: Comprehend ${comprehend_alone['comprehend']:,.2f} + "
        f"Lambda ${comprehend_alone['lambda_duration']:,.2f} per 1M; "
        + "; ".join(
            f"{name}: Comprehend ${c['comprehend']:,.2f} + Lambda ${c['lambda_duration']:,.2f} "
            f"({c['ratio_to_managed']}x, {c['toxicity_calls_per_interaction']} DetectToxicContent "
            "per interaction)"
            for name, c in cascades.items()
        ),
        flush=True,
    )
    for model, figures in canary["models"].items():
        run = figures["per_run"]
        print(
            f"  canary, {model}: {figures['probes']} probes, {figures['input_tokens']} input and "
            f"{figures['output_tokens']} output tokens: ${run['bedrock_tokens']:.4f} tokens + "
            f"${run['scoring_managed']:.4f} managed scoring (${run['scoring_local']:.4f} local) "
            f"per run; hourly ${figures['per_month_hourly_managed']:,.2f} a month managed, "
            f"${figures['per_month_hourly_local']:,.2f} local",
            flush=True,
        )
    return result
