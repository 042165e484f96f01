"""Fuzzing: every input is scored, skipped with a reason, or reported as a batch item failure.

The number of cases comes from the Hypothesis profile: ``ci`` (the default) runs a few thousand
across these tests; ``full`` runs over 10,000:
``HYPOTHESIS_PROFILE=full uv run pytest tests/unit/test_fuzz.py tests/unit/test_extract.py``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from llmmon_shared.events import InvalidEventError, ObjectRef, SkippedObject, unwrap_message
from llmmon_shared.extract import Interaction, Skip, extract
from llmmon_shared.logs import CorruptObjectError, InvocationLogRecord, LineError, read_log_object
from llmmon_shared.metrics import MemorySink, Unit
from llmmon_shared.runtime import Pipeline, Scores
from llmmon_shared.settings import ServiceSettings
from tests.conftest import DictS3Reader, sqs_event
from tests.strategies import family_bodies, json_values, log_objects, message_bodies, records


@given(
    family_bodies(), st.sampled_from(["InvokeModel", "InvokeModelWithResponseStream", "Converse"])
)
def test_family_bodies__extract_to_an_interaction_or_a_skip(
    case: tuple[str, object, object], operation: str
) -> None:
    model, request, response = case
    record = InvocationLogRecord.model_validate(
        {
            "requestId": "r",
            "modelId": model,
            "operation": operation,
            "input": {"inputBodyJson": request},
            "output": {"outputBodyJson": response},
        }
    )
    outcome = extract(record)
    assert isinstance(outcome, Interaction | Skip)
    if isinstance(outcome, Interaction):
        assert outcome.completion.strip() and isinstance(outcome.prompt, str)


@given(log_objects())
def test_log_objects__records_line_errors_or_a_corrupt_object(data: bytes) -> None:
    try:
        for item in read_log_object(io.BytesIO(data)):
            assert isinstance(item, InvocationLogRecord | LineError)
            if isinstance(item, InvocationLogRecord):
                assert isinstance(extract(item), Interaction | Skip)
    except CorruptObjectError:
        pass


@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_message_bodies__objects_skips_or_invalid_event(body: str) -> None:
    try:
        outcomes = unwrap_message(body)
    except InvalidEventError:
        return
    assert outcomes
    assert all(isinstance(o, ObjectRef | SkippedObject) for o in outcomes)


def lengths(batch: Sequence[Interaction]) -> list[Scores]:
    return [{"Length": float(len(i.completion))} for i in batch]


@st.composite
def batches(draw: st.DrawFn) -> tuple[DictS3Reader, list[str]]:
    objects = draw(st.lists(log_objects(), max_size=4))
    keys = [
        f"AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/28/07/o{i}.json.gz"
        for i in range(len(objects))
    ]
    reader = DictS3Reader({("fuzz", k): v for k, v in zip(keys, objects, strict=True)})
    bodies = draw(st.lists(message_bodies("fuzz", keys), min_size=1, max_size=5))
    return reader, bodies


@given(batches(), records())
def test_sqs_batches__every_message_succeeds_or_is_reported(
    batch: tuple[DictS3Reader, list[str]], extra_record: dict[str, object]
) -> None:
    reader, bodies = batch
    sink = MemorySink()
    pipeline = Pipeline(
        "fuzz", lengths, {"Length": Unit.NONE}, reader, sink, ServiceSettings(batch_size=3)
    )
    event = sqs_event(bodies)
    result = pipeline.handle_event(event)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed <= {r["messageId"] for r in event["Records"]}
    counters = {
        "Interactions",
        "SampledOut",
        "SkippedRecords",
        "ParseErrors",
        "SkippedObjects",
        "MessagesWithoutLogObject",  # a message naming no log object (empty, test event...)
    }
    health = {"BadLine", "UnreadableRecord", "ObjectsProcessed"}
    assert all(p.name in {"Length"} | counters | health for p in sink.flushed)
    assert sum(sink.values("Interactions")) == len(sink.values("Length"))
