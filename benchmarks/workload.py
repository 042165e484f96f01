"""The benchmark workload: realistic interactions (~500-character prompts, ~1,500-character
responses, a tenth of them refusals) as Bedrock log objects (Claude Messages, 100 per object)."""

from __future__ import annotations

import gzip
import io
import json
import random
from dataclasses import dataclass

from llmmon.local.corpus import load_templates

ACCOUNT, REGION = "123456789012", "us-east-1"


@dataclass
class Workload:
    pairs: list[tuple[str, str]]
    objects: dict[str, bytes]

    @property
    def prompts(self) -> list[str]:
        return [p for p, _ in self.pairs]

    @property
    def responses(self) -> list[str]:
        return [r for _, r in self.pairs]


def _text(rng: random.Random, sentences: list[str], target: int) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < target:
        parts.append(rng.choice(sentences))
    return " ".join(parts)[: target + 200]


def build(
    n: int,
    seed: int = 7,
    per_object: int = 100,
    model: str = "anthropic.claude-3-haiku-20240307-v1:0",
) -> Workload:
    rng = random.Random(seed)
    templates = load_templates()
    questions = [q for q, _ in templates["helpful"]]
    answers = [a for _, a in templates["helpful"]] + templates["off_topic"]
    refusals = [r for group in templates["refusals"].values() for r in group]
    pairs = []
    for _ in range(n):
        prompt = _text(rng, questions + answers, 500)
        response = _text(rng, answers, 1500)
        if rng.random() < 0.1:
            response = rng.choice(refusals) + " " + _text(rng, answers, 300)
        pairs.append((prompt, response))
    objects: dict[str, bytes] = {}
    for start in range(0, n, per_object):
        lines = []
        for index, (prompt, response) in enumerate(pairs[start : start + per_object], start):
            record = {
                "schemaType": "ModelInvocationLog",
                "schemaVersion": "1.0",
                "timestamp": "2026-11-28T07:00:00Z",
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
            f"AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{REGION}/2026/11/28/07/"
            f"20261128T0700{start // per_object:02d}000Z_{seed:08x}.json.gz"
        )
        objects[key] = buffer.getvalue()
    return Workload(pairs, objects)
