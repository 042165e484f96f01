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

logger = logging.getLogger("llmmon.refusal.decisions")


def decision_line(request_id: str, decision: Decision) -> str:
    """``refusal decision request_id=... refusal=... rule=... similarity=... ...``: the rule,
    reference phrase ids, scores and cues, in the message itself (so a plain-text log format
    keeps them too). Ids and numbers only, never text."""
    fields = {"request_id": request_id, **asdict(decision)}
    parts = []
    for key, value in fields.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, tuple | list):
            value = ",".join(value) or "-"
        parts.append(f"{key}={value}")
    return "refusal decision " + " ".join(parts)


def log_decision(request_id: str, decision: Decision) -> None:
    """One line per decision: the reference ids that matched and the scores. No text."""
    logger.info(decision_line(request_id, decision))


def explain_logger() -> None:
    """``LLMMON_EXPLAIN=true`` shows every decision whatever ``LLMMON_LOG_LEVEL`` says: the
    decision logger logs at INFO, to the handlers the process has (Lambda's, the local worker's),
    or to stderr where there are none (``llmmon score``)."""
    logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start: settings, phrases and their embeddings (cached)."""
    settings = RefusalSettings()
    if settings.explain:
        explain_logger()
    scorer = RefusalScorer(make_detector(settings), log_decision if settings.explain else None)
    return build_pipeline(
        SERVICE.name, scorer, SERVICE.units, settings, s3, sink, detail=SERVICE.detail_metrics
    )


pipeline, lambda_handler = lambda_entry(create_pipeline)
