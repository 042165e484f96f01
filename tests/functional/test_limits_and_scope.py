"""Bounded work and scope: oversize objects, lines and bodies are counted skips with bounded
memory and time, and nothing is read outside the log bucket and its prefix."""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

from llmmon_shared.events import ObjectRef
from llmmon_shared.extract import Interaction
from llmmon_shared.metrics import MemorySink, Unit
from llmmon_shared.runtime import Pipeline, Scores
from llmmon_shared.settings import ServiceSettings
from tests.conftest import DictS3Reader, s3_event, sqs_event, titan_record

BUCKET = "team-logs"
ROOT = "bedrock/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/28/07"
KEY = f"{ROOT}/20261128T070000000Z_test.json.gz"


def count(batch: Sequence[Interaction]) -> list[Scores]:
    return [{"Scored": 1.0} for _ in batch]


def large(n: int, path: str) -> dict[str, Any]:
    return titan_record(
        n,
        input={"inputBodyS3Path": path},
        output={"outputBodyJson": {"results": [{"outputText": "In France."}]}},
    )


def run(
    objects: dict[tuple[str, str], bytes], events: list[str], **settings: Any
) -> tuple[MemorySink, DictS3Reader, dict[str, Any]]:
    reader = DictS3Reader(objects)
    sink = MemorySink()
    pipeline = Pipeline(
        "test", count, {"Scored": Unit.NONE}, reader, sink, ServiceSettings(**settings)
    )
    return sink, reader, pipeline.handle_event(sqs_event(events))


def lines(*records: dict[str, Any]) -> bytes:
    return gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))


def event(bucket: str = BUCKET, key: str = KEY) -> str:
    return json.dumps(s3_event(bucket, key))


def test_large_body_outside_the_log_prefix__never_read() -> None:
    body = gzip.compress(json.dumps({"inputText": "secret"}).encode())
    objects = {
        (BUCKET, KEY): lines(
            large(1, f"s3://other-bucket/{ROOT}/data/r-1_input.json.gz"),
            large(2, f"s3://{BUCKET}/elsewhere/r-2_input.json.gz"),
            large(3, f"s3://{BUCKET}/{ROOT}/data/../../../../../../../../x/r-3.json.gz"),
            large(4, f"s3://{BUCKET}/{ROOT}/data/r-4_input.json.gz"),
        ),
        ("other-bucket", f"{ROOT}/data/r-1_input.json.gz"): body,
        (BUCKET, "elsewhere/r-2_input.json.gz"): body,
        (BUCKET, f"{ROOT}/data/r-4_input.json.gz"): body,
    }
    sink, reader, result = run(objects, [event()])
    assert result == {"batchItemFailures": []}
    assert sum(sink.values("SkippedRecords", Reason="body-outside-log-prefix")) == 3
    assert sink.values("Scored") == [1.0]  # the body under the object's own prefix
    assert ("other-bucket", f"{ROOT}/data/r-1_input.json.gz") not in reader.opened
    assert (BUCKET, "elsewhere/r-2_input.json.gz") not in reader.opened


def test_event_for_another_bucket_or_prefix__a_counted_skip_never_read() -> None:
    objects = {(BUCKET, KEY): lines(titan_record(1)), ("intruder", KEY): lines(titan_record(2))}
    outside = "other/AWSLogs/1/BedrockModelInvocationLogs/r/2026/11/28/07/x.json.gz"
    objects[(BUCKET, outside)] = lines(titan_record(3))
    sink, reader, result = run(
        objects,
        [event("intruder"), event(BUCKET, outside), event()],
        log_bucket=BUCKET,
        log_prefix="bedrock",
    )
    assert result == {"batchItemFailures": []}
    assert sink.values("SkippedObjects", Reason="foreign-bucket") == [1.0]
    assert sink.values("SkippedObjects", Reason="outside-log-prefix") == [1.0]
    assert reader.opened == [(BUCKET, KEY)]
    assert sink.values("Scored") == [1.0]


def test_body_inflating_past_the_cap__skipped_with_bounded_memory() -> None:
    bomb = gzip.compress(b'{"inputText": "' + b"a" * (64 * 1024 * 1024) + b'"}')
    assert len(bomb) < 200_000
    objects = {
        (BUCKET, KEY): lines(large(1, f"s3://{BUCKET}/{ROOT}/data/r-1_input.json.gz")),
        (BUCKET, f"{ROOT}/data/r-1_input.json.gz"): bomb,
    }
    tracemalloc.start()
    sink, _, result = run(objects, [event()], max_body_bytes=1024 * 1024)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result == {"batchItemFailures": []}
    assert sink.values("SkippedRecords", Reason="large-body-too-large") == [1.0]
    assert peak < 16 * 1024 * 1024  # the cap plus buffers, not the 64 MiB it inflates to


def test_newline_flood__stops_at_the_line_budget_quickly() -> None:
    flood = gzip.compress(b"\n" * (64 * 1024 * 1024))
    started = time.monotonic()
    sink, _, result = run({(BUCKET, KEY): flood}, [event()], max_lines_per_object=100_000)
    assert time.monotonic() - started < 10
    assert result == {"batchItemFailures": []}
    assert sink.values("SkippedObjects", Reason="too-many-lines") == [1.0]
    assert sink.values("Scored") == []


def test_object_over_the_byte_cap__chunks_before_it_once_then_a_counted_skip() -> None:
    many = lines(*[titan_record(n) for n in range(2000)])
    sink, _, result = run({(BUCKET, KEY): many}, [event()], max_object_bytes=100_000)
    assert result == {"batchItemFailures": []}
    assert sink.values("SkippedObjects", Reason="object-too-large") == [1.0]
    # The batches read before the cap went out once, each with its records' counts; the rest
    # of the object is the skip (a retry could never do better, so it is not retried).
    scored = len(sink.values("Scored"))
    assert 0 < scored < 2000 and scored % 128 == 0
    assert sum(sink.values("Interactions")) == scored


def test_one_huge_line__is_a_bad_line_with_bounded_memory() -> None:
    huge = b'{"requestId": "x", "modelId": "m", "junk": [' + b"{}," * (21 * 1024 * 1024) + b"{}]}"
    data = gzip.compress(huge + b"\n" + json.dumps(titan_record(1)).encode() + b"\n")
    tracemalloc.start()
    sink, _, result = run({(BUCKET, KEY): data}, [event()])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result == {"batchItemFailures": []}
    assert sink.values("ParseErrors") == [1.0]
    assert sink.values("Scored") == [1.0]
    assert peak < 32 * 1024 * 1024  # a 63 MiB line of [{},...] once peaked at 1.8 GB


def test_event_version_id__is_the_version_read() -> None:
    from llmmon_shared.events import unwrap_message

    payload = s3_event(BUCKET, KEY)
    payload["Records"][0]["s3"]["object"]["versionId"] = "3HL4kqtJlcpXroDTDmJ"
    (ref,) = unwrap_message(json.dumps(payload))
    assert isinstance(ref, ObjectRef) and ref.version_id == "3HL4kqtJlcpXroDTDmJ"


def test_points_leave_per_batch__memory_follows_the_batch_not_the_object() -> None:
    flushes: list[int] = []

    class CountingSink(MemorySink):
        def flush(self) -> None:
            flushes.append(len(self.pending))
            super().flush()

    sink = CountingSink()
    pipeline = Pipeline(
        "test",
        count,
        {"Scored": Unit.NONE},
        DictS3Reader({(BUCKET, KEY): lines(*[titan_record(n) for n in range(1000)])}),
        sink,
        ServiceSettings(batch_size=100),
    )
    assert pipeline.handle_event(sqs_event([event()])) == {"batchItemFailures": []}
    # One chunk per batch, never the whole object at once, and the object's last chunk
    # (ObjectsProcessed and its ParseErrors).
    assert len(flushes) == 11 and flushes[-1] == 2
    assert max(flushes) < 100 * 4  # a batch's scores and its records' counters
    assert len(sink.values("Scored")) == 1000 and sum(sink.values("Interactions")) == 1000
    assert sink.values("ObjectsProcessed") == [1.0]


def test_body_of_tiny_json_values__a_counted_skip_before_it_is_parsed() -> None:
    """15 MiB of ``{},`` under the 16 MiB byte cap: parsing it grew a process by 420 MB and took
    3 s. The node budget refuses it from a scan, with bounded memory and time."""
    body = gzip.compress(b'{"inputText": "hi", "junk": [' + b"{}," * (5 * 1024 * 1024) + b"{}]}")
    objects = {
        (BUCKET, KEY): lines(
            large(1, f"s3://{BUCKET}/{ROOT}/data/r-1_input.json.gz"), titan_record(2)
        ),
        (BUCKET, f"{ROOT}/data/r-1_input.json.gz"): body,
    }
    tracemalloc.start()
    started = time.monotonic()
    sink, _, result = run(objects, [event()])
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result == {"batchItemFailures": []}
    assert sink.values("SkippedRecords", Reason="large-body-too-complex") == [1.0]
    assert sink.values("Scored") == [1.0]
    assert peak < 64 * 1024 * 1024  # the body's bytes and a scan's copy, not 420 MB of objects
    assert elapsed < 30  # generous on any machine; about 0.2 s here


def test_line_of_tiny_json_values__a_bad_line() -> None:
    line = {"requestId": "x", "modelId": "m", "junk": [{}] * 200_000}  # 600 KB, 400,000 nodes
    text = json.dumps(line, separators=(",", ":")).encode()
    data = gzip.compress(text + b"\n" + json.dumps(titan_record(1)).encode() + b"\n")
    sink, _, result = run({(BUCKET, KEY): data}, [event()])
    assert result == {"batchItemFailures": []}
    assert sink.values("ParseErrors") == [1.0]
    assert sink.values("Scored") == [1.0]
    # Under the budget, the same shape is an ordinary line.
    sink, _, _ = run({(BUCKET, KEY): data}, [event()], max_json_nodes=1_000_000)
    assert sink.values("ParseErrors") == [0.0]


def test_failed_call__its_large_bodies_are_never_fetched() -> None:
    path = f"{ROOT}/data/r-1_input.json.gz"
    failed = titan_record(
        1,
        errorCode="ThrottlingException",
        input={"inputBodyS3Path": f"s3://{BUCKET}/{path}"},
        output={"outputBodyS3Path": f"s3://{BUCKET}/{ROOT}/data/r-1_output.json.gz"},
    )
    objects = {(BUCKET, KEY): lines(failed), (BUCKET, path): gzip.compress(b'{"inputText": "x"}')}
    sink, reader, result = run(objects, [event()])
    assert result == {"batchItemFailures": []}
    assert reader.opened == [(BUCKET, KEY)]
    assert sink.values("SkippedRecords", Reason="invocation-error") == [1.0]


def test_deadline__checked_at_every_record_not_every_batch(monkeypatch: Any) -> None:
    """Records that each take long (large bodies) stop at the deadline inside a batch: the
    message goes back as a failure before the function's timeout, nothing of the batch sent."""
    import llmmon_shared.runtime as runtime

    now = [0.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    class SlowReader(DictS3Reader):
        def open(self, bucket: str, key: str) -> Any:
            if "/data/" in key:
                now[0] += 10.0  # every body takes 10 s
            return super().open(bucket, key)

    path = f"{ROOT}/data/shared_input.json.gz"
    objects = {
        (BUCKET, KEY): lines(*[large(n, f"s3://{BUCKET}/{path}") for n in range(20)]),
        (BUCKET, path): gzip.compress(b'{"inputText": "Where is Paris?"}'),
    }
    sink = MemorySink()
    pipeline = Pipeline(
        "test", count, {"Scored": Unit.NONE}, SlowReader(objects), sink, ServiceSettings()
    )
    result = pipeline.handle_event(sqs_event([event()]), Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert now[0] <= 60.0  # stopped at 48 s (four fifths), before the 60 s timeout
    assert sink.values("Scored") == []
