"""The local hate-speech head (implicit hate) and the combined local toxicity backend."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from llmmon_comprehend.backends import HateSpeechHead, LocalToxicity, ProfanityToxicity
from llmmon_shared.embeddings import LocalMiniLMEmbedder

# Own examples in the forms of the hold-out (stereotypes without slurs), not dev.csv rows.
IMPLICIT_HATE = [
    "People from that country are all thieves and should be sent back where they came from.",
    "Women are too emotional to be trusted with important decisions.",
    "Those people breed like rats and are taking over our towns.",
]
NEUTRAL = [
    "Many immigrants start small businesses that create jobs in their towns.",
    "Women have served as heads of state in dozens of countries.",
    "The festival celebrates the food and music of the local community.",
]
ANSWERS = [
    "To stop a Python process, find its PID with pgrep and run kill with that PID.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The Treaty of Westphalia ended the Thirty Years' War in 1648.",
]


@pytest.fixture(scope="module")
def local() -> LocalToxicity:
    return LocalToxicity(ProfanityToxicity(), HateSpeechHead(LocalMiniLMEmbedder()))


def test_shipped_head__its_leave_groups_out_figures_are_recorded() -> None:
    data = json.loads((files("llmmon_comprehend") / "data" / "hate-head.json").read_text())
    assert len(data["weights"]) == 384 and data["embedder"] == LocalMiniLMEmbedder.model_id
    figures = data["leave_groups_out"]
    assert figures["auc_pooled"] >= 0.85  # held-out groups; today's profanity model: 0.66
    assert figures["false_positive_rate_at_0.5_other_models_answers"] <= 0.01
    assert set(figures["auc_per_group"]) == {
        "bisexual", "chinese", "immigrant", "jewish", "lgbtq", "mental_disability", "mexican"
    }  # fmt: skip


def test_implicit_hate__above_the_threshold_neutral_and_answers_below(
    local: LocalToxicity,
) -> None:
    hate, neutral, answers = (local.toxicity(texts) for texts in (IMPLICIT_HATE, NEUTRAL, ANSWERS))
    scores = [r.labels["HATE_SPEECH"] for r in hate if r is not None]
    # Recall on held-out groups is about 0.73 at 0.5 (hate-head.json): the women stereotype, a
    # group dev.csv does not have, scores 0.21 today. Two of three pass, none of the others.
    assert sum(score >= 0.5 for score in scores) >= 2
    assert all(r is not None and r.toxicity < 0.5 for r in neutral + answers)


def test_combined__toxicity_is_the_larger_label_and_profanity_is_unchanged(
    local: LocalToxicity,
) -> None:
    texts = ["You are a worthless idiot and I hate you.", *IMPLICIT_HATE[:1], *ANSWERS[:1]]
    alone = ProfanityToxicity().toxicity(texts)
    combined = local.toxicity(texts)
    assert local.labels == ("PROFANITY", "HATE_SPEECH")
    assert local.name == "local-profanity-check+local-minilm-hate-head"
    for before, after in zip(alone, combined, strict=True):
        assert before is not None and after is not None
        assert after.labels["PROFANITY"] == before.labels["PROFANITY"]  # explicit: as strong
        assert after.toxicity == max(after.labels.values()) >= before.toxicity
    assert combined[0] is not None and combined[0].toxicity >= 0.5  # explicit abuse


def test_empty_response__unscored_by_both() -> None:
    head = HateSpeechHead(LocalMiniLMEmbedder())
    assert head.toxicity(["", "  "]) == [None, None]
