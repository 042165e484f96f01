"""Pure scoring: prompt/response cosine similarity for a batch of interactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmmon_shared.embeddings import Embedder, cosine_rows
from llmmon_shared.extract import Interaction
from llmmon_shared.runtime import Scores

METRIC = "PromptResponseSimilarity"


@dataclass
class SimilarityScorer:
    """Embeds prompts and responses of the whole batch in one call (identical texts once) and
    returns their cosine. An interaction without a user prompt gets no similarity score."""

    embedder: Embedder

    def __call__(self, batch: Sequence[Interaction]) -> list[Scores]:
        scorable = [i for i, item in enumerate(batch) if item.prompt.strip()]
        results: list[Scores] = [{} for _ in batch]
        if not scorable:
            return results
        texts = [batch[i].prompt for i in scorable] + [batch[i].completion for i in scorable]
        vectors = self.embedder.embed(texts)
        half = len(scorable)
        similarities = cosine_rows(vectors[:half], vectors[half:])
        for index, similarity in zip(scorable, similarities, strict=True):
            results[index] = {METRIC: float(similarity)}
        return results
