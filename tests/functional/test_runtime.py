"""The shared handler pipeline fed Lambda's SQS event shape over fixture objects in moto S3.

The compute plugged in here is a plain, real scorer (response length and a keyword flag) so the
test exercises the shared pipeline alone; the metric services have their own functional tests.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llmmon_shared.extract import Interaction
from llmmon_shared.metrics import EmfSink, MemorySink, Unit
from llmmon_shared.runtime import Boto3S3Reader, Pipeline, Scores
from llmmon_shared.settings import ServiceSettings
from tests.conftest import (
    FIXTURE_BUCKET,
    all_texts,
    fixture_key,
    fixture_keys,
    s3_event,
    sns_envelope,
    sqs_event,
    upload_fixtures,
)


def length_compute(batch: Sequence[Interaction]) -> list[Scores]:
    return [
        {"ResponseChars": len(i.completion), "MentionsParis": float("Paris" in i.completion)}
        for i in batch
    ]


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        upload_fixtures(client)
        yield client


def pipeline(s3: Any, sink: Any, **settings: Any) -> Pipeline:
    return Pipeline(
        service="test",
        compute=length_compute,
        units={"ResponseChars": Unit.COUNT},
        s3=Boto3S3Reader(s3),
        sink=sink,
        settings=ServiceSettings(**settings),
    )


def body(tag: str, envelope: bool = False) -> str:
    event = s3_event(FIXTURE_BUCKET, fixture_key(tag))
    return json.dumps(sns_envelope(event) if envelope else event)


def test_handler__scores_every_fixture_object_and_reports_only_the_poisoned(s3: Any) -> None:
    sink = MemorySink()
    good = [k for k in fixture_keys() if not k.endswith("_skips.json.gz")]
    bodies = [json.dumps(s3_event(FIXTURE_BUCKET, k)) for k in good]
    bodies.insert(2, body("truncated"))
    bodies.append(json.dumps(sns_envelope(s3_event(FIXTURE_BUCKET, fixture_key("not-gzip")))))
    bodies.append("this is not an S3 event")
    result = pipeline(s3, sink).handle_event(sqs_event(bodies))
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == {"msg-2", f"msg-{len(bodies) - 2}", f"msg-{len(bodies) - 1}"}
    # Every good interaction was scored once, the truncated object contributed nothing.
    scored = sink.values("ResponseChars")
    assert len(scored) == sum(sink.values("Interactions"))
    # 18 in the family objects, 4 guardrail records whose response is the model's, 5 real shapes
    assert len(scored) == 27
    assert sink.values("MentionsParis").count(1.0) == 4


def test_handler__counts_skips_and_bad_lines(s3: Any) -> None:
    sink = MemorySink()
    events = sqs_event([body("skips"), body("bad-line", envelope=True), body("unknown-schema")])
    assert pipeline(s3, sink).handle_event(events) == {"batchItemFailures": []}
    skipped = {
        (p.dimension_map["Reason"], p.dimension_map["ModelId"]): p.value
        for p in sink.flushed
        if p.name == "SkippedRecords"
    }
    assert skipped[("invocation-error", "anthropic.claude-3-haiku-20240307-v1:0")] == 1
    assert skipped[("non-text-operation", "amazon.titan-image-generator-v2:0")] == 1
    assert skipped[("unknown-shape", "vendorx.mystery-model-v1")] == 1
    assert skipped[("unknown-schema", "x.y")] == 1
    assert skipped[("incomplete-record", "Unknown")] == 1
    assert sum(sink.values("ParseErrors")) == 2
    assert all(
        p.dimension_map["Service"] == "test"
        for p in sink.flushed
        if p.name in {"SkippedRecords", "ParseErrors", "Interactions"}
    )


def test_handler__large_data_bodies_are_fetched_from_s3(s3: Any) -> None:
    sink = MemorySink()
    pipeline(s3, sink, max_chars=200_000).handle_event(sqs_event([body("large-data")]))
    assert [v for v in sink.values("ResponseChars") if v > 100_000]
    skipped = [p for p in sink.flushed if p.name == "SkippedRecords"]
    assert [p.dimension_map["Reason"] for p in skipped] == ["large-body-unavailable"]


def test_handler__test_events_and_non_log_objects_are_not_failures(s3: Any) -> None:
    sink = MemorySink()
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": FIXTURE_BUCKET}
    permission = s3_event(
        FIXTURE_BUCKET,
        "AWSLogs/123456789012/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
        size=0,
    )
    result = pipeline(s3, sink).handle_event(
        sqs_event([json.dumps(test_event), json.dumps(permission), body("empty")])
    )
    assert result == {"batchItemFailures": []}
    assert sink.values("Interactions") == []


def test_handler__deleted_object_fails_its_message(s3: Any) -> None:
    s3.delete_object(Bucket=FIXTURE_BUCKET, Key=fixture_key("nova"))
    result = pipeline(s3, MemorySink()).handle_event(sqs_event([body("nova"), body("titan")]))
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}


def test_sampling__keeps_the_same_interactions_in_every_run(s3: Any) -> None:
    runs = []
    for _ in range(2):
        sink = MemorySink()
        pipeline(s3, sink, sample_rate=0.5).handle_event(
            sqs_event([json.dumps(s3_event(FIXTURE_BUCKET, k)) for k in fixture_keys()])
        )
        runs.append(sorted(sink.values("ResponseChars")))
        sampled_out = sum(sink.values("SampledOut"))
        assert len(runs[-1]) > 0 and sampled_out > 0
    assert runs[0] == runs[1]


def test_max_chars__bounds_what_the_scorer_sees(s3: Any) -> None:
    sink = MemorySink()
    pipeline(s3, sink, max_chars=100).handle_event(sqs_event([body("large-data")]))
    assert max(sink.values("ResponseChars")) <= 100


def test_metadata_dimensions__come_only_from_the_allow_list(s3: Any) -> None:
    sink = MemorySink()
    pipeline(s3, sink, metadata_dimensions=["app=tutor|mail-helper"]).handle_event(
        sqs_event([body("claude-messages")])
    )
    dims = {p.dimensions for p in sink.flushed if p.name == "ResponseChars"}
    assert dims == {
        (("ModelId", "anthropic.claude-3-haiku-20240307-v1:0"), ("app", "tutor")),
        (("ModelId", "us.anthropic.claude-3-haiku-20240307-v1:0"), ("app", "mail-helper")),
    }


def test_no_prompt_or_response_text__reaches_emf_or_logs(
    s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Run every fixture (good and broken) through the pipeline; search all output for text."""
    caplog.set_level(logging.DEBUG)
    out = io.StringIO()
    sink = EmfSink("llmmon", out)
    bodies = [json.dumps(s3_event(FIXTURE_BUCKET, k)) for k in fixture_keys(include_broken=True)]
    pipeline(s3, sink, metadata_dimensions=["app~.*", "tenant~.*"]).handle_event(sqs_event(bodies))
    emitted = out.getvalue()
    logged = "\n".join(
        f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records
    )
    assert emitted and logged
    for text in set(all_texts()):
        for start in range(0, max(1, len(text) - 12), 6):
            piece = text[start : start + 12]
            assert piece not in emitted, "response or prompt text in EMF output"
            assert piece not in logged, "response or prompt text in a log line"
    assert all(json.loads(line)["_aws"]["CloudWatchMetrics"] for line in emitted.splitlines())


def test_one_record_failing_its_scorer__costs_only_itself(s3: Any) -> None:
    """A scorer that fails on one record (a tokenizer's TypeError, say): the batch is scored
    record by record, the bad one counted as ``scoring-error``, the others emitted."""

    def fragile(batch: Sequence[Interaction]) -> list[Scores]:
        if any("Paris" in item.completion for item in batch):
            raise TypeError("cannot tokenize")
        return [{"ResponseChars": float(len(item.completion))} for item in batch]

    sink = MemorySink()
    handler = Pipeline(
        "test", fragile, {"ResponseChars": Unit.COUNT}, Boto3S3Reader(s3), sink, ServiceSettings()
    )
    assert handler.handle_event(sqs_event([body("titan"), body("claude-messages")])) == {
        "batchItemFailures": []
    }
    skipped = sink.values("SkippedRecords", Reason="scoring-error")
    assert sum(skipped) == 2  # the two answers about Paris
    assert len(sink.values("ResponseChars")) == sum(sink.values("Interactions")) == 2


def test_a_scorer_failing_on_every_record__fails_the_message(s3: Any) -> None:
    def down(batch: Sequence[Interaction]) -> list[Scores]:
        raise RuntimeError("backend unavailable")

    handler = Pipeline("test", down, {}, Boto3S3Reader(s3), MemorySink(), ServiceSettings())
    assert handler.handle_event(sqs_event([body("titan")])) == {
        "batchItemFailures": [{"itemIdentifier": "msg-0"}]
    }


def test_lone_surrogates_and_nuls__cleaned_at_extraction() -> None:
    from llmmon_shared.extract import extract
    from llmmon_shared.logs import InvocationLogRecord

    record = InvocationLogRecord.model_validate(
        json.loads(
            '{"schemaType": "ModelInvocationLog", "requestId": "r", "modelId": "amazon.titan-text-express-v1",'
            ' "input": {"inputBodyJson": {"inputText": "Hi \\ud800 there\\u0000"}},'
            ' "output": {"outputBodyJson": {"results": [{"outputText": "Half \\udc00 pair"}]}}}'
        )
    )
    found = extract(record)
    assert isinstance(found, Interaction)
    assert found.prompt == "Hi \ufffd there" and found.completion == "Half \ufffd pair"
    found.prompt.encode("utf-8")
    found.completion.encode("utf-8")


class ListRequeue:
    """A :class:`Requeue` that keeps what it was asked to send (or refuses, like an SQS outage)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, int]] = []
        self.fail = fail

    def send(self, queue_arn: str, body: str, delay_s: int = 0) -> None:
        if self.fail:
            raise ConnectionError("queue unreachable")
        self.sent.append((queue_arn, body, delay_s))


def late_after_first(handler: Pipeline, now: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    handle_message = handler.handle_message

    def first_then_late(body: str, queue: str | None = None, received_at: Any = None) -> Any:
        try:
            return handle_message(body, queue, received_at)
        finally:
            now[0] = 50.0  # past four fifths of the 60 s once the first message is done

    monkeypatch.setattr(handler, "handle_message", first_then_late)


class SixtySeconds:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_messages_near_the_function_timeout__put_back_as_new_messages(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a fifth of the function's time left, no further message is started: each goes back
    on its queue as a new message (receive count 1, visible at once) and this receive is
    acknowledged, instead of the invocation timing out for the whole batch or the unstarted
    messages counting receives toward the dead-letter queue."""
    import llmmon_shared.runtime as runtime

    now = [0.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])
    sink, requeue = MemorySink(), ListRequeue()
    handler = pipeline(s3, sink)
    handler.requeue = requeue
    late_after_first(handler, now, monkeypatch)
    bodies = [body("titan"), body("nova"), body("llama")]
    result = handler.handle_event(sqs_event(bodies), SixtySeconds())
    assert result == {"batchItemFailures": []}
    queue = "arn:aws:sqs:us-east-1:123456789012:llmmon-similarity"
    assert requeue.sent == [(queue, bodies[1], 0), (queue, bodies[2], 0)]
    assert sink.values("Requeued", Reason="deferred", Service="test") == [1, 1]
    assert len(sink.values("ResponseChars")) == 2  # the titan object's two interactions


def test_messages_near_the_function_timeout__fail_when_they_cannot_be_put_back(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmmon_shared.runtime as runtime

    now = [0.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])
    sink = MemorySink()
    handler = pipeline(s3, sink)
    handler.requeue = ListRequeue(fail=True)
    late_after_first(handler, now, monkeypatch)
    result = handler.handle_event(
        sqs_event([body("titan"), body("nova"), body("llama")]), SixtySeconds()
    )
    assert result == {
        "batchItemFailures": [{"itemIdentifier": "msg-1"}, {"itemIdentifier": "msg-2"}]
    }
    assert sink.values("Requeued") == []
    assert len(sink.values("ResponseChars")) == 2


class StrictCloudWatch:
    """PutMetricData as CloudWatch answers it: a request holding one value outside
    [-2^360, 2^360] (or NaN, infinity) is refused whole. Records the values that went out."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}

    def put_metric_data(self, **kwargs: Any) -> None:
        import math

        from botocore.exceptions import ClientError

        for datum in kwargs["MetricData"]:
            for value in datum["Values"]:
                if not math.isfinite(value) or abs(value) > 2.0**360:
                    raise ClientError({"Error": {"Code": "InvalidParameterValue"}}, "PutMetricData")
        for datum in kwargs["MetricData"]:
            name = datum["MetricName"]
            self.sent[name] = self.sent.get(name, 0.0) + sum(datum["Counts"])


def test_token_count_out_of_cloudwatch_range__that_value_skipped_the_object_delivered() -> None:
    """10**200 tokens (a JSON integer) in one record of 51: that value is the counted skip
    ``value-out-of-range``; the other 50 records' values and its own others go out."""
    import gzip

    from llmmon_shared.metrics import PutMetricDataSink
    from llmmon_traffic.compute import score_batch
    from tests.conftest import DictS3Reader

    def titan(n: int, tokens: int) -> bytes:
        return json.dumps(
            {
                "schemaType": "ModelInvocationLog",
                "requestId": f"r-{n}",
                "modelId": "amazon.titan-text-express-v1",
                "input": {"inputBodyJson": {"inputText": "Where?"}, "inputTokenCount": tokens},
                "output": {
                    "outputBodyJson": {"results": [{"outputText": "Here.", "tokenCount": 2}]},
                    "outputTokenCount": 2,
                },
            }
        ).encode()

    key = "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/11/28/07/x.json.gz"
    data = gzip.compress(b"\n".join(titan(n, 10**200 if n == 7 else 5) for n in range(51)))
    cloudwatch = StrictCloudWatch()
    handler = Pipeline(
        "traffic",
        score_batch,
        {},
        DictS3Reader({("b", key): data}),
        PutMetricDataSink("llmmon", cloudwatch),
        ServiceSettings(),
    )
    assert handler.handle_event(sqs_event([json.dumps(s3_event("b", key))])) == {
        "batchItemFailures": []
    }
    assert cloudwatch.sent["OutputTokens"] == 51
    assert cloudwatch.sent["InputTokens"] == 50
    assert cloudwatch.sent["SkippedValues"] == 1


def test_lost_values__counted_as_values_not_distinct_entries() -> None:
    """The loss log's figure is the sum of ``Counts`` the failed request carried."""
    from llmmon_shared.metrics import EmitError, MetricPoint, PutMetricDataSink

    class FailSecond:
        def __init__(self) -> None:
            self.calls, self.failed = 0, 0.0

        def put_metric_data(self, **kwargs: Any) -> None:
            from botocore.exceptions import ClientError

            self.calls += 1
            if self.calls == 2:
                self.failed = sum(sum(d["Counts"]) for d in kwargs["MetricData"])
                raise ClientError({"Error": {"Code": "InvalidParameterValue"}}, "PutMetricData")

    client = FailSecond()
    sink = PutMetricDataSink("llmmon", client)
    # 1,500 metrics of 2,074 values each drawn from 28 distinct ones: two requests.
    sink.add(
        MetricPoint(f"M{m}", float(v % 28), Unit.NONE, (("ModelId", "m"),))
        for m in range(1500)
        for v in range(2074 if m == 1499 else 2)
    )
    with pytest.raises(EmitError) as caught:
        sink.flush()
    assert caught.value.sent == 1
    assert caught.value.lost_values == client.failed
    assert caught.value.lost_values >= 2074  # not the 28 distinct entries


def test_lambda_entry__builds_the_pipeline_in_lambdas_init_phase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In Lambda the pipeline (models, settings) is built at import, in the init phase, so its
    time is not taken from the first invocation's timeout; elsewhere at the first call."""
    from llmmon_shared.runtime import lambda_entry

    built: list[int] = []

    def create() -> Pipeline:
        built.append(1)
        return pipeline(None, MemorySink("llmmon"))

    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    lazy, _ = lambda_entry(create)
    assert built == []
    assert lazy() is lazy() and built == [1]
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    eager, _ = lambda_entry(create)
    assert built == [1, 1]
    eager()
    assert built == [1, 1]


def test_a_message_naming_no_log_object__counted_at_its_receive_time(s3: Any) -> None:
    """S3's test event (every deploy that touches the notification) and a large-body data
    object are skipped and counted, stamped with the message's first receive: the watcher takes
    them off SQS's received count in the same period. A log object's message is not counted."""
    from datetime import UTC, datetime

    sink = MemorySink()
    handler = pipeline(s3, sink)
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    data_object = json.dumps(s3_event(FIXTURE_BUCKET, "AWSLogs/1/x/data/abc_input.json.gz"))
    event = sqs_event([test_event, data_object, body("titan")])
    received = int(datetime.now(UTC).timestamp() * 1000) - 30_000
    for record in event["Records"]:
        record["attributes"]["ApproximateFirstReceiveTimestamp"] = str(received)
    assert handler.handle_event(event) == {"batchItemFailures": []}
    points = [p for p in sink.flushed if p.name == "MessagesWithoutLogObject"]
    assert [p.value for p in points] == [1, 1]
    assert all(p.dimension_map == {"Service": "test"} for p in points)
    assert all(p.timestamp and int(p.timestamp.timestamp() * 1000) == received for p in points)
