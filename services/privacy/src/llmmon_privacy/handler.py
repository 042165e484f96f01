"""Lambda entry point of the privacy service: the shared pipeline with the sensitive-data
scanner. It reads prompts and answers; a call whose answer a guardrail withheld still has its
prompt scanned (the answer is not the model's to judge)."""

from __future__ import annotations

from llmmon_privacy.compute import score_batch
from llmmon_privacy.spec import SERVICE
from llmmon_shared.logs import S3Reader
from llmmon_shared.metrics import MetricSink
from llmmon_shared.runtime import Pipeline, build_pipeline, lambda_entry
from llmmon_shared.settings import ServiceSettings


class PrivacySettings(ServiceSettings):
    service: str = "privacy"


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start: regular expressions only, no model."""
    return build_pipeline(
        SERVICE.name,
        score_batch,
        SERVICE.units,
        PrivacySettings(),
        s3,
        sink,
        reads_prompt=True,
        detail=SERVICE.detail_metrics,
    )


pipeline, lambda_handler = lambda_entry(create_pipeline)
