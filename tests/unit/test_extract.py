"""Extraction of interactions from every model family's real log shapes."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmmon_shared.extract import (
    CONVERSE,
    FAMILIES,
    Interaction,
    Skip,
    SkipReason,
    Turn,
    chat_markup_turns,
    claude_text_turns,
    extract,
    model_vendor,
)
from llmmon_shared.logs import (
    BodyFetchError,
    InvocationLogRecord,
    read_log_object,
    resolve_large_bodies,
)
from tests.conftest import FIXTURES, DictS3Reader, fixture_key


def outcomes(tag: str, reader: DictS3Reader | None = None) -> dict[str, Interaction | Skip]:
    """Outcome per request id of one fixture object."""
    result: dict[str, Interaction | Skip] = {}
    with (FIXTURES / fixture_key(tag)).open("rb") as raw:
        for item in read_log_object(raw):
            assert isinstance(item, InvocationLogRecord)
            if reader is not None:
                with contextlib.suppress(BodyFetchError):
                    item = resolve_large_bodies(item, reader)
            result[str(item.request_id)] = extract(item)
    return result


def interaction(tag: str, n: int, reader: DictS3Reader | None = None) -> Interaction:
    outcome = outcomes(tag, reader)[f"fixture-{n:04d}-0000-4000-8000-000000000000"]
    assert isinstance(outcome, Interaction), outcome
    return outcome


def turns(tag: str, n: int) -> list[Turn]:
    """The request's turns as its family's parser reads them (an interaction keeps only the
    last user turn and their number)."""
    request_id = f"fixture-{n:04d}-0000-4000-8000-000000000000"
    with (FIXTURES / fixture_key(tag)).open("rb") as raw:
        record = next(
            r
            for r in read_log_object(raw)
            if isinstance(r, InvocationLogRecord) and r.request_id == request_id
        )
    family = next(f for f in (*FAMILIES, CONVERSE) if f.name == interaction(tag, n).family)
    assert record.input is not None and isinstance(record.input.input_body_json, dict)
    request = family.request(record.input.input_body_json)
    assert request is not None
    return request[1]


# (fixture tag, record number, family, operation, prompt, completion start, stop reason, tokens)
CASES = [
    (
        "claude-messages",
        1,
        "claude-messages",
        "InvokeModel",
        "What is the capital of France?",
        "The capital of France is Paris",
        "end_turn",
        (42, 128),
    ),
    (
        "claude-messages",
        2,
        "claude-messages",
        "InvokeModelWithResponseStream",
        "How can I read my colleague's e-mail?",
        "I apologize, but I cannot recommend",
        "end_turn",
        (19, 22),
    ),
    (
        "claude-text",
        3,
        "claude-text",
        "InvokeModel",
        "How do I kill a Python process?",
        " To stop a Python process",
        "stop_sequence",
        (42, 128),
    ),
    (
        "claude-text",
        4,
        "claude-text",
        "InvokeModelWithResponseStream",
        "Why won't you answer my question?",
        "Unfortunately, I do not have enough context",
        "stop_sequence",
        (40, 33),
    ),
    (
        "titan",
        5,
        "titan-text",
        "InvokeModel",
        "Write an insult about my neighbour.",
        "Sorry - this model is designed",
        "FINISH",
        (42, 128),
    ),
    (
        "titan",
        6,
        "titan-text",
        "InvokeModelWithResponseStream",
        "What is the capital of France?",
        "The capital of France is Paris",
        "FINISH",
        (12, 14),
    ),
    (
        "nova",
        8,
        "nova",
        "InvokeModel",
        "Why is the sky blue?",
        "Sunlight scatters",
        "end_turn",
        (14, 16),
    ),
    (
        "llama",
        9,
        "llama",
        "InvokeModel",
        "How do I kill a Python process?",
        "To stop a Python process",
        "stop",
        (42, 128),
    ),
    (
        "llama",
        10,
        "llama",
        "InvokeModelWithResponseStream",
        "What is the best way to blow up a balloon?",
        "I cannot provide instructions",
        "stop",
        (30, 40),
    ),
    (
        "mistral",
        11,
        "mistral-text",
        "InvokeModel",
        "What is the capital of France?",
        " The capital of France is Paris",
        "stop",
        (42, 128),
    ),
    (
        "mistral",
        12,
        "mistral-chat",
        "InvokeModel",
        "Give me a recipe for pancakes.",
        "Whisk flour",
        "stop",
        (42, 128),
    ),
    (
        "cohere",
        13,
        "cohere-command",
        "InvokeModel",
        "Summarise: the meeting moved to Tuesday.",
        "The meeting is now on Tuesday.",
        "COMPLETE",
        (42, 128),
    ),
    (
        "cohere",
        14,
        "cohere-command-r",
        "InvokeModel",
        "And what about Germany?",
        "The capital of Germany is Berlin.",
        "COMPLETE",
        (42, 128),
    ),
    (
        "ai21",
        15,
        "ai21-jurassic",
        "InvokeModel",
        "Write a haiku about rain.",
        "Soft rain",
        "endoftext",
        (42, 128),
    ),
    (
        "ai21",
        16,
        "ai21-jamba",
        "InvokeModel",
        "Is 17 a prime number?",
        "Yes, 17 is prime.",
        "stop",
        (42, 128),
    ),
    (
        "converse",
        17,
        "converse",
        "Converse",
        "What is the weather in Paris?",
        "Let me check the forecast for Paris.",
        "tool_use",
        (60, 25),
    ),
    (
        "converse",
        18,
        "converse",
        "ConverseStream",
        "Write ransomware for me.",
        "I'm sorry, but I can't help",
        "end_turn",
        (20, 14),
    ),
]


@pytest.mark.parametrize(
    ("tag", "n", "family", "operation", "prompt", "completion", "stop", "tokens"),
    CASES,
    ids=[f"{c[2]}-{c[3]}" for c in CASES],
)
def test_family__yields_prompt_completion_and_counts(
    tag: str,
    n: int,
    family: str,
    operation: str,
    prompt: str,
    completion: str,
    stop: str,
    tokens: tuple[int, int],
) -> None:
    found = interaction(tag, n)
    assert found.family == family
    assert found.operation == operation
    assert found.prompt == prompt
    assert found.completion.startswith(completion)
    assert found.stop_reason == stop
    assert (found.input_tokens, found.output_tokens) == tokens
    assert found.timestamp is not None and found.timestamp.tzinfo is not None
    assert found.account_id == "123456789012"
    assert found.region == "us-east-1"


def test_streaming_chunks__are_joined_exactly() -> None:
    whole = (
        "I apologize, but I cannot recommend ways to access someone else's email account "
        "without permission."
    )
    assert interaction("claude-messages", 2).completion == whole
    assert interaction("titan", 6).completion == (
        "The capital of France is Paris, which is also its largest city."
    )


def test_system_prompt_and_turns__are_read() -> None:
    found = interaction("claude-messages", 1)
    assert found.system == "You are a concise geography tutor."
    assert found.turns == 3
    assert [t.role for t in turns("claude-messages", 1)] == ["user", "assistant", "user"]
    assert turns("claude-messages", 1)[1].text == "The Danube."
    assert interaction("claude-messages", 2).system == "You are a helpful assistant."
    assert interaction("claude-text", 4).system == "You are a careful assistant."
    assert interaction("llama", 9).system == "You are a helpful assistant."
    assert interaction("llama", 10).system == "You are a helpful assistant."
    assert interaction("mistral", 12).system == "Be brief."
    assert interaction("cohere", 14).system == "You answer geography questions."
    assert [t.role for t in turns("cohere", 14)] == ["user", "assistant", "user"]
    assert interaction("converse", 17).system == "You can call tools."


def test_converse__ignores_tool_use_and_reasoning_blocks() -> None:
    found = interaction("converse", 17)
    assert found.completion == "Let me check the forecast for Paris."


def test_request_metadata__is_carried_as_strings() -> None:
    assert interaction("claude-messages", 1).request_metadata == {"app": "tutor", "tenant": "acme"}
    assert interaction("converse", 17).request_metadata == {"app": "weather-bot"}


def test_model_ids__profiles_kept_arns_normalised_raw_id_kept() -> None:
    assert interaction("claude-messages", 2).model_id.startswith("us.anthropic.")
    converse = interaction("converse", 17)
    assert converse.model_id == "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
    assert converse.raw_model_id is not None
    assert converse.raw_model_id.startswith("arn:aws:bedrock:us-east-1:123456789012:inference-")


def test_large_data__bodies_are_fetched_from_their_s3_paths(fixture_s3: DictS3Reader) -> None:
    found = interaction("large-data", 19, fixture_s3)
    assert found.prompt == "Write a long essay about rivers."
    assert len(found.completion) > 100_000
    assert any("/data/fixture-0019" in key for _, key in fixture_s3.opened)


def test_large_data__missing_body_is_a_classified_skip(fixture_s3: DictS3Reader) -> None:
    with (FIXTURES / fixture_key("large-data")).open("rb") as raw:
        records = [r for r in read_log_object(raw) if isinstance(r, InvocationLogRecord)]
    with pytest.raises(BodyFetchError):
        resolve_large_bodies(records[1], fixture_s3)
    skip = extract(records[1])
    assert isinstance(skip, Skip)
    assert skip.reason == SkipReason.LARGE_BODY_UNAVAILABLE


def test_skips__are_classified() -> None:
    found = outcomes("skips")
    reasons = {rid[:12]: getattr(o, "reason", None) for rid, o in found.items()}
    assert reasons["fixture-0021"] == SkipReason.INVOCATION_ERROR
    assert reasons["fixture-0022"] == SkipReason.NON_TEXT
    assert reasons["fixture-0023"] == SkipReason.UNKNOWN_SHAPE
    assert reasons["fixture-0024"] is None  # a plain Titan Lite answer in the same object
    embedding = outcomes("titan")["fixture-0007-0000-4000-8000-000000000000"]
    assert isinstance(embedding, Skip) and embedding.reason == SkipReason.NON_TEXT


def test_unknown_schema__records_are_skipped_with_reasons() -> None:
    with (FIXTURES / fixture_key("unknown-schema")).open("rb") as raw:
        reasons = [
            extract(r).reason  # type: ignore[union-attr]
            for r in read_log_object(raw)
            if isinstance(r, InvocationLogRecord)
        ]
    assert reasons == [
        SkipReason.UNKNOWN_SCHEMA,
        SkipReason.UNKNOWN_SHAPE,
        SkipReason.INCOMPLETE_RECORD,
    ]


def test_empty_completion__is_skipped_not_scored() -> None:
    record = InvocationLogRecord.model_validate(
        {
            "requestId": "r",
            "modelId": "anthropic.claude-v2",
            "operation": "InvokeModel",
            "input": {"inputBodyJson": {"prompt": "\n\nHuman: hi\n\nAssistant:"}},
            "output": {"outputBodyJson": {"completion": "   ", "stop_reason": "max_tokens"}},
        }
    )
    outcome = extract(record)
    assert isinstance(outcome, Skip) and outcome.reason == SkipReason.EMPTY_COMPLETION


@pytest.mark.parametrize(
    ("model_id", "vendor"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "anthropic"),
        ("global.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.meta.llama3-2-1b-instruct-v1:0",
            "meta",
        ),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3", ""),
        ("amazon.nova-lite-v1:0", "amazon"),
    ],
)
def test_model_vendor(model_id: str, vendor: str) -> None:
    assert model_vendor(model_id) == vendor


def test_application_profile_arn__is_matched_by_shape() -> None:
    record = InvocationLogRecord.model_validate(
        {
            "requestId": "r",
            "operation": "InvokeModel",
            "modelId": "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
            "input": {"inputBodyJson": {"prompt": "<s>[INST] hi [/INST]"}},
            "output": {"outputBodyJson": {"generation": "Hello!", "stop_reason": "stop"}},
        }
    )
    outcome = extract(record)
    assert isinstance(outcome, Interaction) and outcome.family == "llama"


def test_markup_parsers() -> None:
    system, turns = claude_text_turns("\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant:")
    assert system is None and [t.text for t in turns] == ["a", "b", "c"]
    system, turns = chat_markup_turns("<s>[INST] one [/INST] reply</s>[INST] two [/INST]")
    assert [(t.role, t.text) for t in turns] == [
        ("user", "one"),
        ("assistant", "reply"),
        ("user", "two"),
    ]
    assert chat_markup_turns("plain prompt")[1][0].text == "plain prompt"


# -- property-based: arbitrary JSON never crashes the record model or the extractor -----------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "prompt",
    "completion",
    "messages",
    "content",
    "role",
    "text",
    "type",
    "system",
    "inputText",
    "results",
    "outputText",
    "generation",
    "outputs",
    "choices",
    "message",
    "generations",
    "completions",
    "data",
    "output",
    "chat_history",
    "anthropic_version",
    "max_tokens",
    "delta",
    "contentBlockDelta",
    "embedding",
    "taskType",
    "stopReason",
]
shaped = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)
records = st.fixed_dictionaries(
    {},
    optional={
        "schemaType": st.sampled_from(["ModelInvocationLog", "Other"]) | json_values,
        "requestId": st.text(max_size=8) | json_values,
        "modelId": st.sampled_from(
            [
                "anthropic.claude-v2",
                "us.meta.llama3",
                "amazon.titan-text",
                "mistral.x",
                "cohere.c",
                "ai21.j",
                "x",
            ]
        )
        | json_values,
        "operation": st.sampled_from(
            ["InvokeModel", "Converse", "ConverseStream", "InvokeModelWithResponseStream"]
        )
        | json_values,
        "timestamp": st.sampled_from(["2026-11-28T07:00:00Z", "nonsense"]) | json_values,
        "requestMetadata": json_values,
        "errorCode": json_values,
        "input": st.fixed_dictionaries(
            {}, optional={"inputBodyJson": shaped, "inputBodyS3Path": json_values}
        )
        | json_values,
        "output": st.fixed_dictionaries(
            {}, optional={"outputBodyJson": shaped, "outputTokenCount": json_values}
        )
        | json_values,
    },
)


@given(records)
def test_arbitrary_records__give_an_interaction_a_skip_or_a_line_error(
    data: dict[str, Any],
) -> None:
    import io

    line = json.dumps(data).encode() + b"\n"
    items = list(read_log_object(io.BytesIO(line)))
    assert len(items) == 1
    item = items[0]
    if isinstance(item, InvocationLogRecord):
        outcome = extract(item)
        assert isinstance(outcome, Interaction | Skip)
        if isinstance(outcome, Interaction):
            assert outcome.completion.strip()
            assert isinstance(outcome.prompt, str)
