"""The similarity service's declaration (read by infra, the local stack and the demo)."""

from __future__ import annotations

from llmmon_shared.metrics import Unit
from llmmon_shared.spec import AlarmSpec, Comparison, MetricSpec, Permission, ServiceSpec

SERVICE = ServiceSpec(
    name="similarity",
    description="Cosine similarity of prompt and response embeddings (relevance of answers)",
    handler="llmmon_similarity.handler.lambda_handler",
    metrics=(
        MetricSpec(
            "PromptResponseSimilarity",
            Unit.NONE,
            "Cosine of the last user prompt's and the response's embeddings, -1..1",
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
    ),
    permissions=frozenset({Permission.BEDROCK_EMBEDDINGS}),
    memory_mb=1024,
    timeout_s=120,
    environment={"LLMMON_EMBEDDING_BACKEND": "bedrock"},
)
