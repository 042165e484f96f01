"""An object stopped midway by the deadline or a failure, after progress, is handed to a
continuation message instead of failing its receive: only receives that made no progress bring a
message closer to the dead-letter queue, and the hand-over's three steps (save the checkpoint,
send the continuation, acknowledge) each survive a kill after them with nothing counted twice.

The clock is the pipeline's own (``Pipeline.clock``): the scorer advances it, so an invocation
of 60 s ends after a known number of batches without the test waiting for it."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llmmon_shared.events import InvalidEventError, ObjectRef, continuation_body, unwrap_message
from llmmon_shared.extract import Interaction
from llmmon_shared.metrics import MemorySink, Unit
from llmmon_shared.runtime import Boto3S3Reader, Pipeline, Scores
from llmmon_shared.settings import ServiceSettings
from tests.conftest import s3_event, sqs_event, titan_record

BUCKET = "llmmon-continuation-logs"
KEY = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/28/07/x_big.json.gz"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:llmmon-similarity"
RECORDS = 300
BATCH = 10
SECONDS_PER_BATCH = 10.0  # of the pipeline's clock: a 60 s invocation stops after 5 batches


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Sixty:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class QueueRequeue:
    """The service's queue as a list: what the pipeline sends comes back as new messages."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, int]] = []
        self.fail_next = 0

    def send(self, queue_arn: str, body: str, delay_s: int = 0) -> None:
        assert queue_arn == QUEUE
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("SQS unreachable")
        self.messages.append((body, delay_s))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_LAMBDA_FUNCTION_NAME": "llmmon-test-similarity",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        data = gzip.compress(
            b"".join(json.dumps(titan_record(n)).encode() + b"\n" for n in range(RECORDS))
        )
        etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)["ETag"].strip('"')
        boto3.client("dynamodb").create_table(
            TableName="idem",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        yield s3, json.dumps(s3_event(BUCKET, KEY, etag=etag))


def make(s3: Any, sink: MemorySink, clock: Clock, table: bool = True, **settings: Any) -> Pipeline:
    def score(batch: Sequence[Interaction]) -> list[Scores]:
        clock.now += SECONDS_PER_BATCH
        return [{"Scored": float(i.request_id[2:])} for i in batch]

    pipeline = Pipeline(
        "similarity",
        score,
        {"Scored": Unit.NONE},
        Boto3S3Reader(s3),
        sink,
        ServiceSettings(idempotency_table="idem" if table else None, batch_size=BATCH, **settings),
        clock=clock,
    )
    pipeline.requeue = QueueRequeue()
    return pipeline


def drain(pipeline: Pipeline, first: str, limit: int = 100) -> list[dict[str, Any]]:
    """Receive the first message, then every message the pipeline put back, until none is left;
    a failed message is received again. Returns each receive's ``batchItemFailures``."""
    queue = pipeline.requeue
    assert isinstance(queue, QueueRequeue)
    pending, results = [first], []
    while pending and len(results) < limit:
        message = pending.pop(0)
        result = pipeline.handle_event(sqs_event([message]), Sixty())
        results.append(result)
        if result["batchItemFailures"]:
            pending.append(message)
        pending.extend(body for body, _ in queue.messages)
        queue.messages.clear()
    return results


def values_once(sink: MemorySink) -> Counter[float]:
    seen = Counter(sink.values("Scored"))
    assert set(seen) == {float(n) for n in range(RECORDS)}, "a record's value is missing"
    assert max(seen.values()) == 1, "a value went out twice"
    return seen


def test_continuation_message__round_trips_the_object_version_and_its_start() -> None:
    ref = ObjectRef("b", KEY, 12, "e1", "s1", "v1")
    (back,) = unwrap_message(continuation_body(ref, 250))
    assert back == ObjectRef("b", KEY, 12, "e1", "s1", "v1", start=250)
    for broken in ({"bucket": "b", "key": KEY}, {"bucket": "b", "key": KEY, "start": 0}, []):
        with pytest.raises(InvalidEventError):
            unwrap_message(json.dumps({"llmmonContinuation": broken}))


def test_object_longer_than_five_receives__completes_with_every_receive_acknowledged(
    aws: tuple[Any, str],
) -> None:
    """300 records, 50 per receive: six receives, none failed (the old path failed five and
    sent the object to the dead-letter queue), every value once, each hand-over counted."""
    s3, event = aws
    sink, clock = MemorySink(), Clock()
    pipeline = make(s3, sink, clock)
    results = drain(pipeline, event)
    assert all(r == {"batchItemFailures": []} for r in results), results
    assert len(results) == 6
    values_once(sink)
    assert sink.values("Requeued", Reason="continuation", Service="similarity") == [1] * 5
    assert sum(sink.values("ObjectsProcessed")) == 1
    assert sum(sink.values("Interactions")) == RECORDS
    assert not sink.values("DuplicateObjects")


def test_without_a_table__the_continuation_carries_the_position(aws: tuple[Any, str]) -> None:
    """No idempotency table: the checkpoint lives in one container. A continuation received by a
    new container (a new pipeline) still starts where the last receive stopped."""
    s3, event = aws
    sink, clock = MemorySink(), Clock()
    first = make(s3, sink, clock, table=False)
    assert first.handle_event(sqs_event([event]), Sixty()) == {"batchItemFailures": []}
    queue = first.requeue
    assert isinstance(queue, QueueRequeue)
    ((continuation, delay),) = queue.messages
    assert delay == 0
    other = make(s3, sink, clock, table=False)
    drain(other, continuation)
    values_once(sink)


def test_no_progress__the_receive_fails_and_counts_toward_poison(aws: tuple[Any, str]) -> None:
    s3, event = aws

    def down(batch: Sequence[Interaction]) -> list[Scores]:
        raise ConnectionError("backend unavailable")

    sink = MemorySink()
    pipeline = Pipeline(
        "similarity", down, {}, Boto3S3Reader(s3), sink, ServiceSettings(idempotency_table="idem")
    )
    pipeline.requeue = QueueRequeue()
    assert pipeline.handle_event(sqs_event([event]), Sixty()) == {
        "batchItemFailures": [{"itemIdentifier": "msg-0"}]
    }
    assert pipeline.requeue.messages == []
    assert sink.values("Requeued") == []


def test_a_backend_failing_after_progress__continues_after_the_delay(
    aws: tuple[Any, str],
) -> None:
    s3, event = aws
    sink, clock = MemorySink(), Clock()
    calls = {"n": 0}

    def flaky(batch: Sequence[Interaction]) -> list[Scores]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("backend unavailable")
        return [{"Scored": float(i.request_id[2:])} for i in batch]

    pipeline = Pipeline(
        "similarity",
        flaky,
        {"Scored": Unit.NONE},
        Boto3S3Reader(s3),
        sink,
        ServiceSettings(idempotency_table="idem", batch_size=BATCH, continuation_delay_s=45),
        clock=clock,
    )
    queue = QueueRequeue()
    pipeline.requeue = queue
    assert pipeline.handle_event(sqs_event([event]), Sixty()) == {"batchItemFailures": []}
    ((continuation, delay),) = queue.messages
    assert delay == 45
    assert unwrap_message(continuation)[0].start == 2 * BATCH
    queue.messages.clear()
    drain(pipeline, continuation)
    values_once(sink)


@pytest.mark.parametrize("step", ["saved", "sent", "acknowledged"])
def test_killed_after_each_hand_over_step__nothing_twice_nothing_lost(
    aws: tuple[Any, str], step: str
) -> None:
    """A kill after step 1 (checkpoint saved) or 2 (continuation sent) brings the message back;
    after 3 (returned, not yet deleted) it is redelivered. Each time the object goes on from the
    continuation once."""
    s3, event = aws
    sink, clock = MemorySink(), Clock()
    pipeline = make(s3, sink, clock)
    queue = pipeline.requeue
    assert isinstance(queue, QueueRequeue)
    if step == "saved":
        queue.fail_next = 1  # the send fails as a kill would end it: nothing sent
        assert pipeline.handle_event(sqs_event([event]), Sixty())["batchItemFailures"]
        assert queue.messages == []
    else:
        assert pipeline.handle_event(sqs_event([event]), Sixty()) == {"batchItemFailures": []}
        if step == "sent":
            # Killed before the idempotency record was completed: the redelivery finds it
            # in progress until it expires.
            table = boto3.client("dynamodb")
            for item in table.scan(TableName="idem")["Items"]:
                if item.get("status", {}).get("S") == "COMPLETED":
                    table.delete_item(TableName="idem", Key={"id": item["id"]})
    # The original message comes back (visibility timeout or redelivery).
    results = drain(pipeline, event)
    assert all(not r["batchItemFailures"] for r in results), results
    values_once(sink)
    assert sum(sink.values("ObjectsProcessed")) == 1
