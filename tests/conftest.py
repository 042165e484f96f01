"""Shared test helpers: fixture log objects, Lambda-shaped events, an in-memory S3 reader."""

from __future__ import annotations

import io
import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, settings

from llmmon_shared.events import classify_key

# Fuzzing budgets: "ci" (default) for every run, derandomized so a run is reproducible; "full"
# (HYPOTHESIS_PROFILE=full) for the documented 10,000+ case run, random each time. Deadlines are
# off: the machine is shared and noisy.
settings.register_profile(
    "ci",
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same cases every run: CI is reproducible; "full" explores anew
)
settings.register_profile(
    "full", max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
FIXTURE_BUCKET = "llmmon-fixtures"
HOUR = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/28/07"
TEST_DATA = Path(__file__).parent / "data"
"""Labelled data the suite needs, kept in the repo with its licence and attribution."""


def fixture_key(tag: str) -> str:
    """Key of the fixture log object named ``..._<tag>.json.gz``."""
    matches = sorted(FIXTURES.glob(f"{HOUR}/*_{tag}.json.gz"))
    assert len(matches) == 1, f"no single fixture for {tag}"
    return matches[0].relative_to(FIXTURES).as_posix()


def fixture_keys(include_broken: bool = False) -> list[str]:
    broken = ("bad-line", "truncated", "unknown-schema", "empty", "not-gzip")
    keys = []
    for path in sorted(FIXTURES.rglob("*")):
        key = path.relative_to(FIXTURES).as_posix()
        is_broken = any(key.endswith(f"_{tag}.json.gz") for tag in broken)
        if path.is_file() and classify_key(key, None) is None and (include_broken or not is_broken):
            keys.append(key)
    return keys


class DictS3Reader:
    """S3Reader over a dict ``{(bucket, key): bytes}``; missing keys raise like S3 does."""

    def __init__(self, objects: dict[tuple[str, str], bytes] | None = None) -> None:
        self.objects = objects or {}
        self.opened: list[tuple[str, str]] = []

    @classmethod
    def from_fixtures(cls) -> DictS3Reader:
        return cls(
            {
                (FIXTURE_BUCKET, p.relative_to(FIXTURES).as_posix()): p.read_bytes()
                for p in FIXTURES.rglob("*")
                if p.is_file()
            }
        )

    def open(self, bucket: str, key: str) -> IO[bytes]:
        self.opened.append((bucket, key))
        try:
            return io.BytesIO(self.objects[(bucket, key)])
        except KeyError:
            raise FileNotFoundError("NoSuchKey") from None


def upload_fixtures(s3: Any) -> None:
    """Create the fixture bucket in (moto) S3 and put every fixture object in it."""
    s3.create_bucket(Bucket=FIXTURE_BUCKET)
    for path in FIXTURES.rglob("*"):
        if path.is_file():
            s3.put_object(
                Bucket=FIXTURE_BUCKET,
                Key=path.relative_to(FIXTURES).as_posix(),
                Body=path.read_bytes(),
            )


def fixture_etag(key: str) -> str:
    """The ETag S3 gives a fixture object put in one request: the MD5 of its bytes."""
    import hashlib

    path = FIXTURES / key
    return hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else "0123abcd"


def s3_event(
    bucket: str,
    key: str,
    size: int = 1234,
    etag: str | None = None,
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """An S3 event notification as S3 sends it (the key URL-encoded; by default the ETag of the
    fixture object under that key)."""
    etag = etag if etag is not None else fixture_etag(key)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-28T07:05:00.000Z",
                "eventName": event_name,
                "userIdentity": {"principalId": "AWS:AROAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "10.0.0.1"},
                "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "abc"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "bedrock-logs",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag,
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


def titan_record(n: int, answer: str = "In France.", **extra: Any) -> dict[str, Any]:
    """A Titan Text invocation log record with request id r-N; extra fields override."""
    return {
        "schemaType": "ModelInvocationLog",
        "requestId": f"r-{n}",
        "modelId": "amazon.titan-text-express-v1",
        "input": {"inputBodyJson": {"inputText": "Where is Paris?"}},
        "output": {"outputBodyJson": {"results": [{"outputText": answer}]}},
        **extra,
    }


def sns_envelope(message: dict[str, Any]) -> dict[str, Any]:
    """The SNS notification SQS receives without raw message delivery."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:llmmon-logs",
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(message),
        "Timestamp": "2026-11-28T07:05:01.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.example/cert.pem",
        "UnsubscribeURL": "https://sns.example/unsubscribe",
    }


def sqs_event(bodies: Iterable[str]) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping hands a function."""
    return {
        "Records": [
            {
                "messageId": f"msg-{i}",
                "receiptHandle": f"handle-{i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764313500000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1764313500001",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:llmmon-similarity",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def all_texts(min_length: int = 12) -> Iterator[str]:
    """Every prompt, system prompt and completion text in the fixtures (for privacy checks)."""
    from llmmon_shared.extract import Interaction, extract
    from llmmon_shared.logs import FolderS3Reader, read_log_object, resolve_large_bodies

    reader = FolderS3Reader(FIXTURES)
    for key in fixture_keys():
        with (FIXTURES / key).open("rb") as raw:
            for item in read_log_object(raw):
                if isinstance(item, str) or not hasattr(item, "request_id"):
                    continue
                try:
                    item = resolve_large_bodies(item, reader)
                except Exception:
                    continue
                outcome = extract(item)
                if isinstance(outcome, Interaction):
                    for text in (outcome.prompt, outcome.completion, outcome.system or ""):
                        if len(text.strip()) >= min_length:
                            yield text.strip()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``LLMMON_NO_SKIPS`` set (``.ci/run`` sets it), a skipped test fails: CI must run every
    test, and a test that cannot run says why instead of counting as passed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("LLMMON_NO_SKIPS") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but every test must run here (LLMMON_NO_SKIPS): {reason}"


@pytest.fixture
def fixture_s3() -> DictS3Reader:
    return DictS3Reader.from_fixtures()


@contextmanager
def threaded_moto() -> Iterator[str]:
    """A moto server in this process on a free loopback port; yields its URL, stops after."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Each test leaves the process environment as it found it: test files share worker
    processes (pytest-xdist), and an endpoint or setting left behind would reach the next."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)
