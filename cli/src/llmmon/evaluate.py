"""``llmmon eval refusal|toxicity|relevance PATH.csv``: score a labelled CSV with a detector
exactly as the service runs it (same settings from the environment, same phrases, same
backends). Each ends with one JSON line of figures."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def read_labelled(path: Path, columns: dict[str, str]) -> list[dict[str, str]]:
    """The rows of a UTF-8 CSV that has the named columns (``{flag name: column}``), or a one-line
    error saying what is wrong and which flag fixes it."""
    from llmmon.errors import CliError, UsageError

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
    for flag, column in columns.items():
        if column not in rows[0]:
            raise UsageError(
                f"{path}: no column {column!r} (columns: {', '.join(map(str, rows[0]))}); "
                f"name it with --{flag}-column"
            )
    return rows


def auc(truth: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    positives = [s for t, s in zip(truth, scores, strict=True) if t]
    negatives = [s for t, s in zip(truth, scores, strict=True) if not t]
    if not positives or not negatives:
        return None
    ordered = sorted(negatives)
    from bisect import bisect_left, bisect_right

    wins = sum(
        bisect_left(ordered, p) + 0.5 * (bisect_right(ordered, p) - bisect_left(ordered, p))
        for p in positives
    )
    return wins / (len(positives) * len(negatives))


def evaluate_toxicity(
    path: Path,
    toxic_labels: Sequence[str],
    text_column: str = "text",
    label_column: str = "label",
    group_column: str = "group",
) -> dict[str, Any]:
    """Toxicity of every row with the service's toxicity backend: AUC of ``Toxicity`` and of each
    label the backend provides, and precision/recall/F1 of ``Toxic`` at the service's threshold;
    AUC per group when the CSV has ``group_column``."""
    from llmmon.errors import CliError
    from llmmon_comprehend.settings import ComprehendSettings, make_backends

    rows = read_labelled(path, {"text": text_column, "label": label_column})
    if not toxic_labels:
        raise CliError("--toxic-labels is empty: name the label values that mean toxic")
    wanted = {label.lower() for label in toxic_labels}
    truth = [str(r[label_column]).strip().lower() in wanted for r in rows]
    if not any(truth):
        found = sorted({str(r[label_column]) for r in rows})
        raise CliError(
            f"{path}: no row has a toxic label ({', '.join(toxic_labels)}) in column "
            f"{label_column!r}; its values are {', '.join(found[:10])}: set --toxic-labels"
        )
    settings = ComprehendSettings()
    _, backend = make_backends(settings)
    results = backend.toxicity([r[text_column] or "" for r in rows])
    scores = [r.toxicity if r is not None else 0.0 for r in results]
    predicted = [s >= settings.toxic_threshold for s in scores]
    confusion = Confusion.of(truth, predicted)
    figures: dict[str, Any] = {
        "auc": _rounded(auc(truth, scores)),
        "precision": round(confusion.precision, 4),
        "recall": round(confusion.recall, 4),
        "f1": round(confusion.f1, 4),
        "accuracy": round(confusion.accuracy, 4),
        "threshold": settings.toxic_threshold,
        "rows": len(rows),
        "unscored": sum(r is None for r in results),
    }
    for label in backend.labels:
        values = [r.labels.get(label, 0.0) if r is not None else 0.0 for r in results]
        figures[f"auc_{label}"] = _rounded(auc(truth, values))
    if group_column in rows[0]:
        groups: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            groups.setdefault(str(row[group_column]), []).append(index)
        figures["auc_per_group"] = {
            group: _rounded(auc([truth[i] for i in index], [scores[i] for i in index]))
            for group, index in sorted(groups.items())
        }
    print(f"toxicity backend: {backend.name}  labels: {', '.join(backend.labels)}")
    print(f"rows: {len(rows)}   toxic labels: {', '.join(toxic_labels)}")
    print(f"{'':>16} {'predicted toxic':>16} {'predicted other':>16}")
    print(f"{'labelled toxic':>16} {confusion.tp:>16} {confusion.fn:>16}")
    print(f"{'labelled other':>16} {confusion.fp:>16} {confusion.tn:>16}")
    print(
        f"AUC {figures['auc']}  precision {figures['precision']:.4f}  recall "
        f"{figures['recall']:.4f}  F1 {figures['f1']:.4f} at Toxicity >= {settings.toxic_threshold}"
    )
    return _last_line(figures)


def caught_at(truth: Sequence[bool], scores: Sequence[float], fpr: float) -> float | None:
    """The share of positives scored above the threshold that lets through ``fpr`` of the
    negatives (the highest negatives' quantile); None without both classes."""
    negatives = sorted((s for t, s in zip(truth, scores, strict=True) if not t), reverse=True)
    positives = [s for t, s in zip(truth, scores, strict=True) if t]
    if not negatives or not positives:
        return None
    allowed = int(fpr * len(negatives))  # negatives that may score above the threshold
    threshold = negatives[allowed] if allowed < len(negatives) else float("-inf")
    return sum(p > threshold for p in positives) / len(positives)


def evaluate_attacks(
    path: Path,
    prompt_column: str = "prompt",
    label_column: str = "label",
    source_column: str = "source",
) -> dict[str, Any]:
    """The attacks service's detector over ``prompt,label`` rows (label 1 attack, 0 benign):
    AUC, the share of attacks caught at 1% and 0.1% false positives, precision and recall at
    the service's threshold; per source when the CSV has ``source_column``. Each prompt is the
    user's own text (its tagged passages are scored as inserted content, as in the service)."""
    from llmmon.errors import CliError
    from llmmon_attacks.compute import parts
    from llmmon_attacks.detector import default_head
    from llmmon_shared.extract import Interaction

    rows = read_labelled(path, {"prompt": prompt_column, "label": label_column})
    labels = {str(r[label_column]).strip().lower() for r in rows}
    if not labels <= {"0", "1", "true", "false"}:
        raise CliError(f"{path}: column {label_column!r} must hold 1 (attack) or 0 (benign)")
    truth = [str(r[label_column]).strip().lower() in ("1", "true") for r in rows]
    head = default_head()
    decisions = []
    for at in range(0, len(rows), 64):
        batch = rows[at : at + 64]
        decisions += head.decide(
            [
                parts(Interaction("eval", "eval", "eval", "eval", r[prompt_column] or "", ""))
                for r in batch
            ]
        )
    scores = [d.score for d in decisions]
    confusion = Confusion.of(truth, [d.attack for d in decisions])

    def figures_of(index: Sequence[int]) -> dict[str, Any]:
        t, s = [truth[i] for i in index], [scores[i] for i in index]
        return {
            "rows": len(index),
            "auc": _rounded(auc(t, s)),
            "caught_at_1pct_fp": _rounded(caught_at(t, s, 0.01)),
            "caught_at_0.1pct_fp": _rounded(caught_at(t, s, 0.001)),
        }

    figures = figures_of(range(len(rows)))
    figures.update(
        precision=round(confusion.precision, 4),
        recall=round(confusion.recall, 4),
        false_positive_rate=round(confusion.fp / max(1, confusion.fp + confusion.tn), 4),
        threshold=head.threshold,
    )
    if source_column in rows[0]:
        sources: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            sources.setdefault(str(row[source_column]), []).append(index)
        figures["per_source"] = {name: figures_of(i) for name, i in sorted(sources.items())}
    print(f"attack detector: threshold {head.threshold}; rows {len(rows)} ({sum(truth)} attacks)")
    print(
        f"AUC {figures['auc']}  caught at 1% FP {figures['caught_at_1pct_fp']}  at 0.1% FP "
        f"{figures['caught_at_0.1pct_fp']}  precision {figures['precision']}  recall "
        f"{figures['recall']}  false positives {figures['false_positive_rate']}"
    )
    return _last_line(figures)


PII_TYPES = {
    "email": ("EMAIL_ADDRESS", "EMAIL"),
    "phone": ("PHONE_NUMBER", "PHONE"),
    "card": ("CREDIT_CARD", "CREDIT_CARD_NUMBER"),
    "iban": ("IBAN_CODE", "IBAN"),
    "ssn": ("US_SSN", "SSN"),
    "ip": ("IP_ADDRESS", "IP"),
    "aws_access_key": ("AWS_ACCESS_KEY",),
    "aws_secret_key": ("AWS_SECRET_KEY",),
    "private_key": ("PRIVATE_KEY",),
    "jwt": ("JWT",),
    "api_token": ("API_TOKEN", "API_KEY"),
    "url_password": ("URL_PASSWORD", "PASSWORD"),
}
"""The privacy service's types and the entity names span-labelled sets use for them (Presidio's
first). Labelled spans of other types (names, addresses) are not scored: the local backend does
not claim them."""


def evaluate_pii(path: Path) -> dict[str, Any]:
    """The privacy service's recognisers over span-labelled text (``[{"full_text", "spans":
    [{"entity_type", "start_position", "end_position"}]}]``): per type, a finding is a true
    positive when it overlaps a labelled span of that type, a false positive otherwise; a
    labelled span no finding of its type overlaps is a miss. Precision, recall and F1 per type;
    one JSON line at the end. The texts are never printed."""
    from llmmon.errors import CliError
    from llmmon_privacy.detectors import find

    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"{path}: not a JSON list of labelled texts ({exc})") from None
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("full_text"), str) for i in items
    ):
        raise CliError(f'{path}: expected a list of {{"full_text": ..., "spans": [...]}}')
    ours = {name: kind for kind, names in PII_TYPES.items() for name in names}
    counts = {kind: {"tp": 0, "fp": 0, "fn": 0} for kind in PII_TYPES}
    for item in items:
        spans = [
            (ours[s["entity_type"].upper()], int(s["start_position"]), int(s["end_position"]))
            for s in item.get("spans") or []
            if str(s.get("entity_type", "")).upper() in ours
        ]
        matched: set[int] = set()
        for finding in find(item["full_text"]):
            hit = next(
                (
                    i
                    for i, (kind, start, end) in enumerate(spans)
                    if kind == finding.kind and start < finding.end and finding.start < end
                ),
                None,
            )
            if hit is None:
                counts[finding.kind]["fp"] += 1
            else:
                counts[finding.kind]["tp"] += 1
                matched.add(hit)
        for index, (kind, _, _) in enumerate(spans):
            if index not in matched:
                counts[kind]["fn"] += 1
    per_type = {}
    for kind, c in counts.items():
        if not any(c.values()):
            continue
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision is not None and recall is not None and precision + recall
            else None
        )
        per_type[kind] = {
            **c,
            "precision": _rounded(precision),
            "recall": _rounded(recall),
            "f1": _rounded(f1),
        }
    print(f"{len(items)} texts; per type (true positives / false positives / misses):")
    for kind, f in per_type.items():
        print(
            f"  {kind:<15} precision {f['precision']}  recall {f['recall']}  F1 {f['f1']}  "
            f"({f['tp']} / {f['fp']} / {f['fn']})"
        )
    return _last_line({"texts": len(items), "per_type": per_type})


def _last_line(figures: dict[str, Any]) -> dict[str, Any]:
    """Every evaluation ends with its figures as one JSON line (for scripts)."""
    print(json.dumps(figures))
    sys.stdout.flush()
    return figures


def _rounded(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


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

    rows = read_labelled(path, {"completion": completion_column, "label": label_column})
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
    return _last_line(figures)


def evaluate_relevance(
    path: Path,
    prompt_column: str = "prompt",
    response_column: str = "response",
    label_column: str = "label",
    relevant_labels: Sequence[str] = ("1", "true", "yes", "relevant"),
) -> dict[str, Any]:
    """``Relevance`` and ``PromptResponseSimilarity`` of every row, as the similarity service
    computes them. Pointwise files (``prompt,response,label``): AUC of each score for the
    relevant label. Pairwise files (``prompt,response_1,response_2,label``, the label naming the
    better response, 1 or 2): how often each score prefers it (ties count half)."""
    from llmmon.errors import CliError
    from llmmon_shared.extract import Interaction
    from llmmon_similarity.compute import METRIC, RELEVANCE, SimilarityScorer
    from llmmon_similarity.settings import SimilaritySettings, make_embedder, make_relevance

    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    pairwise = f"{response_column}_1" in header and f"{response_column}_2" in header
    responses = [f"{response_column}_1", f"{response_column}_2"] if pairwise else [response_column]
    # A pairwise header has both response columns already.
    columns = {"prompt": prompt_column, "label": label_column, "response": responses[0]}
    rows = read_labelled(path, columns)
    settings = SimilaritySettings(relevance=True)
    relevance = make_relevance(settings)
    # Prompts taken whole: an evaluation file holds no traffic to learn shared lines from.
    scorer = SimilarityScorer(make_embedder(settings, relevance), relevance, shared_lines=None)

    def scores(names: Sequence[str]) -> list[tuple[list[float], list[float]]]:
        """(Relevance, similarity) of each response column, all in one scorer call, so a
        prompt shared by the columns is embedded once."""
        items = [
            Interaction(str(i), "", "InvokeModel", "", r[prompt_column] or "", r[name] or "")
            for name in names
            for i, r in enumerate(rows)
        ]
        out = scorer(items)
        return [
            (
                [s.get(RELEVANCE, 0.0) for s in out[k * len(rows) : (k + 1) * len(rows)]],
                [s.get(METRIC, 0.0) for s in out[k * len(rows) : (k + 1) * len(rows)]],
            )
            for k in range(len(names))
        ]

    print(
        f"relevance: MiniLM ({relevance.variant if relevance else '-'}); similarity backend "
        f"{settings.embedding_backend}; {'pairwise' if pairwise else 'pointwise'}, "
        f"{len(rows)} rows"
    )
    figures: dict[str, Any] = {"rows": len(rows)}
    if pairwise:
        labels = [str(r[label_column]).strip() for r in rows]
        bad = sorted({label for label in labels if label not in ("1", "2")})
        if bad:
            raise CliError(
                f"{path}: pairwise labels must be 1 or 2 (the better response); found "
                f"{', '.join(bad[:5])}"
            )
        (first_rel, first_sim), (second_rel, second_sim) = scores(responses)

        def accuracy(a: list[float], b: list[float]) -> float:
            wins = 0.0
            for label, x, y in zip(labels, a, b, strict=True):
                better, worse = (x, y) if label == "1" else (y, x)
                wins += 1.0 if better > worse else 0.5 if better == worse else 0.0
            return wins / len(labels)

        figures["relevance_accuracy"] = round(accuracy(first_rel, second_rel), 4)
        figures["similarity_accuracy"] = round(accuracy(first_sim, second_sim), 4)
        print(
            f"pairwise accuracy: Relevance {figures['relevance_accuracy']:.4f}  "
            f"PromptResponseSimilarity {figures['similarity_accuracy']:.4f}"
        )
    else:
        wanted = {label.lower() for label in relevant_labels}
        truth = [str(r[label_column]).strip().lower() in wanted for r in rows]
        if all(truth) or not any(truth):
            raise CliError(
                f"{path}: pointwise files need both relevant ({', '.join(relevant_labels)}) "
                f"and other labels in column {label_column!r}"
            )
        ((rel, sim),) = scores(responses)
        figures["relevance_auc"] = _rounded(auc(truth, rel))
        figures["similarity_auc"] = _rounded(auc(truth, sim))
        figures["relevant"] = sum(truth)
        print(
            f"AUC (relevant vs other): Relevance {figures['relevance_auc']:.4f}  "
            f"PromptResponseSimilarity {figures['similarity_auc']:.4f}"
        )
    return _last_line(figures)
