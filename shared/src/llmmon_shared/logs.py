"""Bedrock model invocation log records: the record model, the object reader, large-data bodies.

A log object is gzip-compressed JSON lines (aws-facts.md section 1). The reader streams it record by
record with bounded memory; a bad line is reported as a :class:`LineError` and skipped, the rest of
the object is still read. A corrupt object (truncated gzip, not gzip and not JSON lines) raises
:class:`CorruptObjectError` after yielding what could be read, so the caller can fail the whole
object and let the queue retry it or move it to the dead-letter queue.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_LINE_BYTES",
    "BodyFetchError",
    "BodyRejected",
    "CorruptObjectError",
    "FolderS3Reader",
    "InputSection",
    "InvocationLogRecord",
    "Limits",
    "LineError",
    "ObjectTooLarge",
    "OutputSection",
    "S3Reader",
    "iter_log_lines",
    "parse_s3_uri",
    "read_log_object",
    "resolve_large_bodies",
]

MAX_LINE_BYTES = 1024 * 1024
"""A single JSON line larger than this is reported as a bad line instead of being held in memory.
Bedrock moves bodies of about 100 KB and more to ``data/`` objects, so real lines are far smaller;
parsing a line costs many times its size in memory (a 63 MiB line of ``[{},...]`` took 1.8 GB)."""


@dataclass(frozen=True)
class Limits:
    """Work and memory one log object may cost (``LLMMON_MAX_*`` settings)."""

    max_line_bytes: int = MAX_LINE_BYTES
    max_lines: int = 500_000
    """Lines per object, blank ones included: bounds the parse work (256 MiB of newlines in a
    0.26 MB object ran 427 s)."""
    max_object_bytes: int = 1024 * 1024 * 1024
    """Decompressed bytes per object."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Decompressed bytes of one large-data body (a 1 MB body inflating to 1 GiB peaked at 3.2 GB
    with an uncapped ``json.load``)."""
    max_json_nodes: int = 250_000
    """JSON nodes (see :func:`json_nodes`) of one line or one large-data body, counted before it is
    parsed: parsing costs up to about 72 bytes of memory per node whatever the byte count (a
    15 MiB body of ``{},`` repeated grew a process by 420 MB and took 3 s a record)."""


DEFAULT_LIMITS = Limits()


class ObjectTooLarge(Exception):
    """The object exceeds a :class:`Limits` bound: a counted skip (``reason``), not a failure."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


GZIP_MAGIC = b"\x1f\x8b"

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_nodes(text: bytes) -> int:
    """An upper bound of the values ``json.loads(text)`` would build, without building them: the
    ``{``, ``[``, ``,`` and ``:`` outside strings (one linear regex pass; strings are dropped
    first, so text inside them never counts)."""
    bare = _JSON_STRING.sub(b"", text)
    return bare.count(b"{") + bare.count(b"[") + bare.count(b",") + bare.count(b":")


JsonBody = dict[str, Any] | list[Any]


class _Tolerant(BaseModel):
    """Unknown fields are kept (``extra="allow"``): Bedrock adds fields without notice."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=False)


class Identity(_Tolerant):
    arn: str | None = None


class InputSection(_Tolerant):
    input_content_type: str | None = Field(default=None, alias="inputContentType")
    input_body_json: JsonBody | None = Field(default=None, alias="inputBodyJson")
    input_body_s3_path: str | None = Field(default=None, alias="inputBodyS3Path")
    input_token_count: int | None = Field(default=None, alias="inputTokenCount")
    cache_read_input_token_count: int | None = Field(default=None, alias="cacheReadInputTokenCount")
    cache_write_input_token_count: int | None = Field(
        default=None, alias="cacheWriteInputTokenCount"
    )


class OutputSection(_Tolerant):
    output_content_type: str | None = Field(default=None, alias="outputContentType")
    # InvokeModelWithResponseStream logs a LIST of decoded chunks; everything else a dict.
    output_body_json: JsonBody | None = Field(default=None, alias="outputBodyJson")
    output_body_s3_path: str | None = Field(default=None, alias="outputBodyS3Path")
    output_token_count: int | None = Field(default=None, alias="outputTokenCount")


class InvocationLogRecord(_Tolerant):
    """One line of a Bedrock model invocation log object (schemaType ModelInvocationLog)."""

    schema_type: str | None = Field(default=None, alias="schemaType")
    schema_version: str | None = Field(default=None, alias="schemaVersion")
    timestamp: str | None = None
    account_id: str | None = Field(default=None, alias="accountId")
    identity: Identity | None = None
    region: str | None = None
    request_id: str | None = Field(default=None, alias="requestId")
    operation: str | None = None
    model_id: str | None = Field(default=None, alias="modelId")
    inference_region: str | None = Field(default=None, alias="inferenceRegion")
    request_metadata: dict[str, Any] | None = Field(default=None, alias="requestMetadata")
    error_code: str | None = Field(default=None, alias="errorCode")
    input: InputSection | None = None
    output: OutputSection | None = None


@dataclass(frozen=True, slots=True)
class LineError:
    """A line of a log object that could not be read as a record. Holds no line content."""

    line_number: int
    reason: str


class CorruptObjectError(Exception):
    """The object as a whole cannot be read (truncated gzip, binary garbage)."""


class BodyFetchError(Exception):
    """A large-data body named by ``inputBodyS3Path``/``outputBodyS3Path`` could not be read."""


class BodyRejected(BodyFetchError):
    """A large-data body llmmon will not read: outside the log prefix, or over the size cap."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class S3Reader(Protocol):
    """The one S3 operation the pipeline needs: open an object for streaming reads."""

    def open(self, bucket: str, key: str) -> IO[bytes]: ...


class _ReadAdapter(io.RawIOBase):
    """Any object with ``read(n)`` (a file, botocore's StreamingBody) as a raw stream."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        return size


def _open_text_stream(raw: IO[bytes]) -> IO[bytes]:
    """Return a byte stream of the object's JSON lines, gunzipping when the object is gzip."""
    buffered = io.BufferedReader(_ReadAdapter(raw), buffer_size=1 << 16)
    head = buffered.peek(2)[:2]
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if head[:1] in (b"{", b"\n", b"\r", b" ", b""):
        return buffered
    raise CorruptObjectError("object is neither gzip nor JSON lines")


def iter_log_lines(raw: IO[bytes], limits: Limits | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line_bytes)`` for each non-blank line, streaming.

    Lines longer than ``max_line_bytes`` are yielded as ``b""`` markers after being drained, so
    memory stays bounded whatever the object holds; more than ``max_lines`` lines or
    ``max_object_bytes`` decompressed bytes raise :class:`ObjectTooLarge`.
    """
    limits = limits or Limits(max_line_bytes=MAX_LINE_BYTES)
    cap = limits.max_line_bytes
    stream = _open_text_stream(raw)
    line_number, total = 0, 0
    try:
        while True:
            line = stream.readline(cap + 1)
            if not line:
                return
            line_number += 1
            total += len(line)
            if line_number > limits.max_lines:
                raise ObjectTooLarge("too-many-lines", f"more than {limits.max_lines} lines")
            if len(line) > cap and not line.endswith(b"\n"):
                while True:  # drain the rest of the oversized line
                    rest = stream.readline(cap)
                    total += len(rest)
                    if total > limits.max_object_bytes:
                        break
                    if not rest or rest.endswith(b"\n"):
                        break
                line = b""
            if total > limits.max_object_bytes:
                raise ObjectTooLarge(
                    "object-too-large", f"more than {limits.max_object_bytes} bytes decompressed"
                )
            if not line:
                yield line_number, b""
            elif line.strip():
                yield line_number, line
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise CorruptObjectError(
            f"cannot decompress object after line {line_number}: {type(exc).__name__}"
        ) from exc


def read_log_object(
    raw: IO[bytes], limits: Limits | None = None
) -> Iterator[InvocationLogRecord | LineError]:
    """Stream the records of one log object; bad lines become :class:`LineError` items.

    Raises :class:`CorruptObjectError` (after yielding every readable record) when the object
    itself is damaged, :class:`ObjectTooLarge` when it exceeds ``limits``.
    """
    max_nodes = (limits or DEFAULT_LIMITS).max_json_nodes
    for line_number, line in iter_log_lines(raw, limits):
        if not line:
            yield LineError(line_number, "line-too-long")
            continue
        if json_nodes(line) > max_nodes:
            yield LineError(line_number, "too-many-json-nodes")
            continue
        try:
            data = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            yield LineError(line_number, "invalid-json")
            continue
        if not isinstance(data, dict):
            yield LineError(line_number, "not-a-json-object")
            continue
        try:
            yield InvocationLogRecord.model_validate(data)
        except (ValidationError, RecursionError):
            yield LineError(line_number, "invalid-record")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``."""
    if not uri.startswith("s3://"):
        raise BodyFetchError("large-data path is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or not key:
        raise BodyFetchError("large-data path lacks a bucket or key")
    return bucket, key


@dataclass(frozen=True)
class FolderS3Reader:
    """:class:`S3Reader` over a local folder laid out like the bucket (the bucket name is ignored):
    for reading downloaded or generated log objects with their large-data bodies."""

    root: Path

    def open(self, bucket: str, key: str) -> IO[bytes]:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise BodyFetchError("key escapes the folder")
        return path.open("rb")


def _fetch_body(
    reader: S3Reader,
    uri: str,
    allowed: Callable[[str, str], bool] | None,
    max_bytes: int,
    max_nodes: int,
) -> JsonBody:
    bucket, key = parse_s3_uri(uri)
    if allowed is not None and not allowed(bucket, key):
        raise BodyRejected("body-outside-log-prefix", "large-data path outside the log prefix")
    try:
        with closing(reader.open(bucket, key)) as raw:
            stream = _open_text_stream(raw)
            text = stream.read(max_bytes + 1)  # never more than the cap in memory
            if len(text) > max_bytes:
                raise BodyRejected(
                    "large-body-too-large", f"large-data body over {max_bytes} bytes"
                )
            if json_nodes(text) > max_nodes:
                raise BodyRejected(
                    "large-body-too-complex", f"large-data body over {max_nodes} JSON nodes"
                )
            data = json.loads(text)
    except BodyFetchError:
        raise
    except CorruptObjectError as exc:
        raise BodyFetchError(f"large-data body is unreadable: {exc}") from exc
    except (ValueError, EOFError, zlib.error, OSError, RecursionError) as exc:
        raise BodyFetchError(f"large-data body is unreadable: {type(exc).__name__}") from exc
    except Exception as exc:  # reader errors (ClientError, NoSuchKey) surface as one type
        raise BodyFetchError(f"large-data body could not be fetched: {type(exc).__name__}") from exc
    if not isinstance(data, dict | list):
        raise BodyFetchError("large-data body is not a JSON object or list")
    return data


def resolve_large_bodies(
    record: InvocationLogRecord,
    reader: S3Reader,
    allowed: Callable[[str, str], bool] | None = None,
    max_bytes: int = DEFAULT_LIMITS.max_body_bytes,
    max_nodes: int = DEFAULT_LIMITS.max_json_nodes,
) -> InvocationLogRecord:
    """Fill ``inputBodyJson``/``outputBodyJson`` from their S3 paths when the body was too large.

    Raises :class:`BodyFetchError` when a named body cannot be read (the caller skips the record
    as ``large-body-unavailable``), and :class:`BodyRejected` when ``allowed(bucket, key)`` refuses
    its path, it decompresses to more than ``max_bytes`` or it holds more than ``max_nodes`` JSON
    nodes (skipped with the rejection's reason). A failed call (``errorCode``) is never fetched:
    nothing of it is scored.
    """
    if record.error_code:
        return record
    source, sink = record.input, record.output
    if source is not None and source.input_body_json is None and source.input_body_s3_path:
        source.input_body_json = _fetch_body(
            reader, source.input_body_s3_path, allowed, max_bytes, max_nodes
        )
    if sink is not None and sink.output_body_json is None and sink.output_body_s3_path:
        sink.output_body_json = _fetch_body(
            reader, sink.output_body_s3_path, allowed, max_bytes, max_nodes
        )
    return record
