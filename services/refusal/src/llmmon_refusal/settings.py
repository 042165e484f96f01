"""Settings of the refusal service (environment, prefix ``LLMMON_``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from llmmon_refusal.compute import RefusalDetector
from llmmon_refusal.phrases import load_phrases
from llmmon_shared.settings import ServiceSettings, split_list


class RefusalSettings(ServiceSettings):
    service: str = "refusal"
    embedding_backend: Literal["bedrock", "local"] = "local"
    titan_dimensions: Literal[256, 512, 1024] = 512
    refusal_fuzzy_threshold: float = Field(default=0.86, ge=0.0, le=1.0)
    refusal_similarity_threshold: float = Field(default=0.75, ge=-1.0, le=1.0)
    refusal_margin: float = Field(default=0.15, ge=0.0, le=2.0)
    refusal_extra_phrases: str | None = None
    """A team's own phrases as JSON: ``{"refusal": {"family": [{"id","text"}]},
    "compliant": [...]}``."""
    refusal_phrases_file: str | None = None
    """The same JSON in a file (for example shipped in the function's package)."""
    refusal_implicit_rules: list[str] | None = None
    """Implicit-refusal rules to enable (names in implicit.RULES); default: the set chosen by
    leave-one-model-out and shipped in data/implicit.json. An empty list turns them off."""
    explain: bool = False
    """Log every decision (reference id and scores, never text) at INFO."""

    @field_validator("refusal_implicit_rules", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        from llmmon_refusal.implicit import RULES

        value = split_list(value)
        unknown = [name for name in value or [] if name not in RULES]
        if unknown:
            raise ValueError(f"unknown implicit rule {unknown[0]!r}; known: {', '.join(RULES)}")
        return value


def reference_vectors_path() -> Path:
    """The shipped phrases' vectors, computed ahead (``scripts/reference_vectors.py``), so a
    cold start does not embed them."""
    return Path(str(files("llmmon_refusal") / "data" / "reference-vectors.npz"))


def make_detector(settings: RefusalSettings) -> RefusalDetector:
    from llmmon_shared.embeddings import make_embedder
    from llmmon_shared.resilience import harden

    return RefusalDetector(
        harden(
            make_embedder(
                settings.embedding_backend,
                settings.titan_dimensions,
                cache_entries=settings.embedding_cache,
                seed=reference_vectors_path(),
                variant=settings.embedder_variant,
            ),
            settings,
        ),
        load_phrases(settings.refusal_extra_phrases, settings.refusal_phrases_file),
        fuzzy_threshold=settings.refusal_fuzzy_threshold,
        similarity_threshold=settings.refusal_similarity_threshold,
        margin=settings.refusal_margin,
        implicit_rules=tuple(
            shipped_rules()
            if settings.refusal_implicit_rules is None
            else settings.refusal_implicit_rules
        ),
    )


def shipped_rules() -> list[str]:
    """The implicit rules chosen by scripts/tune_refusal.py (data/implicit.json)."""
    import json
    from importlib.resources import files

    data = json.loads(files("llmmon_refusal").joinpath("data/implicit.json").read_text())
    return [str(name) for name in data["rules"]]
