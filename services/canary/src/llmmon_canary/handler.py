"""Lambda entry point for the canary schedule (EventBridge Scheduler invokes it, default hourly)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator

from llmmon_canary.probes import load_probes
from llmmon_canary.sender import RunReport, send_probes
from llmmon_shared.metrics import MetricPoint, MetricSink, Unit
from llmmon_shared.settings import ServiceSettings, split_list

logger = logging.getLogger("llmmon.canary")


class CanarySettings(ServiceSettings):
    service: str = "canary"
    canary_models: list[str] = Field(default_factory=list)
    """Model ids (or inference profile ids) that get the probe set."""
    canary_probes_file: str | None = None
    """A team's own probe set (JSON, the shipped layout); default: the shipped XSTest set."""
    canary_max_tokens: int = Field(default=256, ge=1, le=4096)
    canary_concurrency: int = Field(default=4, ge=1, le=32)
    """Converse calls in flight per model (a run of 106 probes one at a time takes minutes)."""

    @field_validator("canary_models", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        return split_list(value)


def report_points(report: RunReport, now: datetime) -> list[MetricPoint]:
    """The run's own metrics, per model: probes answered, probes failed by reason, tokens."""
    points = [
        MetricPoint("CanaryProbesSent", n, Unit.COUNT, (("ModelId", model),), now)
        for model, n in report.sent.items()
    ]
    points += [
        MetricPoint(
            "CanaryProbeFailures", n, Unit.COUNT, (("ModelId", model), ("Reason", code)), now
        )
        for (model, code), n in report.failed.items()
    ]
    for name, counts in (
        ("CanaryInputTokens", report.input_tokens),
        ("CanaryOutputTokens", report.output_tokens),
    ):
        points += [
            MetricPoint(name, n, Unit.COUNT, (("ModelId", model),), now)
            for model, n in counts.items()
        ]
    return points


def run(settings: CanarySettings, client: Any, sink: MetricSink) -> RunReport:
    probes = load_probes(settings.canary_probes_file)
    report = send_probes(
        client,
        settings.canary_models,
        probes,
        settings.canary_max_tokens,
        workers=settings.canary_concurrency,
    )
    sink.add(report_points(report, datetime.now(UTC)))
    sink.flush()
    logger.info(
        "canary run",
        extra={
            "version": probes.version,
            "sent": dict(report.sent),
            "failed": {f"{m}/{c}": n for (m, c), n in report.failed.items()},
        },
    )
    return report


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from llmmon_shared.aws import client
    from llmmon_shared.runtime import make_sink

    settings = CanarySettings()
    report = run(settings, client("bedrock-runtime"), make_sink(settings))
    return {
        "sent": sum(report.sent.values()),
        "failed": sum(report.failed.values()),
    }
