"""Service settings, read from the environment once per cold start (prefix ``LLMMON_``)."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ENV_PREFIX", "ServiceSettings", "split_list"]

ENV_PREFIX = "LLMMON_"
CsvList = list[str]


def environment(fields: Any) -> dict[str, str]:
    """The ``LLMMON_<FIELD>`` variables of the environment that name one of ``fields``, by
    field name (names match case-insensitively)."""
    wanted = {f"{ENV_PREFIX}{name}".upper(): name for name in fields}
    return {
        wanted[key.upper()]: value for key, value in os.environ.items() if key.upper() in wanted
    }


class ServiceSettings(BaseModel):
    """Settings every metric service shares, read from the environment once per cold start
    (``LLMMON_<FIELD>``; keyword arguments win). Services subclass it to add their own fields.

    Values arrive as strings and pydantic converts them (numbers, booleans, literals). Lists
    accept a JSON array or a comma-separated string: ``LLMMON_METADATA_DIMENSIONS=app,tenant``.
    (A plain pydantic model, not pydantic-settings: that package's import cost a tenth of a
    second of every cold start, for the one feature used here.)
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**environment(type(self).model_fields), **values})

    service: str = "llmmon"
    namespace: str = "llmmon"
    sink: Literal["emf", "putmetricdata", "memory"] = "emf"
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    max_chars: int = Field(default=8000, ge=1)
    """Characters of prompt and response handed to a scorer (the rest is cut off)."""
    metadata_dimensions: CsvList = Field(default_factory=list)
    """``requestMetadata`` keys that become dimensions (allow-list)."""
    metadata_max_values: int = Field(default=20, ge=1, le=1000)
    exclude_identity_arns: CsvList = Field(default_factory=list)
    """Callers whose invocations are not scored (for example llmmon's own roles)."""
    exclude_model_ids: CsvList = Field(default_factory=list)
    drop_metrics: CsvList = Field(default_factory=list)
    """Scores not emitted at all (``ToxicityInsult,RefusalFuzzyScore``): every metric name is a
    custom metric per model and per dimension value, billed monthly; ``llmmon cost`` says which
    ones no alarm reads and what dropping them saves. A name an alarm reads is refused by the
    stack's validation."""
    detail_metrics: bool = False
    """Emit the service's detail scores too (those no alarm reads; ``ServiceSpec.
    detail_metrics``). Off: the lean default set, every alarmed score and the pipeline's
    counts. Each score is a custom metric per model and dimension value, billed monthly."""
    detail_dimensions: bool = False
    """With detail on, the detail scores carry the metadata dimensions (``app``...) too; off,
    they are per model only."""
    batch_size: int = Field(default=128, ge=1, le=1024)
    """Interactions handed to a scorer at once."""
    embedding_cache: int = Field(default=4096, ge=0, le=1_000_000)
    """Vectors a warm container keeps (services that embed): a text seen again, such as a prompt
    many requests share, is not embedded again. 0 turns the cache off."""
    embedder_variant: Literal["auto", "fp32", "int8"] = "auto"
    """The local MiniLM's graph: ``auto`` picks by the CPU's features at cold start
    (``llmmon_shared.embeddings.minilm_variant``); ``fp32`` or ``int8`` forces one."""
    continuation_delay_s: int = Field(default=30, ge=0, le=900)
    """Seconds before the continuation of an object stopped midway by a failure (not the
    deadline) becomes visible: a backend that is down gets time, without the receive counting
    toward the dead-letter queue."""
    log_level: str = "INFO"
    idempotency_table: str | None = None
    """DynamoDB table for idempotency: each object version is scored at most once."""
    idempotency_ttl_s: int = Field(default=14 * 24 * 3600, ge=60)
    """How long an object stays 'done' (redeliveries and replays within it are not counted)."""
    log_bucket: str | None = None
    """The log bucket: an event naming another bucket is a counted skip, never read (set by the
    Pulumi program and the local stack)."""
    log_prefix: str = ""
    """Bedrock's key prefix in the log bucket: objects outside ``<prefix>/AWSLogs/`` are skipped."""
    max_line_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_lines_per_object: int = Field(default=500_000, ge=1)
    max_object_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    """Decompressed bytes of one log object."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Decompressed bytes of one large-data body."""
    max_json_nodes: int = Field(default=250_000, ge=1000)
    """JSON nodes (``{ [ , :`` outside strings) of one line or large-data body, counted before it
    is parsed (about 72 bytes of memory each at worst): a line over it is a bad line, a body over
    it the counted skip ``large-body-too-complex``."""
    fault_throttle_rate: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Testing only: this share of backend calls fails with ThrottlingException (injected)."""
    fault_latency_s: float = Field(default=0.0, ge=0.0, le=60.0)
    """Testing only: seconds added to every scored batch (a slower scorer: a backlog)."""

    @field_validator(
        "metadata_dimensions",
        "exclude_identity_arns",
        "exclude_model_ids",
        "drop_metrics",
        mode="before",
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        return split_list(value)


def split_list(value: Any) -> Any:
    """A list setting from the environment: a JSON array, or comma-separated items."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value
