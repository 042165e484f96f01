"""Idempotency: an object version is counted once, however often it is delivered."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any
from unittest.mock import patch

import boto3
import pytest
from moto import mock_aws

from llmmon.local.worker import LambdaContext
from llmmon_shared.extract import Interaction
from llmmon_shared.metrics import MemorySink, Unit
from llmmon_shared.progress import Checkpoint, MemoryProgress
from llmmon_shared.runtime import Boto3S3Reader, Pipeline, Scores
from llmmon_shared.settings import ServiceSettings
from tests.conftest import (
    FIXTURE_BUCKET,
    FIXTURES,
    fixture_key,
    s3_event,
    sqs_event,
    upload_fixtures,
)

NOVA_INTERACTIONS = 1  # in the nova fixture object


def context() -> LambdaContext:
    return LambdaContext(
        "llmmon-test-refusal",
        1024,
        "arn:aws:lambda:us-east-1:1:function:f",
        "request",
        time.monotonic() + 60,
    )


def count(batch: Sequence[Interaction]) -> list[Scores]:
    return [{"Scored": 1.0} for _ in batch]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_LAMBDA_FUNCTION_NAME": "llmmon-test-refusal",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        upload_fixtures(s3)
        boto3.client("dynamodb").create_table(
            TableName="idem",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        yield s3


def pipeline(s3: Any, sink: MemorySink, compute: Any = count) -> Pipeline:
    return Pipeline(
        "refusal",
        compute,
        {"Scored": Unit.NONE},
        Boto3S3Reader(s3),
        sink,
        ServiceSettings(idempotency_table="idem"),
    )


def body(tag: str, etag: str | None = None) -> str:
    return json.dumps(s3_event(FIXTURE_BUCKET, fixture_key(tag), etag=etag))


def test_redelivered_object__is_counted_once(aws: Any) -> None:
    sink = MemorySink()
    handler = pipeline(aws, sink)
    for _ in range(3):  # the same message delivered three times, and in one batch twice
        assert handler.handle_event(sqs_event([body("titan"), body("titan")]), context()) == {
            "batchItemFailures": []
        }
    assert len(sink.values("Scored")) == 2  # the two Titan text interactions, once
    assert sum(sink.values("DuplicateObjects")) == 5
    items = boto3.client("dynamodb").scan(TableName="idem")["Items"]
    # Powertools' COMPLETED record and the object's checkpoint, both under the service's keys.
    assert sorted(item.get("status", {}).get("S", "checkpoint") for item in items) == [
        "COMPLETED",
        "checkpoint",
    ]
    assert all(item["id"]["S"].startswith("refusal#") for item in items)
    assert items[0]["status"]["S"] == "COMPLETED"


def test_new_version_of_an_object__is_a_new_object(aws: Any) -> None:
    """Each version is scored once, from its own content: version 1's event reads version 1 (or
    nothing, once it is overwritten), version 2's event reads version 2."""
    sink = MemorySink()
    handler = pipeline(aws, sink)
    key = fixture_key("titan")
    handler.handle_event(sqs_event([body("titan")]), context())  # version 1: two interactions
    new = (FIXTURES / fixture_key("nova")).read_bytes()  # version 2: other content, one more
    etag = aws.put_object(Bucket=FIXTURE_BUCKET, Key=key, Body=new)["ETag"].strip('"')
    v2 = json.dumps(s3_event(FIXTURE_BUCKET, key, etag=etag))
    handler.handle_event(sqs_event([body("titan"), v2, v2]), context())
    assert len(sink.values("Scored")) == 2 + NOVA_INTERACTIONS
    assert sum(sink.values("DuplicateObjects")) == 2  # version 1 again, version 2 twice


def test_object_overwritten_before_its_event_is_read__a_counted_skip(aws: Any) -> None:
    """Version 1 overwritten before its message is read: reading without a version would score
    version 2 twice and version 1 never. Its event is a counted skip; version 2 is scored once."""
    sink = MemorySink()
    handler = pipeline(aws, sink)
    key = fixture_key("titan")
    new = (FIXTURES / fixture_key("nova")).read_bytes()
    etag = aws.put_object(Bucket=FIXTURE_BUCKET, Key=key, Body=new)["ETag"].strip('"')
    v2 = json.dumps(s3_event(FIXTURE_BUCKET, key, etag=etag))
    result = handler.handle_event(sqs_event([body("titan"), v2]), context())
    assert result == {"batchItemFailures": []}
    assert len(sink.values("Scored")) == NOVA_INTERACTIONS
    assert sink.values("SkippedObjects", Reason="superseded-object") == [1.0]


class ListRequeue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    def send(self, queue_arn: str, body: str, delay_s: int = 0) -> None:
        self.sent.append((body, delay_s))


def flaky_pipeline(sink: MemorySink, aws: Any, calls: dict[str, int]) -> Pipeline:
    def flaky(batch: Sequence[Interaction]) -> list[Scores]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("backend down")  # the service behind the scorer, not a record
        return count(batch)

    return Pipeline(
        "refusal",
        flaky,
        {"Scored": Unit.NONE},
        Boto3S3Reader(aws),
        sink,
        ServiceSettings(idempotency_table="idem", batch_size=1),
    )


def test_object_failing_midway__continued_after_the_last_chunk_that_went_out(aws: Any) -> None:
    """The receive made progress: it is acknowledged and the rest of the object goes on in a
    continuation message (after ``continuation_delay_s``), which scores only the second batch."""
    sink, calls, requeue = MemorySink(), {"n": 0}, ListRequeue()
    handler = flaky_pipeline(sink, aws, calls)
    handler.requeue = requeue
    result = handler.handle_event(
        sqs_event([body("mistral")]), context()
    )  # 2 interactions, 2 batches
    assert result == {"batchItemFailures": []}
    assert sink.values("Scored") == [1.0]  # the first batch went out, and its checkpoint
    ((continuation, delay),) = requeue.sent
    assert delay == 30
    assert handler.handle_event(sqs_event([continuation]), context()) == {"batchItemFailures": []}
    assert sink.values("Scored") == [1.0, 1.0]  # the continuation scored only the second
    assert calls["n"] == 3
    assert sum(sink.values("Interactions")) == 2
    assert sink.values("ObjectsProcessed") == [1.0]
    # The original message redelivered (its deletion lost): a counted duplicate.
    assert handler.handle_event(sqs_event([body("mistral")]), context()) == {
        "batchItemFailures": []
    }
    assert sink.values("Scored") == [1.0, 1.0] and sink.values("DuplicateObjects") == [1.0]


def test_object_failing_midway_outside_sqs__resumes_after_the_last_chunk(aws: Any) -> None:
    """No queue to continue on (an event with an empty ``eventSourceARN``): the message fails
    and its retry resumes after the last chunk that went out."""
    sink, calls = MemorySink(), {"n": 0}
    handler = flaky_pipeline(sink, aws, calls)
    event = sqs_event([body("mistral")])
    for item in event["Records"]:
        item["eventSourceARN"] = ""
    assert handler.handle_event(event, context()) == {
        "batchItemFailures": [{"itemIdentifier": "msg-0"}]
    }
    assert sink.values("Scored") == [1.0]
    items = boto3.client("dynamodb").scan(TableName="idem")["Items"]
    assert [item.get("done") for item in items] == [{"BOOL": False}]  # Powertools' is gone
    assert handler.handle_event(event, context()) == {"batchItemFailures": []}
    assert sink.values("Scored") == [1.0, 1.0]  # the retry scored only the second
    assert sink.values("ObjectsProcessed") == [1.0]


class FlakyProgress(MemoryProgress):
    """Checkpoints in memory whose saves fail on the chosen calls (1-based)."""

    def __init__(self, fail_on: set[int]) -> None:
        super().__init__()
        self.fail_on, self.saves = fail_on, 0

    def save(self, version: str, checkpoint: Checkpoint) -> None:
        self.saves += 1
        if self.saves in self.fail_on:
            raise ConnectionError("table unreachable")
        super().save(version, checkpoint)


def one_per_batch(aws: Any, sink: MemorySink, progress: Any) -> Pipeline:
    return Pipeline(
        "refusal",
        count,
        {"Scored": Unit.NONE},
        Boto3S3Reader(aws),
        sink,
        ServiceSettings(batch_size=1),
        progress=progress,
    )


def test_chunk_that_cannot_be_announced__is_never_sent(aws: Any) -> None:
    """No chunk leaves before its announcement is saved: a table that refuses it fails the
    message with nothing of that chunk sent, and the retry scores the rest once."""
    sink = MemorySink()
    progress = FlakyProgress(fail_on={3, 4, 5})  # chunk 2's announcement, all three tries
    handler = one_per_batch(aws, sink, progress)
    with patch("llmmon_shared.runtime.time.sleep"):
        result = handler.handle_event(sqs_event([body("mistral")]), context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert sink.values("Scored") == [1.0]  # chunk 1 only
    assert handler.handle_event(sqs_event([body("mistral")]), context()) == {
        "batchItemFailures": []
    }
    assert sink.values("Scored") == [1.0, 1.0]
    assert sum(sink.values("Interactions")) == 2
    assert sink.values("UnconfirmedRecords") == []


def test_confirmation_lost__the_next_announcement_carries_it(aws: Any) -> None:
    sink = MemorySink()
    progress = FlakyProgress(fail_on={2, 3, 4})  # chunk 1's confirmation, all three tries
    with patch("llmmon_shared.runtime.time.sleep"):
        result = one_per_batch(aws, sink, progress).handle_event(
            sqs_event([body("mistral")]), context()
        )
    assert result == {"batchItemFailures": []}
    assert sink.values("Scored") == [1.0, 1.0]
    assert sink.values("UnconfirmedRecords") == []


def test_chunk_announced_and_never_confirmed__counted_never_sent_again(aws: Any) -> None:
    """A crash between a chunk's announcement and its confirmation (simulated: the checkpoint
    a killed invocation leaves): the retry cannot know whether the chunk went out, so it passes
    over it and counts it, then scores the rest."""
    sink = MemorySink()
    progress = MemoryProgress()
    handler = one_per_batch(aws, sink, progress)
    ref = s3_event(FIXTURE_BUCKET, fixture_key("mistral"))["Records"][0]["s3"]
    version = f"{FIXTURE_BUCKET}/{fixture_key('mistral')}#{ref['object']['eTag']}"
    progress.save(version, Checkpoint(0, pending=1))  # item 1 announced, fate unknown
    assert handler.handle_event(sqs_event([body("mistral")]), context()) == {
        "batchItemFailures": []
    }
    assert sink.values("UnconfirmedRecords") == [1.0]
    assert sink.values("Scored") == [1.0]  # the second interaction; the first never again
    # The same state again, as the last chunk: the object is done, nothing is scored.
    progress.save(version, Checkpoint(2, pending=3, pending_last=True))
    assert handler.handle_event(sqs_event([body("mistral")]), context()) == {
        "batchItemFailures": []
    }
    assert sink.values("UnconfirmedRecords") == [1.0, 1.0]
    assert sink.values("Scored") == [1.0]


def test_services_keep_separate_records(aws: Any) -> None:
    first, second = MemorySink(), MemorySink()
    pipeline(aws, first).handle_event(sqs_event([body("nova")]), context())
    other = Pipeline(
        "similarity",
        count,
        {"Scored": Unit.NONE},
        Boto3S3Reader(aws),
        second,
        ServiceSettings(idempotency_table="idem"),
    )
    other.handle_event(sqs_event([body("nova")]), context())
    assert len(first.values("Scored")) == len(second.values("Scored")) == 1


def test_unreadable_object__is_poison(aws: Any) -> None:
    key = "AWSLogs/x/2026/11/28/07/csv.json.gz"
    put = aws.put_object(Bucket=FIXTURE_BUCKET, Key=key, Body=b"a,b,c\n1,2,3\n")
    event = sqs_event([json.dumps(s3_event(FIXTURE_BUCKET, key, etag=put["ETag"].strip('"')))])
    assert pipeline(aws, MemorySink()).handle_event(event, context()) == {
        "batchItemFailures": [{"itemIdentifier": "msg-0"}]
    }


class FlakyCloudWatch:
    """PutMetricData that fails on the chosen calls (1-based), and records what went out."""

    def __init__(self, fail_on: set[int]) -> None:
        self.fail_on, self.calls, self.sent = fail_on, 0, 0

    def put_metric_data(self, **kwargs: Any) -> None:
        self.calls += 1
        if self.calls in self.fail_on:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "InvalidParameterValue"}}, "PutMetricData")
        self.sent += sum(sum(d["Counts"]) for d in kwargs["MetricData"])


def many_values(batch: Sequence[Interaction]) -> list[Scores]:
    """Enough distinct values per interaction that one object needs two PutMetricData calls."""
    return [{f"M{i}": float(n * 1000 + i) for i in range(600)} for n, _ in enumerate(batch)]


def test_put_metric_data_failing_midway__nothing_leaves_twice(aws: Any) -> None:
    """Request 2 of 2 fails: request 1's points are out, so the message is acknowledged (a retry
    would send them again), the rest counted as lost; nothing is left pending for the next
    object."""
    from llmmon_shared.metrics import PutMetricDataSink

    cloudwatch = FlakyCloudWatch(fail_on={2})
    sink = PutMetricDataSink("llmmon", cloudwatch)
    handler = Pipeline(
        "refusal",
        many_values,
        {},
        Boto3S3Reader(aws),
        sink,
        ServiceSettings(idempotency_table="idem"),
    )
    result = handler.handle_event(sqs_event([body("titan")]), context())
    assert result == {"batchItemFailures": []}
    first = cloudwatch.sent
    assert 0 < first < 2 * 600 and sink.pending == []
    # The same message again (SQS redelivery, a replay) and another object: nothing of the first
    # object goes out a second time.
    handler.handle_event(sqs_event([body("titan"), body("nova")]), context())
    nova_values = cloudwatch.sent - first
    assert nova_values < 2 * 600 + 50  # the nova object's own points only (plus counters)


def test_put_metric_data_failing_before_anything_left__retried_whole(aws: Any) -> None:
    from llmmon_shared.metrics import PutMetricDataSink

    cloudwatch = FlakyCloudWatch(fail_on={1})
    sink = PutMetricDataSink("llmmon", cloudwatch)
    handler = Pipeline(
        "refusal", count, {}, Boto3S3Reader(aws), sink, ServiceSettings(idempotency_table="idem")
    )
    assert handler.handle_event(sqs_event([body("titan")]), context()) == {
        "batchItemFailures": [{"itemIdentifier": "msg-0"}]
    }
    assert cloudwatch.sent == 0 and sink.pending == []
    assert handler.handle_event(sqs_event([body("titan")]), context()) == {"batchItemFailures": []}
    assert cloudwatch.sent > 0


def test_completed_write_failing_once__object_scored_once(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marking the record COMPLETED fails once after the metrics went out: it is retried, and the
    redelivered message is a duplicate, not a second scoring."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    original = DynamoDBPersistenceLayer.save_success
    failures = {"left": 1}

    def flaky(self: Any, data: dict[str, Any], result: dict[str, Any]) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("DynamoDB unavailable")
        original(self, data=data, result=result)

    monkeypatch.setattr(DynamoDBPersistenceLayer, "save_success", flaky)
    sink = MemorySink()
    handler = pipeline(aws, sink)
    for _ in range(2):
        assert handler.handle_event(sqs_event([body("titan")]), context()) == {
            "batchItemFailures": []
        }
    assert len(sink.values("Scored")) == 2  # the object's two interactions, once
    assert sum(sink.values("DuplicateObjects")) == 1


def test_completed_write_never_succeeding__acknowledged_and_counted(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    def broken(self: Any, data: dict[str, Any], result: dict[str, Any]) -> None:
        raise RuntimeError("DynamoDB unavailable")

    monkeypatch.setattr(DynamoDBPersistenceLayer, "save_success", broken)
    monkeypatch.setattr(time, "sleep", lambda _: None)
    sink = MemorySink()
    handler = pipeline(aws, sink)
    assert handler.handle_event(sqs_event([body("titan")]), context()) == {"batchItemFailures": []}
    assert len(sink.values("Scored")) == 2
    assert sink.values("IdempotencyWriteFailures") == [1.0]


def test_dimension_cap__one_for_every_container_and_service(aws: Any) -> None:
    """Two containers of two services: what one admitted the other maps the same way, the cap
    counts both, and once the key is full a container asks the table nothing more."""
    from llmmon_shared.admission import DynamoAdmission

    def container(service: str) -> Pipeline:
        return Pipeline(
            service,
            count,
            {},
            Boto3S3Reader(aws),
            MemorySink(),
            ServiceSettings(
                idempotency_table="idem",
                metadata_dimensions=["app~app-[0-9]+"],
                metadata_max_values=3,
            ),
        )

    first, second = container("refusal"), container("similarity")
    assert first.policy is not None and second.policy is not None
    admission = second.policy.admission
    assert isinstance(admission, DynamoAdmission)

    def app(pipeline: Pipeline, value: str) -> str:
        assert pipeline.policy is not None
        return dict(pipeline.policy.dimensions("m", {"app": value}))["app"]

    assert [app(first, f"app-{n}") for n in (1, 2)] == ["app-1", "app-2"]
    assert app(second, "app-3") == "app-3"  # the third and last
    assert app(first, "app-4") == "Other"
    assert [app(second, f"app-{n}") for n in (1, 2, 4)] == ["app-1", "app-2", "Other"]
    calls = admission.calls
    assert [app(second, f"app-{n}") for n in (1, 2, 3, 5, 6)] == [
        "app-1",
        "app-2",
        "app-3",
        "Other",
        "Other",
    ]
    assert admission.calls == calls  # all from the container's cache
    (item,) = [
        i
        for i in boto3.client("dynamodb").scan(TableName="idem")["Items"]
        if i["id"]["S"] == "dimensions#app"
    ]
    assert sorted(item["admitted"]["SS"]) == ["app-1", "app-2", "app-3"]
