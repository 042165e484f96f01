"""Settings from the environment; sampling and truncation helpers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llmmon_shared.settings import ServiceSettings
from llmmon_shared.text import is_sampled, sample_fraction, truncate_chars, truncate_utf8


def test_settings__read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMMON_NAMESPACE", "team/llm")
    monkeypatch.setenv("LLMMON_SINK", "putmetricdata")
    monkeypatch.setenv("LLMMON_SAMPLE_RATE", "0.25")
    monkeypatch.setenv("LLMMON_METADATA_DIMENSIONS", "app, tenant")
    monkeypatch.setenv("LLMMON_EXCLUDE_IDENTITY_ARNS", '["arn:aws:iam::1:role/llmmon"]')
    settings = ServiceSettings()
    assert settings.namespace == "team/llm" and settings.sink == "putmetricdata"
    assert settings.sample_rate == 0.25
    assert settings.metadata_dimensions == ["app", "tenant"]
    assert settings.exclude_identity_arns == ["arn:aws:iam::1:role/llmmon"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("LLMMON_SAMPLE_RATE", "1.5"), ("LLMMON_SINK", "kafka"), ("LLMMON_MAX_CHARS", "0")],
)
def test_settings__reject_invalid_values(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        ServiceSettings()


def test_sampling__is_deterministic_and_close_to_the_rate() -> None:
    ids = [f"req-{i}" for i in range(20_000)]
    assert [sample_fraction(i) for i in ids[:50]] == [sample_fraction(i) for i in ids[:50]]
    kept = sum(is_sampled(i, 0.1) for i in ids)
    assert 1_800 < kept < 2_200
    assert all(is_sampled(i, 1.0) for i in ids[:100])
    assert not any(is_sampled(i, 0.0) for i in ids[:100])
    # Nested: what a 5% rate keeps, a 10% rate keeps too (raising the rate only adds).
    assert {i for i in ids if is_sampled(i, 0.05)} <= {i for i in ids if is_sampled(i, 0.1)}


def test_truncate_utf8__never_splits_a_character() -> None:
    text = "naïve café " * 10 + "日本語のテキスト" * 10
    for limit in range(0, 120):
        cut = truncate_utf8(text, limit)
        assert len(cut.encode()) <= limit
        assert text.startswith(cut)
    assert truncate_utf8("short", 100) == "short"


def test_truncate_chars__prefers_a_word_boundary() -> None:
    text = "word " * 100
    cut = truncate_chars(text, 52)
    assert len(cut) <= 52 and not cut.endswith("wor")
    assert truncate_chars("abcdef", 3) == "abc"
