"""Pure scoring: sentiment and toxicity metric values for a batch of interactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmmon_comprehend.backends import (
    SENTIMENT_LABELS,
    SentimentBackend,
    ToxicityBackend,
)
from llmmon_shared.extract import Interaction
from llmmon_shared.runtime import Scores


def label_metric(label: str) -> str:
    """``HARASSMENT_OR_ABUSE`` -> ``ToxicityHarassmentOrAbuse``."""
    return "Toxicity" + "".join(part.capitalize() for part in label.split("_"))


@dataclass
class ComprehendScorer:
    """Response sentiment (scores and a 0/1 per label, so the Average is a ratio), response
    toxicity (overall, per label, and ``Toxic`` 0/1 at ``toxic_threshold``), and optionally the
    toxicity of the prompt (``PromptToxicity``, ``PromptToxic``). A document a backend could not
    score counts in ``ScoringErrors`` instead."""

    sentiment: SentimentBackend
    toxicity: ToxicityBackend
    toxic_threshold: float = 0.5
    score_prompt: bool = False

    def __call__(self, batch: Sequence[Interaction]) -> list[Scores]:
        responses = [item.completion for item in batch]
        sentiments = self.sentiment.sentiment(responses)
        toxic_texts = responses + ([item.prompt for item in batch] if self.score_prompt else [])
        toxicities = self.toxicity.toxicity(toxic_texts)
        results: list[Scores] = []
        for index in range(len(batch)):
            scores: dict[str, float] = {}
            errors = 0
            sentiment = sentiments[index]
            if sentiment is None:
                errors += 1
            else:
                for label in SENTIMENT_LABELS:
                    scores[f"Sentiment{label}"] = sentiment.scores[label]
                    scores[f"SentimentIs{label}"] = float(sentiment.label == label.upper())
            toxicity = toxicities[index]
            if toxicity is None:
                errors += 1
            else:
                scores["Toxicity"] = toxicity.toxicity
                scores["Toxic"] = float(toxicity.toxicity >= self.toxic_threshold)
                for label, value in toxicity.labels.items():
                    scores[label_metric(label)] = value
            if self.score_prompt and batch[index].prompt.strip():
                prompt_toxicity = toxicities[len(batch) + index]
                if prompt_toxicity is None:
                    errors += 1
                else:
                    scores["PromptToxicity"] = prompt_toxicity.toxicity
                    scores["PromptToxic"] = float(prompt_toxicity.toxicity >= self.toxic_threshold)
            if errors:
                scores["ScoringErrors"] = errors
            results.append(scores)
        return results
