"""Settings of the similarity service (environment, prefix ``LLMMON_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmmon_shared.embeddings import Embedder
from llmmon_shared.embeddings import make_embedder as shared_make_embedder
from llmmon_shared.resilience import harden
from llmmon_shared.settings import ServiceSettings


class SimilaritySettings(ServiceSettings):
    service: str = "similarity"
    embedding_backend: Literal["bedrock", "local"] = "local"
    """``bedrock``: Titan Text Embeddings V2; ``local``: MiniLM on onnxruntime."""
    titan_dimensions: Literal[256, 512, 1024] = 512
    embedding_workers: int = Field(default=8, ge=1, le=64)


def make_embedder(settings: SimilaritySettings) -> Embedder:
    return harden(
        shared_make_embedder(
            settings.embedding_backend,
            settings.titan_dimensions,
            settings.embedding_workers,
            settings.embedding_cache,
            variant=settings.embedder_variant,
        ),
        settings,
    )
