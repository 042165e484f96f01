"""Unwrap what reaches a service: SQS record body -> SNS envelope or raw -> S3 event -> objects.

An SQS message body is either the S3 event JSON itself (SNS raw message delivery) or an SNS
envelope whose ``Message`` is that JSON. Events that carry no log object (``s3:TestEvent``, large
data bodies under ``/data/``, Bedrock's permission-check object, empty objects, removals) are
returned as :class:`SkippedObject` with a reason; a body that is none of these raises
:class:`InvalidEventError`, which the handler reports as a failed batch item (and so, after the
queue's maxReceiveCount, the message reaches the dead-letter queue).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

__all__ = [
    "LOG_KEY_PATTERN",
    "PERMISSION_CHECK_OBJECT",
    "InvalidEventError",
    "ObjectRef",
    "SkippedObject",
    "classify_key",
    "continuation_body",
    "unwrap_message",
]

LOG_KEY_PATTERN = re.compile(
    r"AWSLogs/(\d{12})/BedrockModelInvocationLogs/([a-z0-9-]+)/\d{4}/\d{2}/\d{2}/\d{2}/[^/]+\.json\.gz$"
)
PERMISSION_CHECK_OBJECT = "amazon-bedrock-logs-permission-check"


class InvalidEventError(ValueError):
    """The message is not an S3 event (raw or inside an SNS envelope)."""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A Bedrock log object to read. ``key`` is URL-decoded."""

    bucket: str
    key: str
    size: int | None
    etag: str | None
    sequencer: str | None = None
    version_id: str | None = None
    """``versionId`` of the event (versioned buckets): the object is read at that version."""
    start: int = 0
    """Items (records and bad lines) of the object already accounted for: a continuation
    message (:func:`continuation_body`) resumes the object there. 0 for an S3 event."""

    @property
    def idempotency_key(self) -> str:
        """Identifies one version of one object: the same object redelivered gives the same key."""
        return f"{self.bucket}/{self.key}#{self.etag or self.sequencer or ''}"


@dataclass(frozen=True, slots=True)
class SkippedObject:
    """An event that names no log object to score, and why."""

    reason: str
    bucket: str | None = None
    key: str | None = None


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, TypeError) as exc:
        raise InvalidEventError(f"{what} is not JSON") from exc


def _s3_payload(body: str) -> dict[str, Any]:
    data = _loads(body, "message body")
    if not isinstance(data, dict):
        raise InvalidEventError("message body is not a JSON object")
    if data.get("Type") == "Notification" and "Message" in data:
        message = data["Message"]
        if not isinstance(message, str):
            raise InvalidEventError("SNS Message is not a string")
        data = _loads(message, "SNS Message")
        if not isinstance(data, dict):
            raise InvalidEventError("SNS Message is not a JSON object")
    return data


def classify_key(key: str, size: int | None) -> str | None:
    """The skip reason for an object that is not a log file, or None for a log file."""
    if key.rsplit("/", 1)[-1] == PERMISSION_CHECK_OBJECT:
        return "permission-check-object"
    if "/data/" in key or key.startswith("data/"):
        return "large-data-body-object"
    if size == 0:
        return "empty-object"
    if not key.endswith(".json.gz"):
        return "not-a-log-object"
    return None


def _object_from_record(record: Any) -> ObjectRef | SkippedObject:
    if not isinstance(record, dict):
        raise InvalidEventError("S3 event record is not an object")
    event_name = record.get("eventName")
    s3 = record.get("s3")
    if not isinstance(s3, dict):
        raise InvalidEventError("S3 event record has no s3 section")
    bucket_section, object_section = s3.get("bucket"), s3.get("object")
    if not isinstance(bucket_section, dict) or not isinstance(object_section, dict):
        raise InvalidEventError("S3 event record lacks bucket or object")
    bucket, raw_key = bucket_section.get("name"), object_section.get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str) or not raw_key:
        raise InvalidEventError("S3 event record lacks a bucket name or object key")
    key = unquote_plus(raw_key)
    if isinstance(event_name, str) and not event_name.startswith("ObjectCreated"):
        return SkippedObject("not-object-created", bucket, key)
    size = object_section.get("size")
    size = size if isinstance(size, int) and not isinstance(size, bool) else None
    etag = object_section.get("eTag")
    sequencer = object_section.get("sequencer")
    version_id = object_section.get("versionId")
    reason = classify_key(key, size)
    if reason is not None:
        return SkippedObject(reason, bucket, key)
    return ObjectRef(
        bucket=bucket,
        key=key,
        size=size,
        etag=etag if isinstance(etag, str) else None,
        sequencer=sequencer if isinstance(sequencer, str) else None,
        version_id=version_id if isinstance(version_id, str) and version_id else None,
    )


CONTINUATION = "llmmonContinuation"
"""Top-level key of a continuation message: the rest of one object, from a position."""


def continuation_body(ref: ObjectRef, start: int) -> str:
    """The message that hands the rest of ``ref`` (from item ``start``) to the service's next
    receive: the same object version, named as its event named it. Keys are Bedrock's paths,
    never user text."""
    return json.dumps(
        {
            CONTINUATION: {
                "bucket": ref.bucket,
                "key": ref.key,
                "size": ref.size,
                "eTag": ref.etag,
                "sequencer": ref.sequencer,
                "versionId": ref.version_id,
                "start": start,
            }
        },
        separators=(",", ":"),
    )


def _continuation(section: Any) -> ObjectRef:
    if not isinstance(section, dict):
        raise InvalidEventError("continuation is not an object")
    bucket, key, start = section.get("bucket"), section.get("key"), section.get("start")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise InvalidEventError("continuation lacks a bucket or key")
    if not isinstance(start, int) or isinstance(start, bool) or start < 1:
        raise InvalidEventError("continuation's start is not a positive integer")

    def text(name: str) -> str | None:
        value = section.get(name)
        return value if isinstance(value, str) and value else None

    size = section.get("size")
    return ObjectRef(
        bucket=bucket,
        key=key,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        etag=text("eTag"),
        sequencer=text("sequencer"),
        version_id=text("versionId"),
        start=start,
    )


def unwrap_message(body: str) -> list[ObjectRef | SkippedObject]:
    """Turn one SQS message body into the log objects it announces (usually exactly one)."""
    payload = _s3_payload(body)
    if CONTINUATION in payload:
        return [_continuation(payload[CONTINUATION])]
    if payload.get("Event") == "s3:TestEvent":
        return [SkippedObject("s3-test-event", payload.get("Bucket"))]
    records = payload.get("Records")
    if not isinstance(records, list) or not records:
        raise InvalidEventError("message carries no S3 event records")
    return [_object_from_record(record) for record in records]
