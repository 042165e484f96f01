"""Train the local prompt-attack head and write it with its leave-families-out figures.

Model (``llmmon_attacks.detector``): a logistic regression (L2) over the shipped MiniLM's
embedding of a window of the prompt and the structural cues of the whole part, read as the
service reads it (windows of 1,000 characters; a text's score is its best window's).

Data (``../shared/data``, read only here):

* attacks: the in-the-wild jailbreak prompts (de-duplicated) and CyberSecEval's prompt-injection
  cases (``user_input``; the indirect ones carry the injection inside a document);
* benign, for training: GPTeacher instructions (their input appended, as an application sends it)
  and T0 prompts (many with long passages: benign inserted content);
* benign, held out (never trained on): the relevance set's instructions (another source) and the
  prompts of XSTest (its safe half: benign requests that look dangerous; the unsafe half asks for
  harm but attacks nothing): only their false positives are measured.

Protocol, **leave-families-out**: every jailbreak community the authors named (11), the
unclustered jailbreaks by platform (3), and every injection technique (15) is held out in turn:
a head is trained without it (and without a fifth of the training benign prompts, which set the
threshold at 1% false positives), and scores the held-out family. Reported per family: AUC
against the held-out benign prompts, and the share caught at the threshold that gives 1% (and
0.1%) false positives on the training source's held-back fifth; the false-positive rate that
threshold gives on the held-out benign sources. The same table for the baseline of the
best-known open monitoring library: the largest cosine of the prompt's embedding to the known
attacks (those not held out). Then the shipped head is trained on everything, its threshold at
0.1% false positives (``--fpr``) on a held-back fifth of the training benign prompts: other
benign sources see several times the false positives of the one it was calibrated on.

Run: ``uv run python scripts/train_attacks.py --benign 6000 --reference --l2 1e-3`` (the
shipped head) (embeddings are cached under
.bench/attacks/; the first run embeds about 15,000 windows: a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "services" / "attacks" / "src" / "llmmon_attacks" / "data"
CACHE = ROOT / ".bench" / "attacks"
L2 = 1e-3  # on the mean loss (classes weighted equally): --l2
csv.field_size_limit(10**8)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def attacks() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for row in read_csv(DATA / "prompt-attacks" / "jailbreaks.csv"):
        text = row["prompt"].replace("\r", "")
        key = " ".join(text.split()).lower()
        if key in seen or not text.strip():
            continue
        seen.add(key)
        family = row["community"] or f"unclustered-{row['platform']}"
        rows.append({"text": text, "family": f"jailbreak:{family}", "kind": "jailbreak"})
    for row in read_csv(DATA / "prompt-attacks" / "injections.csv"):
        family = f"injection:{row['injection_variant']}"
        kind = "injection"
        rows.append({"text": row["user_input"], "family": family, "kind": kind})
    return rows


def benign_training(count: int, rng: random.Random) -> list[dict[str, str]]:
    teacher = []
    with (DATA / "instructions" / "gpteacher.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            text = item["instruction"] + (f"\n\n{item['input']}" if item.get("input") else "")
            teacher.append({"text": text, "family": "benign:gpteacher", "kind": "benign"})
    t0 = []
    with gzip.open(DATA / "instructions" / "t0.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            t0.append({"text": json.loads(line)["prompt"], "family": "benign:t0", "kind": "benign"})
    rng.shuffle(teacher)
    rng.shuffle(t0)
    return teacher[: count // 2] + t0[: count // 2]


def benign_held_out() -> dict[str, list[str]]:
    relevance = [
        r["prompt"]
        for name in ("user-oriented.csv", "seed-tasks.csv")
        for r in read_csv(DATA / "relevance" / name)
        if r.get("prompt")
    ]
    xstest = read_csv(DATA / "xstest" / "dev.csv")
    safe = sorted({r["prompt"] for r in xstest if not r["type"].startswith("contrast")})
    unsafe = sorted({r["prompt"] for r in xstest if r["type"].startswith("contrast")})
    return {
        "relevance": sorted(set(relevance)),
        "xstest-safe": safe,
        "xstest-unsafe": unsafe,
    }


class Featurizer:
    """Window embeddings (cached by text hash) and cue vectors, as the service makes them."""

    def __init__(self) -> None:
        from llmmon_shared.embeddings import LocalMiniLMEmbedder, VectorCache

        self.embedder = LocalMiniLMEmbedder(cache=VectorCache())
        CACHE.mkdir(parents=True, exist_ok=True)
        self.path = CACHE / f"windows-{self.embedder.model_id}.npz"
        self.known: dict[str, np.ndarray] = {}
        if self.path.exists():
            stored = np.load(self.path)
            self.known = dict(zip(stored["keys"], stored["vectors"], strict=True))

    def embed(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha256(t.encode()).hexdigest()[:24] for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self.known}.items()
        )
        started = time.perf_counter()
        for at in range(0, len(missing), 128):
            part = missing[at : at + 128]
            vectors = self.embedder.embed([t for _, t in part])
            for (key, _), vector in zip(part, vectors, strict=True):
                self.known[key] = np.asarray(vector, dtype=np.float32)
            print(f"  embedded {at + len(part)}/{len(missing)} windows", file=sys.stderr)
            self.save()  # a stopped run keeps what it embedded
        if missing:
            seconds = time.perf_counter() - started
            print(f"  {len(missing)} windows in {seconds:.0f} s", file=sys.stderr)
        return np.stack([self.known[k] for k in keys])

    def save(self) -> None:
        keys = np.array(list(self.known))
        np.savez(self.path, keys=keys, vectors=np.stack(list(self.known.values())))

    def texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per window: embedding, cues of its text, the index of its text."""
        from llmmon_attacks.detector import cue_vector, windows

        rows, cue_rows, owner = [], [], []
        for index, text in enumerate(texts):
            found, _ = windows(text)
            cue = cue_vector(text)
            for window in found or [""]:
                rows.append(window)
                cue_rows.append(cue)
                owner.append(index)
        return self.embed(rows), np.stack(cue_rows), np.asarray(owner)


def fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    xb = np.hstack([x, np.ones((len(x), 1))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        value = -np.sum(weight * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
        grad = xb.T @ (weight * (p - y))
        grad[:-1] += 2 * L2 * w[:-1]
        return float(value + L2 * np.sum(w[:-1] ** 2)), grad

    result: Any = minimize(loss, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(result.x)


def text_scores(
    w: np.ndarray, feats: tuple[np.ndarray, np.ndarray, np.ndarray], n: int
) -> np.ndarray:
    vectors, cue_rows, owner = feats
    logits = np.hstack([vectors, cue_rows]) @ w[:-1] + w[-1]
    window = 1.0 / (1.0 + np.exp(-logits))
    out = np.zeros(n)
    np.maximum.at(out, owner, window)
    return out


def cosine_scores(
    reference: np.ndarray, feats: tuple[np.ndarray, np.ndarray, np.ndarray], n: int
) -> np.ndarray:
    vectors, _, owner = feats
    best = (vectors @ reference.T).max(axis=1) if len(reference) else np.zeros(len(vectors))
    out = np.full(n, -1.0)
    np.maximum.at(out, owner, best)
    return out


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """``llmmon eval``'s AUC (ties count half) of positives against negatives."""
    from llmmon.evaluate import auc as area

    value = area([True] * len(positive) + [False] * len(negative), [*positive, *negative])
    assert value is not None, "both classes in every fold"
    return value


def threshold_at(negative: np.ndarray, fpr: float) -> float:
    return float(np.quantile(negative, 1 - fpr, method="higher")) + 1e-9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benign", type=int, default=2400, help="training benign prompts")
    parser.add_argument("--no-write", action="store_true", help="figures only")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="add the largest cosine to a known attack (another family's) as a feature",
    )
    parser.add_argument(
        "--fpr",
        type=float,
        default=0.001,
        help="the shipped threshold's false positives on the training source's held-back "
        "fifth (0.001: other sources see several times that)",
    )
    parser.add_argument("--l2", type=float, default=1e-3, help="L2 penalty (1e-3)")
    args = parser.parse_args(argv)
    global L2
    L2 = args.l2
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench import cpu_info
    from llmmon_attacks.detector import cue_names

    cpu = cpu_info()
    print(f"CPU: {cpu['model']} ({', '.join(cpu['isa'])}), {cpu['cores']} cores", file=sys.stderr)
    rng = random.Random(7)
    attack_rows = attacks()
    benign = benign_training(args.benign, rng)
    rng.shuffle(benign)
    calibration = benign[: len(benign) // 5]
    train_benign = benign[len(benign) // 5 :]
    held = benign_held_out()
    featurizer = Featurizer()

    def feats(rows: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return featurizer.texts(rows)

    a_texts = [r["text"] for r in attack_rows]
    a_feats = feats(a_texts)
    tb_texts = [r["text"] for r in train_benign]
    tb_feats = feats(tb_texts)
    cal_feats = feats([r["text"] for r in calibration])
    held_feats = {name: feats(texts) for name, texts in held.items()}
    families = sorted({r["family"] for r in attack_rows})
    family_of = np.asarray([r["family"] for r in attack_rows])

    first = np.zeros(len(a_texts), dtype=int) - 1
    for row, owner in enumerate(a_feats[2]):
        if first[owner] < 0:
            first[owner] = row
    window_family = family_of[a_feats[2]]

    def reference_of(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The known attacks' first windows (and their families) a fold may compare with."""
        rows = first[keep]
        return a_feats[0][rows], family_of[keep]

    def with_reference(
        feats: tuple[np.ndarray, np.ndarray, np.ndarray],
        reference: tuple[np.ndarray, np.ndarray],
        own: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cues plus the largest cosine to a known attack; for known attacks themselves, to
        another family's (what a new family's prompt would see)."""
        if not args.reference:
            return feats
        sims = feats[0] @ reference[0].T
        if own is not None:
            sims = np.where(own[:, None] == reference[1][None, :], -1.0, sims)
        best = sims.max(axis=1, initial=-1.0)[:, None].astype(np.float32)
        return feats[0], np.hstack([feats[1], best]), feats[2]

    def train(keep: np.ndarray) -> np.ndarray:
        """A head on the attacks ``keep`` selects (by text) and the training benign prompts."""
        a_win = keep[a_feats[2]]
        reference = reference_of(keep)
        a_x = with_reference(a_feats, reference, window_family)
        b_x = with_reference(tb_feats, reference)
        x = np.vstack(
            [
                np.hstack([a_x[0][a_win], a_x[1][a_win]]),
                np.hstack([b_x[0], b_x[1]]),
            ]
        )
        y = np.concatenate([np.ones(int(a_win.sum())), np.zeros(len(tb_feats[0]))])
        # classes weighted equally; within attacks, each text's windows share its weight
        counts = np.bincount(a_feats[2][a_win], minlength=len(a_texts))
        w_attack = 1.0 / counts[a_feats[2][a_win]]
        w_attack *= 0.5 / w_attack.sum()
        counts_b = np.bincount(tb_feats[2], minlength=len(tb_texts))
        w_benign = 1.0 / counts_b[tb_feats[2]]
        w_benign *= 0.5 / w_benign.sum()
        return fit(x, y, np.concatenate([w_attack, w_benign]))

    table = []
    pooled: dict[str, list[float]] = defaultdict(list)
    for family in families:
        out = family_of == family
        w = train(~out)
        ref = reference_of(~out)
        cal = text_scores(w, with_reference(cal_feats, ref), len(calibration))
        t1, t01 = threshold_at(cal, 0.01), threshold_at(cal, 0.001)
        shipped_t = threshold_at(cal, args.fpr)
        pos = text_scores(w, with_reference(a_feats, ref), len(a_texts))[out]
        rel_feats = with_reference(held_feats["relevance"], ref)
        rel = text_scores(w, rel_feats, len(held["relevance"]))
        safe_feats = with_reference(held_feats["xstest-safe"], ref)
        safe = text_scores(w, safe_feats, len(held["xstest-safe"]))
        reference_windows = ~out[a_feats[2]]
        base_ref = a_feats[0][reference_windows]
        base_pos = cosine_scores(base_ref, a_feats, len(a_texts))[out]
        base_cal = cosine_scores(base_ref, cal_feats, len(calibration))
        base_rel = cosine_scores(base_ref, held_feats["relevance"], len(held["relevance"]))
        bt1 = threshold_at(base_cal, 0.01)
        row = {
            "family": family,
            "attacks": int(out.sum()),
            "auc": round(auc(pos, rel), 4),
            "caught_at_1pct": round(float((pos >= t1).mean()), 4),
            "caught_at_0.1pct": round(float((pos >= t01).mean()), 4),
            "caught_at_shipped_fpr": round(float((pos >= shipped_t).mean()), 4),
            "fpr_relevance": round(float((rel >= t1).mean()), 4),
            "fpr_xstest_safe": round(float((safe >= t1).mean()), 4),
            "baseline_auc": round(auc(base_pos, base_rel), 4),
            "baseline_caught_at_1pct": round(float((base_pos >= bt1).mean()), 4),
        }
        table.append(row)
        pooled["pos"].extend(pos.tolist())
        pooled["caught1"].extend((pos >= t1).astype(float).tolist())
        pooled["caught01"].extend((pos >= t01).astype(float).tolist())
        pooled["caught_shipped"].extend((pos >= shipped_t).astype(float).tolist())
        pooled["fpr_rel_shipped"].append(float((rel >= shipped_t).mean()))
        pooled["base_caught1"].extend((base_pos >= bt1).astype(float).tolist())
        pooled["base_pos"].extend(base_pos.tolist())
        print(json.dumps(row), file=sys.stderr)
    # the shipped head: everything
    everything = np.ones(len(a_texts), dtype=bool)
    w = train(everything)
    ref = reference_of(everything)
    cal = text_scores(w, with_reference(cal_feats, ref), len(calibration))
    threshold = threshold_at(cal, args.fpr)
    held_x = {name: with_reference(f, ref) for name, f in held_feats.items()}
    rel = text_scores(w, held_x["relevance"], len(held["relevance"]))
    safe = text_scores(w, held_x["xstest-safe"], len(held["xstest-safe"]))
    unsafe = text_scores(w, held_x["xstest-unsafe"], len(held["xstest-unsafe"]))
    summary = {
        "families_held_out": len(families),
        "pooled_caught_at_1pct": round(float(np.mean(pooled["caught1"])), 4),
        "pooled_caught_at_0.1pct": round(float(np.mean(pooled["caught01"])), 4),
        "pooled_caught_at_shipped_fpr": round(float(np.mean(pooled["caught_shipped"])), 4),
        "mean_fold_fpr_relevance_at_shipped": round(float(np.mean(pooled["fpr_rel_shipped"])), 4),
        "min_family_auc": min(r["auc"] for r in table),
        "mean_family_auc": round(float(np.mean([r["auc"] for r in table])), 4),
        "baseline_pooled_caught_at_1pct": round(float(np.mean(pooled["base_caught1"])), 4),
        "baseline_mean_family_auc": round(float(np.mean([r["baseline_auc"] for r in table])), 4),
        "shipped_fpr_relevance": round(float((rel >= threshold).mean()), 4),
        "shipped_fpr_xstest_safe": round(float((safe >= threshold).mean()), 4),
        "shipped_flagged_xstest_unsafe": round(float((unsafe >= threshold).mean()), 4),
    }
    print(json.dumps(summary), file=sys.stderr)
    # families: centroids of each family's first windows
    first = np.zeros(len(a_texts), dtype=int) - 1
    for row, owner in enumerate(a_feats[2]):
        if first[owner] < 0:
            first[owner] = row
    centroids = []
    for family in families:
        vectors = a_feats[0][first[family_of == family]]
        centre = vectors.mean(axis=0)
        centre /= np.linalg.norm(centre) or 1.0
        kind = family.split(":", 1)[0]
        centroids.append(
            {"name": family, "kind": kind, "vector": [round(float(v), 5) for v in centre]}
        )
    model = {
        "embedder": featurizer.embedder.model_id,
        "cues": cue_names(),
        "reference": "attack-reference.npy" if args.reference else None,
        "weights": [round(float(v), 6) for v in w[:-1]],
        "bias": round(float(w[-1]), 6),
        "threshold": round(threshold, 6),
        "families": centroids,
        "protocol": "leave-families-out: scripts/train_attacks.py",
        "cpu": f"{cpu['model']} ({', '.join(cpu['isa'])})",
        "figures": {"summary": summary, "per_family": table},
    }
    if not args.no_write:
        OUT.mkdir(parents=True, exist_ok=True)
        if args.reference:
            np.save(OUT / "attack-reference.npy", ref[0].astype(np.float16))
        (OUT / "attack-head.json").write_text(json.dumps(model, indent=1) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
