"""Lambda entry point of the attacks service: the shared pipeline with the prompt-attack scorer.

It reads prompts, not answers: a call whose answer a guardrail withheld is still judged (the
prompt is what was sent), and the refusal service's decisions stay its own (the two meet by
request id where a person reads them)."""

from __future__ import annotations

import logging

from llmmon_attacks.compute import AttackScorer
from llmmon_attacks.detector import Decision, default_head
from llmmon_attacks.spec import SERVICE
from llmmon_shared.context import parse_delimiters
from llmmon_shared.explain import decision_line, explain_logger
from llmmon_shared.logs import S3Reader
from llmmon_shared.metrics import MetricSink
from llmmon_shared.runtime import Pipeline, build_pipeline, lambda_entry
from llmmon_shared.settings import ServiceSettings

logger = logging.getLogger("llmmon.attacks.decisions")


class AttackSettings(ServiceSettings):
    service: str = "attacks"
    attack_threshold: float | None = None
    """The head's decision threshold (default: the trained one, 1% false positives on benign
    prompts it was not trained on)."""
    context_delimiters: str = ""
    """An application's own passage delimiters, ``START|END`` pairs separated by commas."""
    explain: bool = False
    """Log every decision (score, kind, part, cue names, nearest family id; never text)."""


def log_decision(request_id: str, decision: Decision) -> None:
    """``attack decision request_id=... score=... attack=... kind=... part=... cues=...``."""
    logger.info(decision_line("attack", request_id, decision))


def create_pipeline(s3: S3Reader | None = None, sink: MetricSink | None = None) -> Pipeline:
    """Built once per cold start: the MiniLM embedder and the trained head."""
    settings = AttackSettings()
    if settings.explain:
        explain_logger(logger)
    head = default_head()
    if settings.attack_threshold is not None:
        head.threshold = settings.attack_threshold
    scorer = AttackScorer(
        head.decide,
        parse_delimiters(settings.context_delimiters),
        log_decision if settings.explain else None,
    )
    return build_pipeline(
        SERVICE.name,
        scorer,
        SERVICE.units,
        settings,
        s3,
        sink,
        reads_response=False,
        detail=SERVICE.detail_metrics,
    )


pipeline, lambda_handler = lambda_entry(create_pipeline)
