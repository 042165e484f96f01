"""The shared context extractor: what the application inserted, apart from the user's words."""

from __future__ import annotations

import pytest

from llmmon_shared.context import extract_context, parse_delimiters
from llmmon_shared.extract import Interaction, extract
from llmmon_shared.logs import InvocationLogRecord


def interaction(prompt: str, **fields: object) -> Interaction:
    return Interaction("r-1", "m", "InvokeModel", "claude", prompt, "ok", **fields)  # type: ignore[arg-type]


def test_tagged_passages_and_the_user_s_own_words() -> None:
    prompt = (
        "Answer from the documents.\n<documents><document index='1'>Paris is in France."
        "</document></documents>\nQuestion: where is Paris?"
    )
    found = extract_context(interaction(prompt))
    (passage,) = found.passages  # the outer tag holds the inner one
    assert passage.source == "tagged" and "Paris is in France." in passage.text
    assert prompt[passage.start : passage.end] == passage.text
    assert "Paris is in France" not in found.direct
    assert (
        found.direct.startswith("Answer from the documents.") and "where is Paris?" in found.direct
    )


def test_an_application_s_own_delimiters() -> None:
    delimiters = parse_delimiters("<<<|>>>,[DOC]|[/DOC]")
    found = extract_context(interaction("Summarise <<<a page>>> and [DOC]a doc[/DOC]."), delimiters)
    assert [(p.source, p.text) for p in found.passages] == [
        ("delimited", "a page"),
        ("delimited", "a doc"),
    ]
    assert found.direct == "Summarise <<<>>> and [DOC][/DOC]."
    with pytest.raises(ValueError, match=r"START\|END"):
        parse_delimiters("<<<")


def test_no_context__an_ordinary_prompt() -> None:
    found = extract_context(interaction("What is the capital of France?"))
    assert not found.has_context and found.direct == "What is the capital of France?"


def test_converse_grounding_source_and_tool_results_from_a_log_record() -> None:
    record = InvocationLogRecord.model_validate(
        {
            "schemaType": "ModelInvocationLog",
            "requestId": "r-1",
            "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
            "operation": "Converse",
            "input": {
                "inputBodyJson": {
                    "messages": [
                        {
                            "role": "user",
                            "content": [
                                {
                                    "guardContent": {
                                        "text": {
                                            "text": "The store opens at 9.",
                                            "qualifiers": ["grounding_source"],
                                        }
                                    }
                                },
                                {"toolResult": {"toolUseId": "t", "content": [{"text": "42 C"}]}},
                                {"text": "When does it open?"},
                            ],
                        }
                    ]
                }
            },
            "output": {
                "outputBodyJson": {
                    "output": {"message": {"role": "assistant", "content": [{"text": "At 9."}]}},
                    "stopReason": "end_turn",
                }
            },
        }
    )
    found = extract(record)
    assert isinstance(found, Interaction)
    context = extract_context(found)
    assert [(p.source, p.text) for p in context.passages] == [
        ("grounding", "The store opens at 9."),
        ("tool", "42 C"),
    ]
    assert context.direct == "When does it open?"
