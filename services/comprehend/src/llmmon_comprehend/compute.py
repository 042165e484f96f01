"""Pure scoring: sentiment and toxicity metric values for a batch of interactions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from llmmon_comprehend.backends import (
    SENTIMENT_LABELS,
    SentimentBackend,
    ToxicityBackend,
    ToxicityResult,
)
from llmmon_shared.extract import Interaction
from llmmon_shared.runtime import Scores
from llmmon_shared.text import is_sampled


def label_metric(label: str) -> str:
    """``HARASSMENT_OR_ABUSE`` -> ``ToxicityHarassmentOrAbuse``."""
    return "Toxicity" + "".join(part.capitalize() for part in label.split("_"))


DEFAULT_GATES = {"HATE_SPEECH": 0.14, "PROFANITY": 0.5}
"""HATE_SPEECH: the highest gate whose recall on held-out groups' hate statements stays at 0.97
(chosen on the other groups, leave-groups-out: ``scripts/toxicity_gate.py``); PROFANITY: the
profanity model's own 0.5 (ToxiGen has no explicit abuse to set it on)."""


@dataclass
class ToxicityGate:
    """The managed path's cascade: the local toxicity model scores every document and Amazon
    Comprehend (DetectToxicContent) is called only for documents where a local label reaches its
    gate (``gates``; a label without one, and a backend without labels, use its overall Toxicity
    against ``default_gate``), and for a deterministic calibration sample (``calibration_rate``
    of request ids, whatever their local score), so the gate's misses can be measured against
    Comprehend over time."""

    local: ToxicityBackend
    gates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_GATES))
    calibration_rate: float = 0.02
    default_gate: float = 0.5

    def passes(self, found: ToxicityResult) -> bool:
        if not found.labels:
            return found.toxicity >= self.default_gate
        return any(
            value >= self.gates.get(label, self.default_gate)
            for label, value in found.labels.items()
        )


@dataclass
class ComprehendScorer:
    """Response sentiment (scores and a 0/1 per label, so the Average is a ratio), response
    toxicity (overall, per label, and ``Toxic`` 0/1 at ``toxic_threshold``), and optionally the
    toxicity of the prompt (``PromptToxicity``, ``PromptToxic``). A document a backend could not
    score counts in ``ScoringErrors`` instead.

    Sentiment and toxicity are sampled separately (``sentiment_sample_rate``,
    ``toxicity_sample_rate``: deterministic by request id). With a :class:`ToxicityGate`, a
    response below the gate keeps its local ``Toxicity`` and ``Toxic`` (no per-label scores:
    those are Comprehend's); ``ToxicityByComprehend`` (0/1) says which path scored it, and a
    calibration-sample response also gets ``ToxicityLocal``, the local score beside
    Comprehend's."""

    sentiment: SentimentBackend
    toxicity: ToxicityBackend
    toxic_threshold: float = 0.5
    score_prompt: bool = False
    gate: ToxicityGate | None = None
    sentiment_sample_rate: float = 1.0
    toxicity_sample_rate: float = 1.0

    def _toxicity(
        self, keys: Sequence[str], texts: Sequence[str]
    ) -> list[tuple[ToxicityResult | None, dict[str, float]]]:
        """Toxicity per document and the path metrics to add: all through ``toxicity``, or
        through the gate."""
        if self.gate is None:
            return [(result, {}) for result in self.toxicity.toxicity(texts)]
        local = self.gate.local.toxicity(texts)
        calibration = [is_sampled(f"{key}#calibration", self.gate.calibration_rate) for key in keys]
        routed = [
            i
            for i, found in enumerate(local)
            if calibration[i] or (found is not None and self.gate.passes(found))
        ]
        managed = dict(zip(routed, self.toxicity.toxicity([texts[i] for i in routed]), strict=True))
        out: list[tuple[ToxicityResult | None, dict[str, float]]] = []
        for i, found in enumerate(local):
            if i in managed:
                extra = {"ToxicityByComprehend": 1.0}
                if calibration[i] and found is not None:
                    extra["ToxicityLocal"] = found.toxicity
                out.append((managed[i], extra))
            elif found is None:
                out.append((None, {"ToxicityByComprehend": 0.0}))
            else:
                out.append((ToxicityResult(found.toxicity, {}), {"ToxicityByComprehend": 0.0}))
        return out

    def __call__(self, batch: Sequence[Interaction]) -> list[Scores]:
        # A response a guardrail withheld is not scored (only the prompt, when that is on).
        answered = [i for i, item in enumerate(batch) if not item.response_withheld]
        felt = [
            i
            for i in answered
            if is_sampled(f"{batch[i].request_id}#sentiment", self.sentiment_sample_rate)
        ]
        sentiments = dict(
            zip(felt, self.sentiment.sentiment([batch[i].completion for i in felt]), strict=True)
        )
        judged = [
            i
            for i in answered
            if is_sampled(f"{batch[i].request_id}#toxicity", self.toxicity_sample_rate)
        ]
        prompts = [i for i, item in enumerate(batch) if self.score_prompt and item.prompt.strip()]
        toxicities = self._toxicity(
            [batch[i].request_id for i in judged]
            + [f"{batch[i].request_id}#prompt" for i in prompts],
            [batch[i].completion for i in judged] + [batch[i].prompt for i in prompts],
        )
        response_toxicity = dict(zip(judged, toxicities[: len(judged)], strict=True))
        prompt_toxicity = dict(zip(prompts, toxicities[len(judged) :], strict=True))
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
                toxicity, path = response_toxicity[index]
                if toxicity is None:
                    errors += 1
                else:
                    scores["Toxicity"] = toxicity.toxicity
                    scores["Toxic"] = float(toxicity.toxicity >= self.toxic_threshold)
                    for label, value in toxicity.labels.items():
                        scores[label_metric(label)] = value
                    scores.update(path)
            if index in prompt_toxicity:
                found, _ = prompt_toxicity[index]
                if found is None:
                    errors += 1
                else:
                    scores["PromptToxicity"] = found.toxicity
                    scores["PromptToxic"] = float(found.toxicity >= self.toxic_threshold)
            if errors:
                scores["ScoringErrors"] = errors
            results.append(scores)
        return results
