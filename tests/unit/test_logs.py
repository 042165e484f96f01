"""Reading log objects: streaming, bad lines, broken objects, large-data bodies."""

from __future__ import annotations

import gzip
import io
import json
import random

import pytest

from llmmon_shared import logs
from llmmon_shared.logs import (
    BodyFetchError,
    CorruptObjectError,
    InvocationLogRecord,
    LineError,
    parse_s3_uri,
    read_log_object,
    resolve_large_bodies,
)
from tests.conftest import FIXTURES, DictS3Reader, fixture_key


def read(tag: str) -> list[InvocationLogRecord | LineError]:
    with (FIXTURES / fixture_key(tag)).open("rb") as raw:
        return list(read_log_object(raw))


def test_record_model__keeps_every_documented_field() -> None:
    record = read("claude-messages")[0]
    assert isinstance(record, InvocationLogRecord)
    assert record.schema_type == "ModelInvocationLog" and record.schema_version == "1.0"
    assert record.account_id == "123456789012" and record.region == "us-east-1"
    assert (
        record.identity is not None
        and record.identity.arn
        and "assumed-role" in record.identity.arn
    )
    assert record.operation == "InvokeModel"
    assert record.input is not None and record.input.input_token_count == 42
    assert record.output is not None and isinstance(record.output.output_body_json, dict)
    assert record.request_metadata == {"app": "tutor", "tenant": "acme"}


def test_streaming_record__output_body_is_a_list() -> None:
    record = read("claude-messages")[1]
    assert isinstance(record, InvocationLogRecord) and record.output is not None
    assert isinstance(record.output.output_body_json, list)


def test_unknown_and_missing_fields__are_tolerated() -> None:
    record = InvocationLogRecord.model_validate(
        {
            "requestId": "r",
            "brandNewField": {"x": 1},
            "input": {"cacheReadInputTokenCount": 5, "newInputField": True},
        }
    )
    assert record.model_extra == {"brandNewField": {"x": 1}}
    assert record.input is not None and record.input.cache_read_input_token_count == 5
    assert record.output is None and record.model_id is None


def test_bad_line__is_reported_and_the_rest_is_read() -> None:
    items = read("bad-line")
    errors = [i for i in items if isinstance(i, LineError)]
    records = [i for i in items if isinstance(i, InvocationLogRecord)]
    assert [(e.line_number, e.reason) for e in errors] == [
        (2, "invalid-json"),
        (3, "not-a-json-object"),
    ]
    assert len(records) == 3  # one Nova record before, two Mistral records after


def test_truncated_gzip__yields_what_was_readable_then_raises() -> None:
    seen: list[object] = []
    with (
        pytest.raises(CorruptObjectError, match="cannot decompress"),
        (FIXTURES / fixture_key("truncated")).open("rb") as raw,
    ):
        seen.extend(read_log_object(raw))
    assert seen  # the records before the damage were streamed


def test_not_gzip__is_corrupt() -> None:
    with pytest.raises(CorruptObjectError, match="neither gzip nor JSON"):
        read("not-gzip")


def test_empty_object__has_no_records() -> None:
    assert read("empty") == []


def test_plain_json_lines__are_read_too() -> None:
    line = json.dumps({"requestId": "r", "modelId": "m"}).encode()
    items = list(read_log_object(io.BytesIO(line + b"\n\n" + line)))
    assert len(items) == 2 and all(isinstance(i, InvocationLogRecord) for i in items)


def test_oversized_line__is_skipped_with_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_LINE_BYTES", 1000)
    big = json.dumps({"requestId": "x" * 5000}).encode()
    small = json.dumps({"requestId": "ok"}).encode()
    data = gzip.compress(big + b"\n" + small + b"\n")
    items = list(read_log_object(io.BytesIO(data)))
    assert isinstance(items[0], LineError) and items[0].reason == "line-too-long"
    assert isinstance(items[1], InvocationLogRecord) and items[1].request_id == "ok"


def test_reader__streams_record_by_record() -> None:
    """The reader pulls from the source lazily: the first record arrives after a small read."""

    class CountingStream(io.BytesIO):
        bytes_read = 0

        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            self.bytes_read += len(data)
            return data

    rng = random.Random(7)
    lines = b"".join(
        json.dumps({"requestId": str(i), "pad": rng.randbytes(150).hex()}).encode() + b"\n"
        for i in range(5_000)
    )
    payload = gzip.compress(lines)  # ~1.6 MB uncompressed, hardly compressible
    source = CountingStream(payload)
    first = next(iter(read_log_object(source)))
    assert isinstance(first, InvocationLogRecord)
    assert source.bytes_read < len(payload) // 4


def test_large_body__gzip_and_plain_json_are_resolved() -> None:
    body = {"completion": "hello", "stop_reason": "stop_sequence"}
    reader = DictS3Reader(
        {
            ("b", "d/gz_output.json.gz"): gzip.compress(json.dumps(body).encode()),
            ("b", "d/plain_input.json"): json.dumps({"prompt": "hi"}).encode(),
        }
    )
    record = InvocationLogRecord.model_validate(
        {
            "requestId": "r",
            "input": {"inputBodyS3Path": "s3://b/d/plain_input.json"},
            "output": {"outputBodyS3Path": "s3://b/d/gz_output.json.gz"},
        }
    )
    resolved = resolve_large_bodies(record, reader)
    assert resolved.input is not None and resolved.input.input_body_json == {"prompt": "hi"}
    assert resolved.output is not None and resolved.output.output_body_json == body


@pytest.mark.parametrize("uri", ["https://x/y", "s3://bucket-only", "s3:///key"])
def test_bad_s3_paths__are_rejected(uri: str) -> None:
    with pytest.raises(BodyFetchError):
        parse_s3_uri(uri)


def test_unreadable_large_body__raises_body_fetch_error() -> None:
    reader = DictS3Reader({("b", "k"): b"\x1f\x8b\x08garbage"})
    record = InvocationLogRecord.model_validate(
        {"requestId": "r", "output": {"outputBodyS3Path": "s3://b/k"}}
    )
    with pytest.raises(BodyFetchError):
        resolve_large_bodies(record, reader)
