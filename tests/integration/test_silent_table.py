"""A DynamoDB that stops answering in the middle of an object, at the 60 s and 120 s function
timeouts: no value is counted twice, none is lost without a count, and the invocation returns
before Lambda would kill it.

Each invocation runs in its own process (a container) against a moto server; DynamoDB is reached
through a proxy that, after a set number of checkpoint writes, accepts requests and never answers
them. The invocation is killed at its timeout if it is still running, as Lambda would. Then the
table answers again and the message is delivered again (its idempotency record's in-progress
expiry moved to the past: the visibility timeout, at least six function timeouts, has passed)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

ROOT = Path(__file__).resolve().parents[2]
BUCKET, TABLE, RECORDS, BATCH = "silent-logs", "silent-idem", 512, 128
PREFIX = "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/11/28/07"


def invoke(key: str, timeout_s: float, out: str) -> None:
    """One Lambda invocation of a one-message batch, its EMF lines appended to ``out``."""
    import boto3

    from llmmon.local.worker import LambdaContext
    from llmmon_shared.metrics import EmfSink
    from llmmon_shared.runtime import Boto3S3Reader, Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import s3_event, sqs_event

    s3 = boto3.client("s3")
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    with open(out, "a", buffering=1) as stream:
        pipeline = Pipeline(
            "silent",
            lambda batch: [{"Scored": float(i.request_id[2:])} for i in batch],
            {},
            Boto3S3Reader(s3),
            EmfSink("llmmon", stream),
            ServiceSettings(idempotency_table=TABLE, batch_size=BATCH, log_level="ERROR"),
        )
        context = LambdaContext("silent", 1024, "arn", key, time.monotonic() + timeout_s)
        body = json.dumps(s3_event(BUCKET, key, etag=etag))
        result = pipeline.handle_event(sqs_event([body]), context)
    print(json.dumps(result))


class Proxy(ThreadingHTTPServer):
    """DynamoDB's endpoint: forwards to moto until ``answered`` checkpoint writes went through,
    then holds every request unanswered until ``silent`` is cleared."""

    daemon_threads = True

    def __init__(self, upstream: str, answered: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.upstream, self.answered, self.checkpoints = upstream, answered, 0
        self.silent = threading.Event()
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Proxy

    def log_message(self, *args: Any) -> None:
        pass

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # the caller gave up waiting
            super().handle()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            if (
                b"#progress#" in body
                and b"PutItem" in self.headers.get("X-Amz-Target", "").encode()
            ):
                self.server.checkpoints += 1
                if self.server.checkpoints > self.server.answered:
                    self.server.silent.set()
        if self.server.silent.is_set():
            while self.server.silent.is_set():
                time.sleep(0.05)  # accepted, read, never answered
            self.close_connection = True  # and never applied, even once the table is back
            return
        request = urllib.request.Request(
            self.server.upstream, data=body, headers=dict(self.headers), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, headers, payload = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            status, headers, payload = error.code, error.headers, error.read()
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "server",
                "date",
            ):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def create_bucket_and_table(url: str) -> None:
    import boto3

    options = {"endpoint_url": url, "region_name": "us-east-1"}
    options.update(aws_access_key_id="x", aws_secret_access_key="x")
    boto3.client("s3", **options).create_bucket(Bucket=BUCKET)
    boto3.client("dynamodb", **options).create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from tests.conftest import threaded_moto

    with threaded_moto() as url:
        create_bucket_and_table(url)
        yield url


def scenario(moto_url: str, timeout_s: float, answered: int, tmp: Path) -> dict[str, Any]:
    import boto3

    options = {"endpoint_url": moto_url, "region_name": "us-east-1"}
    options.update(aws_access_key_id="x", aws_secret_access_key="x")
    key = f"{PREFIX}/silent-{int(timeout_s)}-{answered}.json.gz"
    base = int(timeout_s) * 100_000 + answered * 10_000
    records = [
        {
            "schemaType": "ModelInvocationLog",
            "requestId": f"r-{base + n}",
            "modelId": "amazon.titan-text-express-v1",
            "input": {"inputBodyJson": {"inputText": "Where is Paris?"}},
            "output": {"outputBodyJson": {"results": [{"outputText": "In France."}]}},
        }
        for n in range(RECORDS)
    ]
    data = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    boto3.client("s3", **options).put_object(Bucket=BUCKET, Key=key, Body=data)
    proxy = Proxy(moto_url, answered)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{proxy.server_address[1]}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }
    out = tmp / f"emf-{int(timeout_s)}-{answered}.log"
    code = f"from tests.integration.test_silent_table import invoke; invoke({key!r}, {timeout_s}, {str(out)!r})"
    invocations = []
    try:
        for _ in range(4):
            started = time.monotonic()
            child = subprocess.Popen(
                [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
            )
            try:
                stdout, _ = child.communicate(timeout=timeout_s + 5)  # a little slack to start up
                killed = False
            except subprocess.TimeoutExpired:
                child.kill()
                stdout, _ = child.communicate()
                killed = True
            elapsed = time.monotonic() - started
            result = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
            invocations.append({"elapsed_s": round(elapsed, 1), "killed": killed, "result": result})
            proxy.silent.clear()  # the table answers again
            proxy.answered = 10**9
            if result == {"batchItemFailures": []}:
                break
            # The visibility timeout passes before SQS delivers the message again.
            table = boto3.client("dynamodb", **options)
            for item in table.scan(TableName=TABLE)["Items"]:
                if item.get("status", {}).get("S") == "INPROGRESS":
                    table.update_item(
                        TableName=TABLE,
                        Key={"id": item["id"]},
                        UpdateExpression="SET in_progress_expiration = :past",
                        ExpressionAttributeValues={":past": {"N": "1"}},
                    )
    finally:
        proxy.silent.clear()
        proxy.shutdown()
    seen: dict[float, int] = {}
    unconfirmed = 0
    for line in out.read_text().splitlines():
        document = json.loads(line)
        values = document.get("Scored", [])
        for value in values if isinstance(values, list) else [values]:
            seen[value] = seen.get(value, 0) + 1
        unconfirmed += int(document.get("UnconfirmedRecords", 0))
    return {
        "invocations": invocations,
        "scored": len(seen),
        "twice": sum(n - 1 for n in seen.values()),
        "unconfirmed": unconfirmed,
    }


@pytest.mark.parametrize(
    "answered", [4, 5], ids=["silent-before-announce", "silent-after-announce"]
)
def test_table_silent_midway__nothing_twice_nothing_lost_uncounted(
    moto_url: str, tmp_path: Path, answered: int
) -> None:
    """``answered`` checkpoint writes go through: 4 (chunks 1 and 2 announced and confirmed;
    chunk 3's announcement is never answered, so chunk 3 is never sent by that invocation) or 5
    (chunk 3 announced and sent, its confirmation never answered)."""
    with ThreadPoolExecutor(2) as pool:
        runs = dict(
            zip(
                (60, 120),
                pool.map(lambda t: scenario(moto_url, t, answered, tmp_path), (60.0, 120.0)),
                strict=True,
            )
        )
    for timeout_s, run in runs.items():
        first = run["invocations"][0]
        assert not first["killed"], run  # returned while it could still act
        assert first["elapsed_s"] < timeout_s, run
        assert run["twice"] == 0, run
        # Every record scored once or counted: a chunk whose confirmation was lost is passed
        # over by the retry (it cannot know the chunk went out) and counted, at most one chunk.
        assert RECORDS - run["scored"] <= run["unconfirmed"] <= BATCH, run
        assert run["invocations"][-1]["result"] == {"batchItemFailures": []}, run
    print(json.dumps(runs))
