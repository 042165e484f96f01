"""Lambda entry point: the shared pipeline with the refusal scorer."""

from __future__ import annotations

import logging
from dataclasses import asdict

from llmmon_refusal.compute import Decision, RefusalScorer
from llmmon_refusal.settings import RefusalSettings, make_detector
from llmmon_refusal.spec import SERVICE
from llmmon_shared.logs import S3Reader
from llmmon_shared.metrics import MetricSink
from llmmon_shared.runtime import Pipeline, build_pipeline, lambda_entry

logger = logging.getLogger("llmmon.refusal")


def log_decision(request_id: str, decision: Decision) -> None:
    """One line per decision: the reference ids that matched and the scores. No text."""
    logger.info("refusal decision", extra={"request_id": request_id, **asdict(decision)})


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start: settings, phrases and their embeddings (cached)."""
    settings = RefusalSettings()
    scorer = RefusalScorer(make_detector(settings), log_decision if settings.explain else None)
    return build_pipeline(SERVICE.name, scorer, SERVICE.units, settings, s3, sink)


pipeline, lambda_handler = lambda_entry(create_pipeline)
