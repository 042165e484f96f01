"""Sentiment and toxicity backends: Amazon Comprehend, or local stand-ins (VADER, profanity-check).

Comprehend's real limits are respected here, in one place:

* BatchDetectSentiment: at most 25 documents per call, each at most 5,000 UTF-8 bytes (cut on a
  character boundary); ``ErrorList`` entries with a transient error code are retried in a later
  call, the rest are reported as unscored (``None``);
* DetectToxicContent: one document per call (segments are read as context of each other), split
  into at most 10 segments of at most 1,000 UTF-8 bytes each, cut at whitespace; the document's
  scores are the maximum over its segments;
* throttling and transient errors are retried with exponential backoff and jitter.

The local backends map their own outputs onto the same result types and name themselves:
VADER's pos/neg/neu proportions become the Positive/Negative/Neutral scores; alt-profanity-check's
offensive-language probability becomes the PROFANITY label, MiniLM fine-tuned on implicit hate
with a logistic head (scripts/train_toxicity.py) the HATE_SPEECH label, and Toxicity is the
larger of the two. It is a stand-in for Comprehend, not its equal (it scores two
labels of seven).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from llmmon_shared.aws import call_with_backoff
from llmmon_shared.text import truncate_utf8

SENTIMENT_LABELS = ("Positive", "Negative", "Neutral", "Mixed")
TOXICITY_LABELS = (
    "GRAPHIC",
    "HARASSMENT_OR_ABUSE",
    "HATE_SPEECH",
    "INSULT",
    "PROFANITY",
    "SEXUAL",
    "VIOLENCE_OR_THREAT",
)
SENTIMENT_BATCH = 25
SENTIMENT_MAX_BYTES = 5_000
TOXIC_SEGMENTS = 10
TOXIC_SEGMENT_BYTES = 1_000
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
RETRYABLE_ITEM_ERRORS = frozenset({"INTERNAL_SERVER_ERROR", "THROTTLING", "TOO_MANY_REQUESTS"})


@dataclass(frozen=True)
class SentimentResult:
    label: str
    """POSITIVE, NEGATIVE, NEUTRAL or MIXED."""
    scores: Mapping[str, float]
    """Positive, Negative, Neutral, Mixed, each 0..1."""


@dataclass(frozen=True)
class ToxicityResult:
    toxicity: float
    labels: Mapping[str, float]
    """Comprehend label name -> score, for the labels the backend provides."""


class SentimentBackend(Protocol):
    name: str

    def sentiment(self, texts: Sequence[str]) -> list[SentimentResult | None]: ...


class ToxicityBackend(Protocol):
    name: str
    labels: tuple[str, ...]

    def toxicity(self, texts: Sequence[str]) -> list[ToxicityResult | None]: ...


def split_segments(
    text: str, max_bytes: int = TOXIC_SEGMENT_BYTES, max_segments: int = TOXIC_SEGMENTS
) -> list[str]:
    """Consecutive pieces of ``text`` of at most ``max_bytes`` UTF-8 bytes, cut at whitespace
    where possible (never inside a character); at most ``max_segments`` pieces."""
    segments: list[str] = []
    rest = text.strip()
    while rest and len(segments) < max_segments:
        piece = truncate_utf8(rest, max_bytes)
        if len(piece) < len(rest):
            space = piece.rfind(" ")
            if space > len(piece) // 2:
                piece = piece[:space]
        if not piece:  # a single character wider than max_bytes cannot happen in UTF-8
            break
        segments.append(piece)
        rest = rest[len(piece) :].lstrip()
    return segments


@dataclass
class ComprehendBackend:
    """Amazon Comprehend: BatchDetectSentiment and DetectToxicContent."""

    client: Any
    language: str = "en"
    item_retries: int = 2
    workers: int = 4
    sleep: Callable[[float], None] | None = None
    name: str = "comprehend"
    labels: tuple[str, ...] = TOXICITY_LABELS
    calls: dict[str, int] = field(default_factory=dict)

    def _call(self, operation: str, **kwargs: Any) -> Any:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        method = getattr(self.client, operation)
        if self.sleep is None:
            return call_with_backoff(lambda: method(**kwargs))
        return call_with_backoff(lambda: method(**kwargs), sleep=self.sleep)

    def sentiment(self, texts: Sequence[str]) -> list[SentimentResult | None]:
        results: list[SentimentResult | None] = [None] * len(texts)
        docs = [truncate_utf8(text, SENTIMENT_MAX_BYTES) for text in texts]
        pending = [i for i, doc in enumerate(docs) if doc.strip()]
        for _ in range(1 + self.item_retries):
            retry: list[int] = []
            for start in range(0, len(pending), SENTIMENT_BATCH):
                chunk = pending[start : start + SENTIMENT_BATCH]
                response = self._call(
                    "batch_detect_sentiment",
                    TextList=[docs[i] for i in chunk],
                    LanguageCode=self.language,
                )
                for item in response.get("ResultList", []):
                    scores = item["SentimentScore"]
                    results[chunk[item["Index"]]] = SentimentResult(
                        item["Sentiment"], {k: float(scores[k]) for k in SENTIMENT_LABELS}
                    )
                for error in response.get("ErrorList", []):
                    if error.get("ErrorCode") in RETRYABLE_ITEM_ERRORS:
                        retry.append(chunk[error["Index"]])
            if not retry:
                break
            pending = retry
        return results

    def _toxicity_one(self, text: str) -> ToxicityResult | None:
        segments = split_segments(text)
        if not segments:
            return None
        response = self._call(
            "detect_toxic_content",
            TextSegments=[{"Text": segment} for segment in segments],
            LanguageCode="en",
        )
        items = response.get("ResultList", [])
        if not items:
            return None
        toxicity = max(float(item.get("Toxicity", 0.0)) for item in items)
        labels = dict.fromkeys(self.labels, 0.0)
        for item in items:
            for label in item.get("Labels", []):
                name = label.get("Name")
                if name in labels:
                    labels[name] = max(labels[name], float(label.get("Score", 0.0)))
        return ToxicityResult(toxicity, labels)

    def toxicity(self, texts: Sequence[str]) -> list[ToxicityResult | None]:
        if len(texts) <= 1 or self.workers <= 1:
            return [self._toxicity_one(text) for text in texts]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(texts))) as pool:
            return list(pool.map(self._toxicity_one, texts))


@dataclass
class VaderSentiment:
    """VADER (lexicon and rules). Label: MIXED when both positive and negative proportions are at
    least ``mixed_floor`` and the compound is weak; else by compound (>= 0.05 positive,
    <= -0.05 negative, neutral between). Mixed score: twice the smaller of pos and neg."""

    mixed_floor: float = 0.1
    name: str = "local-vader"
    _analyzer: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def _one(self, text: str) -> SentimentResult:
        raw = self._analyzer.polarity_scores(text)
        pos, neg, neu, compound = raw["pos"], raw["neg"], raw["neu"], raw["compound"]
        if pos >= self.mixed_floor and neg >= self.mixed_floor and abs(compound) < 0.5:
            label = "MIXED"
        elif compound >= 0.05:
            label = "POSITIVE"
        elif compound <= -0.05:
            label = "NEGATIVE"
        else:
            label = "NEUTRAL"
        mixed = min(1.0, 2 * min(pos, neg))
        return SentimentResult(
            label, {"Positive": pos, "Negative": neg, "Neutral": neu, "Mixed": mixed}
        )

    def sentiment(self, texts: Sequence[str]) -> list[SentimentResult | None]:
        return [self._one(text) for text in texts]


class OffensiveLanguageModel:
    """alt-profanity-check's model, run with numpy: TF-IDF over word unigrams (lowercase,
    ``(?u)\\b\\w\\w+\\b`` tokens, raw counts times IDF, L2-normalised), five LinearSVCs,
    each with a sigmoid calibration, probabilities averaged. Exported from the package by
    ``services/comprehend/scripts/export_offensive_model.py``; equal to scikit-learn's output."""

    TOKEN = re.compile(r"(?u)\b\w\w+\b")

    def __init__(self) -> None:
        with (files("llmmon_comprehend") / "data" / "offensive-language.npz").open("rb") as raw:
            data = np.load(raw)
            words = str(data["words"]).split("\n")
            self.idf = data["idf"]
            self.coef = data["coef"]
            self.intercept = data["intercept"]
            self.cal_a, self.cal_b = data["cal_a"], data["cal_b"]
            self.source = str(data["source"])
        self.index = {word: position for position, word in enumerate(words)}

    def predict_proba(self, texts: Sequence[str]) -> list[float]:
        probabilities = []
        for text in texts:
            counts: dict[int, int] = {}
            for token in self.TOKEN.findall(text.lower()):
                position = self.index.get(token)
                if position is not None:
                    counts[position] = counts.get(position, 0) + 1
            if counts:
                columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
                weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                weights *= self.idf[columns]
                weights /= np.linalg.norm(weights)
                decision = self.coef[:, columns] @ weights + self.intercept
            else:
                decision = self.intercept.copy()
            calibrated = 1.0 / (1.0 + np.exp(self.cal_a * decision + self.cal_b))
            probabilities.append(float(calibrated.mean()))
        return probabilities


@dataclass
class ProfanityToxicity:
    """The offensive-language model of alt-profanity-check (linear model over TF-IDF), scored
    per sentence (at most ``max_sentences``, each at most 1 KB), maximum over sentences: a
    TF-IDF score of a whole response dilutes one abusive sentence. Provides Toxicity and the
    PROFANITY label only."""

    name: str = "local-profanity-check"
    labels: tuple[str, ...] = ("PROFANITY",)
    max_sentences: int = 50

    def __post_init__(self) -> None:
        self._predict = OffensiveLanguageModel().predict_proba

    def _sentences(self, text: str) -> list[str]:
        sentences = [s for s in _SENTENCE.split(text) if s.strip()][: self.max_sentences]
        return [truncate_utf8(s.strip(), TOXIC_SEGMENT_BYTES) for s in sentences]

    def toxicity(self, texts: Sequence[str]) -> list[ToxicityResult | None]:
        segmented = [self._sentences(text) for text in texts]
        flat = [segment for segments in segmented for segment in segments]
        probabilities = list(self._predict(flat)) if flat else []
        results: list[ToxicityResult | None] = []
        position = 0
        for segments in segmented:
            if not segments:
                results.append(None)
                continue
            score = float(max(probabilities[position : position + len(segments)]))
            position += len(segments)
            results.append(ToxicityResult(score, {"PROFANITY": score}))
        return results


HATE_CHARS = 1_000
"""Characters of a response the hate-speech model reads (about MiniLM's 256-token window)."""


@dataclass
class HateMember:
    """One model of the hate-speech ensemble: a MiniLM encoder and a logistic head on its
    L2-normalised sentence embedding."""

    name: str
    embedder: Any
    weights: npt.NDArray[np.float32]
    bias: float

    def scores(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        logits = (vectors @ self.weights + self.bias).astype(np.float64)
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))


@dataclass
class HateSpeechHead:
    """Implicit hate (stereotypes and dehumanising claims without slurs), read from a response's
    opening by two models whose probabilities are averaged (``data/hate-head.json``, with the
    leave-groups-out figures; written by scripts/train_toxicity.py):

    * ``fine-tuned``: all-MiniLM-L6-v2 fine-tuned on implicit hate (an int8 ONNX graph,
      ``data/hate-encoder-int8.onnx``) with its logistic head;
    * ``generic``: a logistic head on the generic MiniLM embedding the other services use.

    They fail on different groups (held out, the fine-tuned model is the stronger on the chinese,
    jewish and lgbtq groups, the generic head on the bisexual, mental-disability and mexican
    ones), so their mean generalises better than either. Provides Toxicity and the HATE_SPEECH
    label.

    ``data_dir`` reads another trained model (the training script scores its folds with this
    class); ``embedders`` replaces encoders by member name (tests)."""

    data_dir: Path | None = None
    embedders: Mapping[str, Any] = field(default_factory=dict)
    name: str = "local-minilm-hate-head"
    labels: tuple[str, ...] = ("HATE_SPEECH",)

    def __post_init__(self) -> None:
        from llmmon_shared.embeddings import LocalMiniLMEmbedder, VectorCache

        folder = self.data_dir or Path(str(files("llmmon_comprehend") / "data"))
        data = json.loads((folder / "hate-head.json").read_text())
        self.members: list[HateMember] = []
        for member in data["members"]:
            embedder = self.embedders.get(member["name"])
            if embedder is None and member.get("encoder"):
                embedder = LocalMiniLMEmbedder(
                    model_path=folder / member["encoder"],
                    cache=VectorCache(),
                    model_id=member["embedder"],
                    # a dynamic int8 graph: one text per pass, or a response's score would
                    # change with the responses batched with it
                    per_text=True,
                )
            elif embedder is None:
                embedder = LocalMiniLMEmbedder(cache=VectorCache())
            if member["embedder"] not in (embedder.model_id, getattr(embedder, "family", None)):
                raise ValueError(
                    f"hate-speech member {member['name']} was trained on {member['embedder']}, "
                    f"not {embedder.model_id}"
                )
            weights = np.asarray(member["weights"], dtype=np.float32)
            self.members.append(HateMember(member["name"], embedder, weights, member["bias"]))

    def member_scores(self, texts: Sequence[str]) -> dict[str, npt.NDArray[np.float64]]:
        openings = [text.strip()[:HATE_CHARS] for text in texts]
        return {member.name: member.scores(openings) for member in self.members}

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        by_member = self.member_scores(texts)
        return [float(v) for v in np.mean(list(by_member.values()), axis=0)]

    def toxicity(self, texts: Sequence[str]) -> list[ToxicityResult | None]:
        return [
            ToxicityResult(score, {"HATE_SPEECH": score}) if text.strip() else None
            for text, score in zip(texts, self.scores(texts), strict=True)
        ]


@dataclass
class LocalToxicity:
    """The local toxicity backend: offensive language (PROFANITY) and implicit hate
    (HATE_SPEECH); Toxicity is the larger of the two, so explicit abuse scores exactly as the
    profanity model alone did and implicit hate is added."""

    profanity: ProfanityToxicity
    hate: HateSpeechHead | None = None
    name: str = field(init=False)
    labels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        parts = [self.profanity] + ([self.hate] if self.hate is not None else [])
        self.name = "+".join(part.name for part in parts)
        self.labels = tuple(label for part in parts for label in part.labels)

    def toxicity(self, texts: Sequence[str]) -> list[ToxicityResult | None]:
        profane = self.profanity.toxicity(texts)
        if self.hate is None:
            return profane
        hateful = self.hate.toxicity(texts)
        results: list[ToxicityResult | None] = []
        for first, second in zip(profane, hateful, strict=True):
            if first is None or second is None:
                results.append(first or second)
                continue
            results.append(
                ToxicityResult(
                    max(first.toxicity, second.toxicity), {**first.labels, **second.labels}
                )
            )
        return results
