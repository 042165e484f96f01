"""Lambda entry point: the shared pipeline with the traffic scorer (no model, no text read)."""

from __future__ import annotations

from llmmon_shared.logs import S3Reader
from llmmon_shared.metrics import MetricSink
from llmmon_shared.runtime import Pipeline, build_pipeline, lambda_entry
from llmmon_shared.settings import ServiceSettings
from llmmon_traffic.compute import score_batch
from llmmon_traffic.spec import SERVICE


class TrafficSettings(ServiceSettings):
    service: str = "traffic"


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start. The response text is never read, so a response a guardrail
    withheld is still counted here (that is what this service measures)."""
    return build_pipeline(
        SERVICE.name,
        score_batch,
        SERVICE.units,
        TrafficSettings(),
        s3,
        sink,
        reads_response=False,
        detail=SERVICE.detail_metrics,
    )


pipeline, lambda_handler = lambda_entry(create_pipeline)
