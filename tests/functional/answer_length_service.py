"""A service as a user adds one (declaration, pure scorer, handler), for the tests that check
that every table derives its columns from the declarations: answer length in characters."""

from __future__ import annotations

from collections.abc import Sequence

from llmmon_shared.extract import Interaction
from llmmon_shared.logs import S3Reader
from llmmon_shared.metrics import MetricSink, Unit
from llmmon_shared.runtime import Pipeline, Scores, build_pipeline
from llmmon_shared.settings import ServiceSettings
from llmmon_shared.spec import AlarmSpec, Comparison, MetricSpec, ServiceSpec

SERVICE = ServiceSpec(
    name="lengths",
    description="Answer length",
    handler="tests.functional.answer_length_service.lambda_handler",
    metrics=(
        MetricSpec("AnswerChars", Unit.COUNT, "Characters of the answer"),
        MetricSpec(
            "LongAnswer", Unit.NONE, "1 when the answer is over 200 characters", binary=True
        ),
    ),
    alarms=(
        AlarmSpec(
            "LongAnswers",
            metric="LongAnswer",
            statistic="Average",
            comparison=Comparison.GREATER,
            threshold=0.5,
        ),
    ),
)


def score_batch(batch: Sequence[Interaction]) -> list[Scores]:
    return [
        {"AnswerChars": float(len(i.completion)), "LongAnswer": float(len(i.completion) > 200)}
        for i in batch
    ]


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    return build_pipeline(
        SERVICE.name,
        score_batch,
        SERVICE.units,
        ServiceSettings(service="lengths"),
        s3,
        sink,
        detail=SERVICE.detail_metrics,
    )
