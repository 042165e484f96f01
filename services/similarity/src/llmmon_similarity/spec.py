"""The similarity service's declaration (read by infra, the local stack and the demo)."""

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

SERVICE = ServiceSpec(
    name="similarity",
    description="Relevance of answers: cosine of prompt and response embeddings, and Relevance",
    handler="llmmon_similarity.handler.lambda_handler",
    metrics=(
        MetricSpec(
            "PromptResponseSimilarity",
            Unit.NONE,
            "Cosine of the last user prompt's and the response's embeddings, -1..1",
        ),
        MetricSpec(
            "Relevance",
            Unit.NONE,
            "Whether the response addresses this prompt: mean of the cosine and the response's "
            "word-piece coverage by the prompt (MiniLM), -1..1",
        ),
    ),
    alarms=(
        AlarmSpec(
            "LowSimilarity",
            metric="PromptResponseSimilarity",
            statistic="Average",
            comparison=Comparison.LESS,
            threshold=0.2,
            description="Answers drift away from what users ask (mean similarity is low)",
        ),
        AlarmSpec(
            "LowRelevance",
            metric="Relevance",
            statistic="Average",
            comparison=Comparison.LESS,
            threshold=0.3,
            description="Answers address other requests than the ones asked (mean relevance "
            "is low: answers to the request average about 0.5, to a neighbouring task 0.27, "
            "unrelated ones 0.13)",
        ),
    ),
    permissions=frozenset({Permission.BEDROCK_EMBEDDINGS}),
    local_model=True,
    scoring=ScoringCost(
        cpu_s={"local": 0.069, "managed": 0.080},
        wait_s={"managed": 0.015},
        measured_on=MEASURED_ON,
    ),
    backend_setting="embeddingBackend",
    memory_mb=1024,
    timeout_s=120,
    environment={"LLMMON_EMBEDDING_BACKEND": "bedrock"},
)
