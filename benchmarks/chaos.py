"""Chaos cases of issue 13, each in a fresh process, in process (the pipeline with moto S3 and
DynamoDB or an in-memory reader): for each, records expected / scored / double-counted / lost,
peak RSS and wall time against the function timeout.

Run: ``uv run python benchmarks/chaos.py`` (about 2 minutes; ``--case NAME`` runs one). The same
behaviours are asserted by the test suite (tests/functional/test_idempotency.py,
test_limits_and_scope.py, test_runtime.py); this script measures them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUCKET = "chaos-logs"
PREFIX = "bedrock/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/28/07"
KEY = f"{PREFIX}/20261128T070000000Z_chaos.json.gz"
TIMEOUT_S = 120  # the similarity and refusal functions' timeout


def record(n: int, text: str = "In France.", **extra: Any) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "requestId": f"r-{n}",
        "modelId": "amazon.titan-text-express-v1",
        "input": {"inputBodyJson": {"inputText": "Where is Paris?"}},
        "output": {"outputBodyJson": {"results": [{"outputText": text}]}},
        **extra,
    }


def lines(records: Sequence[dict[str, Any]]) -> bytes:
    return gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))


def stream_gzip(chunks: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        for chunk in chunks:
            handle.write(chunk)
    return buffer.getvalue()


def count(batch: Sequence[Any]) -> list[dict[str, float]]:
    return [{"Scored": 1.0} for _ in batch]


def event(bucket: str = BUCKET, key: str = KEY, etag: str | None = None) -> str:
    from tests.conftest import s3_event

    return json.dumps(s3_event(bucket, key, etag=etag or "e"))


def memory_pipeline(objects: dict[tuple[str, str], bytes], **settings: Any) -> tuple[Any, Any]:
    from llmmon_shared.metrics import MemorySink
    from llmmon_shared.runtime import Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import DictS3Reader

    sink = MemorySink()
    pipeline = Pipeline(
        "chaos", count, {}, DictS3Reader(objects), sink, ServiceSettings(**settings)
    )
    return pipeline, sink


def outcome(expected: int, scored: int, lost_counted: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "expected": expected,
        "scored": scored,
        "double": max(0, scored - expected),
        "lost": max(0, expected - scored - lost_counted),
        "counted_skips": lost_counted,
        **extra,
    }


def with_moto(run: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x"
    )
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb").create_table(
            TableName="idem",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        return run(s3)


def case_put_metric_data_fails_midway() -> dict[str, Any]:
    """PutMetricData fails on request 2 of 2, then the message is delivered again."""
    from llmmon_shared.metrics import PutMetricDataSink
    from llmmon_shared.runtime import Boto3S3Reader, Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import sqs_event

    class Flaky:
        calls, sent = 0, 0

        def put_metric_data(self, **kwargs: Any) -> None:
            self.calls += 1
            if self.calls == 2:
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "InvalidParameterValue"}}, "PutMetricData")
            self.sent += sum(
                sum(d["Counts"]) for d in kwargs["MetricData"] if d["MetricName"][0] == "M"
            )

    def run(s3: Any) -> dict[str, Any]:
        etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=lines([record(n) for n in range(2)]))
        cloudwatch = Flaky()
        sink = PutMetricDataSink("llmmon", cloudwatch)
        settings = ServiceSettings(idempotency_table="idem")

        def many(batch: Sequence[Any]) -> list[dict[str, float]]:
            # 600 metrics a record: one object's points need two PutMetricData requests
            return [{f"M{n * 600 + i}": 1.0 for i in range(600)} for n, _ in enumerate(batch)]

        pipeline = Pipeline("chaos", many, {}, Boto3S3Reader(s3), sink, settings)
        body = event(etag=etag["ETag"].strip('"'))
        for _ in range(2):  # the message, then the same message again (a redelivery)
            pipeline.handle_event(sqs_event([body]))
        sent = int(cloudwatch.sent)  # metric values, not records: 2 records x 600
        return outcome(1200, sent, lost_counted=max(0, 1200 - sent))

    return with_moto(run)


def case_completed_write_fails_once() -> dict[str, Any]:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from llmmon_shared.metrics import MemorySink
    from llmmon_shared.runtime import Boto3S3Reader, Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import sqs_event

    original = DynamoDBPersistenceLayer.save_success
    left = {"n": 1}

    def flaky(self: Any, data: Any, result: Any) -> None:
        if left["n"]:
            left["n"] -= 1
            raise RuntimeError("DynamoDB unavailable")
        original(self, data=data, result=result)

    DynamoDBPersistenceLayer.save_success = flaky  # type: ignore[method-assign]

    def run(s3: Any) -> dict[str, Any]:
        etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=lines([record(n) for n in range(2)]))
        sink = MemorySink()
        settings = ServiceSettings(idempotency_table="idem")
        pipeline = Pipeline("chaos", count, {}, Boto3S3Reader(s3), sink, settings)
        for _ in range(2):
            pipeline.handle_event(sqs_event([event(etag=etag["ETag"].strip('"'))]))
        return outcome(2, len(sink.values("Scored")))

    return with_moto(run)


def case_object_overwritten() -> dict[str, Any]:
    """Version 1 overwritten before its event is read; both events then arrive."""
    from llmmon_shared.metrics import MemorySink
    from llmmon_shared.runtime import Boto3S3Reader, Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import sqs_event

    def run(s3: Any) -> dict[str, Any]:
        v1 = s3.put_object(Bucket=BUCKET, Key=KEY, Body=lines([record(n) for n in range(3)]))
        v2 = s3.put_object(Bucket=BUCKET, Key=KEY, Body=lines([record(n) for n in range(5)]))
        sink = MemorySink()
        settings = ServiceSettings(idempotency_table="idem")
        pipeline = Pipeline("chaos", count, {}, Boto3S3Reader(s3), sink, settings)
        events = [event(etag=v["ETag"].strip('"')) for v in (v1, v2)]
        pipeline.handle_event(sqs_event(events))
        skipped = len(sink.values("SkippedObjects", Reason="superseded-object"))
        # version 1's content is gone: its 3 records are a counted skip of one object
        return outcome(5, len(sink.values("Scored")), superseded_objects=skipped)

    return with_moto(run)


def _bounded(objects: dict[tuple[str, str], bytes], expected: int) -> dict[str, Any]:
    from tests.conftest import sqs_event

    pipeline, sink = memory_pipeline(objects)
    result = pipeline.handle_event(sqs_event([event()]))
    skips = sum(sink.values("SkippedObjects")) + sum(sink.values("SkippedRecords"))
    return outcome(
        expected,
        len(sink.values("Scored")),
        lost_counted=int(skips or (expected - len(sink.values("Scored")))),
        failed_messages=len(result["batchItemFailures"]),
        bad_lines=int(sum(sink.values("ParseErrors"))),
    )


def case_body_inflating_to_1_gib() -> dict[str, Any]:
    body = stream_gzip(
        chain([b'{"inputText": "'], (b"a" * (1 << 20) for _ in range(1024)), [b'"}'])
    )
    path = f"s3://{BUCKET}/{PREFIX}/data/r-1_input.json.gz"
    log = lines([record(1, input={"inputBodyS3Path": path})])
    objects = {(BUCKET, KEY): log, (BUCKET, f"{PREFIX}/data/r-1_input.json.gz"): body}
    return _bounded(objects, expected=1)


def case_one_63_mib_line() -> dict[str, Any]:
    data = stream_gzip(
        chain(
            [b'{"requestId": "x", "a": ['],
            (b"{}," * (1 << 20) for _ in range(21)),
            [b"{}]}\n", json.dumps(record(1)).encode() + b"\n"],
        )
    )
    return _bounded({(BUCKET, KEY): data}, expected=1)


def case_256_mib_of_newlines() -> dict[str, Any]:
    data = stream_gzip(b"\n" * (1 << 20) for _ in range(256))
    return _bounded({(BUCKET, KEY): data}, expected=0)


def case_32_mib_of_empty_objects() -> dict[str, Any]:
    data = stream_gzip(b"{}\n" * (1 << 20) for _ in range(11))
    return _bounded({(BUCKET, KEY): data}, expected=0)


def case_lone_surrogate_in_one_of_51() -> dict[str, Any]:
    """The real similarity scorer (MiniLM tokenizer) over 51 records, one with ``\\ud800``."""
    from llmmon_shared.metrics import MemorySink
    from llmmon_similarity.handler import create_pipeline
    from tests.conftest import DictS3Reader, sqs_event

    os.environ["LLMMON_EMBEDDING_BACKEND"] = "local"
    records = [record(n, text=f"Paris is in France, answer {n}.") for n in range(50)]
    text = json.dumps(record(50)).replace("In France.", "In Fr\\ud800ance.")
    data = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records) + text.encode())
    sink = MemorySink()
    pipeline = create_pipeline(s3=DictS3Reader({(BUCKET, KEY): data}), sink=sink)
    pipeline.handle_event(sqs_event([event()]))
    return outcome(51, len(sink.values("PromptResponseSimilarity")))


def case_foreign_bucket_and_body_path() -> dict[str, Any]:
    from tests.conftest import sqs_event

    outside = f"s3://other-bucket/{PREFIX}/data/r-2_input.json.gz"
    objects = {
        (BUCKET, KEY): lines([record(1), record(2, input={"inputBodyS3Path": outside})]),
        ("intruder", KEY): lines([record(3)]),
        ("other-bucket", f"{PREFIX}/data/r-2_input.json.gz"): gzip.compress(b'{"inputText": "x"}'),
    }
    pipeline, sink = memory_pipeline(objects, log_bucket=BUCKET, log_prefix="bedrock")
    pipeline.handle_event(sqs_event([event("intruder"), event()]))
    read = [key for key in pipeline.s3.opened if key[0] != BUCKET]
    skips = int(sum(sink.values("SkippedObjects")) + sum(sink.values("SkippedRecords")))
    return outcome(1, len(sink.values("Scored")), foreign_reads=len(read), counted_skips=skips)


def case_idempotency_endpoint_never_answers() -> dict[str, Any]:
    """DynamoDB at an address that accepts connections and never answers."""
    from llmmon_shared.metrics import MemorySink
    from llmmon_shared.runtime import Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import DictS3Reader, sqs_event

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    threading.Thread(
        target=lambda: [held.append(server.accept()[0]) for _ in range(64)], daemon=True
    ).start()
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{server.getsockname()[1]}",
    )
    sink = MemorySink()
    pipeline = Pipeline(
        "chaos",
        count,
        {},
        DictS3Reader({(BUCKET, KEY): lines([record(1)])}),
        sink,
        ServiceSettings(idempotency_table="idem"),
    )
    result = pipeline.handle_event(sqs_event([event()]))
    return outcome(
        1,
        len(sink.values("Scored")),
        lost_counted=1,
        failed_messages=len(result["batchItemFailures"]),
    )


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def run_case(name: str) -> dict[str, Any]:
    """The case, timing only the handler calls, with the peak RSS before and after them."""
    from llmmon_shared.runtime import Pipeline

    spent: dict[str, float] = {"s": 0.0}
    handle = Pipeline.handle_event

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        spent.setdefault("rss_before", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        started = time.monotonic()
        try:
            return handle(self, *args, **kwargs)
        finally:
            spent["s"] += time.monotonic() - started

    Pipeline.handle_event = timed  # type: ignore[method-assign]
    result = CASES[name]()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["wall_s"] = round(spent["s"], 1)
    result["peak_rss_mb"] = round(peak)
    result["rss_growth_mb"] = round(peak - spent.get("rss_before", peak))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES))
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case)))
        return 0
    rows = []
    for name in CASES:
        done = subprocess.run(
            [sys.executable, __file__, "--case", name],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if done.returncode:
            print(f"{name}: FAILED\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        rows.append((name, json.loads(done.stdout.strip().splitlines()[-1])))
    print(
        "| case | expected | scored | double-counted | lost, uncounted | counted skips "
        "| peak RSS (growth in the handler) | handler time (timeout 120 s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name.replace('_', ' ')} | {r['expected']} | {r['scored']} | {r['double']} | "
            f"{r['lost']} | {r['counted_skips']} | {r['peak_rss_mb']} MB "
            f"(+{r['rss_growth_mb']} MB) | {r['wall_s']} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
