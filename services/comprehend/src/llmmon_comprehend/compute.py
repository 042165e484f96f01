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
        # A response a guardrail withheld is not scored (only the prompt, when that is on).
        answered = [i for i, item in enumerate(batch) if not item.response_withheld]
        responses = [batch[i].completion for i in answered]
        sentiments = dict(zip(answered, self.sentiment.sentiment(responses), strict=True))
        prompts = [i for i, item in enumerate(batch) if self.score_prompt and item.prompt.strip()]
        toxicities = self.toxicity.toxicity(responses + [batch[i].prompt for i in prompts])
        response_toxicity = dict(zip(answered, toxicities[: len(answered)], strict=True))
        prompt_toxicity = dict(zip(prompts, toxicities[len(answered) :], strict=True))
        results: list[Scores] = []
        for index in range(len(batch)):
            scores: dict[str, float] = {}
            errors = 0
            if index in sentiments:
                sentiment = sentiments[index]
                if sentiment is None:
                    errors += 1
                else:
                    for label in SENTIMENT_LABELS:
                        scores[f"Sentiment{label}"] = sentiment.scores[label]
                        scores[f"SentimentIs{label}"] = float(sentiment.label == label.upper())
            if index in response_toxicity:
                toxicity = response_toxicity[index]
                if toxicity is None:
                    errors += 1
                else:
                    scores["Toxicity"] = toxicity.toxicity
                    scores["Toxic"] = float(toxicity.toxicity >= self.toxic_threshold)
                    for label, value in toxicity.labels.items():
                        scores[label_metric(label)] = value
            if index in prompt_toxicity:
                found = prompt_toxicity[index]
                if found is None:
                    errors += 1
                else:
                    scores["PromptToxicity"] = found.toxicity
                    scores["PromptToxic"] = float(found.toxicity >= self.toxic_threshold)
            if errors:
                scores["ScoringErrors"] = errors
            results.append(scores)
        return results
