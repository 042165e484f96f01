"""``llmmon eval refusal PATH.csv``: score a labelled CSV with the refusal detector exactly as the
service runs it (same settings from the environment, same phrases, same backend)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REFUSAL_LABELS = ("2_full_refusal", "3_partial_refusal")


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.fn + self.tn
        return (self.tp + self.tn) / total if total else 0.0

    @classmethod
    def of(cls, truth: Sequence[bool], predicted: Sequence[bool]) -> Confusion:
        pairs = list(zip(truth, predicted, strict=True))
        return cls(
            tp=sum(t and p for t, p in pairs),
            fp=sum(p and not t for t, p in pairs),
            fn=sum(t and not p for t, p in pairs),
            tn=sum(not t and not p for t, p in pairs),
        )


def evaluate_refusal(
    path: Path,
    refusal_labels: Sequence[str] = DEFAULT_REFUSAL_LABELS,
    completion_column: str = "completion",
    label_column: str = "label",
    model_id: str | None = None,
    explain: bool = False,
    prompt_column: str = "prompt",
) -> dict[str, float | int]:
    from llmmon.errors import CliError
    from llmmon_refusal.settings import RefusalSettings, make_detector

    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except UnicodeDecodeError as exc:
        raise CliError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the CSV as UTF-8"
        ) from None
    except csv.Error as exc:
        raise CliError(f"{path}: not a CSV file ({exc})") from None
    if not rows:
        raise CliError(f"{path}: no data rows under the header")
    for column in (completion_column, label_column):
        if column not in rows[0]:
            raise CliError(
                f"{path}: no column {column!r} (columns: {', '.join(map(str, rows[0]))}); "
                f"name it with --{'completion' if column == completion_column else 'label'}-column"
            )
    if not refusal_labels:
        raise CliError("--refusal-labels is empty: name the label values that mean refusal")
    found = sorted({str(r[label_column]) for r in rows})
    if not set(refusal_labels) & set(found):
        raise CliError(
            f"{path}: no row has a refusal label ({', '.join(refusal_labels)}) in column "
            f"{label_column!r}; its values are {', '.join(found[:10])}: set --refusal-labels"
        )
    settings = RefusalSettings()
    detector = make_detector(settings)
    family = detector.phrases.family_of(model_id) if model_id else None
    prompts = [r[prompt_column] or "" for r in rows] if prompt_column in rows[0] else None
    decisions = detector.decide(
        [r[completion_column] or "" for r in rows], [family] * len(rows), prompts
    )
    truth = [r[label_column] in refusal_labels for r in rows]
    predicted = [d.refusal for d in decisions]
    confusion = Confusion.of(truth, predicted)
    print(
        f"refusal detector: backend={settings.embedding_backend} "
        f"fuzzy>={settings.refusal_fuzzy_threshold} "
        f"similarity>={settings.refusal_similarity_threshold} margin={settings.refusal_margin} "
        f"implicit rules: {', '.join(detector.implicit_rules) or 'off'}"
    )
    if prompts is None and detector.implicit_rules:
        print(f"no column {prompt_column!r}: rules that compare answer and prompt stay off")
    print(f"rows: {len(rows)}   refusal labels: {', '.join(refusal_labels)}")
    print()
    print(f"{'':>18} {'predicted refusal':>18} {'predicted other':>16}")
    print(f"{'labelled refusal':>18} {confusion.tp:>18} {confusion.fn:>16}")
    print(f"{'labelled other':>18} {confusion.fp:>18} {confusion.tn:>16}")
    print()
    rules: dict[str, int] = {}
    for decision in decisions:
        if decision.rule:
            rules[decision.rule] = rules.get(decision.rule, 0) + 1
    print("refusals by rule: " + ", ".join(f"{k}={v}" for k, v in sorted(rules.items())))
    if explain:
        for row, decision, label in zip(rows, decisions, truth, strict=True):
            if decision.refusal != label:
                kind = "missed" if label else "false alarm"
                print(
                    f"{kind:>11} row {row.get('id', '?')}: fuzzy {decision.fuzzy:.2f} "
                    f"({decision.fuzzy_reference}) similarity {decision.similarity:.2f} "
                    f"({decision.similarity_reference}) compliance "
                    f"{decision.compliance_similarity:.2f} rule {decision.rule or '-'} "
                    f"cues {','.join(decision.cues) or '-'}"
                )
    figures: dict[str, float | int] = {
        "precision": round(confusion.precision, 4),
        "recall": round(confusion.recall, 4),
        "f1": round(confusion.f1, 4),
        "accuracy": round(confusion.accuracy, 4),
        "rows": len(rows),
    }
    print(
        f"precision {figures['precision']:.4f}  recall {figures['recall']:.4f}  "
        f"F1 {figures['f1']:.4f}  accuracy {figures['accuracy']:.4f}"
    )
    print(json.dumps(figures))
    sys.stdout.flush()
    return figures
