"""Fine-tune all-MiniLM-L6-v2 into the hate-speech encoder; export it as an int8 ONNX graph.

Runs in the training environment that ``scripts/train_toxicity.py`` sets up (torch on CPU,
transformers, onnx, onnxruntime); that script owns the data, the protocol and the figures. This
one trains on what it is given and writes two files into ``--out``:

* ``hate-encoder-int8.onnx``: the fine-tuned encoder, inputs ``input_ids``, ``attention_mask``,
  ``token_type_ids``, output ``last_hidden_state`` (the layout of the generic MiniLM graph, so the
  services' embedder runs it unchanged), its MatMul weights and word embeddings quantised to
  int8 per channel (23 MB; mean cosine 0.992 with the float graph);
* ``head.json``: the logistic head on the L2-normalised mean-pooled embedding (384 weights, bias).

Model: mean pooling over the attention mask, L2 normalisation, a linear layer on 10x the unit
vector, binary cross-entropy. Every epoch sees all the statements and a fresh sample of the
ordinary answers. Seeded: the same data gives the same weights on the same torch build.

Usage: ``python finetune_hate.py --train TRAIN.json --model MODEL_DIR --out OUT_DIR``, where
TRAIN.json is ``{"texts": [...], "labels": [0|1, ...], "answers": [...]}``, optionally with
``"groups"`` (each text's group) and ``"lexicon"`` (``{group: [words]}``) for group swaps
(``group_swapper``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import warnings
from pathlib import Path
from typing import Any

EPOCHS = 3
ENCODER_LR = 3e-5
HEAD_LR = 1e-3
BATCH = 16
MAX_TOKENS = 96  # statements are short; answers are read from their opening
ANSWERS_PER_EPOCH = 300
SCALE = 10.0  # the head sees 10x the unit vector: unit vectors need large weights otherwise
SEED = 0


def group_swapper(
    groups: list[str] | None, lexicon: dict[str, list[str]] | None, rng: random.Random
) -> Any:
    """With ``groups`` (each statement's group) and ``lexicon`` (the words that name each
    training group), a function that, each time it is asked, names another training group
    in half of the statements (every matched word replaced by a word of the other group):
    the label stays, so what the model learns is what is said about a group, not which group
    it is. Without them, statements stay as they are."""
    if not groups or not lexicon:
        return lambda index, text: text
    import re

    patterns = {
        group: re.compile(r"\b(" + "|".join(map(re.escape, sorted(words, key=len, reverse=True)))
                          + r")\b", re.IGNORECASE)
        for group, words in lexicon.items()
    }  # fmt: skip
    names = sorted(lexicon)

    def swap(index: int, text: str) -> str:
        own = groups[index]
        if own not in patterns or rng.random() < 0.5:
            return text
        target = rng.choice([name for name in names if name != own])

        def replace(match: Any) -> str:
            word = rng.choice(lexicon[target])
            return word[:1].upper() + word[1:] if match.group(0)[:1].isupper() else word

        return patterns[own].sub(replace, text)

    return swap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="all-MiniLM-L6-v2 folder")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's advice on stdout
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = random.Random(SEED)
    data = json.loads(args.train.read_text())
    statements = list(zip(data["texts"], (float(v) for v in data["labels"]), strict=True))
    answers: list[str] = data["answers"]
    swap = group_swapper(data.get("groups"), data.get("lexicon"), rng)
    tokenizer = AutoTokenizer.from_pretrained(str(args.model))

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(args.model))
            self.linear = torch.nn.Linear(384, 1)

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
            return self.linear(pooled * SCALE).squeeze(-1)

    model = Head()
    optimiser = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": ENCODER_LR},
            {"params": model.linear.parameters(), "lr": HEAD_LR},
        ],
        weight_decay=0.01,
    )
    for _ in range(EPOCHS):
        sample = rng.sample(answers, min(ANSWERS_PER_EPOCH, len(answers)))
        rows = [(swap(i, text), label) for i, (text, label) in enumerate(statements)]
        rows += [(answer, 0.0) for answer in sample]
        rng.shuffle(rows)
        model.train()
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            batch = tokenizer(
                [text for text, _ in chunk],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            target = torch.tensor([label for _, label in chunk], dtype=torch.float32)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()

    class Encoder(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            return self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    args.out.mkdir(parents=True, exist_ok=True)
    fp32 = args.out / "hate-encoder-fp32.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = torch.ones((2, 8), dtype=torch.long)
    warnings.simplefilter("ignore")  # the tracer's notes on Python conditions it keeps as traced
    torch.onnx.export(
        Encoder(model.encoder),
        (example, example, torch.zeros_like(example)),
        str(fp32),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32),
        str(args.out / "hate-encoder-int8.onnx"),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gather"],
    )
    fp32.unlink()
    weights = (model.linear.weight.detach().numpy()[0] * SCALE).tolist()
    head = {
        "weights": [round(float(v), 6) for v in weights],
        "bias": round(float(model.linear.bias.detach().numpy()[0]), 6),
        "training": {
            "epochs": EPOCHS,
            "encoder_lr": ENCODER_LR,
            "head_lr": HEAD_LR,
            "batch": BATCH,
            "max_tokens": MAX_TOKENS,
            "answers_per_epoch": ANSWERS_PER_EPOCH,
            "seed": SEED,
            "torch": torch.__version__,
        },
    }
    (args.out / "head.json").write_text(json.dumps(head) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
