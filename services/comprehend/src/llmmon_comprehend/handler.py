"""Lambda entry point: the shared pipeline with the sentiment and toxicity scorer."""

from __future__ import annotations

import logging

from llmmon_comprehend.settings import ComprehendSettings, make_scorer
from llmmon_comprehend.spec import SERVICE
from llmmon_shared.logs import S3Reader
from llmmon_shared.metrics import MetricSink
from llmmon_shared.runtime import Pipeline, build_pipeline, lambda_entry


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start: settings, clients and the local models if chosen."""
    settings = ComprehendSettings()
    scorer = make_scorer(settings)
    logging.getLogger("llmmon").info(
        "comprehend backends",
        extra={
            "sentiment": scorer.sentiment.name,
            "toxicity": scorer.toxicity.name,
            "toxicity_labels": list(scorer.toxicity.labels),
            "toxicity_gate": scorer.gate.local.name if scorer.gate else None,
        },
    )
    return build_pipeline(
        SERVICE.name,
        scorer,
        SERVICE.units,
        settings,
        s3,
        sink,
        reads_prompt=settings.score_prompt,
        detail=SERVICE.detail_metrics,
    )


pipeline, lambda_handler = lambda_entry(create_pipeline)
