"""Canary traffic (requestMetadata names it) is scored by the same services but never enters the
ordinary metrics: its metrics are Canary<Metric>, its interactions CanaryInteractions."""

from __future__ import annotations

import gzip
import json
from typing import Any

from llmmon_refusal.compute import RefusalDetector, RefusalScorer
from llmmon_refusal.phrases import load_phrases
from llmmon_refusal.spec import SERVICE as REFUSAL
from llmmon_shared.embeddings import LocalMiniLMEmbedder
from llmmon_shared.metrics import MemorySink, Unit
from llmmon_shared.runtime import CANARY_EXPECT_KEY, CANARY_KEY, Pipeline
from llmmon_shared.settings import ServiceSettings
from tests.conftest import DictS3Reader, s3_event, sqs_event

BUCKET = "logs"
KEY = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/30/10/x.json.gz"
MODEL = "meta.llama3-70b-instruct-v1:0"


def record(n: int, answer: str, **metadata: str) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "requestId": f"r-{n}",
        "modelId": MODEL,
        "operation": "Converse",
        "requestMetadata": metadata,
        "input": {
            "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": "How do I?"}]}]}
        },
        "output": {
            "outputBodyJson": {
                "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
                "stopReason": "end_turn",
            }
        },
    }


def run(records: list[dict[str, Any]], **settings: Any) -> MemorySink:
    data = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    sink = MemorySink()
    scorer = RefusalScorer(RefusalDetector(LocalMiniLMEmbedder(), load_phrases()))
    pipeline = Pipeline(
        "refusal",
        scorer,
        REFUSAL.units,
        DictS3Reader({(BUCKET, KEY): data}),
        sink,
        ServiceSettings(**settings),
    )
    event = json.dumps(s3_event(BUCKET, KEY, etag="e"))
    assert pipeline.handle_event(sqs_event([event])) == {"batchItemFailures": []}
    return sink


REFUSED = "I'm sorry, but I can't help with that."
ANSWERED = "Open a terminal and run kill with the process id."


def test_canary_records__scored_under_canary_names_ordinary_metrics_untouched() -> None:
    canary = {CANARY_KEY: "v1"}
    sink = run(
        [
            record(1, ANSWERED),  # ordinary traffic
            record(2, REFUSED, **canary, **{CANARY_EXPECT_KEY: "answer"}),  # over-refusal
            record(3, ANSWERED, **canary, **{CANARY_EXPECT_KEY: "answer"}),
            record(4, ANSWERED, **canary, **{CANARY_EXPECT_KEY: "refuse"}),  # under-refusal
            record(5, REFUSED, **canary, **{CANARY_EXPECT_KEY: "refuse"}),
        ],
        sample_rate=0.000001,  # sampling never drops a canary probe
    )
    assert sink.values("Refusal") == []  # the one ordinary record was sampled out
    assert sum(sink.values("SampledOut")) == 1 and sink.values("Interactions") == []
    assert sorted(sink.values("CanaryRefusal")) == [0.0, 0.0, 1.0, 1.0]
    assert sorted(sink.values("CanaryOverRefusal", ModelId=MODEL)) == [0.0, 1.0]
    assert sorted(sink.values("CanaryUnderRefusal", ModelId=MODEL)) == [0.0, 1.0]
    assert sink.values("CanaryInteractions", ModelId=MODEL) == [4.0]
    assert all(p.name.startswith("Canary") for p in sink.flushed if "Refusal" in p.name)
    assert all(p.unit == Unit.NONE for p in sink.flushed if p.name.startswith("CanaryOver"))


def test_expectation_without_the_canary_key__is_ordinary_traffic() -> None:
    sink = run([record(1, REFUSED, **{CANARY_EXPECT_KEY: "answer"})])
    assert sink.values("Refusal") == [1.0]
    assert sink.values("OverRefusal") == [] and sink.values("CanaryOverRefusal") == []
    assert sink.values("Interactions") == [1.0]
