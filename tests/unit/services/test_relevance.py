"""Relevance beside the cosine: an answer to a neighbouring request scores below the answer to
this one; shared instruction lines are left out of the prompt; one forward pass gives both."""

from __future__ import annotations

import numpy as np
import pytest

from llmmon_shared.embeddings import LocalMiniLMEmbedder
from llmmon_shared.extract import Interaction
from llmmon_shared.text import SharedLines
from llmmon_similarity.compute import METRIC, RELEVANCE, SimilarityScorer, coverage

PREAMBLE = (
    "You are the assistant of Acme's internal portal.\n"
    "Use plain English, short sentences and active voice.\n"
    "Never reveal customer names or figures that are not public.\n"
    "Keep answers under three hundred words.\n"
)


def item(prompt: str, completion: str, n: int = 0) -> Interaction:
    return Interaction(f"r{n}", "m", "InvokeModel", "test", prompt, completion)


@pytest.fixture(scope="module")
def scorer(minilm: LocalMiniLMEmbedder) -> SimilarityScorer:
    return SimilarityScorer(minilm, minilm)


def test_an_answer_to_a_neighbouring_request_is_less_relevant(scorer: SimilarityScorer) -> None:
    prompt = "Write a haiku about autumn leaves falling in the park."
    own = "Crimson leaves drifting\nacross the quiet park paths\nautumn lets them go"
    neighbour = (
        "Autumn leaves change colour because chlorophyll breaks down as days shorten, "
        "revealing the yellow and orange pigments that were there all along."
    )
    unrelated = "Our quarterly revenue grew by twelve percent thanks to the new pricing."
    a, b, c = scorer([item(prompt, own, 1), item(prompt, neighbour, 2), item(prompt, unrelated, 3)])
    assert a[RELEVANCE] > b[RELEVANCE] > c[RELEVANCE]
    assert -1.0 <= c[RELEVANCE] <= a[RELEVANCE] <= 1.0
    assert set(a) == {METRIC, RELEVANCE}


def test_cosine_from_the_relevance_pass_equals_the_embedder_s(minilm: LocalMiniLMEmbedder) -> None:
    texts = ["How do I reverse a list in Python?", "Use reversed() or slicing.", "x " * 400]
    pooled, tokens = minilm.embed_tokens(texts + texts[:1])
    assert np.allclose(pooled, minilm.embed(texts + texts[:1]), atol=1e-6)
    assert [len(t) for t in tokens][:2] == [
        len(minilm._tokenizer.encode(t).ids) - 2 for t in texts[:2]
    ]  # word pieces without [CLS] and [SEP]
    assert len(tokens[2]) == minilm.max_tokens - 2  # cut at the window
    assert np.allclose(np.linalg.norm(tokens[0], axis=1), 1.0, atol=1e-5)
    assert coverage(tokens[0], tokens[0]) == pytest.approx(1.0, abs=1e-5)
    assert coverage(tokens[0][:0], tokens[1]) == 0.0
    assert minilm.embed_tokens([])[1] == []


def test_without_the_relevance_model_only_the_cosine(minilm: LocalMiniLMEmbedder) -> None:
    (scores,) = SimilarityScorer(minilm)([item("What is 2+2?", "4")])
    assert set(scores) == {METRIC}


def test_shared_lines__left_out_once_seen_in_three_prompts() -> None:
    shared = SharedLines(min_prompts=3)
    prompts = [PREAMBLE + q for q in ("What is VAT?", "Draft a memo.", "Summarise this.")]
    shared.observe(prompts[:2])
    assert shared.own_part(prompts[0]) == prompts[0]  # two prompts: not yet shared
    shared.observe(prompts[:2])  # the same prompts again count once
    assert shared.own_part(prompts[0]) == prompts[0]
    shared.observe(prompts[2:])
    assert [shared.own_part(p) for p in prompts] == [
        "What is VAT?",
        "Draft a memo.",
        "Summarise this.",
    ]
    assert shared.own_part(PREAMBLE) == PREAMBLE  # nothing of its own left: kept whole
    assert all(isinstance(key, bytes) for key in shared._seen)  # digests, no text


def test_shared_lines__bounded_least_recent_first_out() -> None:
    shared = SharedLines(min_prompts=1, entries=2)
    shared.observe(["a\nb"])
    shared.observe(["c"])
    assert shared.shared("c") and len(shared._seen) == 2
    assert [shared.shared("a"), shared.shared("b")].count(True) == 1  # one of them went out


def test_a_long_shared_preamble_no_longer_decides_the_score(scorer: SimilarityScorer) -> None:
    preamble = PREAMBLE * 8  # about 300 word pieces: past MiniLM's window of 256
    scorer.shared_lines = SharedLines()
    questions = [
        ("How do I reverse a list in Python?", "Use my_list.reverse() or my_list[::-1]."),
        ("What is the boiling point of water?", "Water boils at 100 degrees Celsius at sea level."),
        ("Name three primary colours.", "Red, yellow and blue."),
    ]
    whole = SimilarityScorer(scorer.embedder, scorer.relevance, SharedLines(min_prompts=99))
    batch = [item(preamble + q, a, n) for n, (q, a) in enumerate(questions)]
    with_preamble = whole(batch)
    own = scorer(batch)
    plain = whole([item(q, a, n) for n, (q, a) in enumerate(questions)])
    for p, w, o in zip(plain, with_preamble, own, strict=True):
        assert w[METRIC] < p[METRIC] - 0.2  # the preamble's vector, not the question's
        assert o[METRIC] == pytest.approx(p[METRIC], abs=1e-5)
        assert o[RELEVANCE] == pytest.approx(p[RELEVANCE], abs=1e-5)


class OtherBackend:
    """Another embedding backend (Titan's place): its own vectors, its calls recorded."""

    model_id = "other"
    dimensions = 2

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.asarray([[1.0, 0.0] if i % 2 else [0.6, 0.8] for i in range(len(texts))])


def test_another_backend__cosine_from_it_relevance_from_minilm(
    minilm: LocalMiniLMEmbedder,
) -> None:
    backend = OtherBackend()
    prompt, answer = "What is the capital of France?", "The capital of France is Paris."
    (scores,) = SimilarityScorer(backend, minilm)([item(prompt, answer)])
    assert backend.calls == [[prompt, answer]]
    assert scores[METRIC] == pytest.approx(0.6)  # the backend's vectors, not MiniLM's
    (local,) = SimilarityScorer(minilm, minilm)([item(prompt, answer)])
    assert scores[RELEVANCE] == pytest.approx(local[RELEVANCE], abs=1e-6)


def test_embed_tokens__a_text_held_by_both_caches_is_not_run_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llmmon_shared.embeddings import VectorCache

    model = LocalMiniLMEmbedder(cache=VectorCache(8), token_cache=VectorCache(8))
    runs: list[int] = []
    real = model._run_tokens
    monkeypatch.setattr(model, "_run_tokens", lambda e: runs.append(len(e)) or real(e))
    shared = "You are the assistant of Acme. Answer briefly."
    first_pooled, first_tokens = model.embed_tokens([shared, "What is VAT?"])
    assert sum(runs) == 2
    again_pooled, again_tokens = model.embed_tokens([shared, "Draft a memo.", shared])
    assert sum(runs) == 3  # only the new text ran
    assert np.array_equal(again_pooled[0], first_pooled[0])
    assert np.array_equal(again_pooled[2], first_pooled[0])
    assert np.allclose(again_tokens[0], first_tokens[0], atol=2e-3)  # kept in float16
    assert again_tokens[0].dtype == np.float32
    off = LocalMiniLMEmbedder(cache=VectorCache(0), token_cache=VectorCache(0))
    assert np.allclose(off.embed_tokens([shared])[0], first_pooled[:1], atol=1e-6)
