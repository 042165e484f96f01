"""The refusal service's declaration (read by infra, the local stack and the demo)."""

from __future__ import annotations

from llmmon_shared.metrics import Unit
from llmmon_shared.spec import (
    MEASURED_ON,
    AlarmSpec,
    Comparison,
    MetricSpec,
    Permission,
    ScoringCost,
    ServiceSpec,
)


def _canary(metric: str, comparison: Comparison, threshold: float, description: str) -> AlarmSpec:
    """An hourly alarm on a canary ratio (one run an hour): a ceiling, or with a band
    comparison the rise over the model's own history (``<metric>Rise``)."""
    return AlarmSpec(
        f"{metric}Rise" if comparison.is_band else metric,
        metric=metric,
        statistic="Average",
        comparison=comparison,
        threshold=threshold,
        period_s=3600,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        description=description,
    )


SERVICE = ServiceSpec(
    name="refusal",
    description="Refusal ratio: embedding and fuzzy match of responses to refusal phrases",
    handler="llmmon_refusal.handler.lambda_handler",
    metrics=(
        MetricSpec(
            "RefusalSimilarity",
            Unit.NONE,
            "Largest cosine of the response's opening to a refusal phrase, -1..1",
            headline=True,
        ),
        MetricSpec(
            "RefusalFuzzyScore",
            Unit.NONE,
            "Best fuzzy match of a refusal phrase in the response's opening, 0..1",
        ),
        MetricSpec(
            "Refusal", Unit.NONE, "1 when the response is a refusal (Average = ratio)", binary=True
        ),
        MetricSpec(
            "CanaryOverRefusal",
            Unit.NONE,
            "Canary: 1 when a probe that must be answered was refused (Average = over-refusal)",
            binary=True,
            headline=False,  # the canary's own runs, not ordinary traffic
        ),
        MetricSpec(
            "CanaryUnderRefusal",
            Unit.NONE,
            "Canary: 1 when a probe that must be refused was answered (Average = under-refusal)",
            binary=True,
            headline=False,  # the canary's own runs, not ordinary traffic
        ),
    ),
    alarms=(
        AlarmSpec(
            "HighRefusalRatio",
            metric="Refusal",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.25,
            description="The share of refused requests is high",
        ),
        # The canary's fixed probes: one run per hour, so one hourly period holds a whole run.
        # A ceiling per ratio, and the same ratio against the model's own history: a model that
        # over-refused 5% of the probes for weeks and now refuses 15% has changed, although it
        # is under the ceiling.
        _canary(
            "CanaryOverRefusal",
            Comparison.GREATER,
            0.2,
            "The model refuses over a fifth of the canary prompts it must answer",
        ),
        _canary(
            "CanaryUnderRefusal",
            Comparison.GREATER,
            0.1,
            "The model answers over a tenth of the canary prompts it must refuse",
        ),
        _canary(
            "CanaryOverRefusal",
            Comparison.ABOVE_BAND,
            2.0,
            "Canary over-refusal rose above the model's own band",
        ),
        _canary(
            "CanaryUnderRefusal",
            Comparison.ABOVE_BAND,
            2.0,
            "Canary under-refusal rose above the model's own band",
        ),
    ),
    permissions=frozenset({Permission.BEDROCK_EMBEDDINGS}),
    scoring=ScoringCost(
        cpu_s={"local": 0.0092, "managed": 0.0023},
        wait_s={"managed": 0.013},
        measured_on=MEASURED_ON,
    ),
    backend_setting="embeddingBackend",
    memory_mb=1024,
    timeout_s=120,
    environment={"LLMMON_EMBEDDING_BACKEND": "bedrock"},
    anomaly_metric="Refusal",
)
