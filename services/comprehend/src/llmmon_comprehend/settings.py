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
from llmmon_comprehend.compute import DEFAULT_GATES, ComprehendScorer, ToxicityGate
from llmmon_shared.resilience import harden
from llmmon_shared.settings import ServiceSettings


class ComprehendSettings(ServiceSettings):
    service: str = "comprehend"
    comprehend_backend: Literal["comprehend", "local", "cascade"] = "local"
    """``comprehend``: Amazon Comprehend; ``local``: VADER, alt-profanity-check's model and the
    MiniLM hate-speech head; ``cascade``: Comprehend, with the local toxicity model as a gate in
    front of DetectToxicContent (:class:`ToxicityGate`)."""
    local_hate_speech: bool = True
    """Local backend: also score implicit hate (HATE_SPEECH) with the MiniLM head (loads the
    sentence embedder: about +0.4 s cold start and +100 MB)."""
    toxicity_gate_hate_speech: float = Field(default=DEFAULT_GATES["HATE_SPEECH"], ge=0.0, le=1.0)
    """``cascade``: local HATE_SPEECH at or above which Comprehend scores the response."""
    toxicity_gate_profanity: float = Field(default=DEFAULT_GATES["PROFANITY"], ge=0.0, le=1.0)
    """``cascade``: local PROFANITY at or above which Comprehend scores the response."""
    toxicity_calibration_rate: float = Field(default=0.02, ge=0.0, le=1.0)
    """``cascade``: share of responses (by request id) Comprehend scores whatever the gate says."""
    sentiment_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of responses (by request id) whose sentiment is scored."""
    toxicity_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of responses (by request id) whose toxicity is scored."""
    language: str = "en"
    toxic_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    score_prompt: bool = False


def make_backends(settings: ComprehendSettings) -> tuple[SentimentBackend, ToxicityBackend]:
    """Sentiment and toxicity backends (for ``cascade``: Comprehend's; the gate is separate)."""
    if settings.comprehend_backend in ("comprehend", "cascade"):
        from llmmon_shared.aws import client

        backend = harden(
            ComprehendBackend(client("comprehend"), language=settings.language), settings
        )
        return backend, backend
    return harden(VaderSentiment(), settings), local_toxicity(settings)


def local_toxicity(settings: ComprehendSettings) -> ToxicityBackend:
    hate = HateSpeechHead() if settings.local_hate_speech else None
    return harden(LocalToxicity(ProfanityToxicity(), hate), settings)


def make_scorer(settings: ComprehendSettings) -> ComprehendScorer:
    """The service's scorer as the settings describe it."""
    sentiment, toxicity = make_backends(settings)
    gate = None
    if settings.comprehend_backend == "cascade":
        gates = {
            "HATE_SPEECH": settings.toxicity_gate_hate_speech,
            "PROFANITY": settings.toxicity_gate_profanity,
        }
        gate = ToxicityGate(local_toxicity(settings), gates, settings.toxicity_calibration_rate)
    return ComprehendScorer(
        sentiment,
        toxicity,
        settings.toxic_threshold,
        settings.score_prompt,
        gate,
        settings.sentiment_sample_rate,
        settings.toxicity_sample_rate,
    )
