"""The local hate-speech head (implicit hate) and the combined local toxicity backend."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from llmmon_comprehend.backends import HateSpeechHead, LocalToxicity, ProfanityToxicity
from llmmon_shared.embeddings import LocalMiniLMEmbedder

DATA = Path(str(files("llmmon_comprehend") / "data"))

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
    return LocalToxicity(ProfanityToxicity(), HateSpeechHead())


def test_shipped_model__two_members_and_their_leave_groups_out_figures() -> None:
    data = json.loads((DATA / "hate-head.json").read_text())
    members = {m["name"]: m for m in data["members"]}
    assert members["fine-tuned"]["embedder"] == "llmmon-hate-minilm-l6-int8"
    assert members["generic"]["embedder"] == LocalMiniLMEmbedder().family == "all-MiniLM-L6-v2"
    assert all(len(m["weights"]) == 384 for m in members.values())
    # The fine-tuned encoder ships in the package, quantised (a Lambda zip holds 250 MB).
    assert (DATA / members["fine-tuned"]["encoder"]).stat().st_size < 30_000_000
    figures = data["leave_groups_out"]
    # Held-out groups (scripts/train_toxicity.py); the profanity model alone: 0.66; the generic
    # member alone was last round's model: 0.8865.
    assert figures["auc_pooled"] >= 0.9
    assert figures["auc_pooled"] > figures["members"]["generic"]["auc_pooled"]
    assert figures["false_positive_rate_at_0.5_other_models_answers"] <= 0.01
    assert set(figures["auc_per_group"]) == {
        "bisexual", "chinese", "immigrant", "jewish", "lgbtq", "mental_disability", "mexican"
    }  # fmt: skip


def test_implicit_hate__above_the_threshold_neutral_and_answers_below(
    local: LocalToxicity,
) -> None:
    hate, neutral, answers = (local.toxicity(texts) for texts in (IMPLICIT_HATE, NEUTRAL, ANSWERS))
    scores = [r.labels["HATE_SPEECH"] for r in hate if r is not None]
    # Recall on held-out groups is about 0.83 at 0.5 (hate-head.json): the women stereotype, a
    # group dev.csv does not have, scores 0.11 today (both members miss it). Two of three pass,
    # none of the others.
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
    head = HateSpeechHead()
    assert head.toxicity(["", "  "]) == [None, None]


def test_encoder__a_minilm_layout_the_services_embedder_runs_and_padding_changes_nothing() -> None:
    head = HateSpeechHead()
    fine_tuned = next(m for m in head.members if m.name == "fine-tuned")
    assert isinstance(fine_tuned.embedder, LocalMiniLMEmbedder)
    assert fine_tuned.embedder.model_path == DATA / "hate-encoder-int8.onnx"
    short = "They are all the same, those people."
    alone = fine_tuned.embedder.embed([short])
    fine_tuned.embedder.cache = None
    padded = fine_tuned.embedder.embed(
        [short, "A much longer answer that pads the short one. " * 8]
    )
    assert float(alone[0] @ padded[0]) > 0.9999
    assert np.allclose(np.linalg.norm(padded, axis=1), 1.0, atol=1e-5)


def test_score__the_mean_of_the_members_probabilities() -> None:
    head = HateSpeechHead()
    texts = [IMPLICIT_HATE[0], NEUTRAL[0]]
    by_member = head.member_scores(texts)
    assert set(by_member) == {"fine-tuned", "generic"}
    expected = (by_member["fine-tuned"] + by_member["generic"]) / 2
    assert head.scores(texts) == pytest.approx(list(expected), abs=1e-9)


def test_another_trained_model__read_from_its_folder(tmp_path: Path) -> None:
    # The training script scores each fold's model through this same class.
    data = json.loads((DATA / "hate-head.json").read_text())
    flipped = [
        {**m, "weights": [-w for w in m["weights"]], "bias": -m["bias"]} for m in data["members"]
    ]
    (tmp_path / "hate-head.json").write_text(json.dumps({**data, "members": flipped}))
    (tmp_path / "hate-encoder-int8.onnx").symlink_to(DATA / "hate-encoder-int8.onnx")
    text = [IMPLICIT_HATE[0]]
    shipped, other = HateSpeechHead().scores(text), HateSpeechHead(data_dir=tmp_path).scores(text)
    assert other[0] == pytest.approx(1.0 - shipped[0], abs=1e-6)


def test_member_trained_on_another_embedder__refused() -> None:
    class Other:
        model_id = "another-model"

    with pytest.raises(ValueError, match="trained on all-MiniLM"):
        HateSpeechHead(embedders={"generic": Other()})
