from __future__ import annotations

import pytest

from llmmon_shared.embeddings import LocalMiniLMEmbedder


@pytest.fixture(scope="session")
def minilm() -> LocalMiniLMEmbedder:
    return LocalMiniLMEmbedder()
