"""Privacy: run the demo corpus through every service and search everything llmmon writes (EMF
lines, log lines, metric dimensions, alarm names and descriptions, failure details) for pieces of
any prompt or response text."""

from __future__ import annotations

import importlib
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llmmon.local.corpus import generate, load_templates, with_bucket
from llmmon_shared.alarms import AlarmNames, build_alarms
from llmmon_shared.metrics import EmfSink
from llmmon_shared.runtime import Boto3S3Reader
from llmmon_shared.spec import discover
from tests.conftest import s3_event, sqs_event

BUCKET = "privacy-logs"
PIECE = 12


def user_texts() -> set[str]:
    """Every prompt and response text the corpus can contain."""
    templates = load_templates()
    found = {text for pair in templates["helpful"] for text in pair}
    found |= {text for texts in templates["refusals"].values() for text in texts}
    found |= set(templates["toxic"]) | set(templates["off_topic"])
    found |= {m["drift"]["system"] for m in templates["models"] if "system" in m.get("drift", {})}
    return {text for text in found if len(text) >= PIECE}


def pieces(text: str) -> Iterator[str]:
    for start in range(0, len(text) - PIECE + 1, 4):
        yield text[start : start + PIECE]


@pytest.fixture
def corpus_in_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[str]]]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "LLMMON_METADATA_DIMENSIONS": "app~.*",
        "LLMMON_EXPLAIN": "true",
        "LLMMON_LOG_LEVEL": "DEBUG",
        "LLMMON_EMBEDDING_BACKEND": "local",
        "LLMMON_COMPREHEND_BACKEND": "local",
        "LLMMON_SCORE_PROMPT": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        corpus = with_bucket(generate(datetime.now(UTC), minutes=20), BUCKET)
        events = []
        for key, body in corpus.objects + corpus.corrupt:
            etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
            events.append(json.dumps(s3_event(BUCKET, key, etag=etag)))
        yield s3, events


def test_no_prompt_or_response_text_in_anything_llmmon_writes(
    corpus_in_s3: tuple[Any, list[str]],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3, events = corpus_in_s3
    caplog.set_level(logging.DEBUG)
    written: list[str] = []
    failures = 0
    for spec in discover().values():
        handler = importlib.import_module(spec.module)
        emf = io.StringIO()
        sink = EmfSink("llmmon", emf)
        pipeline = handler.create_pipeline(s3=Boto3S3Reader(s3), sink=sink)
        result = pipeline.handle_event(sqs_event(events))
        failures += len(result["batchItemFailures"])
        written.append(emf.getvalue())
        for line in emf.getvalue().splitlines():
            document = json.loads(line)
            for dimension_set in document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]:
                written.extend(str(document[d]) for d in dimension_set)
    assert failures == len(discover())  # the corrupt object, once per service
    captured = capsys.readouterr()
    written += [captured.out, captured.err]
    written += [f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records]
    assert any("refusal decision" in r.getMessage() for r in caplog.records)
    alarms = build_alarms(
        discover(), ["meta.llama3-70b-instruct-v1:0"], "llmmon", AlarmNames("privacy")
    )
    written += [f"{a.name} {a.description}" for a in alarms.metric_alarms]
    written += [f"{c.name} {c.description} {c.rule}" for c in alarms.composites]
    everything = "\n".join(written)
    assert len(everything) > 10_000
    for text in user_texts():
        for piece in pieces(text):
            assert piece not in everything, f"user text found: {piece!r}"
