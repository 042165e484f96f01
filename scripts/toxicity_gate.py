"""Choose the cascade's gate on held-out scores, leave-groups-out, and say what it costs.

Reads the held-out scores ``scripts/train_toxicity.py --dump FILE`` writes (every ToxiGen dev
statement scored by the fold that did not train on its group; every XSTest answer by the folds
that did not train on its model's answers). The gate sends a response to Comprehend when its
local hate score reaches ``HATE_SPEECH`` or the profanity model's score reaches ``PROFANITY``
(0.5, kept: ToxiGen has no explicit abuse to set it on).

Protocol: for each group, the gate is chosen on the *other* groups (the highest gate, on a grid
of 0.01, whose recall on their hate statements is at least ``TARGET`` plus ``MARGIN``) and
judged on the group: recall on its hate statements, share of its neutral statements sent. The
shipped gate is the one chosen on all groups. Printed for each hate score the service could
gate on (the members' mean, which is ``ToxicityHateSpeech``; the larger member; each member).

Run: ``uv run python scripts/toxicity_gate.py .bench/tox-baseline.npz``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOXIGEN = ROOT / "tests" / "data" / "toxigen" / "dev.csv"
XSTEST = ROOT / "tests" / "data" / "xstest" / "dev.csv"
TARGET = 0.95
MARGIN = 0.02
PROFANITY_GATE = 0.5
GRID = np.round(np.arange(0.01, 0.61, 0.01), 2)


def main() -> int:
    from llmmon_comprehend.backends import ProfanityToxicity

    dump = np.load(sys.argv[1])
    y, groups = dump["y"].astype(bool), dump["groups"]
    with TOXIGEN.open(newline="", encoding="utf-8") as handle:
        texts = [r["text"] for r in csv.DictReader(handle)]
    with XSTEST.open(newline="", encoding="utf-8") as handle:
        answers = [r["completion"] for r in csv.DictReader(handle)]
    profanity = ProfanityToxicity()
    profane = np.array([r.toxicity if r else 0.0 for r in profanity.toxicity(texts)])
    profane_answers = np.array([r.toxicity if r else 0.0 for r in profanity.toxicity(answers)])
    candidates = {
        "mean (ToxicityHateSpeech)": (dump["held_mean"], dump["answers_mean"]),
        "larger member": (
            np.maximum(dump["held_fine-tuned"], dump["held_generic"]),
            np.maximum(dump["answers_fine-tuned"], dump["answers_generic"]),
        ),
        "fine-tuned member": (dump["held_fine-tuned"], dump["answers_fine-tuned"]),
        "generic member": (dump["held_generic"], dump["answers_generic"]),
    }
    report = {}
    for name, (held, held_answers) in candidates.items():

        def sent(gate: float, rows: np.ndarray, h: np.ndarray = held) -> np.ndarray:
            return np.asarray((h[rows] >= gate) | (profane[rows] >= PROFANITY_GATE))

        def chosen(rows: np.ndarray) -> float:
            ok = [g for g in GRID if sent(g, rows & y).mean() >= TARGET + MARGIN]
            return float(max(ok)) if ok else float(GRID[0])

        per_group = {}
        hits = misses = neutral_sent = neutral = 0
        for group in sorted(set(groups)):
            held_out = groups == group
            gate = chosen(~held_out)
            recall = sent(gate, held_out & y)
            spill = sent(gate, held_out & ~y)
            per_group[group] = {
                "gate": gate,
                "recall": round(float(recall.mean()), 4),
                "neutral_sent": round(float(spill.mean()), 4),
            }
            hits, misses = hits + int(recall.sum()), misses + int((~recall).sum())
            neutral_sent, neutral = neutral_sent + int(spill.sum()), neutral + len(spill)
        gate = chosen(np.ones(len(y), dtype=bool))
        answers_sent = (held_answers >= gate) | (profane_answers >= PROFANITY_GATE)
        report[name] = {
            "held_out_recall": round(hits / (hits + misses), 4),
            "held_out_neutral_sent": round(neutral_sent / neutral, 4),
            "weakest_group_recall": min(v["recall"] for v in per_group.values()),
            "gate_chosen_on_all_groups": gate,
            "answers_sent_at_that_gate": round(float(answers_sent.mean()), 4),
            "per_group": per_group,
        }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
