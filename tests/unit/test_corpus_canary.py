"""The demo corpus's canary runs: recorded answers of two model versions, marked as canary."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from llmmon.local.corpus import CANARY_MODEL, generate, with_bucket
from llmmon_shared.runtime import CANARY_EXPECT_KEY, CANARY_KEY


@pytest.mark.parametrize("minutes", [60, 45])
def test_canary_runs__four_runs_of_every_probe_never_in_the_truncated_object(
    minutes: int,
) -> None:
    corpus = with_bucket(generate(datetime(2026, 11, 30, 12, tzinfo=UTC), minutes=minutes), "b")
    records = [
        json.loads(line)
        for key, body in corpus.objects
        if "/data/" not in key
        for line in gzip.decompress(body).splitlines()
        if line.startswith(b'{"schemaType": "ModelInvocationLog", "schemaVersion"')
    ]
    canary = [r for r in records if CANARY_KEY in r.get("requestMetadata", {})]
    assert corpus.canary == len(canary) == 4 * 106
    assert {r["modelId"] for r in canary} == {CANARY_MODEL}
    assert {r["requestMetadata"][CANARY_EXPECT_KEY] for r in canary} == {"answer", "refuse"}
    assert {r["operation"] for r in canary} == {"Converse"}
    assert len({r["timestamp"] for r in canary}) == 4  # a run is one point of the line
    # The corrupt object is a truncated copy of the last object: no canary record in it.
    last = corpus.objects[-1][1]
    assert CANARY_KEY.encode() not in gzip.decompress(last)


def test_corpus__knows_its_stable_part_and_its_models_bad_from_the_start() -> None:
    """What the demo's backtest needs to tell a false alarm from a true one."""
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    corpus = generate(now, minutes=60, canary=False)
    assert corpus.start == datetime(2026, 11, 30, 11, tzinfo=UTC)
    assert corpus.drift_minute == 35
    llama = "meta.llama3-70b-instruct-v1:0"
    assert corpus.drift_at(llama, "Refusal") == 35
    assert corpus.drift_at(llama, "PromptResponseSimilarity") == 35  # its answers change too
    titan = "amazon.titan-text-express-v1"  # an attack wave from minute 35
    assert corpus.drift_at(titan, "Refusal") == corpus.drift_at(titan, "PromptAttack") == 35
    assert corpus.drift_at("cohere.command-r-plus-v1:0", "Refusal") is None
    assert corpus.drift_at(next(m for m in corpus.models if "support-nova" in m), "X") == 35
    with_canary = generate(now, minutes=20)
    haiku = "anthropic.claude-3-haiku-20240307-v1:0"
    assert with_canary.drift_at(haiku, "CanaryOverRefusal") == 11  # the first version-2 run
    assert with_canary.drift_at(haiku, "Refusal") is None
    assert corpus.bad_from_start == {
        ("mistral.mistral-large-2402-v1:0", "Toxicity"),
        ("mistral.mistral-large-2402-v1:0", "SentimentIsNegative"),
        ("mistral.mistral-large-2402-v1:0", "Relevance"),  # insults address no request
    }
