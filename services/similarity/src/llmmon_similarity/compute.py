"""Pure scoring: prompt/response cosine similarity and relevance for a batch of interactions.

``PromptResponseSimilarity`` is the cosine of the prompt's and the response's sentence
embeddings (the similarity backend's: Titan or MiniLM). It tells an answer from an unrelated
one, but an answer to a *neighbouring* request (same topic, another task) is close to the prompt
too.

``Relevance`` reads the two texts word piece by word piece (MiniLM, whatever the similarity
backend): for each word piece of the response, the closest word piece of the prompt (cosine of
their contextual vectors), averaged over the response; then a weighted mean of that coverage
(3/4) and the sentence cosine (1/4). An answer made of what the prompt asks about covers it;
an answer to another request brings words the prompt does not account for. Chosen over a
fine-tuned cross-encoder and a trained head by pairwise accuracy split by instruction
(docs/metrics.md, "Relevance").

Both are measured against the prompt's own part: lines that recur across prompts (a template's
instructions, a shared preamble) are left out once seen in three different prompts
(``SharedLines``), as they would outweigh the question, or push it past the embedder's window.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from llmmon_shared.embeddings import Embedder, LocalMiniLMEmbedder, Matrix, cosine_rows
from llmmon_shared.extract import Interaction
from llmmon_shared.runtime import Scores
from llmmon_shared.text import SharedLines

METRIC = "PromptResponseSimilarity"
RELEVANCE = "Relevance"
COSINE_WEIGHT = 0.25
"""Relevance = COSINE_WEIGHT x cosine + the rest x coverage: chosen by pairwise accuracy on
Self-Instruct, five folds by instruction (4 of 5 folds chose it; scripts/relevance_figures.py)."""


def coverage(prompt_tokens: Matrix, response_tokens: Matrix) -> float:
    """Mean over the response's word pieces of their largest cosine with any of the prompt's
    (rows L2-normalised)."""
    if not len(prompt_tokens) or not len(response_tokens):
        return 0.0
    return float((response_tokens @ prompt_tokens.T).max(axis=1).mean())


def relevance(cosine: float, prompt_tokens: Matrix, response_tokens: Matrix) -> float:
    covered = coverage(prompt_tokens, response_tokens)
    return COSINE_WEIGHT * cosine + (1.0 - COSINE_WEIGHT) * covered


@dataclass
class SimilarityScorer:
    """Embeds prompts and responses of the whole batch in one call (identical texts once) and
    returns their cosine, and with ``relevance`` (a local MiniLM) their relevance. When the
    similarity embedder is that same model, one forward pass per text gives both. An
    interaction without a user prompt gets no score."""

    embedder: Embedder
    relevance: LocalMiniLMEmbedder | None = None
    shared_lines: SharedLines | None = field(default_factory=SharedLines)
    """Lines recurring across prompts, left out of them; None: prompts are taken whole (an
    evaluation file holds no traffic to learn them from)."""
    _pool: ThreadPoolExecutor | None = field(init=False, default=None, repr=False)

    def __call__(self, batch: Sequence[Interaction]) -> list[Scores]:
        scorable = [i for i, item in enumerate(batch) if item.prompt.strip()]
        results: list[Scores] = [{} for _ in batch]
        if not scorable:
            return results
        prompts = [batch[i].prompt for i in scorable]
        if self.shared_lines is not None:
            self.shared_lines.observe(prompts)
            prompts = [self.shared_lines.own_part(prompt) for prompt in prompts]
        texts = prompts + [batch[i].completion for i in scorable]
        half = len(scorable)
        local: Matrix | None = None
        tokens: list[Matrix] = []
        if self.relevance is None:
            vectors = self.embedder.embed(texts)
        elif self.relevance.model_id == self.embedder.model_id:
            local, tokens = self.relevance.embed_tokens(texts)
            vectors = local
        else:
            # Another backend (Titan) waits on the network: its calls overlap MiniLM's passes.
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="similarity")
            pending = self._pool.submit(self.embedder.embed, texts)
            local, tokens = self.relevance.embed_tokens(texts)
            vectors = pending.result()
        similarities = cosine_rows(vectors[:half], vectors[half:])
        local_cosines = (
            similarities
            if local is vectors or local is None
            else cosine_rows(local[:half], local[half:])
        )
        for k, (index, similarity) in enumerate(zip(scorable, similarities, strict=True)):
            scores = {METRIC: float(similarity)}
            if local is not None:
                scores[RELEVANCE] = relevance(float(local_cosines[k]), tokens[k], tokens[half + k])
            results[index] = scores
        return results
