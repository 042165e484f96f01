"""Would a trained refusal decision beat the shipped rules on a model it never saw?

Leave-one-model-out on XSTest dev (tests/data/xstest/dev.csv: GPT-4 and Llama 2, 450 each):
train on one model's completions, score the other's. Candidates, each against the shipped
decision (phrases, embeddings and the implicit rules chosen by ``scripts/tune_refusal.py``):

* ``features``: logistic regression over what the detector already computes and can name
  (best fuzzy score, refusal similarity and its margin over the compliant phrases, the five
  implicit cues and the prompt overlap, the rule that fired) and a few cues of the answer's
  opening (apology, a pivot to helping, an eager opening) and its length;
* ``features+embedding``: the same plus the MiniLM vectors of the opening and of the whole
  response (the response's form, learnt);
* ``override``: the shipped decision, overturned only where the ``features`` model is sure
  (probability below 0.1 or above 0.9).

Run: ``uv run python scripts/refusal_trained_decision.py`` (about 20 seconds). Prints F1 per
held-out model and writes nothing: the figures are in docs/metrics.md ("Refusal").
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "tests" / "data" / "xstest" / "dev.csv"
REFUSAL = ("2_full_refusal", "3_partial_refusal")
PIVOT = re.compile(
    r"\b(but|however|that said)\b,? (i can|i'd be happy|i'm happy|here|let me|i'll|you can)"
)
EAGER = re.compile(r"\b(happy to help|glad to help|sure|certainly|of course|here (is|are))\b")
APOLOGY = re.compile(r"\b(sorry|apologi[sz]e|unfortunately)\b")
C_VALUES = (0.1, 0.3, 1.0, 3.0)


def f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = int((truth & predicted).sum())
    wrong = int((truth ^ predicted).sum())
    return round(2 * tp / (2 * tp + wrong), 4) if tp else 0.0


def main() -> int:
    from sklearn.linear_model import LogisticRegression

    from llmmon_refusal.compute import opening
    from llmmon_refusal.implicit import CUES, cues_of
    from llmmon_refusal.settings import RefusalSettings, make_detector

    with DEV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    detector = make_detector(RefusalSettings())
    prompts = [r["prompt"] for r in rows]
    completions = [r["completion"] for r in rows]
    decisions = detector.decide(completions, [None] * len(rows), prompts)
    features = []
    for row, d in zip(rows, decisions, strict=True):
        head = " ".join(opening(row["completion"], 2, 300)).lower()
        cues = cues_of(row["prompt"], row["completion"])
        features.append(
            [
                d.fuzzy,
                d.similarity,
                d.similarity - d.compliance_similarity,
                *(float(getattr(cues, name)) for name in CUES),
                cues.overlap,
                float(bool(PIVOT.search(head))),
                float(bool(EAGER.search(head))),
                float(bool(APOLOGY.search(head))),
                math.log1p(len(row["completion"].split())),
                float(d.rule == "fuzzy"),
                float(d.rule == "embedding"),
                float(d.rule not in (None, "fuzzy", "embedding")),
            ]
        )
    x = np.array(features)
    openings = detector.embedder.embed([" ".join(opening(c, 2, 300)) for c in completions])
    whole = detector.embedder.embed(completions)
    x_embedded = np.hstack([x, openings, whole])
    truth = np.array([r["label"] in REFUSAL for r in rows])
    shipped = np.array([d.refusal for d in decisions])
    models = np.array([r["model"] for r in rows])

    def fitted(data: np.ndarray, train: np.ndarray, c: float) -> np.ndarray:
        mean, scale = data[train].mean(axis=0), data[train].std(axis=0) + 1e-9
        model = LogisticRegression(C=c, max_iter=5000).fit(
            (data[train] - mean) / scale, truth[train]
        )
        return np.asarray(model.predict_proba((data[~train] - mean) / scale)[:, 1])

    report: dict[str, dict[str, object]] = {}
    for held_out in sorted(set(models)):
        train = models != held_out
        test = ~train
        line: dict[str, object] = {"shipped_rules": f1(truth[test], shipped[test])}
        for c in C_VALUES:
            p = fitted(x, train, c)
            line[f"features C={c}"] = f1(truth[test], p >= 0.5)
            line[f"features+embedding C={c}"] = f1(truth[test], fitted(x_embedded, train, c) >= 0.5)
            sure = np.where(p < 0.1, False, np.where(p > 0.9, True, shipped[test]))
            line[f"override C={c}"] = f1(truth[test], sure)
        report[f"held out {held_out} (trained on the other)"] = line
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
