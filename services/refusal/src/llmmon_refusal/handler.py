"""Lambda entry point: the shared pipeline with the refusal scorer."""

from __future__ import annotations

import logging

from llmmon_refusal.compute import Decision, RefusalScorer
from llmmon_refusal.settings import RefusalSettings, make_detector
from llmmon_refusal.spec import SERVICE
from llmmon_shared.explain import decision_line, explain_logger
from llmmon_shared.logs import S3Reader
from llmmon_shared.metrics import MetricSink
from llmmon_shared.runtime import Pipeline, build_pipeline, lambda_entry

logger = logging.getLogger("llmmon.refusal.decisions")


def log_decision(request_id: str, decision: Decision) -> None:
    """One line per decision: the reference ids that matched and the scores. No text."""
    logger.info(decision_line("refusal", request_id, decision))


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start: settings, phrases and their embeddings (cached)."""
    settings = RefusalSettings()
    if settings.explain:
        explain_logger(logger)
    scorer = RefusalScorer(make_detector(settings), log_decision if settings.explain else None)
    return build_pipeline(
        SERVICE.name, scorer, SERVICE.units, settings, s3, sink, detail=SERVICE.detail_metrics
    )


pipeline, lambda_handler = lambda_entry(create_pipeline)
