"""Pure scoring for the privacy service: the sensitive values of a prompt (with the content the
application inserted: grounding sources, tool results, the system prompt) and of its answer, and
whether the answer holds one the prompt did not (a leak). Values are compared normalised and
never leave this function: the scores are 0/1 flags and counts per type."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from llmmon_privacy.detectors import Finding, find
from llmmon_privacy.spec import type_metric
from llmmon_shared.extract import Interaction
from llmmon_shared.runtime import Scores


@dataclass(frozen=True)
class Found:
    """What one interaction holds: findings in the prompt's parts and in the answer."""

    prompt: list[Finding]
    response: list[Finding] | None
    """None when a guardrail withheld the model's answer: there is none to judge."""

    @property
    def leaked(self) -> list[Finding]:
        known = {(f.kind, f.value) for f in self.prompt}
        return [f for f in self.response or [] if (f.kind, f.value) not in known]


def scan(interaction: Interaction) -> Found:
    parts = (interaction.prompt, interaction.system, interaction.grounding, interaction.inserted)
    prompt = [f for text in parts if text for f in find(text)]
    response = None if interaction.response_withheld else find(interaction.completion)
    return Found(prompt, response)


def scores(interaction: Interaction) -> Scores:
    found = scan(interaction)
    values: dict[str, float] = {
        "SensitiveDataInPrompt": float(bool(found.prompt)),
        "SensitiveDataCharsUnscanned": float(interaction.chars_cut),
    }
    kinds = Counter(f.kind for f in found.prompt)
    if found.response is not None:
        values["SensitiveDataInResponse"] = float(bool(found.response))
        values["SensitiveDataLeak"] = float(bool(found.leaked))
        kinds.update(f.kind for f in found.response)
    for kind, count in kinds.items():
        values[type_metric(kind)] = float(count)
    return values


def score_batch(batch: Sequence[Interaction]) -> list[Scores]:
    return [scores(item) for item in batch]
