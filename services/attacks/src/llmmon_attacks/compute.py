"""Pure scoring for the attacks service: the prompt's parts (the user's own text and what the
application inserted, from ``llmmon_shared.context``) in, metric values out; no I/O, no text
logged (an explanation carries scores, cue names and family ids only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llmmon_attacks.detector import INJECTION, JAILBREAK, Decision
from llmmon_shared.context import extract_context
from llmmon_shared.extract import Interaction
from llmmon_shared.runtime import Scores


def parts(
    interaction: Interaction, delimiters: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """``(source, text)``: the user's own words (``direct``), then each inserted passage."""
    context = extract_context(interaction, delimiters)
    return [("direct", context.direct), *((p.source, p.text) for p in context.passages)]


def scores_of(decision: Decision) -> Scores:
    attack = float(decision.attack)
    return {
        "PromptAttack": attack,
        "PromptAttackScore": round(decision.score, 6),
        "PromptAttackJailbreak": float(decision.attack and decision.kind == JAILBREAK),
        "PromptAttackInjection": float(decision.attack and decision.kind == INJECTION),
        "PromptAttackCharsSkipped": float(decision.chars_skipped),
    }


@dataclass
class AttackScorer:
    """The pipeline's scorer: a batch of interactions, one decision each."""

    decide: Callable[[Sequence[Sequence[tuple[str, str]]]], list[Decision]]
    delimiters: Sequence[tuple[str, str]] = ()
    explain: Callable[[str, Decision], None] | None = None

    def __call__(self, batch: Sequence[Interaction]) -> list[Scores]:
        out: list[Scores] = []
        decisions = self.decide([parts(item, self.delimiters) for item in batch])
        for item, decision in zip(batch, decisions, strict=True):
            if not decision.part:  # an empty prompt: nothing to judge
                out.append({"PromptAttackCharsSkipped": float(decision.chars_skipped)})
                continue
            if self.explain is not None:
                self.explain(item.request_id, decision)
            out.append(scores_of(decision))
        return out
