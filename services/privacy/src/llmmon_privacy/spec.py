"""The privacy service's declaration: read by the Pulumi program, the local stack, the demo,
``llmmon score``, ``cost`` and ``capacity``."""

from __future__ import annotations

from llmmon_privacy.detectors import TYPES
from llmmon_shared.metrics import Unit
from llmmon_shared.spec import (
    MEASURED_ON,
    AlarmSpec,
    Comparison,
    MetricSpec,
    ScoringCost,
    ServiceSpec,
)


def type_metric(kind: str) -> str:
    """``card`` -> ``SensitiveDataCard``: one low-cardinality metric per type (no dimension)."""
    return "SensitiveData" + "".join(part.capitalize() for part in kind.split("_"))


SERVICE = ServiceSpec(
    name="privacy",
    description="Sensitive data in prompts and answers, and answers that leak values",
    handler="llmmon_privacy.handler.lambda_handler",
    metrics=(
        MetricSpec(
            "SensitiveDataInPrompt",
            Unit.NONE,
            "1 when the prompt (with its inserted content) holds a sensitive value",
            binary=True,
            default=True,
        ),
        MetricSpec(
            "SensitiveDataInResponse",
            Unit.NONE,
            "1 when the answer holds a sensitive value",
            binary=True,
            default=True,
        ),
        MetricSpec(
            "SensitiveDataLeak",
            Unit.NONE,
            "1 when the answer holds a sensitive value the prompt did not (Average = leak ratio)",
            binary=True,
        ),
        *(
            MetricSpec(
                type_metric(kind),
                Unit.COUNT,
                f"Values of type {kind} in the prompt and the answer",
                "Sum",
            )
            for kind in TYPES
        ),
        MetricSpec(
            "SensitiveDataCharsUnscanned",
            Unit.COUNT,
            "Characters beyond the service's cut: not scanned, so not known to be clean",
            "Sum",
            default=True,
        ),
    ),
    alarms=(
        AlarmSpec(
            "SensitiveDataLeaks",
            metric="SensitiveDataLeak",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.02,
            description="Answers hold sensitive values (e-mail, phone, card, keys...) their "
            "prompts did not: the model produced someone's data or leaked it",
        ),
    ),
    scoring=ScoringCost({"local": 0.0006}, measured_on=MEASURED_ON),  # benchmarks/privacy.py
    memory_mb=512,
    # Scan 32,000 characters of each text (the others read 8,000); beyond it, counted unscanned.
    environment={"LLMMON_MAX_CHARS": "32000"},
)
