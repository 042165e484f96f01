"""Lambda entry point of the attacks service.

The shared pipeline (SQS batch, S3 log objects, checkpoints, idempotency, metric sink) with this
service's scorer."""

from __future__ import annotations

from llmmon_attacks.compute import score_batch
from llmmon_attacks.spec import SERVICE
from llmmon_shared.logs import S3Reader
from llmmon_shared.metrics import MetricSink
from llmmon_shared.runtime import Pipeline, build_pipeline, lambda_entry
from llmmon_shared.settings import ServiceSettings


class AttacksSettings(ServiceSettings):
    service: str = "attacks"


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start; the local worker and `llmmon score` call it too."""
    return build_pipeline(
        SERVICE.name,
        score_batch,
        SERVICE.units,
        AttacksSettings(),
        s3,
        sink,
        detail=SERVICE.detail_metrics,
    )


pipeline, lambda_handler = lambda_entry(create_pipeline)
