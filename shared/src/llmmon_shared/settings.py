"""Service settings, read from the environment once per cold start (prefix ``LLMMON_``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["ServiceSettings"]

CsvList = Annotated[list[str], NoDecode]


class ServiceSettings(BaseSettings):
    """Settings every metric service shares. Services subclass it to add their own fields.

    Lists accept a JSON array or a comma-separated string:
    ``LLMMON_METADATA_DIMENSIONS=app,tenant``.
    """

    model_config = SettingsConfigDict(env_prefix="LLMMON_", extra="ignore", frozen=True)

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
    batch_size: int = Field(default=128, ge=1, le=1024)
    """Interactions handed to a scorer at once."""
    embedding_cache: int = Field(default=4096, ge=0, le=1_000_000)
    """Vectors a warm container keeps (services that embed): a text seen again, such as a prompt
    many requests share, is not embedded again. 0 turns the cache off."""
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
    fault_throttle_rate: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Testing only: this share of backend calls fails with ThrottlingException (injected)."""

    @field_validator(
        "metadata_dimensions", "exclude_identity_arns", "exclude_model_ids", mode="before"
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value
