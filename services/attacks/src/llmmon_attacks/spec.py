"""The attacks service's declaration.

Read by the Pulumi program, the local stack, the demo, ``llmmon score``, ``cost`` and
``capacity``. Metric names are global in the namespace: keep them distinct from every other
service's."""

from __future__ import annotations

from llmmon_shared.metrics import Unit
from llmmon_shared.spec import AlarmSpec, Comparison, MetricSpec, ScoringCost, ServiceSpec

SERVICE = ServiceSpec(
    name="attacks",
    description="Prompt attacks: jailbreaks and injections in the prompt and the content inserted into it",
    handler="llmmon_attacks.handler.lambda_handler",
    metrics=(
        # An alarm reads it: in the default (lean) set and a column of every per-model table.
        MetricSpec(
            "AttacksEmptyAnswer",
            Unit.NONE,
            "1 when the answer has no words (Average = the share of empty answers)",
            binary=True,
        ),
        # No alarm reads it: opt-in detail (LLMMON_DETAIL_METRICS, detailMetrics in the stack).
        MetricSpec("AttacksAnswerWords", Unit.COUNT, "Words of the answer"),
    ),
    alarms=(
        AlarmSpec(
            "HighAttacksEmptyAnswers",
            metric="AttacksEmptyAnswer",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.05,
            description="The share of empty answers is high",
        ),
    ),
    # CPU-seconds per interaction of the whole pipeline, per backend: what `llmmon capacity`
    # sizes the function from. Measure it (`uv run python benchmarks/capacity.py`) and write
    # the figure and the CPU it was measured on here.
    scoring=ScoringCost({"local": 0.0002}, measured_on="not yet measured"),
    memory_mb=256,
)
