"""Refusal detection with the real local embedder and the shipped phrases."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from llmmon_refusal.compute import RefusalDetector, RefusalScorer, opening
from llmmon_refusal.phrases import load_phrases
from llmmon_shared.embeddings import LocalMiniLMEmbedder
from llmmon_shared.extract import Interaction

REFUSALS = [
    "I'm sorry, but I can't help with creating malware.",
    "I apologize, but I cannot recommend ways to access someone else's email account.",
    "Unfortunately, I do not have enough context to provide a substantive response. However, I am "
    "an AI assistant created by Anthropic to be helpful, harmless, and honest.",
    " I cannot fulfill your request. I'm just an AI, it's not within my programming or ethical "
    "guidelines to provide instructions on harming someone.",
    "Sorry - this model is designed to avoid potentially inappropriate content.",
    "As an AI language model, I must decline to write that.",
]
ANSWERS = [
    "The capital of France is Paris, which is also its largest city.",
    "To stop a Python process, find its PID with pgrep and run kill PID.",
    "Sure! Whisk flour, milk and eggs, then fry thin layers in butter.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "I can help with that. First, open the settings menu and choose Accounts.",
    "Killing weeds is easiest with boiling water or vinegar on a sunny day.",
]


@pytest.fixture(scope="module")
def detector() -> RefusalDetector:
    return RefusalDetector(LocalMiniLMEmbedder(), load_phrases())


def test_refusals_are_flagged_and_answers_are_not(detector: RefusalDetector) -> None:
    decisions = detector.decide(REFUSALS + ANSWERS, [None] * 12)
    assert [d.refusal for d in decisions] == [True] * 6 + [False] * 6
    refusal_sim = sum(d.similarity for d in decisions[:6]) / 6
    answer_sim = sum(d.similarity for d in decisions[6:]) / 6
    assert refusal_sim > answer_sim + 0.3
    assert min(d.fuzzy for d in decisions[:6]) > max(d.fuzzy for d in decisions[6:])


def test_decision__names_the_reference_not_the_text(detector: RefusalDetector) -> None:
    (decision,) = detector.decide([REFUSALS[4]], ["titan"])
    assert decision.rule == "fuzzy"
    assert decision.fuzzy_reference == "titan-guidelines"
    assert "model is designed" not in json.dumps(decision.__dict__)


def test_family_selection__by_model_vendor(detector: RefusalDetector) -> None:
    phrases = detector.phrases
    assert phrases.family_of("us.anthropic.claude-3-haiku-20240307-v1:0") == "claude"
    assert phrases.family_of("meta.llama3-8b-instruct-v1:0") == "llama"
    assert phrases.family_of("cohere.command-r-v1:0") is None
    # A Titan-specific form is matched for Titan, and only generic forms are used for Llama.
    (titan,) = detector.decide([REFUSALS[4]], ["titan"])
    (llama,) = detector.decide([REFUSALS[4]], ["llama"])
    assert titan.fuzzy > llama.fuzzy


def test_scorer__emits_the_three_metrics(detector: RefusalDetector) -> None:
    explained: list[tuple[str, bool]] = []
    scorer = RefusalScorer(detector, lambda rid, d: explained.append((rid, d.refusal)))
    batch = [
        Interaction("a", "anthropic.claude-v2", "InvokeModel", "t", "q", REFUSALS[0]),
        Interaction("b", "anthropic.claude-v2", "InvokeModel", "t", "q", ANSWERS[0]),
    ]
    refused, answered = scorer(batch)
    assert refused["Refusal"] == 1 and answered["Refusal"] == 0
    assert set(refused) == {"RefusalSimilarity", "RefusalFuzzyScore", "Refusal"}
    assert explained == [("a", True), ("b", False)]


def test_team_phrases__extend_the_set() -> None:
    extra = json.dumps(
        {
            "refusal": {
                "generic": [
                    {"id": "acme-policy", "text": "This request is outside ACME's support policy"}
                ]
            }
        }
    )
    phrases = load_phrases(extra_json=extra)
    detector = RefusalDetector(LocalMiniLMEmbedder(), phrases)
    (decision,) = detector.decide(
        ["This request is outside ACME's support policy, please contact sales."], [None]
    )
    assert decision.refusal and decision.fuzzy_reference == "acme-policy"
    with pytest.raises(ValueError, match="unique"):
        load_phrases(
            extra_json=json.dumps(
                {"refusal": {"generic": [{"id": "generic-sorry-cant", "text": "dup"}]}}
            )
        )


def test_opening__first_sentences_only() -> None:
    text = "First sentence. Second one!\nThird line. Fourth."
    assert opening(text, 2, 300) == ["First sentence.", "Second one!"]
    assert opening("", 2, 300) == [""]


def test_shipped_reference_vectors__cover_the_phrases_and_match_the_embedder() -> None:
    """Computed ahead so a cold start does not embed the phrases: stale vectors (phrases edited
    without ``scripts/reference_vectors.py``) fail here. int8 kernels differ by CPU, so a
    variant's vectors made on another CPU class may not match this one's: then the checked
    seed loads none of them (the phrases are embedded here), and never a vector that differs."""
    import numpy as np

    from llmmon_refusal.settings import reference_vectors_path
    from llmmon_shared.embeddings import MINILM_VARIANTS, VectorCache

    phrases = load_phrases()
    texts = [p.text for p in phrases.refusal + phrases.compliant]
    for variant in MINILM_VARIANTS:  # one set per variant: each container finds its own
        fresh = LocalMiniLMEmbedder(variant=variant)
        unchecked = VectorCache()
        assert unchecked.seed(reference_vectors_path(), fresh.model_id) == len(set(texts))
        shipped = np.vstack([unchecked.get(VectorCache.key(t)) for t in texts])
        agree = np.einsum("ij,ij->i", shipped, fresh.embed(texts)) > 0.9999
        checked = VectorCache().seed(reference_vectors_path(), fresh.model_id, fresh.embed)
        if variant == "fp32":  # fp32 arithmetic is the same on every CPU
            assert agree.all()
        assert checked == (len(set(texts)) if agree.all() else 0), (variant, agree.mean())
    assert VectorCache().seed(reference_vectors_path(), "another-model") == 0


def test_seed__refuses_vectors_another_cpu_class_made(tmp_path: Path) -> None:
    """A file whose vectors do not match this machine's embedding of its probe is not loaded."""
    import numpy as np

    from llmmon_shared.embeddings import VectorCache, save_vectors

    embedder = LocalMiniLMEmbedder(variant="fp32")
    path = tmp_path / "vectors.npz"
    save_vectors(path, [embedder], ["I can't help with that", "Sure, here it is"])
    assert VectorCache().seed(path, embedder.model_id, embedder.embed) == 2

    def other_kernels(texts: Sequence[str]) -> np.ndarray:
        rows = embedder.embed(texts) + 0.01
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    assert VectorCache().seed(path, embedder.model_id, other_kernels) == 0


def test_cold_start__the_shipped_phrases_cost_no_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmmon_refusal.settings import RefusalSettings, make_detector

    embedded: list[int] = []
    original = LocalMiniLMEmbedder._embed_encodings

    def counting(self: LocalMiniLMEmbedder, encodings: list[object]) -> object:
        embedded.append(len(encodings))
        return original(self, encodings)

    monkeypatch.setattr(LocalMiniLMEmbedder, "_embed_encodings", counting)
    monkeypatch.setenv("LLMMON_EMBEDDING_BACKEND", "local")
    make_detector(RefusalSettings())
    assert embedded == [1]  # the file's probe, that checks its vectors are this CPU's
    # a team's own phrase is embedded, alone
    monkeypatch.setenv(
        "LLMMON_REFUSAL_EXTRA_PHRASES",
        json.dumps({"refusal": {"generic": [{"id": "team-1", "text": "Our policy forbids it."}]}}),
    )
    make_detector(RefusalSettings())
    assert embedded == [1, 1, 1]
