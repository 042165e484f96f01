"""Similarity scoring with the real local MiniLM embedder: directions and thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from llmmon_shared.embeddings import LocalMiniLMEmbedder
from llmmon_shared.extract import Interaction
from llmmon_similarity.compute import METRIC, SimilarityScorer


def item(prompt: str, completion: str, n: int = 0) -> Interaction:
    return Interaction(f"r{n}", "m", "InvokeModel", "test", prompt, completion)


def test_on_topic_answers_score_far_above_off_topic(minilm: LocalMiniLMEmbedder) -> None:
    scorer = SimilarityScorer(minilm)
    q = "What is the capital of France?"
    on, off = scorer(
        [item(q, "The capital of France is Paris."), item(q, "Bananas are rich in potassium.")]
    )
    assert on[METRIC] > 0.7
    assert off[METRIC] < 0.2
    q2 = "How do I reverse a list in Python?"
    on2, off2 = scorer(
        [
            item(q2, "Use my_list.reverse() or slicing: my_list[::-1]."),
            item(q2, "The Treaty of Westphalia was signed in 1648."),
        ]
    )
    assert on2[METRIC] > off2[METRIC] + 0.3


def test_no_prompt__no_score(minilm: LocalMiniLMEmbedder) -> None:
    assert SimilarityScorer(minilm)([item("", "Hello there.")]) == [{}]


def test_embedder__normalised_rows_dedupe_and_long_texts(minilm: LocalMiniLMEmbedder) -> None:
    long_text = "word " * 5000  # far beyond 256 tokens: cut on a token boundary
    vectors = minilm.embed(["same", "other", "same", long_text])
    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])
    assert minilm.embed([]).shape == (0, 384)


def test_batch_order_does_not_change_scores(minilm: LocalMiniLMEmbedder) -> None:
    scorer = SimilarityScorer(minilm)
    items = [
        item("Tell me about cats.", "Cats are small domesticated felines.", 1),
        item("What is 2+2?", "2+2 equals 4.", 2),
        item("Explain photosynthesis in detail please.", "Plants convert light to sugar.", 3),
    ]
    forward = [s[METRIC] for s in scorer(items)]
    backward = [s[METRIC] for s in scorer(items[::-1])][::-1]
    assert np.allclose(forward, backward, atol=1e-4)


def test_embedder__leaves_the_cores_to_onnxruntime(minilm: LocalMiniLMEmbedder) -> None:
    # numpy's BLAS threads busy-wait after each product and slowed scoring by a fifth.
    from threadpoolctl import threadpool_info

    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas, "numpy's BLAS was not found"
    assert all(pool["num_threads"] == 1 for pool in blas)


def test_embedder__batches_run_in_parallel_give_the_same_rows() -> None:
    # fp32 batches by a token budget (int8 runs one text per pass, whatever the CPU picks).
    one = LocalMiniLMEmbedder(workers=1, variant="fp32")
    two = LocalMiniLMEmbedder(workers=2, token_budget=64, variant="fp32")
    texts = [f"Sentence number {i} " + "about cats and dogs " * (i % 7) for i in range(40)]
    encodings = two._tokenizer.encode_batch(texts)
    batches = two._batches(encodings)
    assert sorted(i for batch in batches for i in batch) == list(range(40))
    for batch in batches:  # each within the token budget (unless one text alone exceeds it)
        width = max(len(encodings[i].ids) for i in batch)
        assert len(batch) == 1 or len(batch) * width <= 64
    assert len(two._batches(encodings[:3])) == 2  # a few texts still use both workers
    assert np.allclose(one.embed(texts), two.embed(texts), atol=1e-5)
    int8 = LocalMiniLMEmbedder(workers=2, token_budget=64, variant="int8")
    assert sorted(int8._batches(encodings)) == [[i] for i in range(40)]


class CountingEmbedder:
    """Records the texts each call embeds (deterministic vectors from the text's hash)."""

    dimensions = 4

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.asarray(
            [[hash(t) % 97, len(t), 1.0, (hash(t) // 97) % 89] for t in texts], dtype=np.float32
        )


def test_vector_cache__a_text_seen_again_is_not_embedded_again() -> None:
    from llmmon_shared.embeddings import VectorCache, embed_unique

    inner, cache = CountingEmbedder(), VectorCache(entries=3)
    first = embed_unique(["system a", "q1", "system a"], inner, 4, cache)
    second = embed_unique(["q2", "system a", "q1"], inner, 4, cache)
    assert inner.calls == [["system a", "q1"], ["q2"]]
    assert np.array_equal(second[1], first[0]) and np.array_equal(second[2], first[1])
    assert (cache.hits, cache.misses) == (2, 3)
    # the least recently used goes first: "system a" (q2 was put after q1 and it were used)
    embed_unique(["q3"], inner, 4, cache)
    assert len(cache) == 3
    calls = len(inner.calls)
    embed_unique(["q1", "q2", "q3"], inner, 4, cache)
    assert len(inner.calls) == calls  # all three held
    embed_unique(["system a"], inner, 4, cache)
    assert inner.calls[-1] == ["system a"]


def test_vector_cache__holds_digests_not_text_and_can_be_off() -> None:
    from llmmon_shared.embeddings import VectorCache, embed_unique

    cache = VectorCache(entries=8)
    embed_unique(["a private prompt"], CountingEmbedder(), 4, cache)
    assert all(isinstance(k, bytes) and len(k) == 16 for k in cache._rows)
    assert b"private" not in b"".join(cache._rows)
    inner, off = CountingEmbedder(), VectorCache(entries=0)
    embed_unique(["x"], inner, 4, off)
    embed_unique(["x"], inner, 4, off)
    assert inner.calls == [["x"], ["x"]] and len(off) == 0
    with pytest.raises(ValueError, match="0 or more"):
        VectorCache(entries=-1)


def test_vector_cache__same_rows_as_without_it(minilm: LocalMiniLMEmbedder) -> None:
    from llmmon_shared.embeddings import VectorCache

    cached = LocalMiniLMEmbedder(cache=VectorCache())
    texts = ["How do I kill a Python process?", "Use kill -9 with its pid.", "Hello"]
    cached.embed(texts[:2])
    assert np.allclose(cached.embed(texts), minilm.embed(texts), atol=1e-6)
