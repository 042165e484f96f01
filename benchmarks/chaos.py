"""Chaos cases of issue 13, each in a fresh process, in process (the pipeline with moto S3 and
DynamoDB or an in-memory reader): for each, records expected / scored / double-counted / lost,
peak RSS and wall time against the function timeout.

Run: ``uv run python benchmarks/chaos.py`` (about 2 minutes; ``--case NAME`` runs one;
``--kills N`` adds N random SIGKILLs of a worker scoring through a moto server). The suite runs
every case with the ``chaos`` marker (tests/integration/test_chaos.py): the fast ones in CI, all of
them with ``uv run pytest -m chaos``.
"""

from __future__ import annotations

import argparse
import contextlib
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


class TallySink:
    """A sink that keeps, per metric name, only the values' count and sum (a sink that kept every
    point would measure itself, not the pipeline)."""

    def __init__(self) -> None:
        self.pending: list[Any] = []
        self.tally: dict[str, list[float]] = {}

    def add(self, points: Any) -> None:
        self.pending.extend(points)

    def flush(self) -> None:
        for point in self.pending:
            counted = self.tally.setdefault(point.name, [0, 0.0])
            counted[0] += 1
            counted[1] += point.value
        self.pending = []

    def count(self, name: str) -> int:
        return int(self.tally.get(name, [0, 0.0])[0])

    def total(self, name: str) -> float:
        return self.tally.get(name, [0, 0.0])[1]


def memory_pipeline(objects: dict[tuple[str, str], bytes], **settings: Any) -> tuple[Any, Any]:
    from llmmon_shared.runtime import Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import DictS3Reader

    sink = TallySink()
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


def log_bucket_and_table() -> Any:
    """The log bucket and the idempotency table at the current endpoint; the S3 client."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    boto3.client("dynamodb").create_table(
        TableName="idem",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    return s3


def with_moto(run: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    from moto import mock_aws

    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x"
    )
    with mock_aws():
        s3 = log_bucket_and_table()
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


def _bounded(
    objects: dict[tuple[str, str], bytes], expected: int, compute: Any = None
) -> dict[str, Any]:
    from tests.conftest import sqs_event

    pipeline, sink = memory_pipeline(objects)
    if compute is not None:
        pipeline.compute = compute
    result = pipeline.handle_event(sqs_event([event()]))
    skips = sink.total("SkippedObjects") + sink.total("SkippedRecords")
    return outcome(
        expected,
        sink.count("Scored"),
        lost_counted=int(skips),
        failed_messages=len(result["batchItemFailures"]),
        bad_lines=int(sink.total("ParseErrors")),
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


def case_200_records_sharing_one_5_mb_body() -> dict[str, Any]:
    """200 records whose large-data input is the same 5 MB body, at batch size 128."""
    path = f"{PREFIX}/data/shared_input.json.gz"
    body = gzip.compress(json.dumps({"inputText": "Where is Paris? " * 330_000}).encode())
    log = lines([record(n, input={"inputBodyS3Path": f"s3://{BUCKET}/{path}"}) for n in range(200)])
    return _bounded({(BUCKET, KEY): log, (BUCKET, path): body}, expected=200)


def case_60k_records_in_one_object() -> dict[str, Any]:
    """60,000 records in one object, five distinct values each (as a service's scores): memory
    follows the batch, not the object."""

    def five(batch: Sequence[Any]) -> list[dict[str, float]]:
        return [
            {"Scored": 1.0, **{f"Score{k}": float(i.request_id[2:]) + k for k in range(4)}}
            for i in batch
        ]

    objects = {(BUCKET, KEY): lines([record(n) for n in range(60_000)])}
    return _bounded(objects, expected=60_000, compute=five)


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
    skips = int(sink.total("SkippedObjects") + sink.total("SkippedRecords"))
    return outcome(1, sink.count("Scored"), foreign_reads=len(read), counted_skips=skips)


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


def case_15_mib_body_of_tiny_json_values() -> dict[str, Any]:
    """A large-data body under the 16 MiB byte cap made of ``{},`` repeated (5 million values),
    in each of 8 records: refused by the node budget before it is parsed."""
    path = f"{PREFIX}/data/tiny_input.json.gz"
    body = stream_gzip(
        chain([b'{"inputText": "hi", "a": ['], (b"{}," * (1 << 20) for _ in range(5)), [b"{}]}"])
    )
    records = [record(n, input={"inputBodyS3Path": f"s3://{BUCKET}/{path}"}) for n in range(8)]
    log = lines([*records, record(8)])
    return _bounded({(BUCKET, KEY): log, (BUCKET, path): body}, expected=1)


def case_token_count_of_10_200_in_one_of_51() -> dict[str, Any]:
    """The real traffic scorer through the PutMetricData sink, against a CloudWatch that refuses
    a whole request holding one value over 2^360 (as CloudWatch does)."""
    from llmmon_shared.metrics import PutMetricDataSink
    from llmmon_traffic.compute import score_batch
    from tests.conftest import sqs_event
    from tests.functional.test_runtime import StrictCloudWatch

    tokens = [10**200 if n == 7 else 5 for n in range(51)]
    records = [
        record(n, input={"inputBodyJson": {"inputText": "Where?"}, "inputTokenCount": t})
        for n, t in enumerate(tokens)
    ]
    pipeline, _ = memory_pipeline({(BUCKET, KEY): lines(records)})
    cloudwatch = StrictCloudWatch()
    pipeline.compute, pipeline.sink = score_batch, PutMetricDataSink("llmmon", cloudwatch)
    result = pipeline.handle_event(sqs_event([event()]))
    return outcome(
        51,
        int(cloudwatch.sent.get("InputTokens", 0)),
        lost_counted=int(cloudwatch.sent.get("SkippedValues", 0)),
        its_other_values_delivered=int(cloudwatch.sent.get("GuardrailIntervened", 0)),
        failed_messages=len(result["batchItemFailures"]),
    )


def case_table_silent_midway_60_and_120_s() -> dict[str, Any]:
    """DynamoDB stops answering after chunk 3's announcement (512 records, 128 a chunk), at the
    60 s and 120 s function timeouts (tests/integration/test_silent_table.py's harness)."""
    import tempfile

    from tests.conftest import threaded_moto
    from tests.integration import test_silent_table as silent

    with threaded_moto() as url:
        silent.create_bucket_and_table(url)
        with tempfile.TemporaryDirectory() as tmp:
            runs = [silent.scenario(url, t, 5, Path(tmp)) for t in (60.0, 120.0)]
    scored = sum(r["scored"] for r in runs)
    unconfirmed = sum(r["unconfirmed"] for r in runs)
    return {
        **outcome(2 * silent.RECORDS, scored, lost_counted=unconfirmed),
        "double": sum(r["twice"] for r in runs),
        "first_invocation_s": [r["invocations"][0]["elapsed_s"] for r in runs],
        "killed": sum(i["killed"] for r in runs for i in r["invocations"]),
    }


# --------------------------------------------------------------------------------------------
# Random kills: a worker process scoring objects through the idempotency table and checkpoints
# of a moto server, its EMF output appended to a file, killed (SIGKILL) at random moments and
# restarted until every message is acknowledged. Any value in the output twice was counted
# twice; any record's value missing was lost.

KILL_OBJECTS, KILL_RECORDS, KILL_BATCH = 16, 300, 64


def kill_worker(folder: Path) -> None:
    """One worker's life: every message not yet acknowledged, in order, as Lambda would."""
    from llmmon.local.worker import LambdaContext
    from llmmon_shared.runtime import Pipeline
    from tests.conftest import sqs_event

    def score(batch: Sequence[Any]) -> list[dict[str, float]]:
        time.sleep(0.004 * len(batch))  # a scorer's work
        return [{"Scored": float(i.request_id[2:])} for i in batch]

    messages = json.loads((folder / "messages.json").read_text())
    acked = folder / "acked"
    done = set(acked.read_text().split()) if acked.exists() else set()
    stats = {"window_s": 0.0, "busy_s": 0.0}
    original_save = Pipeline._save
    opened = {"at": 0.0}

    def save(self: Any, version: str, checkpoint: Any) -> bool:
        saved = original_save(self, version, checkpoint)
        if checkpoint.pending:
            opened["at"] = time.monotonic()  # announced: a kill from here is an unknown chunk
        elif opened["at"]:
            stats["window_s"] += time.monotonic() - opened["at"]
            opened["at"] = 0.0
        return saved

    Pipeline._save = save  # type: ignore[method-assign]
    with (folder / "emf.log").open("a", buffering=1) as out:
        pipeline = _worker_pipeline(score, out, KILL_BATCH)
        for message_id, body in messages:
            if message_id in done:
                continue
            while True:
                started = time.monotonic()
                context = LambdaContext("chaos", 1024, "arn", message_id, time.monotonic() + 2)
                result = pipeline.handle_event(sqs_event([body]), context)
                stats["busy_s"] += time.monotonic() - started
                if not result["batchItemFailures"]:
                    break
                time.sleep(0.5)  # in progress elsewhere (a killed worker's record): later
            with acked.open("a") as handle:
                handle.write(message_id + "\n")
            (folder / f"stats-{os.getpid()}.json").write_text(json.dumps(stats))


def _worker_pipeline(score: Callable[..., Any], out: Any, batch_size: int) -> Any:
    """A chaos worker's pipeline: the moto server's S3 and idempotency table, EMF to `out`."""
    from llmmon_shared.aws import client
    from llmmon_shared.metrics import EmfSink
    from llmmon_shared.runtime import Boto3S3Reader, Pipeline
    from llmmon_shared.settings import ServiceSettings

    return Pipeline(
        "chaos",
        score,
        {},
        Boto3S3Reader(client("s3")),
        EmfSink("chaos", out),
        ServiceSettings(idempotency_table="idem", batch_size=batch_size),
    )


def random_kills(kills: int, seed: int = 13) -> dict[str, Any]:
    import logging
    import random
    import signal
    import tempfile

    from moto.server import ThreadedMotoServer

    from tests.conftest import s3_event

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    rng = random.Random(seed)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "LLMMON_LOG_LEVEL": "ERROR",
    }
    saved = dict(os.environ)  # this process talks to the server too; restored after
    os.environ.update({k: env[k] for k in env if k.startswith("AWS_")})
    started = time.monotonic()
    try:
        s3 = log_bucket_and_table()
        messages = []
        for o in range(KILL_OBJECTS):
            key = f"{PREFIX}/20261128T0700{o:02d}000Z_kill.json.gz"
            records = [record(o * KILL_RECORDS + n) for n in range(KILL_RECORDS)]
            etag = s3.put_object(Bucket=BUCKET, Key=key, Body=lines(records))["ETag"]
            messages.append((f"m-{o}", json.dumps(s3_event(BUCKET, key, etag=etag.strip('"')))))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "messages.json").write_text(json.dumps(messages))
            killed = lives = 0
            while True:
                lives += 1
                child = subprocess.Popen(
                    [sys.executable, __file__, "--kill-worker", str(folder)], env=env
                )
                try:
                    child.wait(timeout=rng.uniform(1.0, 5.0) if killed < kills else 600)
                except subprocess.TimeoutExpired:
                    child.send_signal(signal.SIGKILL)
                    child.wait()
                    killed += 1
                    continue
                if child.returncode:
                    raise RuntimeError(f"kill worker failed with {child.returncode}")
                break
            seen: dict[float, int] = {}
            torn = unconfirmed = 0
            for line in (folder / "emf.log").read_text().splitlines():
                try:
                    document = json.loads(line)
                except json.JSONDecodeError:
                    torn += 1  # a line cut by the kill: CloudWatch drops it
                    continue
                unconfirmed += int(document.get("UnconfirmedRecords", 0))
                values = document.get("Scored", [])
                for value in values if isinstance(values, list) else [values]:
                    seen[value] = seen.get(value, 0) + 1
            window = busy = 0.0
            for stats in folder.glob("stats-*.json"):
                figures = json.loads(stats.read_text())
                window, busy = window + figures["window_s"], busy + figures["busy_s"]
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
    expected = KILL_OBJECTS * KILL_RECORDS
    twice = sum(n - 1 for n in seen.values() if n > 1)
    return {
        "expected": expected,
        "scored": len(seen),
        "double": twice,
        "lost": max(0, expected - len(seen) - unconfirmed),
        "counted_skips": unconfirmed,
        "unconfirmed_records": unconfirmed,
        "kills": killed,
        "worker_lives": lives,
        "chunks_counted_twice": sum(1 for n in seen.values() if n > 1) // KILL_BATCH,
        "torn_lines": torn,
        "window_share": round(window / busy, 5) if busy else None,
        "wall_s": round(time.monotonic() - started, 1),
    }


# --------------------------------------------------------------------------------------------
# Hand-over kills: one 5,000-record object under a 5 s function timeout, far more than one
# invocation can score, through a real SQS queue (with its dead-letter queue after 5 receives),
# the idempotency table and checkpoints of a moto server. A worker process plays Lambda's event
# source mapping (receive, invoke with Lambda's record shape, delete what did not fail) and is
# killed once after each step of the hand-over in turn: the checkpoint saved, the continuation
# sent, the invocation returned (its messages not yet deleted). The object must complete with
# nothing in the dead-letter queue, no value twice and none lost uncounted.

HANDOVER_RECORDS, HANDOVER_BATCH, HANDOVER_TIMEOUT_S = 5000, 64, 5.0
HANDOVER_STEPS = ("saved", "sent", "returned")
HANDOVER_VISIBILITY_S = 6  # > the timeout: a killed invocation's messages come back after it


def handover_worker(folder: Path) -> None:
    """One worker's life; ``kill-at`` in the folder names the step to die after (or none)."""
    import signal

    import llmmon_shared.runtime as runtime
    from llmmon.local.endpoint import queue_counts
    from llmmon.local.worker import LambdaContext, sqs_record
    from llmmon_shared.aws import client
    from llmmon_shared.runtime import Pipeline

    runtime.SOFT_DEADLINE_MIN_S = 1.0  # a 5 s function keeps its fifth in reserve too
    kill_at = (folder / "kill-at").read_text().strip()

    def die(step: str) -> None:
        if step == kill_at:
            (folder / "killed").write_text(step)
            os.kill(os.getpid(), signal.SIGKILL)

    send, requeue = Pipeline._send_continuation, Pipeline._requeue

    def send_continuation(
        self: Any, ref: Any, position: int, queue: Any, reason: str, delay: int
    ) -> Any:
        if reason == "continuation":
            die("saved")  # step 1 done: the checkpoint names the continuation as owner
        return send(self, ref, position, queue, reason, delay)

    def requeued(self: Any, queue: str, body: str, reason: str, delay_s: int = 0) -> None:
        requeue(self, queue, body, reason, delay_s)
        if reason == "continuation":
            die("sent")  # step 2 done: the continuation is on the queue

    Pipeline._send_continuation = send_continuation  # type: ignore[method-assign]
    Pipeline._requeue = requeued  # type: ignore[method-assign]

    def score(batch: Sequence[Any]) -> list[dict[str, float]]:
        time.sleep(0.002 * len(batch))  # a scorer's work: 10 s for the object
        return [{"Scored": float(i.request_id[2:])} for i in batch]

    sqs = client("sqs")
    url = (folder / "queue-url").read_text()
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    with (folder / "emf.log").open("a", buffering=1) as out:
        pipeline = _worker_pipeline(score, out, HANDOVER_BATCH)
        idle = 0
        while idle < 3:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                queued = queue_counts(sqs, url)
                idle = idle + 1 if not any(queued.values()) else 0
                continue
            idle = 0
            with (folder / "receives").open("a") as tally:
                tally.write(f"{len(messages)}\n")
            context = LambdaContext(
                "chaos", 1024, "arn", "request", time.monotonic() + HANDOVER_TIMEOUT_S
            )
            event = {"Records": [sqs_record(m, arn, "us-east-1") for m in messages]}
            result = pipeline.handle_event(event, context)
            die("returned")  # step 3 done: acknowledged by the function, not yet deleted
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def handover_kills(steps: Sequence[str] = HANDOVER_STEPS) -> dict[str, Any]:
    import logging
    import tempfile

    from moto.server import ThreadedMotoServer

    from llmmon.local.endpoint import queue_counts
    from tests.conftest import s3_event

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # A threaded server shares this process's moto state (another case's table, say): reset it.
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")
    ).close()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "LLMMON_LOG_LEVEL": "ERROR",
    }
    saved = dict(os.environ)
    os.environ.update({k: env[k] for k in env if k.startswith("AWS_")})
    started = time.monotonic()
    try:
        import boto3

        s3 = log_bucket_and_table()
        sqs = boto3.client("sqs")
        dlq = sqs.create_queue(QueueName="chaos-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue = sqs.create_queue(
            QueueName="chaos",
            Attributes={
                "VisibilityTimeout": str(HANDOVER_VISIBILITY_S),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}
                ),
            },
        )["QueueUrl"]
        body = lines([record(n) for n in range(HANDOVER_RECORDS)])
        etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)["ETag"].strip('"')
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(s3_event(BUCKET, KEY, etag=etag)))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "queue-url").write_text(queue)
            kills, lives = [], 0
            for step in [*steps, "none"]:
                (folder / "kill-at").write_text(step)
                lives += 1
                child = subprocess.run(
                    [sys.executable, __file__, "--handover-worker", str(folder)],
                    env=env,
                    timeout=600,
                )
                if child.returncode == -9:
                    kills.append((folder / "killed").read_text())
                    (folder / "killed").unlink()
                elif child.returncode:
                    raise RuntimeError(f"handover worker failed with {child.returncode}")
            seen: dict[float, int] = {}
            unconfirmed = requeued = duplicates = 0
            for line in (folder / "emf.log").read_text().splitlines():
                document = json.loads(line)
                unconfirmed += int(document.get("UnconfirmedRecords", 0))
                requeued += int(document.get("Requeued", 0))
                duplicates += int(document.get("DuplicateObjects", 0))
                values = document.get("Scored", [])
                for value in values if isinstance(values, list) else [values]:
                    seen[value] = seen.get(value, 0) + 1
            receives = sum(int(n) for n in (folder / "receives").read_text().split())
        in_dlq = queue_counts(sqs, dlq)["visible"]
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
    twice = sum(n - 1 for n in seen.values() if n > 1)
    return {
        "expected": HANDOVER_RECORDS,
        "scored": len(seen),
        "double": twice,
        "lost": max(0, HANDOVER_RECORDS - len(seen) - unconfirmed),
        "unconfirmed_records": unconfirmed,
        "kills": kills,
        "worker_lives": lives,
        "messages_received": receives,
        "requeued": requeued,
        "duplicate_objects": duplicates,
        "dead_letter_messages": in_dlq,
        "wall_s": round(time.monotonic() - started, 1),
    }


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def _peak_rss_mb() -> float:
    """Peak resident set of this process (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> float:
    """Free what the case's set-up let go of and restart the peak there (``clear_refs`` 5), so
    the growth measured is the handler's, not the building of its input."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _peak_rss_mb()


def run_case(name: str) -> dict[str, Any]:
    """The case, timing only the handler calls, with the peak RSS before and after them."""
    from llmmon_shared.runtime import Pipeline

    spent: dict[str, float] = {"s": 0.0}
    handle = Pipeline.handle_event

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        if "rss_before" not in spent:
            spent["rss_before"] = _reset_peak()
        started = time.monotonic()
        try:
            return handle(self, *args, **kwargs)
        finally:
            spent["s"] += time.monotonic() - started

    Pipeline.handle_event = timed  # type: ignore[method-assign]
    result = CASES[name]()
    peak = _peak_rss_mb()
    result["wall_s"] = round(spent["s"], 1)
    result["peak_rss_mb"] = round(peak)
    result["rss_growth_mb"] = round(peak - spent.get("rss_before", peak))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--kills", type=int, default=0, help="also run N random kills")
    parser.add_argument("--kill-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--handover-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--handover", action="store_true", help="the hand-over kills (5,000 records, 5 s timeout)"
    )
    args = parser.parse_args(argv)
    if args.kill_worker:
        kill_worker(args.kill_worker)
        return 0
    if args.handover_worker:
        handover_worker(args.handover_worker)
        return 0
    if args.handover:
        print(json.dumps(handover_kills()))
        return 0
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
    if args.kills:
        r = random_kills(args.kills)
        print(
            f"| {r['kills']} random kills ({r['worker_lives']} worker lives) | {r['expected']} | "
            f"{r['scored']} | {r['double']} | {r['lost']} | {r['counted_skips']} | - | "
            f"{r['wall_s']} s in all |"
        )
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
