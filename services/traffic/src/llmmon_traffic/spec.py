"""The traffic service's declaration (read by infra, the local stack and the demo)."""

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
from llmmon_traffic.compute import POLICY_METRICS

_POLICY_NAMES = {
    "topic": "a denied topic",
    "content": "a content filter",
    "word": "a word filter",
    "sensitive-information": "a sensitive-information (PII, regex) filter",
    "contextual-grounding": "a contextual-grounding check",
}

SERVICE = ServiceSpec(
    name="traffic",
    description="What Bedrock reports per call: guardrails, truncation, tokens, latency",
    handler="llmmon_traffic.handler.lambda_handler",
    metrics=(
        MetricSpec(
            "GuardrailIntervened",
            Unit.NONE,
            "1 when a guardrail intervened in the call (Average: the intervention ratio)",
            binary=True,
        ),
        MetricSpec(
            "GuardrailBlockedInput", Unit.NONE, "1 when a guardrail blocked the prompt", binary=True
        ),
        MetricSpec(
            "GuardrailBlockedOutput",
            Unit.NONE,
            "1 when a guardrail blocked the answer",
            binary=True,
        ),
        *(
            MetricSpec(
                metric, Unit.NONE, f"1 when {_POLICY_NAMES[policy]} blocked the call", binary=True
            )
            for policy, metric in POLICY_METRICS.items()
        ),
        MetricSpec(
            "GuardrailDetectedNotBlocked",
            Unit.NONE,
            "1 when a guardrail in detect-only mode (action NONE) found what it would block",
            binary=True,
        ),
        MetricSpec(
            "StopReasonMaxTokens",
            Unit.NONE,
            "1 when the answer was cut off by the token limit (Average: the truncation ratio)",
            binary=True,
        ),
        MetricSpec("InputTokens", Unit.COUNT, "Input tokens of the call", statistic="Sum"),
        MetricSpec("OutputTokens", Unit.COUNT, "Output tokens of the call", statistic="Sum"),
        MetricSpec("LatencyMs", Unit.MILLISECONDS, "Model latency of the call, from the log"),
    ),
    alarms=(
        AlarmSpec(
            "HighGuardrailInterventions",
            metric="GuardrailIntervened",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.2,
            description="Guardrails intervene in more than a fifth of the calls",
        ),
        AlarmSpec(
            "HighTruncation",
            metric="StopReasonMaxTokens",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.1,
            description="More than a tenth of the answers are cut off by the token limit",
        ),
    ),
    anomaly_metric="GuardrailIntervened",
    scoring=ScoringCost(
        cpu_s={"local": 0.0001},
        measured_on=MEASURED_ON,
    ),
    memory_mb=256,
    timeout_s=60,
    batch_size=10,
)
