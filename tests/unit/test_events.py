"""Unwrapping SQS bodies: raw S3 events, SNS envelopes, and the events that carry no log object."""

from __future__ import annotations

import json

import pytest

from llmmon_shared.events import InvalidEventError, ObjectRef, SkippedObject, unwrap_message
from tests.conftest import HOUR, s3_event, sns_envelope

KEY = f"logs/{HOUR}/20261128T070512345Z_a1b2c3d4.json.gz"


@pytest.mark.parametrize("wrap", [lambda e: e, sns_envelope], ids=["raw", "sns-envelope"])
def test_s3_event__gives_an_object_ref(wrap) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps(wrap(s3_event("logs-bucket", KEY, size=2048, etag="abc")))
    assert unwrap_message(body) == [
        ObjectRef("logs-bucket", KEY, 2048, "abc", "0055AED6DCD90281E5")
    ]


def test_key__is_url_decoded() -> None:
    key = f"my prefix/{HOUR}/20261128T070512345Z_a:b.json.gz"
    event = s3_event("b", key)
    assert "+" in event["Records"][0]["s3"]["object"]["key"]
    (ref,) = unwrap_message(json.dumps(event))
    assert isinstance(ref, ObjectRef) and ref.key == key


def test_idempotency_key__names_the_object_version() -> None:
    (ref,) = unwrap_message(json.dumps(s3_event("b", KEY, etag="e1")))
    assert isinstance(ref, ObjectRef)
    assert ref.idempotency_key == f"b/{KEY}#e1"


@pytest.mark.parametrize(
    ("key", "size", "reason"),
    [
        (f"{HOUR}/data/req-1_output.json.gz", 10, "large-data-body-object"),
        (
            "AWSLogs/123456789012/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
            0,
            "permission-check-object",
        ),
        (KEY, 0, "empty-object"),
        (f"{HOUR}/notes.txt", 5, "not-a-log-object"),
    ],
)
def test_non_log_objects__are_skipped_with_a_reason(key: str, size: int, reason: str) -> None:
    (outcome,) = unwrap_message(json.dumps(s3_event("b", key, size=size)))
    assert outcome == SkippedObject(reason, "b", key)


@pytest.mark.parametrize("wrap", [lambda e: e, sns_envelope], ids=["raw", "sns-envelope"])
def test_s3_test_event__is_skipped(wrap) -> None:  # type: ignore[no-untyped-def]
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-28T07:00:00Z",
        "Bucket": "logs-bucket",
        "RequestId": "X",
        "HostId": "Y",
    }
    assert unwrap_message(json.dumps(wrap(test_event))) == [
        SkippedObject("s3-test-event", "logs-bucket")
    ]


def test_removal_events__are_skipped() -> None:
    (outcome,) = unwrap_message(json.dumps(s3_event("b", KEY, event_name="ObjectRemoved:Delete")))
    assert isinstance(outcome, SkippedObject) and outcome.reason == "not-object-created"


def test_event_version__is_not_pinned() -> None:
    event = s3_event("b", KEY)
    event["Records"][0]["eventVersion"] = "3.0"
    assert isinstance(unwrap_message(json.dumps(event))[0], ObjectRef)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        json.dumps({"hello": "world"}),
        json.dumps({"Records": []}),
        json.dumps({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {}}}]}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
        json.dumps({"Type": "Notification", "Message": "not json"}),
        json.dumps({"Type": "Notification", "Message": {"Records": []}}),
    ],
)
def test_bodies_that_are_no_s3_event__raise(body: str) -> None:
    with pytest.raises(InvalidEventError):
        unwrap_message(body)
