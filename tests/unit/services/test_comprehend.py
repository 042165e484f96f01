"""Sentiment and toxicity scoring with the local backends on real text."""

from __future__ import annotations

import pytest

from llmmon_comprehend.backends import ProfanityToxicity, VaderSentiment, split_segments
from llmmon_comprehend.compute import ComprehendScorer, label_metric
from llmmon_shared.extract import Interaction


@pytest.fixture(scope="module")
def scorer() -> ComprehendScorer:
    return ComprehendScorer(
        VaderSentiment(), ProfanityToxicity(), toxic_threshold=0.5, score_prompt=True
    )


def item(completion: str, prompt: str = "Tell me something.") -> Interaction:
    return Interaction("r", "m", "InvokeModel", "test", prompt, completion)


def test_sentiment__directions_and_one_label_per_response(scorer: ComprehendScorer) -> None:
    happy, sad = scorer(
        [
            item("I love this! It is wonderful and works great."),
            item("This is terrible, awful and sad. I hate the bad outcome."),
        ]
    )
    assert happy["SentimentPositive"] > happy["SentimentNegative"]
    assert sad["SentimentNegative"] > sad["SentimentPositive"]
    assert happy["SentimentIsPositive"] == 1 and sad["SentimentIsNegative"] == 1
    for scores in (happy, sad):
        flags = [scores[f"SentimentIs{k}"] for k in ("Positive", "Negative", "Neutral", "Mixed")]
        assert sorted(flags) == [0, 0, 0, 1]


def test_toxicity__abuse_is_toxic_clean_text_is_not(scorer: ComprehendScorer) -> None:
    toxic, clean = scorer(
        [
            item("You are a worthless stupid idiot, shut the fuck up."),
            item("The capital of France is Paris, on the Seine."),
        ]
    )
    assert toxic["Toxicity"] > 0.8 and toxic["Toxic"] == 1
    assert clean["Toxicity"] < 0.2 and clean["Toxic"] == 0
    assert toxic[label_metric("PROFANITY")] == toxic["Toxicity"]
    assert "ToxicityHateSpeech" not in toxic  # the local stand-in scores PROFANITY only


def test_toxicity__found_deep_inside_a_long_response(scorer: ComprehendScorer) -> None:
    long_clean = "The weather today is mild and pleasant across the region. " * 12
    (scores,) = scorer([item(long_clean + "You are a stupid idiot, fuck off.")])
    assert scores["Toxicity"] > 0.8


def test_prompt_toxicity__scored_when_enabled(scorer: ComprehendScorer) -> None:
    (scores,) = scorer([item("I'm happy to help.", prompt="Answer me, you stupid fucking bot")])
    assert scores["PromptToxic"] == 1 and scores["Toxic"] == 0


def test_label_metric_names() -> None:
    assert label_metric("HARASSMENT_OR_ABUSE") == "ToxicityHarassmentOrAbuse"
    assert label_metric("GRAPHIC") == "ToxicityGraphic"


def test_split_segments__respects_byte_and_count_limits() -> None:
    text = ("héllo wörld 日本語 " * 400).strip()
    segments = split_segments(text)
    assert 1 < len(segments) <= 10
    assert all(len(s.encode()) <= 1000 for s in segments)
    assert "".join(segments).replace(" ", "") in text.replace(" ", "")
    assert split_segments("   ") == []
    assert len(split_segments("x" * 50_000)) == 10
