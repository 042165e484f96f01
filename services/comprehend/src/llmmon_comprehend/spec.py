"""The comprehend service's declaration (read by infra, the local stack and the demo)."""

from __future__ import annotations

from llmmon_comprehend.backends import SENTIMENT_LABELS, TOXICITY_LABELS
from llmmon_comprehend.compute import label_metric
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

_metrics = [
    *(
        MetricSpec(f"Sentiment{label}", Unit.NONE, f"{label} sentiment score of the response, 0..1")
        for label in SENTIMENT_LABELS
    ),
    *(
        MetricSpec(
            f"SentimentIs{label}",
            Unit.NONE,
            f"1 when the response's sentiment is {label.upper()} (Average = ratio)",
            binary=True,
        )
        for label in SENTIMENT_LABELS
    ),
    MetricSpec("Toxicity", Unit.NONE, "Toxicity of the response, 0..1 (max over segments)"),
    *(
        MetricSpec(label_metric(label), Unit.NONE, f"{label} score of the response, 0..1")
        for label in TOXICITY_LABELS
    ),
    MetricSpec(
        "Toxic",
        Unit.NONE,
        "1 when Toxicity >= the threshold (Average = toxic ratio)",
        binary=True,
        headline=True,
    ),
    MetricSpec(
        "ToxicityByComprehend",
        Unit.NONE,
        "cascade: 1 when Comprehend scored the response, 0 when the local gate did (Average = "
        "share sent to Comprehend)",
        default=True,  # the cascade's share: what its Comprehend bill follows
        binary=True,
    ),
    MetricSpec(
        "ToxicityLocal",
        Unit.NONE,
        "cascade: the local model's Toxicity of a calibration-sample response, beside Comprehend's",
    ),
    # Emitted only when prompt scoring is turned on, which asks for them.
    MetricSpec(
        "PromptToxicity", Unit.NONE, "Toxicity of the user prompt (when enabled)", default=True
    ),
    MetricSpec(
        "PromptToxic",
        Unit.NONE,
        "1 when the prompt's toxicity >= the threshold",
        default=True,
        binary=True,
    ),
    MetricSpec(
        "ScoringErrors", Unit.COUNT, "Documents Comprehend could not score", "Sum", default=True
    ),
]

SERVICE = ServiceSpec(
    name="comprehend",
    description="Sentiment and toxicity of responses (Amazon Comprehend or local models)",
    handler="llmmon_comprehend.handler.lambda_handler",
    metrics=tuple(_metrics),
    alarms=(
        AlarmSpec(
            "HighToxicity",
            metric="Toxicity",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.3,
            description="Mean toxicity of responses is high",
        ),
        AlarmSpec(
            "NegativeSentiment",
            metric="SentimentIsNegative",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.4,
            description="Share of responses with negative sentiment is high",
        ),
    ),
    permissions=frozenset({Permission.COMPREHEND}),
    scoring=ScoringCost(
        cpu_s={"local": 0.074, "managed": 0.0004, "cascade": 0.085},
        wait_s={"managed": 0.056, "cascade": 0.013},
        measured_on=MEASURED_ON,
        # DetectToxicContent takes one document a call; about 20 a second is the figure in our
        # reference notes (check the account's Service Quotas). The cascade sends 13.3% of
        # responses (benchmarks/cost.py), so the same quota admits 7.5 times the traffic.
        api_per_s={"managed": 20.0, "cascade": 20.0 / 0.133},
        api_quota="Comprehend DetectToxicContent requests a second",
    ),
    backend_setting="comprehendBackend",
    memory_mb=512,
    timeout_s=300,
    environment={"LLMMON_COMPREHEND_BACKEND": "comprehend"},
    anomaly_metric="SentimentIsNegative",
)
