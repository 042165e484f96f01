"""Compute the vectors of the refusal service's shipped reference phrases ahead of time.

The refusal service compares every response opening with its reference phrases (refusals per
model family, and compliant openings). Embedding them at every cold start cost about 0.15 to
0.4 s; the service now loads these vectors instead (``VectorCache.seed``), keyed by a digest of
each phrase, for the embedder that computed them. Phrases a team adds, or another embedder
(Titan), are still embedded at cold start. It holds one set of vectors per MiniLM variant.

Run after changing ``llmmon_refusal/data/phrases.json``:
``uv run python scripts/reference_vectors.py``. A unit test fails when the file no longer covers
the shipped phrases or its vectors no longer match the embedder's.
"""

from __future__ import annotations

from llmmon_refusal.phrases import load_phrases
from llmmon_refusal.settings import reference_vectors_path
from llmmon_shared.embeddings import MINILM_VARIANTS, LocalMiniLMEmbedder, save_vectors


def main() -> None:
    phrases = load_phrases()
    texts = [p.text for p in phrases.refusal + phrases.compliant]
    embedders = [LocalMiniLMEmbedder(variant=v) for v in MINILM_VARIANTS]
    path = reference_vectors_path()
    save_vectors(path, embedders, texts)
    ids = ", ".join(e.model_id for e in embedders)
    print(f"wrote {len(set(texts))} vectors of each of {ids} to {path}")


if __name__ == "__main__":
    main()
