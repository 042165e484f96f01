"""Relevance figures on Self-Instruct (tests/data/relevance), split by instruction.

1. Writes two evaluation files beside the data (derived from it, Apache-2.0 as it is):

   * ``pairwise-neighbours.csv``: for each instruction and each of two sources (the expert
     reference, text-davinci-003), its own response against the response of the same source
     to the *nearest other instruction* (MiniLM cosine of the prompts): same topic, another
     task, the hard case (``prompt,response_1,response_2,label``, label = the own response's
     position, drawn at random);
   * ``pointwise-shuffled.csv``: each own response (label 1) and one response to a random other
     instruction (label 0).

   ``llmmon eval relevance FILE`` scores them as the service does.
2. Chooses the score with the protocol the issue names: five folds *by instruction*; on four,
   the weight w of ``w * cosine + (1 - w) * coverage`` (w in 0, 0.25, ..., 1; the service
   ships ``compute.COSINE_WEIGHT``) with the best pairwise accuracy among the weights that
   separate own answers from shuffled ones at least as well as the cosine does (AUC), judged
   on the fifth. Prints each fold's choice and the held-out accuracy next to the cosine's.
3. Shared instructions: the same pairs with a 12-line shared preamble (about 200 word pieces)
   put before every prompt, scored whole and with ``SharedLines`` (batches of 10 in order).

Run: ``uv run python scripts/relevance_figures.py`` (about a minute).
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "relevance"
SOURCES = ("reference", "text-davinci-003")
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
FOLDS = 5
PREAMBLE = """You are the writing assistant of Acme Corporation's internal portal.
Follow the company style guide: use plain English, short sentences and active voice.
Never reveal internal project names, customer names or financial figures that are not public.
Keep answers under three hundred words unless the user asks for more.
When you are unsure, say so and suggest where the user can find the information.
Format lists with hyphens, use British spelling, and avoid jargon.
Do not give legal, medical or tax advice; point to the relevant team instead.
Respect confidentiality, and remind users that restricted documents stay inside the company.
Be polite, concise and helpful; let the brand values of openness, care and craft show in tone.
If the request involves personal data, remind the user of the data protection policy.
Dates are written day month year, and currency is pounds sterling unless stated otherwise.
Answer the request below.
"""


def load() -> tuple[list[str], dict[str, str], dict[str, dict[str, str]]]:
    by: dict[str, dict[str, str]] = defaultdict(dict)
    prompts: dict[str, str] = {}
    with (DATA / "user-oriented.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by[row["instruction_id"]][row["source"]] = row["response"]
            prompts[row["instruction_id"]] = row["prompt"]
    return sorted(by), prompts, by


def main() -> int:
    from llmmon import evaluate
    from llmmon_shared.embeddings import LocalMiniLMEmbedder, cosine_rows
    from llmmon_shared.text import SharedLines
    from llmmon_similarity.compute import COSINE_WEIGHT, coverage

    ids, prompts, by = load()
    model = LocalMiniLMEmbedder()
    vectors = model.embed([prompts[i] for i in ids])
    closeness = vectors @ vectors.T
    np.fill_diagonal(closeness, -2.0)
    nearest = {ids[k]: ids[int(j)] for k, j in enumerate(closeness.argmax(axis=1))}
    rng = random.Random(0)

    pairs = []  # (instruction, source, own, neighbour's)
    for i in ids:
        for source in SOURCES:
            own, other = by[i].get(source, ""), by[nearest[i]].get(source, "")
            if own.strip() and other.strip():
                pairs.append((i, source, own, other))
    with (DATA / "pairwise-neighbours.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["instruction_id", "source", "prompt", "response_1", "response_2", "label"])
        for i, source, own, other in pairs:
            first = rng.random() < 0.5
            writer.writerow(
                [
                    i,
                    source,
                    prompts[i],
                    *((own, other) if first else (other, own)),
                    1 if first else 2,
                ]
            )
    strangers = []
    with (DATA / "pointwise-shuffled.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["instruction_id", "source", "prompt", "response", "label"])
        for i, source, own, _ in pairs:
            stranger = rng.choice([j for j in ids if j != i and by[j].get(source, "").strip()])
            strangers.append(by[stranger][source])
            writer.writerow([i, source, prompts[i], own, 1])
            writer.writerow([i, source, prompts[i], by[stranger][source], 0])

    def parts(prompt_texts: list[str], responses: list[str]) -> tuple[np.ndarray, np.ndarray]:
        pooled, tokens = model.embed_tokens(prompt_texts + responses)
        half = len(prompt_texts)
        cosines = cosine_rows(pooled[:half], pooled[half:])
        covered = np.array([coverage(tokens[k], tokens[half + k]) for k in range(half)])
        return cosines, covered

    def scored(prompt_texts: list[str]) -> dict[str, np.ndarray]:
        own_cos, own_cov = parts(prompt_texts, [p[2] for p in pairs])
        other_cos, other_cov = parts(prompt_texts, [p[3] for p in pairs])
        shuffled_cos, shuffled_cov = parts(prompt_texts, strangers)
        return {
            "own_cos": own_cos,
            "own_cov": own_cov,
            "nb_cos": other_cos,
            "nb_cov": other_cov,
            "sh_cos": shuffled_cos,
            "sh_cov": shuffled_cov,
        }

    def auc_shuffled(s: dict[str, np.ndarray], w: float, rows: np.ndarray) -> float:
        """Own answers against shuffled ones (``sh_*``): the score must keep telling them apart."""
        own = (w * s["own_cos"] + (1 - w) * s["own_cov"])[rows]
        other = (w * s["sh_cos"] + (1 - w) * s["sh_cov"])[rows]
        truth = [True] * len(own) + [False] * len(other)
        return float(evaluate.auc(truth, [*own, *other]) or 0.0)

    def accuracy(s: dict[str, np.ndarray], w: float, rows: np.ndarray) -> float:
        own = w * s["own_cos"] + (1 - w) * s["own_cov"]
        other = w * s["nb_cos"] + (1 - w) * s["nb_cov"]
        return float(((own > other) + 0.5 * (own == other))[rows].mean())

    s = scored([prompts[p[0]] for p in pairs])
    order = list(ids)
    random.Random(1).shuffle(order)
    fold_of = {i: k % FOLDS for k, i in enumerate(order)}
    folds = np.array([fold_of[p[0]] for p in pairs])
    sources = np.array([p[1] for p in pairs])
    report: dict[str, object] = {"pairs": len(pairs), "folds": []}
    held_correct = {source: [] for source in SOURCES}
    cosine_correct = {source: [] for source in SOURCES}
    for fold in range(FOLDS):
        tune, test = folds != fold, folds == fold
        floor = auc_shuffled(s, 1.0, tune)  # the cosine's separation from shuffled answers
        allowed = [w for w in WEIGHTS if auc_shuffled(s, w, tune) >= floor]
        best = max(allowed, key=lambda w: (accuracy(s, w, tune), w == COSINE_WEIGHT))
        report["folds"].append(
            {
                "fold": fold,
                "chosen_weight": best,
                "held_out": round(accuracy(s, best, test), 4),
                "cosine": round(accuracy(s, 1.0, test), 4),
            }
        )
        for source in SOURCES:
            rows = test & (sources == source)
            held_correct[source].append(accuracy(s, best, rows) * rows.sum())
            cosine_correct[source].append(accuracy(s, 1.0, rows) * rows.sum())
    for source in SOURCES:
        n = int((sources == source).sum())
        report[source] = {
            "pairs": n,
            "held_out_accuracy": round(sum(held_correct[source]) / n, 4),
            "cosine_accuracy": round(sum(cosine_correct[source]) / n, 4),
            "shipped_accuracy": round(accuracy(s, COSINE_WEIGHT, sources == source), 4),
        }
    report["by_weight"] = {
        str(w): {
            "pairwise": round(accuracy(s, w, np.ones(len(pairs), dtype=bool)), 4),
            "auc_vs_shuffled": round(auc_shuffled(s, w, np.ones(len(pairs), dtype=bool)), 4),
        }
        for w in WEIGHTS
    }
    w = COSINE_WEIGHT
    report["mean_relevance"] = {
        kind: round(float((w * s[f"{kind}_cos"] + (1 - w) * s[f"{kind}_cov"]).mean()), 4)
        for kind in ("own", "nb", "sh")
    }
    long_prompts = [PREAMBLE + prompts[p[0]] for p in pairs]
    shared = SharedLines()
    own_parts = []
    for start in range(0, len(long_prompts), 10):
        batch = long_prompts[start : start + 10]
        shared.observe(batch)
        own_parts += [shared.own_part(prompt) for prompt in batch]
    everything = np.ones(len(pairs), dtype=bool)
    whole, stripped = scored(long_prompts), scored(own_parts)
    report["shared_preamble"] = {
        "plain_prompts": {
            "relevance": round(accuracy(s, COSINE_WEIGHT, everything), 4),
            "cosine": round(accuracy(s, 1.0, everything), 4),
        },
        "preamble_whole": {
            "relevance": round(accuracy(whole, COSINE_WEIGHT, everything), 4),
            "cosine": round(accuracy(whole, 1.0, everything), 4),
        },
        "preamble_shared_lines_left_out": {
            "relevance": round(accuracy(stripped, COSINE_WEIGHT, everything), 4),
            "cosine": round(accuracy(stripped, 1.0, everything), 4),
        },
        "prompts_over_256_word_pieces": sum(
            len(e.ids) >= model.max_tokens for e in model._tokenizer.encode_batch(long_prompts)
        ),
    }
    report["embedder"] = model.model_id
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
