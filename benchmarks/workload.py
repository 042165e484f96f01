"""The benchmark workload: realistic interactions (~500-character prompts, ~1,500-character
responses, a tenth of them refusals) as Bedrock log objects (Claude Messages, 100 per object).

The texts are real model completions: XSTest's dev.csv (GPT-4 and Llama 2, human refusal labels)
(kept in `tests/data/xstest/`). A response opens with one completion (a refusal for a
tenth of the interactions) and goes on with sentences of other compliant completions up to
~1,500 characters; a prompt is an XSTest prompt after ~400 characters of context taken from other
completions. When a completion is used again it opens at its next sentence, so openings, which
the refusal service reads, stay distinct as in real traffic rather than repeating a few
templates (which would flatter the embedder's de-duplication).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

ACCOUNT, REGION = "123456789012", "us-east-1"
XSTEST = Path(
    os.environ.get(
        "LLMMON_BENCH_CORPUS",
        Path(__file__).resolve().parents[1] / "tests" / "data" / "xstest" / "dev.csv",
    )
)
REFUSAL_LABELS = {"2_full_refusal", "3_partial_refusal"}
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class Workload:
    pairs: list[tuple[str, str]]
    objects: dict[str, bytes]
    per_object: int
    model: str

    @property
    def prompts(self) -> list[str]:
        return [p for p, _ in self.pairs]

    @property
    def responses(self) -> list[str]:
        return [r for _, r in self.pairs]


@dataclass(frozen=True)
class Row:
    prompt: str
    sentences: tuple[str, ...]
    refusal: bool


@cache
def load_rows(path: Path = XSTEST) -> tuple[Row, ...]:
    if not path.exists():
        raise FileNotFoundError(
            f"benchmark corpus missing: {path} (XSTest dev.csv, kept in tests/data/xstest/; or "
            "set LLMMON_BENCH_CORPUS to a CSV with prompt, completion, label)"
        )
    with path.open(encoding="utf-8", newline="") as handle:
        return tuple(
            Row(
                row["prompt"].strip(),
                tuple(s for s in _SENTENCE.split(row["completion"].strip()) if s),
                row["label"] in REFUSAL_LABELS,
            )
            for row in csv.DictReader(handle)
            if row["completion"].strip()
        )


class _Deck:
    """Rows dealt in shuffled rounds; the k-th round opens each completion at its k-th
    sentence (while it has one)."""

    def __init__(self, rows: list[Row], rng: random.Random) -> None:
        self.rows, self.rng, self.order, self.round = rows, rng, list[Row](), -1

    def deal(self) -> tuple[Row, int]:
        if not self.order:
            self.order = list(self.rows)
            self.rng.shuffle(self.order)
            self.round += 1
        row = self.order.pop()
        return row, min(self.round, len(row.sentences) - 1)


def _fill(rng: random.Random, rows: list[Row], parts: list[str], target: int) -> str:
    while sum(len(p) + 1 for p in parts) < target:
        parts.extend(rng.choice(rows).sentences[:3])
    text = " ".join(parts)
    return text if len(text) <= target + 200 else text[: target + 200].rsplit(" ", 1)[0]


def build(
    n: int,
    seed: int = 7,
    per_object: int = 100,
    model: str = "anthropic.claude-3-haiku-20240307-v1:0",
    refusal_share: float = 0.1,
    shared_context: int = 0,
    questions: int = 0,
    moment: datetime = datetime(2026, 11, 28, 7, tzinfo=UTC),
) -> Workload:
    """``n`` interactions. With ``shared_context`` and ``questions``: the chat-application shape,
    where every request carries the same long instructions (``shared_context`` characters) and
    one of a few distinct questions (``questions``), in the user turn as the model receives it;
    responses stay distinct."""
    rng = random.Random(seed)
    rows = list(load_rows())
    compliant = [r for r in rows if not r.refusal]
    answers, refusals = _Deck(compliant, rng), _Deck([r for r in rows if r.refusal], rng)
    instructions = _fill(rng, compliant, [], shared_context) if shared_context else ""
    asked = [rng.choice(rows).prompt for _ in range(questions)]
    pairs = []
    for _ in range(n):
        row, start = (refusals if rng.random() < refusal_share else answers).deal()
        target = 300 if row.refusal else 1500
        response = _fill(rng, compliant, list(row.sentences[start:]), target)
        if instructions:
            pairs.append((f"{instructions}\n\n{rng.choice(asked)}", response))
            continue
        context = _fill(rng, compliant, [], 380)
        pairs.append((f"{context}\n\n{row.prompt}", response))
    objects: dict[str, bytes] = {}
    for start in range(0, n, per_object):
        lines = []
        for index, (prompt, response) in enumerate(pairs[start : start + per_object], start):
            record = {
                "schemaType": "ModelInvocationLog",
                "schemaVersion": "1.0",
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "accountId": ACCOUNT,
                "region": REGION,
                "requestId": f"bench-{seed}-{index:08d}",
                "operation": "InvokeModel",
                "modelId": model,
                "input": {
                    "inputBodyJson": {
                        "anthropic_version": "bedrock-2023-05-31",
                        "max_tokens": 1024,
                        "messages": [{"role": "user", "content": prompt}],
                    },
                    "inputTokenCount": len(prompt) // 4,
                },
                "output": {
                    "outputBodyJson": {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "text", "text": response}],
                        "stop_reason": "end_turn",
                    },
                    "outputTokenCount": len(response) // 4,
                },
            }
            lines.append(json.dumps(record).encode())
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
            handle.write(b"\n".join(lines) + b"\n")
        key = (
            f"AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{REGION}/{moment:%Y/%m/%d/%H}/"
            f"{moment:%Y%m%dT%H%M}{start // per_object:02d}000Z_{seed:08x}.json.gz"
        )
        objects[key] = buffer.getvalue()
    return Workload(pairs, objects, per_object, model)
