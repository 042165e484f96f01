"""The pipeline every metric service shares; a service plugs in its pure scoring function.

Why one module of this length: :class:`Pipeline` holds the exactly-once protocol (announce,
deliver, confirm; the idempotency record; the time-bounded writes) and the counts that account
for every record; its parts call each other's private state, and a split would spread one
protocol over several files. The readers, event shapes, metrics and checkpoints live in their own
modules.

``SQS event -> unwrap -> read object -> resolve large bodies -> extract -> exclude -> sample ->
truncate -> compute (in batches) -> metric points -> sink``.

Guarantees the handler relies on:

* metrics go to the sink one chunk (a scored batch and the counts since the previous chunk) at a
  time, and after each chunk the object's position is saved (the idempotency table, else the
  container): a message that fails midway is retried from there, so no chunk is counted twice
  and memory follows the batch, not the object;
* a bad line is counted (``ParseErrors``) and skipped, a record that holds no scorable interaction
  is counted (``SkippedRecords`` by ``Reason``), never dropped silently;
* an unreadable object or message raises, which the batch processor reports as that message's
  failure alone (``ReportBatchItemFailures``);
* nothing logged or emitted carries prompt or response text: logs name objects, counts and
  exception types only.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol, cast

from llmmon_shared.admission import DynamoAdmission
from llmmon_shared.aws import NoTimeLeft, TimeBoundClient
from llmmon_shared.events import ObjectRef, SkippedObject, continuation_body, unwrap_message
from llmmon_shared.extract import Interaction, Skip, SkipReason, extract
from llmmon_shared.logs import (
    BodyFetchError,
    BodyRejected,
    InvocationLogRecord,
    Limits,
    LineError,
    ObjectTooLarge,
    S3Reader,
    read_log_object,
    resolve_large_bodies,
)
from llmmon_shared.metrics import (
    DimensionPolicy,
    EmfSink,
    EmitError,
    MemorySink,
    MetricPoint,
    MetricSink,
    PutMetricDataSink,
    Unit,
    cloudwatch_value,
)
from llmmon_shared.progress import Checkpoint, DynamoProgress, MemoryProgress, ProgressStore
from llmmon_shared.settings import ServiceSettings
from llmmon_shared.text import is_sampled, truncate_chars

__all__ = [
    "Boto3S3Reader",
    "Compute",
    "ObjectReport",
    "ObjectUnavailableError",
    "Pipeline",
    "Requeue",
    "Scores",
    "SqsRequeue",
    "build_pipeline",
    "lambda_entry",
    "make_sink",
]

logger = logging.getLogger("llmmon")

Scores = Mapping[str, float]
Compute = Callable[[Sequence[Interaction]], Sequence[Scores]]
"""Pure scoring: one mapping of metric name to value per interaction, in the same order."""

UNKNOWN_MODEL = "Unknown"
CANARY_KEY = "llmmon-canary"
"""``requestMetadata`` key the canary sets (its value: the probe set's version). Canary traffic is
scored like any other, but its metrics are named ``Canary<Metric>`` and its interactions count
in ``CanaryInteractions``: it never enters the ordinary metrics."""
CANARY_EXPECT_KEY = "llmmon-expect"
"""``requestMetadata`` key of a canary probe's expected behaviour: ``answer`` or ``refuse``."""
UNREADABLE = frozenset(
    {
        SkipReason.UNKNOWN_SHAPE,
        SkipReason.UNKNOWN_SCHEMA,
        SkipReason.MISSING_BODY,
        SkipReason.LARGE_BODY_UNAVAILABLE,
        SkipReason.LARGE_BODY_TOO_LARGE,
        SkipReason.LARGE_BODY_TOO_COMPLEX,
        SkipReason.BODY_OUTSIDE_LOG_PREFIX,
        SkipReason.INCOMPLETE_RECORD,
        SkipReason.SCORING_ERROR,
    }
)
"""Skip reasons that mean llmmon could not read or score a record (``UnreadableRecord``), as
opposed to records with nothing to score (embeddings, model errors, guardrail replies...)."""
SOFT_DEADLINE_MIN_S = 20.0
"""An invocation with at least this much time stops starting work with a fifth of it left (below
it, as in the fault tests' short local timeouts, there is no room for a margin)."""
MAX_METRIC_AGE = timedelta(days=13)
MAX_METRIC_LEAD = timedelta(hours=1)


class ObjectUnavailableError(Exception):
    """The log object could not be fetched (deleted, access denied, throttled)."""


class DeadlineExceeded(Exception):
    """Too close to the function timeout to start or finish this message: it is retried."""


class SupersededObject(Exception):
    """The object under the key is no longer the version the event announced."""


class CheckpointUnavailable(Exception):
    """The object's checkpoint could not be saved before a chunk was sent: nothing of the chunk
    went out, and the message is retried."""


class UnreadableObjectError(Exception):
    """Not one line of the object is a log record: not a Bedrock log object (poison)."""


@dataclass
class Boto3S3Reader:
    """:class:`S3Reader` over a boto3 S3 client (streams the body, does not load it whole)."""

    client: Any

    def open(self, bucket: str, key: str) -> IO[bytes]:
        body: IO[bytes] = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        return body

    def open_version(
        self, bucket: str, key: str, version_id: str | None, etag: str | None
    ) -> IO[bytes]:
        """The object as the event named it: at ``version_id``, else only while its ETag is still
        ``etag`` (``IfMatch``). A newer object under the key raises :class:`SupersededObject`;
        its own event scores it."""
        kwargs: dict[str, str] = {}
        if version_id:
            kwargs["VersionId"] = version_id
        elif etag:
            kwargs["IfMatch"] = etag if etag.startswith('"') else f'"{etag}"'
        try:
            body: IO[bytes] = self.client.get_object(Bucket=bucket, Key=key, **kwargs)["Body"]
        except Exception as exc:
            from llmmon_shared.aws import error_code

            if error_code(exc) in ("PreconditionFailed", "NoSuchVersion", "412"):
                raise SupersededObject(f"s3://{bucket}/{key} changed since its event") from exc
            raise
        return body


class Requeue(Protocol):
    """Puts a message on the queue it came from (named by the SQS record's
    ``eventSourceARN``): a continuation of an object, or a message the invocation had no time to
    start. A new message starts at receive count 1: only receives that made no progress bring a
    message closer to its dead-letter queue."""

    def send(self, queue_arn: str, body: str, delay_s: int = 0) -> None: ...


@dataclass
class SqsRequeue:
    """:class:`Requeue` over an SQS client (``sqs:GetQueueUrl`` and ``sqs:SendMessage`` on the
    service's own queue)."""

    client: Any
    _urls: dict[str, str] = field(default_factory=dict)

    def send(self, queue_arn: str, body: str, delay_s: int = 0) -> None:
        url = self._urls.get(queue_arn)
        if url is None:
            parts = queue_arn.split(":")
            if len(parts) != 6 or parts[2] != "sqs":
                raise ValueError(f"not an SQS queue ARN: {queue_arn}")
            url = self.client.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])[
                "QueueUrl"
            ]
            self._urls[queue_arn] = url
        self.client.send_message(QueueUrl=url, MessageBody=body, DelaySeconds=int(delay_s))


@dataclass
class ObjectReport:
    """What scoring one object found. Counts only: no text."""

    key: str
    interactions: Counter[str] = field(default_factory=Counter)
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    sampled_out: Counter[str] = field(default_factory=Counter)
    canary: Counter[str] = field(default_factory=Counter)
    """Canary interactions per model (they are not in ``interactions``)."""
    parse_errors: int = 0
    scored: int = 0
    """Interactions the scorer returned values for so far."""
    values_lost: int = 0
    """Metric values that could not be delivered after part of the object's went out."""
    skipped_values: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Scores CloudWatch would refuse (out of its range, NaN, infinite), by (model, reason):
    left out, the record's other values delivered."""

    def merge(self, other: ObjectReport) -> None:
        self.interactions.update(other.interactions)
        self.skipped.update(other.skipped)
        self.sampled_out.update(other.sampled_out)
        self.canary.update(other.canary)
        self.parse_errors += other.parse_errors
        self.scored += other.scored
        self.values_lost += other.values_lost
        self.skipped_values.update(other.skipped_values)

    def as_log(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "interactions": sum(self.interactions.values()),
            "canary": sum(self.canary.values()),
            "skipped": {reason: n for (_, reason), n in self.skipped.items()},
            "sampled_out": sum(self.sampled_out.values()),
            "parse_errors": self.parse_errors,
            "values_lost": self.values_lost,
            "skipped_values": {reason: n for (_, reason), n in self.skipped_values.items()},
        }


@dataclass
class Pipeline:
    """Wires the shared steps around one service's :data:`Compute`."""

    service: str
    compute: Compute
    units: Mapping[str, Unit]
    s3: S3Reader
    sink: MetricSink
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    policy: DimensionPolicy | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    clock: Callable[[], float] = lambda: time.monotonic()
    """Seconds on a monotonic clock: the invocation's deadlines are measured on it."""
    reads_response: bool = True
    """The scorer measures the model's response (similarity, sentiment, toxicity, refusal)."""
    reads_prompt: bool = False
    """The scorer also measures the prompt alone (comprehend's optional prompt toxicity)."""
    progress: ProgressStore | None = None
    """Where objects got to (the idempotency table when there is one, else this container)."""
    detail: frozenset[str] = frozenset()
    """The service's opt-in detail scores (``ServiceSpec.detail_metrics``): not emitted unless
    ``settings.detail_metrics``, and then per model only unless ``settings.detail_dimensions``."""
    requeue: Requeue | None = None
    """Where continuations and deferred messages go (SQS, built at the first use)."""

    _once: Callable[..., dict[str, Any]] | None = field(init=False, default=None, repr=False)
    _duplicates: int = field(init=False, default=0, repr=False)
    _completion_failures: int = field(init=False, default=0, repr=False)
    _deadline: float | None = field(init=False, default=None, repr=False)
    """When to stop starting work (four fifths of the invocation's time)."""
    _hard_deadline: float | None = field(init=False, default=None, repr=False)
    """When Lambda would kill the invocation."""
    _idempotency_config: Any = field(init=False, default=None, repr=False)
    _table: TimeBoundClient | None = field(init=False, default=None, repr=False)
    """The idempotency table's client: every call held to the time left in the invocation."""
    _requeued: Counter[str] = field(init=False, default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        if self.settings.idempotency_table:
            self._table = TimeBoundClient("dynamodb", self._time_left)
        if self.progress is None:
            self.progress = MemoryProgress()
            if self.settings.idempotency_table:
                self.progress = DynamoProgress(
                    self._table,
                    self.settings.idempotency_table,
                    self.service,
                    self.settings.idempotency_ttl_s,
                )
        if self.policy is None:
            self.policy = DimensionPolicy(
                self.settings.metadata_dimensions, self.settings.metadata_max_values
            )
            if self.settings.idempotency_table:
                # One cap for every container of every service (see llmmon_shared.admission).
                self.policy.admission = DynamoAdmission(
                    self._table, self.settings.idempotency_table
                )
        if self.settings.idempotency_table:
            self._once = self._idempotent(self.settings.idempotency_table)

    # -- one object ---------------------------------------------------------------------------

    def score_object(self, ref: ObjectRef) -> tuple[list[MetricPoint], ObjectReport]:
        """Read and score a whole object; all its points at once (for the CLI and benchmarks:
        the handler delivers them chunk by chunk, see :meth:`process_object`). Raises on an
        unreadable object; emits nothing itself."""
        report = ObjectReport(ref.key)
        points: list[MetricPoint] = []
        for chunk, _, _ in self.chunks(ref, report):
            points.extend(chunk)
        return points, report

    def chunks(
        self, ref: ObjectRef, report: ObjectReport, start: int = 0
    ) -> Iterator[tuple[list[MetricPoint], int, bool]]:
        """The object's metric points, one chunk per scored batch: ``(points, position, last)``.
        A chunk holds the scores of its batch and the counts of every record read since the
        previous chunk; ``position`` is the number of items (records and bad lines) read up to
        its end, so a retry can resume after the last chunk that went out (``start``). Memory
        follows the batch, not the object. ``report`` accumulates the whole object's counts."""
        delta = ObjectReport(ref.key)
        batch: list[Interaction] = []
        records = start  # a resumed object had records before ``start``
        raw = self._open(ref)
        position = 0
        with closing(raw):
            for position, item in enumerate(read_log_object(raw, self.limits), start=1):
                if position <= start:
                    continue  # accounted for by a chunk that went out before
                if isinstance(item, LineError):
                    delta.parse_errors += 1
                    logger.warning(
                        "skipped bad line",
                        extra={"key": ref.key, "line": item.line_number, "reason": item.reason},
                    )
                    continue
                records += 1
                # Checked at every record, not every batch: a batch of slow records (large bodies)
                # must not run past the function's timeout before the check comes round.
                self._check_deadline()
                taken = self._take(item, ref, delta)
                if taken is not None:
                    batch.append(self._bounded(taken))
                if len(batch) >= self.settings.batch_size:
                    yield self._chunk(batch, delta, report, start), position, False
                    batch, delta = [], ObjectReport(ref.key)
        position = max(position, start)
        if (delta.parse_errors or report.parse_errors) and not records:
            raise UnreadableObjectError(
                f"no line of s3://{ref.bucket}/{ref.key} is a log record "
                f"({delta.parse_errors} bad lines)"
            )
        points = self._chunk(batch, delta, report, start)
        points.append(
            MetricPoint("ObjectsProcessed", 1, Unit.COUNT, (("Service", self.service),), self.now())
        )
        yield points, position, True

    def evidence(
        self, ref: ObjectRef, keep: Callable[[Interaction], bool] = lambda _: True
    ) -> Iterator[tuple[int, InvocationLogRecord, Interaction, Scores | None]]:
        """Each record of the object this service scores, with its scores, for ``llmmon
        investigate``: ``(line, record, interaction, scores)``, read, filtered (sampling,
        guardrails, exclusions) and scored by the very code :meth:`chunks` uses, in batches of
        the service's batch size. ``keep`` drops interactions before they are scored (another
        model, outside the window). ``scores`` is None for a record that failed scoring alone.
        Emits nothing; bad lines are skipped (the deployed service counted them)."""
        delta, report = ObjectReport(ref.key), ObjectReport(ref.key)
        pending: list[tuple[int, InvocationLogRecord, Interaction]] = []

        def scored() -> Iterator[tuple[int, InvocationLogRecord, Interaction, Scores | None]]:
            batch = [interaction for _, _, interaction in pending]
            try:
                results: Sequence[Scores | None] = self._compute(batch)
            except Exception as exc:
                results = self._isolated(batch, report, exc, scored_before=True)
            for (line, record, interaction), scores in zip(pending, results, strict=True):
                yield line, record, interaction, scores
            pending.clear()

        raw = self._open(ref)
        taken_count = 0
        with closing(raw):
            for position, item in enumerate(read_log_object(raw, self.limits), start=1):
                if isinstance(item, LineError):
                    continue
                taken = self._take(item, ref, delta)
                if taken is None:
                    continue
                taken_count += 1
                if keep(taken):
                    pending.append((position, item, self._bounded(taken)))
                # Batches end where the service's batches end (every ``batch_size`` records
                # taken, kept or not): an object that breaks midway yields what was delivered.
                if taken_count % self.settings.batch_size == 0 and pending:
                    yield from scored()
        if pending:
            yield from scored()

    def _open(self, ref: ObjectRef) -> IO[bytes]:
        open_version = getattr(self.s3, "open_version", None)
        try:
            if open_version is not None:
                return cast(IO[bytes], open_version(ref.bucket, ref.key, ref.version_id, ref.etag))
            return self.s3.open(ref.bucket, ref.key)
        except SupersededObject:
            raise
        except Exception as exc:
            raise ObjectUnavailableError(
                f"cannot open s3://{ref.bucket}/{ref.key}: {type(exc).__name__}"
            ) from exc

    def _take(
        self, record: InvocationLogRecord, ref: ObjectRef, delta: ObjectReport
    ) -> Interaction | None:
        """Count one record in ``delta``; its interaction when it is to be scored."""
        outcome = self._interaction(record, ref)
        if isinstance(outcome, Skip):
            delta.skipped[(outcome.model_id or UNKNOWN_MODEL, outcome.reason)] += 1
            return None
        if not is_canary(outcome) and not is_sampled(outcome.request_id, self.settings.sample_rate):
            # (The canary's few fixed probes are always scored: sampling them would only blur
            # the signal they exist for.)
            delta.sampled_out[outcome.model_id] += 1
            return None
        if outcome.response_withheld and self.reads_response:
            # A guardrail's message is not the model's answer: the response is not scored.
            delta.skipped[(outcome.model_id, SkipReason.GUARDRAIL_INTERVENED)] += 1
            if not self.reads_prompt:
                return None
        if is_canary(outcome):
            delta.canary[outcome.model_id] += 1
        else:
            delta.interactions[outcome.model_id] += 1
        return outcome

    def _chunk(
        self,
        batch: Sequence[Interaction],
        delta: ObjectReport,
        report: ObjectReport,
        start: int,
    ) -> list[MetricPoint]:
        """Scores of ``batch`` and the counters of ``delta``, which is then added to ``report``."""
        points = self._score(batch, delta, scored_before=report.scored > 0 or start > 0)
        points.extend(self._counters(delta))
        report.merge(delta)
        return points

    @property
    def limits(self) -> Limits:
        settings = self.settings
        return Limits(
            settings.max_line_bytes,
            settings.max_lines_per_object,
            settings.max_object_bytes,
            settings.max_body_bytes,
            settings.max_json_nodes,
        )

    def _interaction(self, record: InvocationLogRecord, ref: ObjectRef) -> Interaction | Skip:
        # Large-data bodies are read only from the log object's own bucket, under its prefix
        # (``<prefix>/AWSLogs/``): a record cannot make llmmon read anything else.
        root = ref.key[: ref.key.index("AWSLogs/") + 8] if "AWSLogs/" in ref.key else ""

        def allowed(bucket: str, key: str) -> bool:
            return bucket == ref.bucket and key.startswith(root) and ".." not in key.split("/")

        try:
            record = resolve_large_bodies(
                record,
                self.s3,
                allowed,
                self.settings.max_body_bytes,
                self.settings.max_json_nodes,
            )
        except BodyRejected as exc:
            logger.warning(
                "large-data body not read",
                extra={"service": self.service, "key": ref.key, "reason": exc.reason},
            )
            return Skip(SkipReason(exc.reason), record.request_id, record.model_id)
        except BodyFetchError:
            return Skip(SkipReason.LARGE_BODY_UNAVAILABLE, record.request_id, record.model_id)
        outcome = extract(record)
        if isinstance(outcome, Interaction) and (
            outcome.identity_arn in self.settings.exclude_identity_arns
            or outcome.model_id in self.settings.exclude_model_ids
            or outcome.raw_model_id in self.settings.exclude_model_ids
        ):
            return Skip(SkipReason.EXCLUDED, outcome.request_id, outcome.model_id)
        return outcome

    def _bounded(self, interaction: Interaction) -> Interaction:
        limit = self.settings.max_chars
        if len(interaction.prompt) <= limit and len(interaction.completion) <= limit:
            return interaction
        prompt = truncate_chars(interaction.prompt, limit)
        completion = truncate_chars(interaction.completion, limit)
        cut = len(interaction.prompt) - len(prompt) + len(interaction.completion) - len(completion)
        return replace(interaction, prompt=prompt, completion=completion, chars_cut=cut)

    def _timestamp(self, interaction: Interaction, now: datetime) -> datetime:
        moment = interaction.timestamp
        if moment is None or not (now - MAX_METRIC_AGE <= moment <= now + MAX_METRIC_LEAD):
            return now
        return moment

    def _compute(self, batch: Sequence[Interaction]) -> Sequence[Scores]:
        if self.settings.fault_latency_s:
            time.sleep(self.settings.fault_latency_s)  # testing only: a slower scorer
        results = self.compute(batch)
        if len(results) != len(batch):
            raise RuntimeError(f"{self.service} scored {len(results)} of {len(batch)} interactions")
        return results

    def _isolated(
        self,
        batch: Sequence[Interaction],
        report: ObjectReport,
        error: Exception,
        scored_before: bool,
    ) -> list[Scores | None]:
        """The batch failed: score each record alone, so one bad record costs only itself. If
        every record fails alone too and none of the object was scored yet, the failure is not
        the records' (a backend is down): it is raised and the message retried."""
        if _transient(error):
            raise error
        results: list[Scores | None] = []
        for interaction in batch:
            try:
                results.append(self._compute([interaction])[0])
            except Exception as exc:
                if _transient(exc):
                    raise
                results.append(None)
        if all(r is None for r in results) and not scored_before:
            raise error
        for interaction, result in zip(batch, results, strict=True):
            if result is None:
                counted = report.canary if is_canary(interaction) else report.interactions
                counted[interaction.model_id] -= 1
                report.skipped[(interaction.model_id, SkipReason.SCORING_ERROR)] += 1
                logger.warning(
                    "record failed scoring alone; skipped",
                    extra={"service": self.service, "request_id": interaction.request_id},
                )
        return results

    def _score(
        self, batch: Sequence[Interaction], report: ObjectReport, scored_before: bool
    ) -> list[MetricPoint]:
        assert self.policy is not None
        if not batch:
            return []
        results: Sequence[Scores | None]
        try:
            results = self._compute(batch)
        except Exception as exc:
            results = self._isolated(batch, report, exc, scored_before)
        report.scored += sum(r is not None for r in results)
        now = self.now()
        points: list[MetricPoint] = []
        dropped = frozenset(self.settings.drop_metrics)
        if not self.settings.detail_metrics:
            dropped |= self.detail  # the lean default: detail is opt-in
        per_model_only = frozenset() if self.settings.detail_dimensions else self.detail
        for interaction, scores in zip(batch, results, strict=True):
            if scores is None:
                continue
            dims = self.policy.dimensions(interaction.model_id, interaction.request_metadata)
            model_dims = self.policy.dimensions(interaction.model_id) if per_model_only else dims
            moment = self._timestamp(interaction, now)
            prefix = "Canary" if is_canary(interaction) else ""
            for name, raw in scores.items():
                if prefix + name in dropped or name in dropped:
                    continue  # turned off (LLMMON_DROP_METRICS, detail): never a custom metric
                value = _metric_value(raw)
                if isinstance(value, str):
                    # One value CloudWatch would refuse must not fail the request that carries
                    # the object's other values: it is left out, and counted.
                    report.skipped_values[(interaction.model_id, value)] += 1
                    continue
                unit = self.units.get(name, Unit.NONE)
                series = model_dims if name in per_model_only else dims
                points.append(MetricPoint(prefix + name, value, unit, series, moment))
        return points

    def _outside_log_prefix(self, ref: ObjectRef) -> str | None:
        """Why an event's object is not read at all: another bucket than the log bucket, or a key
        outside ``<prefix>/AWSLogs/`` (the bucket notification never sends those; a forged or
        misrouted event could)."""
        settings = self.settings
        if settings.log_bucket and ref.bucket != settings.log_bucket:
            return "foreign-bucket"
        prefix = settings.log_prefix.strip("/")
        root = f"{prefix}/AWSLogs/" if prefix else "AWSLogs/"
        if settings.log_bucket and not ref.key.startswith(root):
            return "outside-log-prefix"
        return None

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self.clock() > self._deadline

    def _check_deadline(self) -> None:
        if self._past_deadline():
            raise DeadlineExceeded("too close to the function timeout; the message is retried")

    def _object_skip(self, reason: str) -> MetricPoint:
        """``SkippedObjects{Service, Reason}``: a whole object not scored, and why."""
        dims = (("Reason", reason), ("Service", self.service))
        return MetricPoint("SkippedObjects", 1, Unit.COUNT, dims, self.now())

    def _counters(self, report: ObjectReport) -> list[MetricPoint]:
        assert self.policy is not None
        now = self.now()
        service = ("Service", self.service)

        def dims(model_id: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
            model_dims = self.policy.dimensions(model_id) if self.policy else ()
            return tuple(sorted((*model_dims, service, *extra)))

        points = [
            MetricPoint("Interactions", n, Unit.COUNT, dims(model), now)
            for model, n in report.interactions.items()
        ]
        points += [
            MetricPoint("SampledOut", n, Unit.COUNT, dims(model), now)
            for model, n in report.sampled_out.items()
        ]
        points += [
            MetricPoint("CanaryInteractions", n, Unit.COUNT, dims(model), now)
            for model, n in report.canary.items()
        ]
        points += [
            MetricPoint("SkippedRecords", n, Unit.COUNT, dims(model, ("Reason", str(reason))), now)
            for (model, reason), n in report.skipped.items()
        ]
        points += [
            MetricPoint("SkippedValues", n, Unit.COUNT, dims(model, ("Reason", reason)), now)
            for (model, reason), n in report.skipped_values.items()
        ]
        points.append(MetricPoint("ParseErrors", report.parse_errors, Unit.COUNT, (service,), now))
        # Health as ratios (the Average of 0/1 values): lines that are not records, records
        # llmmon could not read. (One ObjectsProcessed per object, the watcher's metric, comes
        # with its last chunk.)
        read = sum(report.interactions.values()) + sum(report.skipped.values())
        read += sum(report.canary.values())
        read += sum(report.sampled_out.values())
        unreadable = sum(n for (_, reason), n in report.skipped.items() if reason in UNREADABLE)
        points += [MetricPoint("BadLine", 1.0, Unit.NONE, (service,), now)] * report.parse_errors
        points += [MetricPoint("BadLine", 0.0, Unit.NONE, (service,), now)] * read
        points += [MetricPoint("UnreadableRecord", 1.0, Unit.NONE, (service,), now)] * unreadable
        points += [MetricPoint("UnreadableRecord", 0.0, Unit.NONE, (service,), now)] * (
            read - unreadable
        )
        return points

    # -- one message, one event ---------------------------------------------------------------

    def process_object(self, ref: ObjectRef, queue: str | None = None) -> dict[str, Any]:
        """Score one object and deliver its metrics chunk by chunk (one chunk per scored batch).
        Each chunk is announced in the object's checkpoint before it is sent and confirmed
        after (see :mod:`llmmon_shared.progress`): a retry resumes after the last chunk that
        went out, and a chunk whose delivery is unknown (a crash or a lost write between its
        announcement and its confirmation) is never sent again but counted
        (``UnconfirmedRecords``). No chunk is sent unless its announcement was saved, so nothing
        is counted twice. Returns the report's summary. With an idempotency table this runs at
        most once per object version and start (see ``_idempotent``).

        ``queue`` is the ARN of the queue the message came from. A receive stopped midway (the
        deadline, a backend failing) after it delivered part of the object hands the rest to a
        continuation message on that queue instead of failing (see :meth:`_hand_over`): a
        receive that made progress never brings the object closer to the dead-letter queue. A
        receive that made none fails as before."""
        reason = self._outside_log_prefix(ref)
        if reason is not None:
            return self._skip_object(ref, reason)
        version = _version(ref)
        owner = ref.start
        assert self.progress is not None
        checkpoint = self.progress.load(version)
        if checkpoint.done:
            # Delivered in full before; only its COMPLETED mark was lost (see CompletingStore).
            self._duplicates += 1
            return {"key": ref.key, "duplicate": True}
        if checkpoint.owner > owner:
            # An earlier receive of this message handed the rest on and stopped before the
            # message was acknowledged: the continuation owns the object. It is sent again (a
            # duplicate of it is recognised by its idempotency key), nothing is scored here.
            return self._send_continuation(ref, checkpoint.owner, queue, "resent", 0)
        report = ObjectReport(ref.key)
        if checkpoint.unconfirmed:
            checkpoint = self._settle_unconfirmed(ref, version, checkpoint, owner)
            if checkpoint.done:
                return {"key": ref.key, "unconfirmed": checkpoint.position}
        # Items whose metrics went out (or were logged lost). A continuation's own start counts
        # where the checkpoint is gone (no table: another container left the object there).
        delivered = max(checkpoint.position, ref.start)
        started = delivered
        confirmed = True
        try:
            for points, position, last in self.chunks(ref, report, delivered):
                announced = Checkpoint(delivered, pending=position, pending_last=last, owner=owner)
                if not self._save(version, announced):
                    raise CheckpointUnavailable(
                        f"cannot announce a chunk of s3://{ref.bucket}/{ref.key}; nothing of it "
                        "was sent"
                    )
                self._deliver(points, ref, report, version, delivered, owner)
                delivered = position
                confirmed = self._save(version, Checkpoint(position, done=last, owner=owner))
                if not confirmed:
                    # Harmless if the next announcement is saved (it carries this position);
                    # if nothing is saved again, a retry counts this chunk as unconfirmed.
                    self._completion_failures += 1
                    logger.error(
                        "chunk delivered but not confirmed",
                        extra={"service": self.service, "key": ref.key, "position": position},
                    )
        except SupersededObject:
            return self._skip_object(ref, "superseded-object", version)
        except ObjectTooLarge as exc:
            # Over a work or size bound: a retry could never do better. Chunks before the bound
            # went out; the rest of the object is the counted skip.
            return self._skip_object(ref, exc.reason, version)
        except Exception as exc:
            if (
                delivered > started
                and queue is not None
                and not isinstance(exc, CheckpointUnavailable)
            ):  # (a table that refuses writes would refuse the hand-over's too)
                handed = self._hand_over(ref, version, delivered, queue, exc)
                if handed is not None:
                    return handed
            if not confirmed:  # one more try, so the retry does not call a sent chunk unknown
                self._save(version, Checkpoint(delivered, owner=owner))
            raise  # retried from the last chunk that went out
        summary = report.as_log()
        logger.info("object scored", extra={"service": self.service, **summary})
        return summary

    def _hand_over(
        self, ref: ObjectRef, version: str, position: int, queue: str, error: Exception
    ) -> dict[str, Any] | None:
        """The hand-over of an object stopped midway after progress, in three steps, each safe to
        be killed after:

        1. save the checkpoint at ``position`` with the continuation as its owner: from here no
           receive of this message scores the object again (it sends the continuation instead);
        2. send the continuation (the same object version from ``position``) to ``queue``: a
           new message, receive count 1, visible at once after a deadline, after
           ``continuation_delay_s`` after a failure (a backend that is down gets time);
        3. return normally, so the message is acknowledged (and, with a table, its idempotency
           record completed: a redelivery is a counted duplicate).

        A kill after 1 or 2 brings this message back: it finds the owner and sends the
        continuation again; a second copy has the first's idempotency key and is a duplicate.
        None when step 1 failed: the message fails as before (nothing was handed over)."""
        if not self._save(version, Checkpoint(position, owner=position)):
            return None
        delay = 0 if isinstance(error, DeadlineExceeded) else self.settings.continuation_delay_s
        logger.warning(
            "object handed over midway",
            extra={
                "service": self.service,
                "key": ref.key,
                "from": ref.start,
                "to": position,
                "error": type(error).__name__,
            },
        )
        return self._send_continuation(ref, position, queue, "continuation", delay)

    def _send_continuation(
        self, ref: ObjectRef, position: int, queue: str | None, reason: str, delay_s: int
    ) -> dict[str, Any]:
        """Step 2 of :meth:`_hand_over` (also a stale receive's re-send). Raises when the send
        fails: the message is retried, and its retry sends the continuation again."""
        if queue is not None:
            self._requeue(queue, continuation_body(ref, position), reason, delay_s)
        return {"key": ref.key, "continued_from": position}

    def _requeue(self, queue: str, body: str, reason: str, delay_s: int = 0) -> None:
        """Send ``body`` to ``queue``, counted ``Requeued{Service, Reason}``."""
        if self.requeue is None:
            self.requeue = SqsRequeue(TimeBoundClient("sqs", self._time_left))
        self.requeue.send(queue, body, delay_s)
        self._requeued[reason] += 1
        dims = (("Reason", reason), ("Service", self.service))
        self.sink.add([MetricPoint("Requeued", 1, Unit.COUNT, dims, self.now())])
        self.sink.flush()

    def _settle_unconfirmed(
        self, ref: ObjectRef, version: str, checkpoint: Checkpoint, owner: int
    ) -> Checkpoint:
        """A chunk was announced and never confirmed: its metrics may or may not have gone out.
        It is passed over (saved first, so this runs once) and counted, never sent again."""
        settled = Checkpoint(checkpoint.pending, done=checkpoint.pending_last, owner=owner)
        if not self._save(version, settled):
            raise CheckpointUnavailable(
                f"cannot save the checkpoint of s3://{ref.bucket}/{ref.key}"
            )
        logger.warning(
            "chunk of unknown delivery passed over",
            extra={
                "service": self.service,
                "key": ref.key,
                "from": checkpoint.position,
                "to": checkpoint.pending,
            },
        )
        point = MetricPoint(
            "UnconfirmedRecords",
            checkpoint.unconfirmed,
            Unit.COUNT,
            (("Service", self.service),),
            self.now(),
        )
        self.sink.add([point])
        self.sink.flush()
        return settled

    def _skip_object(
        self, ref: ObjectRef, reason: str, version: str | None = None
    ) -> dict[str, Any]:
        """Not ours to read, overwritten since its event (that content is gone; the new
        content's own event scores it), or over a bound: a counted skip, not a failure."""
        logger.warning(
            "object skipped", extra={"service": self.service, "key": ref.key, "reason": reason}
        )
        self.sink.add([self._object_skip(reason)])
        self.sink.flush()
        if version is not None:
            self._save(version, Checkpoint(0, True))
        return {"key": ref.key, "skipped_object": reason}

    def _deliver(
        self,
        points: list[MetricPoint],
        ref: ObjectRef,
        report: ObjectReport,
        version: str,
        delivered: int,
        owner: int,
    ) -> None:
        self.sink.add(points)
        try:
            self.sink.flush()
        except EmitError as exc:
            if exc.sent == 0:
                # Nothing of this chunk went out: withdraw its announcement (else a retry would
                # count it unconfirmed) and retry the message from the last chunk that did.
                self._save(version, Checkpoint(delivered, owner=owner))
                raise
            # Part of the chunk went out: sending it again would count that part twice. What
            # could not be delivered is logged as lost and the object goes on.
            logger.error(
                "metrics partly delivered; the rest of the chunk is lost",
                extra={
                    "service": self.service,
                    "key": ref.key,
                    "requests_sent": exc.sent,
                    "requests": exc.total,
                    "values_lost": exc.lost_values,
                },
            )
            report.values_lost += exc.lost_values

    def _save(self, version: str, checkpoint: Checkpoint) -> bool:
        progress = self.progress
        assert progress is not None
        return self._durable(lambda: progress.save(version, checkpoint))

    def _durable(self, write: Callable[[], None]) -> bool:
        """A write that guards exactly-once (a checkpoint, the COMPLETED mark): tried up to three
        times, each try held to the time left in the invocation (:class:`TimeBoundClient`), so
        it returns before Lambda could kill the function. Never raises: False when it failed."""
        from botocore.exceptions import ConnectionError as Unreachable
        from botocore.exceptions import HTTPClientError

        for attempt in range(3):
            try:
                write()
                return True
            except Exception as exc:
                # botocore already retried timeouts and refused connections within the bound.
                if attempt == 2 or isinstance(exc, NoTimeLeft | Unreachable | HTTPClientError):
                    logger.error(
                        "checkpoint write failed",
                        extra={"service": self.service, "error": type(exc).__name__},
                    )
                    return False
                time.sleep(0.2 * 2**attempt)
        return False

    def _time_left(self) -> float | None:
        """Seconds before the invocation's own timeout (None outside Lambda)."""
        if self._hard_deadline is None:
            return None
        return self._hard_deadline - self.clock()

    def _idempotent(self, table: str) -> Callable[..., dict[str, Any]]:
        """``process_object`` behind Powertools idempotency, keyed by service and object version
        (bucket, key, etag). A completed object returns its stored summary without running
        again; an object in progress elsewhere raises (the message is retried later); a run that
        raises leaves no record (the retry runs it whole)."""
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        def replayed(response: Any, record: Any) -> Any:  # Powertools' IdempotentHookFunction
            self._duplicates += 1
            return response

        self._idempotency_config = IdempotencyConfig(
            expires_after_seconds=self.settings.idempotency_ttl_s,
            raise_on_no_idempotency_key=True,
            response_hook=replayed,  # type: ignore[arg-type]
        )
        pipeline = self

        class CompletingStore(DynamoDBPersistenceLayer):
            """Marking an object COMPLETED is retried; if it still fails, the object's metrics
            are out already, so the message is acknowledged (a retry would count them twice)
            and the failure is counted instead of raised."""

            def save_success(self, data: dict[str, Any], result: dict[str, Any]) -> None:
                if not pipeline._durable(
                    lambda: super(CompletingStore, self).save_success(data=data, result=result)
                ):
                    pipeline._completion_failures += 1
                    logger.error(
                        "object scored but not marked complete; acknowledged",
                        extra={"service": pipeline.service},
                    )

        # Every call held to the time left in the invocation (TimeBoundClient): an endpoint
        # that accepts connections and never answers cannot outlast the function.
        store = CompletingStore(table_name=table, boto3_client=self._table)

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="version",
            persistence_store=store,
            config=self._idempotency_config,
            key_prefix=self.service,
        )
        def once(version: dict[str, str], ref: ObjectRef, queue: str | None) -> dict[str, Any]:
            # ``version`` is the key (unchanged since the first release for an S3 event, so
            # records written before an upgrade still match; a continuation's carries its start:
            # it is new work on the same object version, not a duplicate of its event);
            # ``ref`` is the event's object as it named it.
            return self.process_object(ref, queue)

        return cast(Callable[..., dict[str, Any]], once)

    def handle_message(
        self, body: str, queue: str | None = None, received_at: datetime | None = None
    ) -> list[dict[str, Any] | SkippedObject]:
        """Score every object a message names; each object's metrics are delivered chunk by
        chunk. ``queue``: the ARN of the queue the message came from, where an object stopped
        midway is continued (None: no continuation, the message fails). A message that names no
        log object at all (S3's test event, a large-body data object...) is counted,
        ``MessagesWithoutLogObject{Service}`` at ``received_at`` (the message's receive time):
        the stopped-emitting watcher takes those off SQS's count. Raises on failure."""
        outcomes: list[dict[str, Any] | SkippedObject] = []
        refs = unwrap_message(body)
        if refs and all(isinstance(ref, SkippedObject) for ref in refs):
            now = self.now()
            moment = now
            if received_at and now - MAX_METRIC_AGE <= received_at <= now + MAX_METRIC_LEAD:
                moment = received_at
            self.sink.add(
                [
                    MetricPoint(
                        "MessagesWithoutLogObject",
                        1,
                        Unit.COUNT,
                        (("Service", self.service),),
                        moment,
                    )
                ]
            )
            self.sink.flush()
        for ref in refs:
            if isinstance(ref, SkippedObject):
                logger.info("skipped event", extra={"reason": ref.reason, "key": ref.key})
                outcomes.append(ref)
                continue
            if self._once is None:
                outcomes.append(self.process_object(ref, queue))
                continue
            before, failures = self._duplicates, self._completion_failures
            version = {
                "bucket": ref.bucket,
                "key": ref.key,
                "etag": ref.etag or ref.sequencer or "",
            }
            if ref.start:
                version["start"] = str(ref.start)
            outcomes.append(self._once(version=version, ref=ref, queue=queue))
            if self._completion_failures > failures:
                self.sink.add(
                    [
                        MetricPoint(
                            "IdempotencyWriteFailures",
                            1,
                            Unit.COUNT,
                            (("Service", self.service),),
                            self.now(),
                        )
                    ]
                )
                self.sink.flush()
            if self._duplicates > before:
                logger.info(
                    "duplicate object skipped", extra={"service": self.service, "key": ref.key}
                )
                self.sink.add(
                    [
                        MetricPoint(
                            "DuplicateObjects",
                            1,
                            Unit.COUNT,
                            (("Service", self.service),),
                            self.now(),
                        )
                    ]
                )
                self.sink.flush()
        return outcomes

    def handle_event(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """Lambda entry point for an SQS event; returns ``batchItemFailures``."""
        from aws_lambda_powertools.utilities.batch import (
            BatchProcessor,
            EventType,
            process_partial_response,
        )
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

        if self._idempotency_config is not None and context is not None:
            self._idempotency_config.register_lambda_context(context)
        self._deadline = self._hard_deadline = None
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            remaining = context.get_remaining_time_in_millis() / 1000
            self._hard_deadline = self.clock() + remaining
            # Stop starting work with a fifth of the time left, instead of the invocation
            # timing out and every message of the batch being received once more: an object
            # stopped midway is continued by a new message, messages not started are put back
            # as new messages (see ``_hand_over`` and ``record_handler``).
            if remaining >= SOFT_DEADLINE_MIN_S:
                self._deadline = self.clock() + remaining * 0.8

        def record_handler(record: SQSRecord) -> None:
            queue = record.event_source_arn or None
            try:
                if self._past_deadline() and queue is not None:
                    # Not started: a new copy of the message goes back on the queue, and this
                    # receive is acknowledged. A receive that never tried the message is no
                    # evidence of poison, and the copy does not wait out the visibility timeout.
                    try:
                        self._requeue(queue, record.body, "deferred")
                        return
                    except Exception as exc:
                        logger.warning(
                            "message not deferred; it is retried",
                            extra={"service": self.service, "error": type(exc).__name__},
                        )
                self._check_deadline()
                self.handle_message(record.body, queue, _received_at(record.raw_event))
            except Exception as exc:
                logger.error(
                    "message failed",
                    extra={
                        "service": self.service,
                        "message_id": record.message_id,
                        "objects": _object_names(record.body),
                        "error": type(exc).__name__,
                        "detail": _safe_detail(exc),
                    },
                )
                raise

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = process_partial_response(
            event=dict(event), record_handler=record_handler, processor=processor, context=context
        )
        return dict(response)


def make_sink(settings: ServiceSettings, cloudwatch: Any = None) -> MetricSink:
    """The sink the settings name: EMF to stdout (Lambda), PutMetricData, or memory."""
    if settings.sink == "putmetricdata":
        from llmmon_shared.aws import client

        return PutMetricDataSink(settings.namespace, cloudwatch or client("cloudwatch"))
    if settings.sink == "memory":
        return MemorySink(settings.namespace)
    return EmfSink(settings.namespace)


def build_pipeline(
    service: str,
    compute: Compute,
    units: Mapping[str, Unit],
    settings: ServiceSettings,
    s3: S3Reader | None = None,
    sink: MetricSink | None = None,
    reads_response: bool = True,
    reads_prompt: bool = False,
    detail: frozenset[str] = frozenset(),
) -> Pipeline:
    """A pipeline wired to real AWS clients (or the ones given), as a handler builds it once per
    cold start. ``detail``: the service's opt-in detail scores (``ServiceSpec.detail_metrics``)."""
    if s3 is None:
        from llmmon_shared.aws import client

        s3 = Boto3S3Reader(client("s3"))
    logging.getLogger("llmmon").setLevel(settings.log_level)
    return Pipeline(
        service=service,
        compute=compute,
        units=units,
        s3=s3,
        sink=sink or make_sink(settings),
        settings=settings,
        reads_response=reads_response,
        reads_prompt=reads_prompt,
        detail=detail,
    )


def lambda_entry(
    create: Callable[[], Pipeline],
) -> tuple[Callable[[], Pipeline], Callable[[dict[str, Any], Any], dict[str, Any]]]:
    """A service handler module's two entry points: ``pipeline()``, built once per container and
    cached, and ``lambda_handler(event, context)``.

    In Lambda (``AWS_LAMBDA_INITIALIZATION_TYPE`` is set in every execution environment) the
    pipeline is built while the module is imported, in the init phase: loading models and
    settings then costs the init phase's time, not the first invocation's timeout, whose every
    second is budgeted for the idempotency and checkpoint writes (see ``TimeBoundClient``). The
    local stack's worker does the same before its first receive. Elsewhere (tests, the CLI) it is
    built at the first call."""
    import os
    from functools import cache

    pipeline = cache(create)
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"):
        pipeline()

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return pipeline().handle_event(event, context)

    return pipeline, lambda_handler


def _transient(exc: BaseException) -> bool:
    """A failure of the service behind the scorer, not of the record: throttling, 5xx, network,
    timeouts. Those fail the message (it is retried); anything else is the record's."""
    from botocore.exceptions import BotoCoreError

    from llmmon_shared.aws import RETRYABLE_CODES, error_code

    if isinstance(exc, ConnectionError | TimeoutError | BotoCoreError):
        return True
    code = error_code(exc)
    if code is None:
        return False
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in RETRYABLE_CODES or int(status or 0) >= 500


def _metric_value(raw: float) -> float | str:
    """A score as the float CloudWatch accepts, or the reason it cannot be one
    (``value-out-of-range``: magnitude over 2^360, or an integer too large for a float;
    ``value-not-finite``: NaN, infinity; ``value-not-a-number``)."""
    try:
        value = float(raw)
    except OverflowError:
        return "value-out-of-range"
    except (TypeError, ValueError):
        return "value-not-a-number"
    if math.isnan(value) or math.isinf(value):
        return "value-not-finite"
    accepted = cloudwatch_value(value)
    return "value-out-of-range" if accepted is None else accepted


def _received_at(record: Mapping[str, Any]) -> datetime | None:
    """When SQS gave the message to the function's poller (its first receive), from the SQS
    record's ``ApproximateFirstReceiveTimestamp`` (milliseconds); None when absent."""
    raw = (record.get("attributes") or {}).get("ApproximateFirstReceiveTimestamp")
    try:
        return datetime.fromtimestamp(int(raw) / 1000, UTC) if raw else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def is_canary(interaction: Interaction) -> bool:
    """Traffic the canary sent (``requestMetadata`` names it), not users'."""
    return CANARY_KEY in interaction.request_metadata


def _version(ref: ObjectRef) -> str:
    """One version of one object, as its event names it."""
    return f"{ref.bucket}/{ref.key}#{ref.version_id or ref.etag or ref.sequencer or ''}"


def _object_names(body: str) -> str:
    """``bucket/key`` of the objects a message names, for a failure's log line (keys are
    Bedrock's paths, never user text)."""
    try:
        refs = unwrap_message(body)
    except Exception:
        return "(not an S3 event)"
    return ", ".join(f"{r.bucket}/{r.key}" for r in refs if isinstance(r, ObjectRef)) or "-"


def _safe_detail(exc: BaseException) -> str:
    """Exception messages of our own error types (they never hold text); others by type only."""
    from llmmon_shared.events import InvalidEventError
    from llmmon_shared.logs import CorruptObjectError

    if isinstance(
        exc,
        InvalidEventError
        | CorruptObjectError
        | ObjectUnavailableError
        | UnreadableObjectError
        | DeadlineExceeded,
    ):
        return str(exc)
    return type(exc).__name__
