"""Settings of the comprehend service (environment, prefix ``LLMMON_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmmon_comprehend.backends import (
    ComprehendBackend,
    HateSpeechHead,
    LocalToxicity,
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
    """``comprehend``: Amazon Comprehend; ``local``: VADER, alt-profanity-check's model and the
    MiniLM hate-speech head."""
    local_hate_speech: bool = True
    """Local backend: also score implicit hate (HATE_SPEECH) with the MiniLM head (loads the
    sentence embedder: about +0.4 s cold start and +100 MB)."""
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
    hate = HateSpeechHead() if settings.local_hate_speech else None
    return harden(VaderSentiment(), settings), harden(
        LocalToxicity(ProfanityToxicity(), hate), settings
    )
