"""The alternative to Relevance that lost: MiniLM fine-tuned as a cross-encoder.

all-MiniLM-L6-v2 reads ``[CLS] prompt [SEP] response`` (256 word pieces) and a linear head on
its mean-pooled output says whether the response answers the prompt. Trained on half of the
Self-Instruct user-oriented instructions (split by instruction, seed 1) plus the 175 seed tasks
(``../shared/data/relevance/seed-tasks.csv``): positives are each instruction's responses from
the reference and the text-davinci-001/002/003 models, negatives a response of one of the three
nearest other instructions (same source) and one of a random instruction; 3 epochs, AdamW
(3e-5 encoder, 1e-3 head), batch 16, seed 0. Scored on the other half: own reference answer
against the nearest other instruction's reference answer.

Run in the training environment ``scripts/train_toxicity.py`` sets up (torch on CPU):
``.bench/train/bin/python scripts/relevance_cross_encoder.py MINILM_FOLDER OUT.json`` (about
20 minutes on 2 cores). Measured: pairwise accuracy 0.764 on 123 held-out instructions, where
the shipped Relevance scores 0.854 and the cosine 0.837 on the same pairs (docs/metrics.md).
"""

from __future__ import annotations

import csv
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "relevance" / "user-oriented.csv"
SEED_TASKS = ROOT.parent / "shared" / "data" / "relevance" / "seed-tasks.csv"
GOOD = ("reference", "text-davinci-003", "text-davinci-002", "text-davinci-001")
EPOCHS = 3


def main() -> int:
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_folder, out = sys.argv[1], Path(sys.argv[2])
    torch.manual_seed(0)
    rng = random.Random(0)
    by: dict[str, dict[str, str]] = defaultdict(dict)
    prompts: dict[str, str] = {}
    for path, prefix in ((DATA, ""), (SEED_TASKS, "seed-")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                key = prefix + row["instruction_id"]
                by[key][row["source"]] = row["response"]
                prompts[key] = row["prompt"]
    ids = sorted(by)
    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    encoder = AutoModel.from_pretrained(model_folder)
    with torch.no_grad():
        batch = tokenizer([prompts[i] for i in ids], padding=True, truncation=True,
                          max_length=256, return_tensors="pt")  # fmt: skip
        hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        vectors = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    closeness = (vectors @ vectors.T).numpy()
    np.fill_diagonal(closeness, -9)
    order = np.argsort(-closeness, axis=1)
    index = {i: k for k, i in enumerate(ids)}
    shuffled = list(range(len(ids)))
    random.Random(1).shuffle(shuffled)
    test = {ids[k] for k in shuffled[::2] if not ids[k].startswith("seed-")}
    train = [i for i in ids if i not in test]
    train_set = set(train)

    class CrossEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.linear = torch.nn.Linear(384, 1)

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            return self.linear((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)

    model = CrossEncoder()
    optimiser = torch.optim.AdamW(
        [{"params": model.encoder.parameters(), "lr": 3e-5},
         {"params": model.linear.parameters(), "lr": 1e-3}],
        weight_decay=0.01,
    )  # fmt: skip

    def encode(pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        prompt_texts, responses = [p for p, _ in pairs], [r for _, r in pairs]
        return tokenizer(prompt_texts, responses, padding=True, truncation="longest_first",
                         max_length=256, return_tensors="pt")  # fmt: skip

    for _ in range(EPOCHS):
        examples = []
        for i in train:
            near = [ids[j] for j in order[index[i]] if ids[j] in train_set][:3]
            for source in GOOD:
                response = by[i].get(source, "")
                if not response.strip():
                    continue
                examples.append((prompts[i], response, 1.0))
                j = rng.choice(near)
                examples.append((prompts[i], by[j].get(source) or by[j]["reference"], 0.0))
                j = rng.choice(train)
                if j != i:
                    examples.append((prompts[i], by[j]["reference"], 0.0))
        rng.shuffle(examples)
        model.train()
        for start in range(0, len(examples), 16):
            chunk = examples[start : start + 16]
            target = torch.tensor([label for *_, label in chunk])
            logits = model(encode([(p, r) for p, r, _ in chunk]))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()

    def score(pairs: list[tuple[str, str]]) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate(
                [model(encode(pairs[k : k + 32])).numpy() for k in range(0, len(pairs), 32)]
            )

    held = []
    for i in sorted(test):
        j = ids[order[index[i]][0]]
        if by[i].get("reference", "").strip() and by[j].get("reference", "").strip():
            held.append((i, j))
    own = score([(prompts[i], by[i]["reference"]) for i, _ in held])
    other = score([(prompts[i], by[j]["reference"]) for i, j in held])
    result = {"held_out_pairs": held, "pairwise_accuracy": float((own > other).mean())}
    out.write_text(json.dumps(result))
    print(json.dumps({"pairs": len(held), "pairwise_accuracy": result["pairwise_accuracy"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
