"""Train the local hate-speech model and write it with its leave-groups-out figures.

The model is the mean of two members' probabilities (``HateSpeechHead`` in the comprehend
service):

* ``fine-tuned``: all-MiniLM-L6-v2 fine-tuned for implicit hate, with a logistic head on its
  L2-normalised mean-pooled embedding (``scripts/finetune_hate.py`` trains it in a torch
  environment this script sets up under ``.bench/train``; the services run the exported int8
  ONNX graph on onnxruntime, as they run the generic MiniLM);
* ``generic``: a logistic regression (L2 1e-4) on the generic MiniLM embedding.

Both are trained on the same rows:

* positives: the ``hate`` statements of ToxiGen dev (tests/data/toxigen/dev.csv: human-written,
  mostly implicit hate about seven groups);
* negatives: its ``neutral`` statements about the same groups, and the completions of XSTest dev
  (tests/data/xstest/dev.csv), ordinary model answers, so that the model does not read every
  answer that mentions a group or a risky topic as hate.

Protocol, **leave-groups-out**: for each of the seven groups a model is trained without that
group's statements, exported and quantised exactly as the shipped one, and scored on them through
the comprehend service's own code (``HateSpeechHead``). Reported, for the mean and for each
member: the AUC over all held-out scores (pooled), the mean of the per-group AUCs, recall and
the false-positive rate at the 0.5 threshold, and the false-positive rate on ordinary answers of
the model it was not trained with (each fold trains with one XSTest model's answers, alternating,
and scores the other's). The cascade's gate table is computed from the same held-out scores.
Then the shipped model is trained on everything.

Run: ``uv run python scripts/train_toxicity.py`` (about 40 minutes on 2 cores: eight trainings
of about 4 minutes; the first run also installs torch on CPU, transformers and onnx).
``--keep-model`` keeps the shipped fine-tuned encoder and recomputes the rest (the figures need
the seven folds all the same).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[1]
TOXIGEN = ROOT / "tests" / "data" / "toxigen" / "dev.csv"
XSTEST = ROOT / "tests" / "data" / "xstest" / "dev.csv"
OUT = ROOT / "services" / "comprehend" / "src" / "llmmon_comprehend" / "data"
FINETUNE = ROOT / "scripts" / "finetune_hate.py"
TRAIN_ENV = ROOT / ".bench" / "train"
TRAIN_PACKAGES = (
    "torch==2.13.0",
    "transformers==5.24.0",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "numpy<2.3",
)
ENCODER = "hate-encoder-int8.onnx"
MODEL_ID = "llmmon-hate-minilm-l6-int8"
GENERIC_L2 = 1e-4  # chosen by the pooled held-out AUC over (1e-4, 3e-4, 1e-3), the same protocol
ANSWER_CHARS = 1000  # what the backend hands the model: the opening of a response (HATE_CHARS)
HATE_GATES = (0.05, 0.1, 0.2)
PROFANITY_GATES = (0.5, 0.7)


def auc(truth: np.ndarray, scores: np.ndarray) -> float:
    from llmmon.evaluate import auc as area

    value = area(list(truth == 1), list(scores))
    assert value is not None, "both classes are in every group"
    return value


def fit(x: np.ndarray, y: np.ndarray, l2: float = GENERIC_L2) -> np.ndarray:
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


def generic_member(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from llmmon_shared.embeddings import MINILM

    w = fit(x, y)
    return {
        "name": "generic",
        "encoder": None,
        "embedder": MINILM,  # any variant: heads apply to all of them
        "training": {"l2": GENERIC_L2},
        "weights": [round(float(v), 6) for v in w[:-1]],
        "bias": round(float(w[-1]), 6),
    }


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def ensure_train_env() -> Path:
    python = TRAIN_ENV / "bin" / "python"
    if not python.exists():
        print(f"installing {', '.join(TRAIN_PACKAGES)} into {TRAIN_ENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TRAIN_ENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *TRAIN_PACKAGES], check=True)
    return python


def minilm_folder() -> Path:
    from llmmon_shared.embeddings import minilm_tokenizer

    return minilm_tokenizer().parent


GROUP_WORDS = {
    "bisexual": ["bisexual", "bisexuals", "bi", "bis", "bi's", "bisexuality"],
    "chinese": ["chinese", "china"],
    "immigrant": ["immigrant", "immigrants", "immigration", "migrant", "migrants", "refugees"],
    "jewish": ["jewish", "jew", "jews", "judaism"],
    "lgbtq": ["gay", "gays", "lesbian", "lesbians", "lgbt", "lgbtq", "queer", "homosexual",
              "homosexuals", "transgender", "trans"],
    "mental_disability": ["mentally ill", "mental illness", "mentally disabled",
                          "mental disability", "mental disabilities"],
    "mexican": ["mexican", "mexicans", "mexico"],
}  # fmt: skip
"""Words that name each ToxiGen dev group, for ``--swap-groups`` (a fold never sees its held-out
group's words)."""


def train(
    python: Path,
    texts: Sequence[str],
    labels: Sequence[float],
    answers: Sequence[str],
    out: Path,
    groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Fine-tune in the torch environment; returns the head (``head.json``) it wrote. With
    ``groups``, statements name other training groups in half of each epoch (group swaps)."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "train.json"
    document: dict[str, Any] = {
        "texts": list(texts),
        "labels": list(labels),
        "answers": list(answers),
    }
    if groups is not None:
        document["groups"] = list(groups)
        document["lexicon"] = {g: GROUP_WORDS[g] for g in sorted(set(groups)) if g in GROUP_WORDS}
    data.write_text(json.dumps(document))
    subprocess.run(
        [str(python), str(FINETUNE), "--train", str(data), "--model", str(minilm_folder()),
         "--out", str(out)],
        check=True,
    )  # fmt: skip
    data.unlink()
    head: dict[str, Any] = json.loads((out / "head.json").read_text())
    (out / "head.json").unlink()
    return head


def fine_tuned_member(head: dict[str, Any]) -> dict[str, Any]:
    return {"name": "fine-tuned", "encoder": ENCODER, "embedder": MODEL_ID, **head}


def write_head(folder: Path, members: list[dict[str, Any]], **extra: Any) -> None:
    document = {
        "_comment": "Written by scripts/train_toxicity.py; see its docstring for the protocol.",
        "threshold": 0.5,
        "combine": "mean of the members' probabilities",
        **extra,
        "members": members,
    }
    (folder / "hate-head.json").write_text(json.dumps(document, indent=1) + "\n")


def scorer(folder: Path) -> Any:
    """The comprehend service's own scoring of a trained model in ``folder``: a function of texts
    to the mean (its HATE_SPEECH score) and each member's scores."""
    from llmmon_comprehend.backends import HateSpeechHead

    head = HateSpeechHead(data_dir=folder)

    def score(texts: Sequence[str]) -> dict[str, np.ndarray]:
        by_member = head.member_scores(list(texts))
        return {"mean": np.mean(list(by_member.values()), axis=0), **by_member}

    return score


def figures_of(
    y: np.ndarray, groups: np.ndarray, scores: np.ndarray, answer_flags: Sequence[float]
) -> dict[str, Any]:
    per_group = {g: round(auc(y[groups == g], scores[groups == g]), 4) for g in sorted(set(groups))}
    return {
        "auc_pooled": round(auc(y, scores), 4),
        "auc_mean_per_group": round(float(np.mean(list(per_group.values()))), 4),
        "auc_per_group": per_group,
        "recall_at_0.5": round(float((scores[y == 1] >= 0.5).mean()), 4),
        "false_positive_rate_at_0.5_statements": round(float((scores[y == 0] >= 0.5).mean()), 4),
        "false_positive_rate_at_0.5_other_models_answers": round(float(np.mean(answer_flags)), 4),
    }


def leave_groups_out(
    python: Path,
    statements: list[dict[str, str]],
    answers: list[dict[str, str]],
    generic: tuple[np.ndarray, np.ndarray],
    work: Path,
    swap_groups: bool = False,
    dump: Path | None = None,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    texts = [r["text"] for r in statements]
    y = np.array([r["label"] == "hate" for r in statements], dtype=float)
    groups = np.array([r["group"] for r in statements])
    models = np.array([r["model"] for r in answers])
    answer_texts = np.array([r["completion"].strip()[:ANSWER_CHARS] for r in answers])
    statement_x, answer_x = generic
    names = sorted(set(models))
    kinds = ("mean", "fine-tuned", "generic")
    scores = {kind: np.zeros(len(y)) for kind in kinds}
    flags: dict[str, list[float]] = {kind: [] for kind in kinds}
    answer_members = {kind: np.zeros(len(answers)) for kind in kinds}
    for fold, group in enumerate(sorted(set(groups))):
        held = groups == group
        trained_with = models == names[fold % len(names)]
        folder = work / group
        print(f"fold {fold + 1}/{len(set(groups))}: {group} held out, answers of "
              f"{names[fold % len(names)]}", flush=True)  # fmt: skip
        head = train(
            python,
            [t for t, h in zip(texts, held, strict=True) if not h],
            list(y[~held]),
            list(answer_texts[trained_with]),
            folder,
            list(groups[~held]) if swap_groups else None,
        )
        generic_head = generic_member(
            np.vstack([statement_x[~held], answer_x[trained_with]]),
            np.concatenate([y[~held], np.zeros(int(trained_with.sum()))]),
        )
        write_head(folder, [fine_tuned_member(head), generic_head])
        score = scorer(folder)
        held_scores = score([t for t, h in zip(texts, held, strict=True) if h])
        other_answers = score(list(answer_texts[~trained_with]))
        for kind in kinds:
            scores[kind][held] = held_scores[kind]
            flags[kind].append(float((other_answers[kind] >= 0.5).mean()))
        for kind in kinds:
            answer_members[kind][~trained_with] = np.maximum(
                answer_members[kind][~trained_with], other_answers[kind]
            )
        print("  AUC " + ", ".join(
            f"{kind} {auc(y[held], held_scores[kind]):.4f}" for kind in kinds
        ), flush=True)  # fmt: skip
        shutil.rmtree(folder)
    if dump is not None:  # every held-out score, for analyses of the combination and the gate
        np.savez(
            dump, y=y, groups=groups, models=models,
            **{f"held_{k}": v for k, v in scores.items()},
            **{f"answers_{k}": v for k, v in answer_members.items()},
        )  # fmt: skip
    figures = figures_of(y, groups, scores["mean"], flags["mean"])
    figures["members"] = {
        kind: figures_of(y, groups, scores[kind], flags[kind]) for kind in kinds[1:]
    }
    return figures, scores["mean"], answer_members["mean"]


def gate_table(
    statements: list[dict[str, str]],
    answers: list[dict[str, str]],
    hate_held: np.ndarray,
    hate_answers: np.ndarray,
) -> list[dict[str, float]]:
    """The cascade's gate: a response goes to Comprehend when a local label reaches its gate
    (HATE_SPEECH: the held-out score; PROFANITY: the profanity model). Recall on the hate
    statements and the share of ordinary answers sent, per pair of gates."""
    from llmmon_comprehend.backends import ProfanityToxicity

    y = np.array([r["label"] == "hate" for r in statements])
    profanity = ProfanityToxicity()
    profane = np.array(
        [r.toxicity if r else 0.0 for r in profanity.toxicity([r["text"] for r in statements])]
    )
    profane_answers = np.array(
        [r.toxicity if r else 0.0 for r in profanity.toxicity([r["completion"] for r in answers])]
    )
    table = []
    for hate_gate in HATE_GATES:
        for profanity_gate in PROFANITY_GATES:
            sent = (hate_held >= hate_gate) | (profane >= profanity_gate)
            answers_sent = (hate_answers >= hate_gate) | (profane_answers >= profanity_gate)
            table.append(
                {
                    "HATE_SPEECH": hate_gate,
                    "PROFANITY": profanity_gate,
                    "recall_on_hate_statements": round(float(sent[y].mean()), 4),
                    "neutral_statements_sent": round(float(sent[~y].mean()), 4),
                    "answers_sent": round(float(answers_sent.mean()), 4),
                }
            )
    return table


def main(argv: list[str] | None = None) -> int:
    from llmmon_shared.embeddings import LocalMiniLMEmbedder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=OUT, help="where to write the model (default: the package)"
    )
    parser.add_argument(
        "--keep-model",
        action="store_true",
        help="keep the fine-tuned encoder in --out; recompute the figures and the generic head",
    )
    parser.add_argument(
        "--swap-groups",
        action="store_true",
        help="fine-tune with group swaps (GROUP_WORDS): statements name other training groups",
    )
    parser.add_argument(
        "--dump", type=Path, help="write every held-out score to this .npz (for analyses)"
    )
    parser.add_argument(
        "--folds-only",
        action="store_true",
        help="the leave-groups-out figures only: write no model (with --dump, for analyses)",
    )
    args = parser.parse_args(argv)
    python = ensure_train_env()
    statements = read(TOXIGEN)
    answers = read(XSTEST)
    texts = [r["text"] for r in statements]
    labels = [float(r["label"] == "hate") for r in statements]
    openings = [r["completion"].strip()[:ANSWER_CHARS] for r in answers]
    embedder = LocalMiniLMEmbedder()
    generic = (embedder.embed(texts), embedder.embed(openings))
    with tempfile.TemporaryDirectory(prefix="llmmon-hate-") as tmp:
        work = Path(tmp)
        figures, held, held_answers = leave_groups_out(
            python, statements, answers, generic, work, args.swap_groups, args.dump
        )
        gates = gate_table(statements, answers, held, held_answers)
        if args.folds_only:
            print(json.dumps({"leave_groups_out": figures, "cascade_gate_held_out": gates}))
            return 0
        if args.keep_model:
            shipped = json.loads((args.out / "hate-head.json").read_text())
            fine_tuned = next(m for m in shipped["members"] if m["name"] == "fine-tuned")
        else:
            print("final model: every statement and every answer", flush=True)
            head = train(
                python, texts, labels, openings, work / "final",
                [r["group"] for r in statements] if args.swap_groups else None,
            )  # fmt: skip
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / "final" / ENCODER, args.out / ENCODER)
            fine_tuned = fine_tuned_member(head)
    everything = generic_member(
        np.vstack(generic), np.concatenate([labels, np.zeros(len(answers))])
    )
    write_head(
        args.out,
        [fine_tuned, everything],
        leave_groups_out=figures,
        cascade_gate_held_out=gates,
        trained_on={"statements": len(statements), "answers": len(answers)},
    )
    print(json.dumps({"leave_groups_out": figures, "cascade_gate_held_out": gates}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
