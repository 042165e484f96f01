"""Managed-service adapters against botocore's Stubber with the real request/response shapes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from llmmon_comprehend.backends import TOXICITY_LABELS, ComprehendBackend
from llmmon_shared.embeddings import TITAN_V2, TitanEmbedder


def client(service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}),
    )


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    c = client("bedrock-runtime")
    with Stubber(c) as stubber:
        yield c, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def comprehend() -> Iterator[tuple[Any, Stubber]]:
    c = client("comprehend")
    with Stubber(c) as stubber:
        yield c, stubber
        stubber.assert_no_pending_responses()


def titan_response(vector: list[float], tokens: int = 7) -> dict[str, Any]:
    data = json.dumps({"embedding": vector, "inputTextTokenCount": tokens}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def test_titan__request_body_and_response_shape(bedrock: tuple[Any, Stubber]) -> None:
    c, stubber = bedrock
    expected = {
        "modelId": TITAN_V2,
        "contentType": "application/json",
        "accept": "application/json",
        "body": json.dumps({"inputText": "hello world", "dimensions": 256, "normalize": True}),
    }
    stubber.add_response("invoke_model", titan_response([3.0, 4.0] + [0.0] * 254), expected)
    embedder = TitanEmbedder(c, dimensions=256, max_workers=1)
    vectors = embedder.embed(["hello world", "hello world"])  # identical texts: one call
    assert vectors.shape == (2, 256)
    assert np.allclose(vectors[0, :2], [0.6, 0.8])
    assert embedder.calls == 1 and embedder.input_tokens == 7


def test_titan__throttling_then_success(bedrock: tuple[Any, Stubber]) -> None:
    c, stubber = bedrock
    stubber.add_client_error(
        "invoke_model", service_error_code="ThrottlingException", http_status_code=429
    )
    stubber.add_response(
        "invoke_model",
        titan_response([1.0] + [0.0] * 255),
        {"modelId": TITAN_V2, "contentType": ANY, "accept": ANY, "body": ANY},
    )
    vectors = TitanEmbedder(c, dimensions=256, max_workers=1).embed(["x"])
    assert vectors.shape == (1, 256)


def test_titan__long_text_is_cut_utf8_safely(bedrock: tuple[Any, Stubber]) -> None:
    c, stubber = bedrock
    captured: list[str] = []

    class Body:
        def __eq__(self, other: object) -> bool:
            captured.append(str(other))
            return True

    stubber.add_response(
        "invoke_model",
        titan_response([1.0] * 256),
        {"modelId": TITAN_V2, "contentType": ANY, "accept": ANY, "body": Body()},
    )
    TitanEmbedder(c, dimensions=256, max_input_bytes=100, max_workers=1).embed(["日本語" * 100])
    sent = json.loads(captured[0])["inputText"]
    assert len(sent.encode()) <= 100 and set(sent) <= set("日本語")


def sentiment_item(index: int, label: str = "POSITIVE") -> dict[str, Any]:
    return {
        "Index": index,
        "Sentiment": label,
        "SentimentScore": {
            "Positive": 0.9 if label == "POSITIVE" else 0.02,
            "Negative": 0.02,
            "Neutral": 0.06 if label == "POSITIVE" else 0.94,
            "Mixed": 0.02,
        },
    }


def test_batch_sentiment__25_per_call_and_partial_error_list(
    comprehend: tuple[Any, Stubber],
) -> None:
    c, stubber = comprehend
    texts = [f"text {i}" for i in range(30)]
    # First call: 25 documents; document 3 fails transiently, document 4 for good.
    stubber.add_response(
        "batch_detect_sentiment",
        {
            "ResultList": [sentiment_item(i) for i in range(25) if i not in (3, 4)],
            "ErrorList": [
                {"Index": 3, "ErrorCode": "INTERNAL_SERVER_ERROR", "ErrorMessage": "x"},
                {"Index": 4, "ErrorCode": "TEXT_SIZE_LIMIT_EXCEEDED", "ErrorMessage": "y"},
            ],
        },
        {"TextList": texts[:25], "LanguageCode": "en"},
    )
    stubber.add_response(
        "batch_detect_sentiment",
        {"ResultList": [sentiment_item(i, "NEUTRAL") for i in range(5)], "ErrorList": []},
        {"TextList": texts[25:], "LanguageCode": "en"},
    )
    # The retry round holds only the transient failure.
    stubber.add_response(
        "batch_detect_sentiment",
        {"ResultList": [sentiment_item(0)], "ErrorList": []},
        {"TextList": ["text 3"], "LanguageCode": "en"},
    )
    results = ComprehendBackend(c, sleep=lambda _: None).sentiment(texts)
    assert results[3] is not None and results[3].label == "POSITIVE"
    assert results[4] is None  # reported as unscored, not guessed
    assert results[29] is not None and results[29].label == "NEUTRAL"
    assert sum(r is not None for r in results) == 29


def test_batch_sentiment__documents_cut_to_5000_bytes(comprehend: tuple[Any, Stubber]) -> None:
    c, stubber = comprehend
    long_text = "é" * 4000  # 8,000 bytes
    stubber.add_response(
        "batch_detect_sentiment",
        {"ResultList": [sentiment_item(0)], "ErrorList": []},
        {"TextList": ["é" * 2500], "LanguageCode": "en"},
    )
    assert ComprehendBackend(c).sentiment([long_text])[0] is not None


def test_toxic_content__one_document_per_call_segmented_max_over_segments(
    comprehend: tuple[Any, Stubber],
) -> None:
    c, stubber = comprehend
    document = ("This sentence is perfectly fine and calm. " * 60).strip()  # ~2.5 KB
    from llmmon_comprehend.backends import split_segments

    segments = split_segments(document)
    assert len(segments) == 3 and all(len(s.encode()) <= 1000 for s in segments)
    labels = TOXICITY_LABELS

    def segment(toxicity: float, insult: float) -> dict[str, Any]:
        return {
            "Toxicity": toxicity,
            "Labels": [{"Name": n, "Score": insult if n == "INSULT" else 0.01} for n in labels],
        }

    stubber.add_client_error(
        "detect_toxic_content", service_error_code="ThrottlingException", http_status_code=400
    )
    stubber.add_response(
        "detect_toxic_content",
        {"ResultList": [segment(0.1, 0.05), segment(0.7, 0.65), segment(0.2, 0.1)]},
        {"TextSegments": [{"Text": s} for s in segments], "LanguageCode": "en"},
    )
    (result,) = ComprehendBackend(c, sleep=lambda _: None, workers=1).toxicity([document])
    assert result is not None
    assert result.toxicity == 0.7
    assert result.labels["INSULT"] == 0.65 and result.labels["GRAPHIC"] == 0.01


def test_cascade__comprehend_only_above_the_gate_and_for_the_calibration_sample(
    comprehend: tuple[Any, Stubber],
) -> None:
    from llmmon_comprehend.backends import ToxicityResult
    from llmmon_comprehend.compute import ComprehendScorer, ToxicityGate
    from llmmon_shared.extract import Interaction
    from llmmon_shared.text import is_sampled

    c, stubber = comprehend

    class Local:
        name, labels = "fake-local", ("PROFANITY",)

        def toxicity(self, texts: Any) -> list[ToxicityResult | None]:
            return [
                ToxicityResult(score, {"PROFANITY": score})
                for score in (0.9 if "awful" in t else 0.01 for t in texts)
            ]

    # Request ids: one calibration-sampled (2%) and one not, found deterministically.
    ids = [f"req-{n}" for n in range(500)]
    sampled = next(i for i in ids if is_sampled(f"{i}#calibration", 0.02))
    plain = next(i for i in ids if not is_sampled(f"{i}#calibration", 0.02))
    other = next(i for i in ids if i != plain and not is_sampled(f"{i}#calibration", 0.02))
    batch = [
        Interaction(other, "m", "InvokeModel", "t", "q", "You are awful."),  # above the gate
        Interaction(plain, "m", "InvokeModel", "t", "q", "Paris is in France."),  # below
        Interaction(sampled, "m", "InvokeModel", "t", "q", "Rivers flow to the sea."),  # sample
    ]
    for text, toxicity in (("You are awful.", 0.8), ("Rivers flow to the sea.", 0.02)):
        stubber.add_response(
            "detect_toxic_content",
            {"ResultList": [{"Toxicity": toxicity, "Labels": [{"Name": "INSULT", "Score": 0.7}]}]},
            {"TextSegments": [{"Text": text}], "LanguageCode": "en"},
        )

    class NoSentiment:
        name = "none"

        def sentiment(self, texts: Any) -> list[Any]:
            assert not texts  # sentiment sampled out entirely here
            return []

    managed = ComprehendBackend(c, sleep=lambda _: None, workers=1)
    scorer = ComprehendScorer(
        NoSentiment(),
        managed,
        gate=ToxicityGate(Local(), {"PROFANITY": 0.5}, 0.02),
        sentiment_sample_rate=0.0,
    )
    above, below, calibration = scorer(batch)
    assert above["ToxicityByComprehend"] == 1.0 and above["Toxicity"] == 0.8
    assert above["ToxicityInsult"] == 0.7 and "ToxicityLocal" not in above
    assert below == {"Toxicity": 0.01, "Toxic": 0.0, "ToxicityByComprehend": 0.0}
    assert calibration["ToxicityByComprehend"] == 1.0 and calibration["ToxicityLocal"] == 0.01
    assert calibration["Toxicity"] == 0.02
