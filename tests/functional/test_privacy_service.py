"""The privacy service's handler on the event shapes Lambda gives: a leak counted, an echoed value
not, and no value (nor any part of one) in any metric point it writes."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from llmmon_privacy.handler import create_pipeline
from llmmon_shared.metrics import MemorySink
from tests.conftest import DictS3Reader, s3_event, sqs_event, titan_record

BUCKET = "team-logs"
KEY = (
    "bedrock/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/28/07/"
    "20261128T070000000Z_privacy.json.gz"
)
VALUES = ["billing.lead@acme-corp.io", "4158675309", "4539148803436467"]


def record(n: int, prompt: str, answer: str) -> dict[str, Any]:
    return titan_record(
        n,
        input={"inputBodyJson": {"inputText": prompt}},
        output={"outputBodyJson": {"results": [{"outputText": answer}]}},
    )


def test_leaks_counted_and_no_value_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMMON_DETAIL_METRICS", "true")
    records = [
        record(
            1, "Who handles billing?", "Write to billing.lead@acme-corp.io or call (415) 867-5309."
        ),
        record(
            2,
            "My card 4539 1488 0343 6467 was charged twice.",
            "Card 4539148803436467: refund sent.",
        ),
        record(3, "Where is Paris?", "In France."),
    ]
    data = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    sink = MemorySink()
    pipeline = create_pipeline(s3=DictS3Reader({(BUCKET, KEY): data}), sink=sink)
    assert pipeline.handle_event(sqs_event([json.dumps(s3_event(BUCKET, KEY))])) == {
        "batchItemFailures": []
    }
    values = {p.name: [] for p in sink.flushed}
    for point in sink.flushed:
        values[point.name].append(point.value)
    assert sorted(values["SensitiveDataLeak"]) == [0.0, 0.0, 1.0]
    assert sorted(values["SensitiveDataInPrompt"]) == [0.0, 0.0, 1.0]
    assert sum(values["SensitiveDataEmail"]) == 1 and sum(values["SensitiveDataCard"]) == 2
    written = json.dumps([[p.name, p.dimension_map, p.value] for p in sink.flushed])
    for value in VALUES:
        assert value not in written and value[:6] not in written
