"""The exported offensive-language model gives scikit-learn's probabilities (alt-profanity-check
is a development dependency for this comparison)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from llmmon_comprehend.backends import OffensiveLanguageModel
from tests.conftest import TEST_DATA


def test_matches_scikit_learn_on_real_text() -> None:
    profanity_check = pytest.importorskip("profanity_check")
    texts = [
        "You are a worthless idiot.",
        "The capital of France is Paris.",
        "",
        "kill -9 1234",
        "FUCK this!!",
        "naïve café déjà vu",
        "a b c",
        "Shut up, moron. Shut UP.",
    ]
    with Path(TEST_DATA / "xstest" / "dev.csv").open(encoding="utf-8") as handle:
        texts += [row["completion"][:1000] for row in csv.DictReader(handle)][:400]
    ours = np.array(OffensiveLanguageModel().predict_proba(texts))
    theirs = profanity_check.predict_prob(texts)
    assert np.abs(ours - theirs).max() < 1e-9


def test_names_its_source() -> None:
    assert OffensiveLanguageModel().source == "alt-profanity-check 1.9.1"
