"""The attacks service's declaration: read by the Pulumi program, the local stack, the demo,
``llmmon score``, ``cost`` and ``capacity``."""

from __future__ import annotations

from llmmon_shared.metrics import Unit
from llmmon_shared.spec import (
    MEASURED_ON,
    AlarmSpec,
    Comparison,
    MetricSpec,
    ScoringCost,
    ServiceSpec,
)

SERVICE = ServiceSpec(
    name="attacks",
    description="Prompt attacks: jailbreaks, and injections in the content inserted into prompts",
    handler="llmmon_attacks.handler.lambda_handler",
    metrics=(
        MetricSpec(
            "PromptAttack",
            Unit.NONE,
            "1 when the prompt (or content inserted into it) is an attack (Average = attack ratio)",
            binary=True,
        ),
        MetricSpec(
            "PromptAttackScore", Unit.NONE, "Attack score of the prompt's riskiest part, 0..1"
        ),
        MetricSpec(
            "PromptAttackJailbreak",
            Unit.NONE,
            "1 when the prompt is an attack of the jailbreak kind (persona, mode, override)",
            binary=True,
        ),
        MetricSpec(
            "PromptAttackInjection",
            Unit.NONE,
            "1 when the attack is an injection (instructions in inserted content, or like known "
            "injection techniques)",
            binary=True,
        ),
        MetricSpec(
            "PromptAttackCharsSkipped",
            Unit.COUNT,
            "Characters of a long prompt the detector's window budget left unread",
            "Sum",
            default=True,  # what was not read is counted, always
        ),
    ),
    alarms=(
        AlarmSpec(
            "HighPromptAttacks",
            metric="PromptAttack",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.05,
            description="The share of prompts that are attacks (jailbreaks, injections) is high",
        ),
    ),
    scoring=ScoringCost({"local": 0.024}, measured_on=MEASURED_ON),  # 640 interactions: 0.023-0.025
    local_model=True,
    memory_mb=1024,
)
