"""Stack settings: read once from ``pulumi.Config`` (``llmmon:*`` keys) into a typed object.

Defaults and documentation of every key live in ``Pulumi.yaml``; stacks override them in
``Pulumi.<stack>.yaml``. The program itself only ever sees a :class:`StackConfig`, so tests build
one directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

Sink = Literal["emf", "putmetricdata"]


@dataclass(frozen=True)
class StackConfig:
    stack: str = "dev"
    name_prefix: str = ""
    """Prefix of every resource name; default ``llmmon-<stack>``."""
    namespace: str = "llmmon"
    log_prefix: str = "bedrock"
    """Key prefix Bedrock writes under (``<prefix>/AWSLogs/...``)."""
    existing_bucket: str | None = None
    """Adopt this bucket instead of creating one (its encryption and policy stay yours)."""
    manage_bucket_notification: bool = True
    bucket_kms_key_arn: str | None = None
    """SSE-KMS for the log bucket; SSE-S3 when unset."""
    log_expiration_days: int = 90
    manage_invocation_logging: bool = True
    """One logging configuration per account and region: turn off if one exists already."""
    alarm_emails: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    canary_models: tuple[str, ...] = ()
    """Models the canary sends its probe set to (none: no canary is deployed)."""
    canary_schedule: str = "rate(1 hour)"
    canary_max_tokens: int = 256
    """Model ids that get quality alarms (metrics and the dashboard cover every model)."""
    sample_rate: float = 1.0
    max_chars: int = 8000
    metrics_sink: Sink = "emf"
    embedding_backend: Literal["bedrock", "local"] = "bedrock"
    comprehend_backend: Literal["comprehend", "local", "cascade"] = "comprehend"
    titan_dimensions: int = 512
    alarm_min_samples: int = 20
    """Values a period needs before a ratio (Average) alarm judges it."""
    metadata_dimensions: tuple[str, ...] = ()
    log_retention_days: int = 30
    max_receive_count: int = 5
    oldest_message_age_s: int = 900
    anomaly_detection: bool = False
    anomaly_band: float = 2.0
    artifact_dir: str = "build"
    expected_invocations_per_day: int = 1_000_000
    """The volume each service is sized for (memory, batch size, maximum concurrency; see
    ``llmmon_shared.capacity``), unless ``services`` sets a size."""
    peak_factor: float = 3.0
    """Peak hour over the day's average rate."""
    lambda_concurrency: int = 1000
    """Lambda concurrency of the account and Region available to llmmon (shared with every
    other function there)."""
    services: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per service: ``batchSize``, ``batchingWindowS``, ``maxConcurrency``, ``memoryMb``,
    ``timeoutS``, ``enabled``, ``environment`` and ``alarms: {AlarmName: {threshold: ...}}``."""

    @property
    def prefix(self) -> str:
        return self.name_prefix or f"llmmon-{self.stack}"

    def service(self, name: str) -> Mapping[str, Any]:
        return self.services.get(name, {})

    def capacity(self, services: Mapping[str, Any]) -> Any:
        """Each service sized for the declared volume (:func:`llmmon_shared.capacity.plan`),
        the stack's own sizes kept where it sets them."""
        from llmmon_shared.capacity import Volume, backends_of, plan

        volume = Volume(
            invocations_per_day=self.expected_invocations_per_day,
            peak_factor=self.peak_factor,
            sample_rate=self.sample_rate,
            account_concurrency=self.lambda_concurrency,
        )
        backends = backends_of(
            services,
            {
                "embeddingBackend": self.embedding_backend,
                "comprehendBackend": self.comprehend_backend,
            },
        )
        sizes = {"memoryMb", "batchSize", "maxConcurrency", "timeoutS"}
        settings = {
            name: {k: v for k, v in self.service(name).items() if k in sizes} for name in services
        }
        return plan(services, backends, volume, settings)

    @classmethod
    def from_mapping(cls, stack: str, values: Mapping[str, Any]) -> StackConfig:
        """From camelCase config keys (as in the stack files); unknown keys are an error."""
        known = {_camel(f.name): f.name for f in fields(cls) if f.name != "stack"}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown llmmon config keys: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {"stack": stack}
        for key, value in values.items():
            name = known[key]
            kwargs[name] = _coerce(name, value)
        config = cls(**kwargs)
        config.validate()
        return config

    def validate(self) -> None:
        if not 0 < self.sample_rate <= 1:
            raise ValueError("sampleRate must be in (0, 1]")
        if self.metrics_sink not in ("emf", "putmetricdata"):
            raise ValueError("metricsSink must be emf or putmetricdata")
        if self.max_receive_count < 1:
            raise ValueError("maxReceiveCount must be at least 1")
        if self.expected_invocations_per_day < 1:
            raise ValueError("expectedInvocationsPerDay must be at least 1")
        if self.peak_factor < 1:
            raise ValueError("peakFactor must be at least 1 (the peak over the daily average)")
        if self.lambda_concurrency < 2:
            raise ValueError("lambdaConcurrency must be at least 2")
        if self.alarm_min_samples < 1:
            raise ValueError("alarmMinSamples must be at least 1")
        if not self.canary_schedule.startswith(("rate(", "cron(")):
            raise ValueError("canarySchedule must be rate(...) or cron(...), e.g. rate(1 hour)")
        if not 1 <= self.canary_max_tokens <= 4096:
            raise ValueError("canaryMaxTokens must be between 1 and 4096")
        for spec in self.metadata_dimensions:
            if "=" not in spec and "~" not in spec:
                raise ValueError(
                    f"metadataDimensions: declare what {spec!r} may hold, as {spec}=a|b|c (these "
                    f"values) or {spec}~[a-z-]{{1,20}} (a pattern): anything else is reported as "
                    "Other, so the number of metrics stays bounded"
                )
        segments = [part for part in self.log_prefix.strip("/").split("/") if part]
        if "data" in segments or "AWSLogs" in segments:
            raise ValueError(
                f"logPrefix {self.log_prefix!r} contains a 'data' or 'AWSLogs' folder: Bedrock "
                "writes large bodies under .../data/ and llmmon skips every key with a data/ "
                "folder, so no log object would ever be scored. Choose another prefix."
            )
        if self.existing_bucket and self.manage_bucket_notification:
            raise ValueError(
                f"existingBucket {self.existing_bucket!r} with manageBucketNotification true "
                "would replace the bucket's whole notification configuration (other teams' "
                "notifications included). Set manageBucketNotification: false and add llmmon's "
                "topic notification (prefix <logPrefix>/AWSLogs/, suffix .json.gz) to the "
                "bucket's existing configuration yourself."
            )


_FLOATS = {"sample_rate", "anomaly_band", "peak_factor"}


def _default(item: Any) -> Any:
    return item.default_factory() if item.default is MISSING else item.default


_DEFAULTS: dict[str, Any] = {}
_OPTIONAL = {"existing_bucket", "bucket_kms_key_arn"}


def _coerce(name: str, value: Any) -> Any:
    """Config values arrive as YAML values (tests, stack files) or as strings (the Pulumi
    engine): turn both into the field's type. Pulumi config has no float type, so floats are
    strings in the stack files."""
    example = _DEFAULTS[name]
    if (
        isinstance(value, str)
        and name not in _FLOATS
        and not isinstance(example, str)
        and name not in _OPTIONAL
    ):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{_camel(name)}: {value!r} is not a {_kind(example)}") from exc
    if name in _FLOATS:
        return float(value)
    if name in _OPTIONAL:
        return value or None
    if isinstance(example, tuple):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{_camel(name)} must be a list")
        return tuple(str(item) for item in value)
    if isinstance(example, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{_camel(name)} must be true or false")
        return value
    if isinstance(example, int):
        return int(value)
    if isinstance(example, dict) and not isinstance(value, dict):
        raise ValueError(f"{_camel(name)} must be an object")
    return value


def _kind(example: Any) -> str:
    if isinstance(example, tuple):
        return "list"
    if isinstance(example, bool):
        return "boolean"
    if isinstance(example, int):
        return "number"
    return "object"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def config_keys() -> list[str]:
    return [_camel(f.name) for f in fields(StackConfig) if f.name != "stack"]


def from_pulumi() -> StackConfig:
    import pulumi

    config = pulumi.Config("llmmon")
    values = {key: value for key in config_keys() if (value := config.get(key)) is not None}
    return StackConfig.from_mapping(pulumi.get_stack(), values)


_DEFAULTS.update({item.name: _default(item) for item in fields(StackConfig)})
