"""Choose the implicit-refusal rules by leave-one-model-out on XSTest dev, and write the choice.

Protocol (README, "Refusal detection"): for each model of tests/data/xstest/dev.csv, the rules
that each raise F1 on the *other* model (the tuning side) by more than 0.002 are chosen, and the
chosen set is scored on the held-out model: that held-out figure is the one that predicts other
models. The
set shipped is the rules chosen in every direction (the intersection), written with the figures
to services/refusal/src/llmmon_refusal/data/implicit.json.

Run: ``uv run python scripts/tune_refusal.py`` (about a minute: the phrase and embedding rules run
once over the 900 rows with the local embedder). ``--check`` recomputes and fails if the shipped
file differs (CI does not run it; it needs the embedder's minute).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "tests" / "data" / "xstest" / "dev.csv"
OUT = ROOT / "services" / "refusal" / "src" / "llmmon_refusal" / "data" / "implicit.json"
REFUSAL = ("2_full_refusal", "3_partial_refusal")
MIN_GAIN = 0.002


def figures(truth: Sequence[bool], predicted: Sequence[bool]) -> dict[str, float]:
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    return {
        "f1": round(2 * tp / (2 * tp + fp + fn), 4) if tp else 0.0,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "accuracy": round(correct / len(truth), 4),
    }


def main(argv: list[str] | None = None) -> int:
    from llmmon_refusal.implicit import RULES, cues_of, implicit_rule
    from llmmon_refusal.settings import RefusalSettings, make_detector

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    with DEV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    detector = make_detector(RefusalSettings(refusal_implicit_rules=[]))
    base = [d.refusal for d in detector.decide([r["completion"] for r in rows], [None] * len(rows))]
    cues = [cues_of(r["prompt"], r["completion"]) for r in rows]
    truth = [r["label"] in REFUSAL for r in rows]
    models = sorted({r["model"] for r in rows})

    def predict(index: Sequence[int], rules: Sequence[str]) -> list[bool]:
        return [base[i] or implicit_rule(cues[i], rules) is not None for i in index]

    def f1(index: Sequence[int], rules: Sequence[str]) -> float:
        return figures([truth[i] for i in index], predict(index, rules))["f1"]

    directions = {}
    chosen_sets = []
    for held_out in models:
        tune = [i for i, r in enumerate(rows) if r["model"] != held_out]
        test = [i for i, r in enumerate(rows) if r["model"] == held_out]
        # Each rule that on its own raises F1 on the tuning side by more than MIN_GAIN.
        chosen = [name for name in RULES if f1(tune, [name]) - f1(tune, []) > MIN_GAIN]
        chosen_sets.append(chosen)
        directions[f"tuned on {', '.join(sorted(set(models) - {held_out}))}"] = {
            "held_out": held_out,
            "rules": chosen,
            "phrases_and_embeddings_only": figures(
                [truth[i] for i in test], [base[i] for i in test]
            ),
            "with_rules": figures([truth[i] for i in test], predict(test, chosen)),
        }
    shipped = [name for name in RULES if all(name in chosen for chosen in chosen_sets)]
    everything = list(range(len(rows)))
    result = {
        "_comment": "Written by scripts/tune_refusal.py; see its docstring for the protocol.",
        "rules": shipped,
        "leave_one_model_out": directions,
        "all_dev_rows": {
            "phrases_and_embeddings_only": figures(truth, base),
            "with_rules": figures(truth, predict(everything, shipped)),
        },
    }
    text = json.dumps(result, indent=2) + "\n"
    print(text)
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} differs from this run", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
