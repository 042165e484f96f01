"""Settings of the similarity service (environment, prefix ``LLMMON_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmmon_shared.embeddings import Embedder
from llmmon_shared.settings import ServiceSettings


class SimilaritySettings(ServiceSettings):
    service: str = "similarity"
    embedding_backend: Literal["bedrock", "local"] = "local"
    """``bedrock``: Titan Text Embeddings V2; ``local``: MiniLM on onnxruntime."""
    titan_dimensions: Literal[256, 512, 1024] = 512
    embedding_workers: int = Field(default=8, ge=1, le=64)


def make_embedder(settings: SimilaritySettings) -> Embedder:
    from llmmon_shared.embeddings import LocalMiniLMEmbedder, TitanEmbedder

    if settings.embedding_backend == "bedrock":
        from llmmon_shared.aws import client

        return TitanEmbedder(
            client("bedrock-runtime"),
            dimensions=settings.titan_dimensions,
            max_workers=settings.embedding_workers,
        )
    return LocalMiniLMEmbedder()
