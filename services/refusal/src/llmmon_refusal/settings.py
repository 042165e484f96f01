"""Settings of the refusal service (environment, prefix ``LLMMON_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmmon_refusal.compute import RefusalDetector
from llmmon_refusal.phrases import load_phrases
from llmmon_shared.settings import ServiceSettings


class RefusalSettings(ServiceSettings):
    service: str = "refusal"
    embedding_backend: Literal["bedrock", "local"] = "local"
    titan_dimensions: Literal[256, 512, 1024] = 512
    refusal_fuzzy_threshold: float = Field(default=0.86, ge=0.0, le=1.0)
    refusal_similarity_threshold: float = Field(default=0.75, ge=-1.0, le=1.0)
    refusal_margin: float = Field(default=0.15, ge=0.0, le=2.0)
    refusal_extra_phrases: str | None = None
    """A team's own phrases as JSON: ``{"refusal": {"family": [{"id","text"}]},
    "compliant": [...]}``."""
    refusal_phrases_file: str | None = None
    """The same JSON in a file (for example shipped in the function's package)."""
    explain: bool = False
    """Log every decision (reference id and scores, never text) at INFO."""


def make_detector(settings: RefusalSettings) -> RefusalDetector:
    from llmmon_shared.embeddings import make_embedder
    from llmmon_shared.resilience import harden

    return RefusalDetector(
        harden(make_embedder(settings.embedding_backend, settings.titan_dimensions), settings),
        load_phrases(settings.refusal_extra_phrases, settings.refusal_phrases_file),
        fuzzy_threshold=settings.refusal_fuzzy_threshold,
        similarity_threshold=settings.refusal_similarity_threshold,
        margin=settings.refusal_margin,
    )
