"""Settings of the comprehend service (environment, prefix ``LLMMON_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmmon_comprehend.backends import (
    ComprehendBackend,
    ProfanityToxicity,
    SentimentBackend,
    ToxicityBackend,
    VaderSentiment,
)
from llmmon_shared.resilience import harden
from llmmon_shared.settings import ServiceSettings


class ComprehendSettings(ServiceSettings):
    service: str = "comprehend"
    comprehend_backend: Literal["comprehend", "local"] = "local"
    """``comprehend``: Amazon Comprehend; ``local``: VADER + alt-profanity-check."""
    language: str = "en"
    toxic_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    score_prompt: bool = False


def make_backends(settings: ComprehendSettings) -> tuple[SentimentBackend, ToxicityBackend]:
    if settings.comprehend_backend == "comprehend":
        from llmmon_shared.aws import client

        backend = harden(
            ComprehendBackend(client("comprehend"), language=settings.language), settings
        )
        return backend, backend
    return harden(VaderSentiment(), settings), harden(ProfanityToxicity(), settings)
