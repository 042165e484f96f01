"""Pure scoring: metric values read from the log record's own fields, no model.

Every value is per interaction, so a 0/1 metric's Average is a ratio per model: the share of
calls a guardrail intervened in, blocked on input or output, blocked by each policy kind, or
flagged without blocking (detect-only mode), and the share of answers cut off by the token limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmmon_shared.extract import Interaction
from llmmon_shared.runtime import Scores

POLICY_METRICS = {
    "topic": "GuardrailBlockedTopic",
    "content": "GuardrailBlockedContent",
    "word": "GuardrailBlockedWord",
    "sensitive-information": "GuardrailBlockedSensitiveInformation",
    "contextual-grounding": "GuardrailBlockedContextualGrounding",
}
"""Guardrail policy kind (``GuardrailFinding.policy``) -> its 0/1 metric."""

MAX_TOKENS_REASONS = frozenset({"max_tokens", "length", "max_length", "max_token"})
"""Stop reasons meaning "cut off by the token limit", lower-cased, across families: Claude,
Converse and Nova ``max_tokens``; Titan ``LENGTH``; Llama, Mistral, AI21 ``length``; Cohere
``MAX_TOKENS``."""


def traffic_scores(interaction: Interaction) -> Scores:
    guardrail = interaction.guardrail
    blocked = guardrail.blocked_policies if guardrail else frozenset()
    scores: dict[str, float] = {
        "GuardrailIntervened": float(bool(guardrail and guardrail.acted)),
        "GuardrailBlockedInput": float(bool(guardrail and guardrail.blocked("input"))),
        "GuardrailBlockedOutput": float(bool(guardrail and guardrail.blocked("output"))),
        "GuardrailDetectedNotBlocked": float(bool(guardrail and guardrail.detected_not_blocked)),
    }
    for policy, metric in POLICY_METRICS.items():
        scores[metric] = float(policy in blocked)
    stop = (interaction.stop_reason or "").strip().lower()
    if stop:  # unknown stop reasons stay out of the ratio
        scores["StopReasonMaxTokens"] = float(stop in MAX_TOKENS_REASONS)
    # Counts as the log holds them: the pipeline turns them into the floats CloudWatch accepts,
    # and one it cannot (10**400 tokens) is that value's counted skip, not the record's.
    if interaction.input_tokens is not None:
        scores["InputTokens"] = interaction.input_tokens
    if interaction.output_tokens is not None:
        scores["OutputTokens"] = interaction.output_tokens
    if interaction.latency_ms is not None:
        scores["LatencyMs"] = interaction.latency_ms
    return scores


def score_batch(batch: Sequence[Interaction]) -> list[Scores]:
    return [traffic_scores(item) for item in batch]
