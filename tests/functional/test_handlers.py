"""Each service's Lambda handler, fed Lambda's SQS event shape over fixture objects in moto S3,
with the local backends; EMF output read back from stdout."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llmmon_shared.spec import discover
from tests.conftest import (
    FIXTURE_BUCKET,
    all_texts,
    fixture_key,
    fixture_keys,
    s3_event,
    sqs_event,
    upload_fixtures,
)

SERVICES = {
    "similarity": ("PromptResponseSimilarity",),
    "comprehend": (
        "SentimentNegative",
        "SentimentIsNegative",
        "Toxicity",
        "Toxic",
        "ToxicityProfanity",
    ),
    "refusal": ("RefusalSimilarity", "RefusalFuzzyScore", "Refusal"),
    "traffic": ("GuardrailIntervened", "GuardrailBlockedInput", "GuardrailDetectedNotBlocked"),
}
# Interactions in the fixtures: 18 in the family objects, the Titan Lite answer in "skips", 8
# guardrail records and 5 readable records of real-log shapes. The 4 guardrail records whose
# response a guardrail replaced without the log keeping the model's own output are scored only by
# the service that does not read responses (traffic).
SCORED = {"similarity": 28, "comprehend": 28, "refusal": 28, "traffic": 32}


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LLMMON_SINK": "emf",
        "LLMMON_DETAIL_METRICS": "true",  # every score, detail included (one test turns it off)
        "LLMMON_NAMESPACE": "llmmon-test",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        upload_fixtures(boto3.client("s3"))
        yield


def run(service: str, bodies: list[str]) -> dict[str, Any]:
    handler = importlib.import_module(f"llmmon_{service}.handler")
    handler.pipeline.cache_clear()
    result: dict[str, Any] = handler.lambda_handler(sqs_event(bodies), None)
    return result


def emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def values(docs: list[dict[str, Any]], name: str, **dims: str) -> list[float]:
    found: list[float] = []
    for doc in docs:
        if name in doc and all(doc.get(k) == v for k, v in dims.items()):
            value = doc[name]
            found.extend(value if isinstance(value, list) else [value])
    return found


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_handler__lean_default_emits_the_alarmed_scores_and_no_detail(
    service: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMMON_DETAIL_METRICS")
    bodies = [json.dumps(s3_event(FIXTURE_BUCKET, key)) for key in fixture_keys()]
    assert run(service, bodies) == {"batchItemFailures": []}
    docs = emf(capsys.readouterr().out)
    spec = discover()[service]
    emitted = {
        name
        for doc in docs
        for d in doc["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
        for name in [m["Name"]]
    }
    # (the canary's metrics come with canary traffic only)
    assert {a.metric for a in spec.alarms if not a.metric.startswith("Canary")} <= emitted
    assert not emitted & spec.detail_metrics
    assert "Interactions" in emitted


def test_every_service_is_registered() -> None:
    assert set(discover()) >= set(SERVICES)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_handler__scores_fixtures_and_reports_the_poisoned_message_alone(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = [json.dumps(s3_event(FIXTURE_BUCKET, key)) for key in fixture_keys()]
    bodies.insert(1, json.dumps(s3_event(FIXTURE_BUCKET, fixture_key("truncated"))))
    result = run(service, bodies)
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    docs = emf(capsys.readouterr().out)
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "llmmon-test" for d in docs)
    interactions = sum(values(docs, "Interactions"))
    assert interactions == SCORED[service]
    withheld = sum(values(docs, "SkippedRecords", Reason="guardrail-intervened"))
    assert withheld == (0 if service == "traffic" else 4)
    assert sum(values(docs, "SkippedRecords", Reason="no-text-output")) == 1
    for metric in SERVICES[service]:
        if service != "similarity":
            assert len(values(docs, metric)) == interactions, metric
    if service == "traffic":
        assert sum(values(docs, "GuardrailIntervened")) == 7  # 8 records, one detect-only
        assert sum(values(docs, "GuardrailBlockedInput")) == 2
        assert sum(values(docs, "GuardrailBlockedOutput")) == 3
        assert sum(values(docs, "GuardrailDetectedNotBlocked")) == 1
        assert sum(values(docs, "GuardrailBlockedContextualGrounding")) == 1
    if service == "similarity":
        # Every fixture interaction has a user prompt, so each one is scored.
        assert len(values(docs, "PromptResponseSimilarity")) == interactions


def test_similarity__on_topic_vs_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    run("similarity", [json.dumps(s3_event(FIXTURE_BUCKET, fixture_key("titan")))])
    docs = emf(capsys.readouterr().out)
    model = "amazon.titan-text-express-v1"
    sims = values(docs, "PromptResponseSimilarity", ModelId=model)
    assert len(sims) == 2 and max(sims) > 0.7  # "capital of France" -> "Paris" answer


def test_refusal__fixture_refusals_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    run("refusal", [json.dumps(s3_event(FIXTURE_BUCKET, key)) for key in fixture_keys()])
    docs = emf(capsys.readouterr().out)
    refusals = values(docs, "Refusal")
    # Refusals in the fixtures: Claude Messages stream, Claude v2 stream, Titan guideline
    # answer, Llama 2 lecture, ConverseStream malware refusal. The guardrail's "Sorry, the model
    # cannot answer this question." stands in 5 records and is never scored as the model's.
    assert sum(refusals) == 5
    assert sorted(values(docs, "Refusal", ModelId="anthropic.claude-v2:1")) == [0.0, 1.0]


def test_comprehend__no_text_in_emf_or_logs(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    run(
        "comprehend",
        [json.dumps(s3_event(FIXTURE_BUCKET, key)) for key in fixture_keys(include_broken=True)],
    )
    captured = capsys.readouterr()
    output = (
        captured.out
        + captured.err
        + "\n".join(
            f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records
        )
    )
    for text in set(all_texts()):
        for start in range(0, max(1, len(text) - 12), 6):
            assert text[start : start + 12] not in output
