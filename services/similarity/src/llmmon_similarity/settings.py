"""Settings of the similarity service (environment, prefix ``LLMMON_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmmon_shared.embeddings import (
    Embedder,
    LocalMiniLMEmbedder,
    VectorCache,
)
from llmmon_shared.embeddings import make_embedder as shared_make_embedder
from llmmon_shared.resilience import harden
from llmmon_shared.settings import ServiceSettings


class SimilaritySettings(ServiceSettings):
    service: str = "similarity"
    embedding_backend: Literal["bedrock", "local"] = "local"
    """``bedrock``: Titan Text Embeddings V2; ``local``: MiniLM on onnxruntime."""
    titan_dimensions: Literal[256, 512, 1024] = 512
    embedding_workers: int = Field(default=8, ge=1, le=64)
    relevance: bool = True
    """``Relevance`` beside the cosine: MiniLM reads prompt and response word piece by word
    piece, whatever the embedding backend (the function's zip carries MiniLM). ``false``: the
    cosine only."""


TOKEN_CACHE_ENTRIES = 256
"""Texts whose word-piece vectors a warm container keeps for Relevance (at most 50 MB: 256
texts of 256 word pieces in float16): enough for the prompts many requests share."""


def make_relevance(settings: SimilaritySettings) -> LocalMiniLMEmbedder | None:
    """The relevance model, or None when the setting turns it off."""
    if not settings.relevance:
        return None
    return LocalMiniLMEmbedder(
        cache=VectorCache(settings.embedding_cache),
        token_cache=VectorCache(min(settings.embedding_cache, TOKEN_CACHE_ENTRIES)),
        variant=settings.embedder_variant,
    )


def make_embedder(
    settings: SimilaritySettings, relevance: LocalMiniLMEmbedder | None = None
) -> Embedder:
    """The similarity embedder; on the local backend, the relevance model itself when there is
    one (one model in memory, one forward pass per text for both scores)."""
    if relevance is not None and settings.embedding_backend == "local":
        return harden(relevance, settings)
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
