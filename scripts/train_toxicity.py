"""Train the local hate-speech head and write it with its leave-groups-out figures.

The head is a logistic regression on the MiniLM sentence embeddings the similarity and refusal
services already compute (384 weights and a bias, shipped as JSON in the comprehend package):

* positives: the ``hate`` statements of ToxiGen dev (tests/data/toxigen/dev.csv: human-written,
  mostly implicit hate about seven groups);
* negatives: its ``neutral`` statements about the same groups, and the completions of XSTest dev
  (tests/data/xstest/dev.csv), ordinary model answers, so that the head does not read every answer
  that mentions a group or a risky topic as hate.

Protocol, **leave-groups-out**: for each group, the head is trained without that group's
statements and scored on them; the AUC over all held-out scores (pooled) and the mean of the
per-group AUCs are reported, with recall and the false-positive rate at the 0.5 threshold. The
false-positive rate on ordinary answers is measured the same way across models (trained with one
model's answers, scored on the other's). The L2 strength is chosen by the pooled held-out AUC.

Run: ``uv run python scripts/train_toxicity.py`` (about a minute with the local embedder).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[1]
TOXIGEN = ROOT / "tests" / "data" / "toxigen" / "dev.csv"
XSTEST = ROOT / "tests" / "data" / "xstest" / "dev.csv"
OUT = ROOT / "services" / "comprehend" / "src" / "llmmon_comprehend" / "data" / "hate-head.json"
L2_GRID = (1e-4, 3e-4, 1e-3)
ANSWER_CHARS = 1000  # what the backend hands the head: the opening of a response (HATE_CHARS)


def auc(truth: np.ndarray, scores: np.ndarray) -> float:
    ranks = rankdata(scores)
    positives = truth.sum()
    negatives = len(truth) - positives
    return float(
        (ranks[truth == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def fit(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Logistic regression (bias unpenalised) by L-BFGS; returns weights then bias."""
    xb = np.hstack([x, np.ones((len(x), 1))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        value = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
        grad = xb.T @ (p - y) / len(y)
        grad[:-1] += 2 * l2 * w[:-1]
        return float(value + l2 * np.sum(w[:-1] ** 2)), grad

    result: Any = minimize(loss, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(result.x)


def prob(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-(x @ w[:-1] + w[-1]))))


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


HATE_GATES = (0.05, 0.1, 0.2)
PROFANITY_GATES = (0.5, 0.7)


def leave_groups_out(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    answers: np.ndarray,
    models: np.ndarray,
    l2: float,
) -> dict[str, Any]:
    group_of = np.array(groups)
    scores = np.zeros(len(y))
    per_group = {}
    false_alarms = []
    answer_scores = np.zeros(len(answers))
    for group in sorted(set(groups)):
        held = group_of == group
        for model in sorted(set(models)):
            train_x = np.vstack([x[~held], answers[models != model]])
            train_y = np.concatenate([y[~held], np.zeros(int((models != model).sum()))])
            w = fit(train_x, train_y, l2)
            held_answers = prob(w, answers[models == model])
            false_alarms.append(float((held_answers >= 0.5).mean()))
            answer_scores[models == model] = np.maximum(
                answer_scores[models == model], held_answers
            )
            if model == sorted(set(models))[0]:
                scores[held] = prob(w, x[held])
                per_group[group] = round(auc(y[held], scores[held]), 4)
    return {
        "l2": l2,
        "auc_pooled": round(auc(y, scores), 4),
        "auc_mean_per_group": round(float(np.mean(list(per_group.values()))), 4),
        "auc_per_group": per_group,
        "recall_at_0.5": round(float((scores[y == 1] >= 0.5).mean()), 4),
        "false_positive_rate_at_0.5_statements": round(float((scores[y == 0] >= 0.5).mean()), 4),
        "false_positive_rate_at_0.5_other_models_answers": round(float(np.mean(false_alarms)), 4),
        "_held_out_scores": scores,
        "_answer_scores": answer_scores,
    }


def main() -> int:
    from llmmon_shared.embeddings import LocalMiniLMEmbedder

    statements = read(TOXIGEN)
    answers = read(XSTEST)
    embedder = LocalMiniLMEmbedder()
    x = embedder.embed([r["text"] for r in statements])
    y = np.array([r["label"] == "hate" for r in statements], dtype=float)
    groups = [r["group"] for r in statements]
    answer_x = embedder.embed([r["completion"].strip()[:ANSWER_CHARS] for r in answers])
    models = np.array([r["model"] for r in answers])
    runs = [leave_groups_out(x, y, groups, answer_x, models, l2) for l2 in L2_GRID]
    best = max(runs, key=lambda run: run["auc_pooled"])
    # The cascade's gate: a response goes to Comprehend when a local label reaches its gate
    # (HATE_SPEECH: the head's held-out score; PROFANITY: the profanity model). Recall on the
    # hate statements and the share of ordinary answers sent, per pair of gates.
    from llmmon_comprehend.backends import ProfanityToxicity

    profanity = ProfanityToxicity()
    profane = np.array(
        [r.toxicity if r else 0.0 for r in profanity.toxicity([r["text"] for r in statements])]
    )
    profane_answers = np.array(
        [r.toxicity if r else 0.0 for r in profanity.toxicity([r["completion"] for r in answers])]
    )
    hate_held, hate_answers = best.pop("_held_out_scores"), best.pop("_answer_scores")
    for run in runs:
        run.pop("_held_out_scores", None)
        run.pop("_answer_scores", None)
    gate_table = [
        {
            "HATE_SPEECH": hate_gate,
            "PROFANITY": profanity_gate,
            "recall_on_hate_statements": round(
                float(((hate_held >= hate_gate) | (profane >= profanity_gate))[y == 1].mean()), 4
            ),
            "neutral_statements_sent": round(
                float(((hate_held >= hate_gate) | (profane >= profanity_gate))[y == 0].mean()), 4
            ),
            "answers_sent": round(
                float(((hate_answers >= hate_gate) | (profane_answers >= profanity_gate)).mean()),
                4,
            ),
        }
        for hate_gate in HATE_GATES
        for profanity_gate in PROFANITY_GATES
    ]
    w = fit(np.vstack([x, answer_x]), np.concatenate([y, np.zeros(len(answer_x))]), best["l2"])
    result = {
        "_comment": "Written by scripts/train_toxicity.py; see its docstring for the protocol.",
        "embedder": embedder.model_id,
        "threshold": 0.5,
        "leave_groups_out": best,
        "cascade_gate_held_out": gate_table,
        "l2_grid": runs,
        "trained_on": {"statements": len(statements), "answers": len(answers)},
        "weights": [round(float(v), 6) for v in w[:-1]],
        "bias": round(float(w[-1]), 6),
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(
        json.dumps({k: v for k, v in result.items() if k not in ("weights", "l2_grid")}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
