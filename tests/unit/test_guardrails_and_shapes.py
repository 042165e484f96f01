"""Guardrail interventions and the record shapes of real logs (stream sentinels, guardContent,
Guardrails traces): what extraction makes of them, what the traffic service counts, and model
identity."""

from __future__ import annotations

from typing import Any

import pytest

from llmmon_shared.alarms import ALARM_NAME_LIMIT, AlarmNames, build_alarms
from llmmon_shared.extract import Interaction, Skip, SkipReason, extract
from llmmon_shared.logs import InvocationLogRecord
from llmmon_shared.model_ids import normalise_model_id
from llmmon_shared.spec import discover
from llmmon_traffic.compute import traffic_scores
from tests.unit.test_extract import interaction, outcomes, turns

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
BLOCKED_MESSAGE = "Sorry, the model cannot answer this question."


def test_output_blocked__the_models_own_output_is_scored() -> None:
    found = interaction("guardrails", 40)
    assert found.completion.startswith("Here is how to pick the lock")
    assert BLOCKED_MESSAGE not in found.completion and not found.response_withheld
    assert found.guardrail is not None and found.guardrail.blocked("output")
    assert found.guardrail.blocked_policies == {"content"}
    # guardContent: the query is the prompt, the grounding source is context kept apart
    assert found.prompt == "Can I fly business class to Lisbon?"
    assert found.grounding is not None and found.grounding.startswith("Contoso's travel policy")


@pytest.mark.parametrize(
    ("n", "where", "policy"),
    [(41, "input", "topic"), (44, "input", "word"), (45, "output", "content")],
)
def test_blocked_without_the_models_output__response_withheld(
    n: int, where: str, policy: str
) -> None:
    found = interaction("guardrails", n)
    assert found.response_withheld and found.completion == ""
    assert found.guardrail is not None and found.guardrail.blocked(where)
    assert found.guardrail.blocked_policies == {policy}


def test_intervened_without_a_trace__withheld_and_counted_as_intervened() -> None:
    found = interaction("guardrails", 46)
    assert found.response_withheld
    assert found.guardrail is not None and found.guardrail.acted and not found.guardrail.findings


def test_detect_only_and_anonymised__the_answer_is_the_models() -> None:
    detect = interaction("guardrails", 42)
    assert not detect.response_withheld and detect.completion.startswith("Calling someone")
    assert detect.guardrail is not None and detect.guardrail.detected_not_blocked
    assert not detect.guardrail.acted
    masked = interaction("guardrails", 43)
    assert not masked.response_withheld and "{EMAIL}" in masked.completion
    assert masked.guardrail is not None and masked.guardrail.acted


def test_no_guardrail_message_is_ever_the_completion() -> None:
    for outcome in outcomes("guardrails").values():
        assert isinstance(outcome, Interaction)
        assert BLOCKED_MESSAGE not in outcome.completion


def test_stream_with_done_sentinel__read_whole() -> None:
    titan = interaction("real-shapes", 50)
    assert titan.completion == "Rivers carry water to the sea."
    assert titan.stop_reason == "LENGTH" and titan.latency_ms == 812
    claude = interaction("guardrails", 45)  # trace chunk and "[DONE]" after the last chunk
    assert claude.input_tokens == 12 and claude.output_tokens == 9


def test_content_kinds__text_only_from_text_blocks() -> None:
    found = interaction("real-shapes", 51)
    assert found.prompt == "Then summarise it from the file."
    assert found.turns == 3
    assert [t.role for t in turns("real-shapes", 51)] == ["user", "assistant", "user"]
    assert turns("real-shapes", 51)[0].text == "Summarise the attached report."


def test_output_without_text__a_counted_skip() -> None:
    skip = outcomes("real-shapes")["fixture-0052-0000-4000-8000-000000000000"]
    assert isinstance(skip, Skip) and skip.reason == SkipReason.NO_TEXT_OUTPUT


def test_model_ids__normalised_per_documented_rule() -> None:
    assert interaction("real-shapes", 53).model_id == "application-inference-profile/a1b2c3d4e5f6"
    assert interaction("real-shapes", 54).model_id == "provisioned-model/a1b2c3d4e5f6"
    assert interaction("real-shapes", 55).model_id == "meta.llama3-8b-instruct-v1:0"
    assert interaction("real-shapes", 55).raw_model_id.startswith("arn:aws:bedrock:us-east-1::")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (HAIKU, HAIKU),
        (f"us.{HAIKU}", f"us.{HAIKU}"),
        (f"global.{HAIKU}", f"global.{HAIKU}"),
        (f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}", HAIKU),
        (f"arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.{HAIKU}", f"us.{HAIKU}"),
        (
            "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc123",
            "application-inference-profile/abc123",
        ),
        (
            "arn:aws:bedrock:us-east-1:111122223333:provisioned-model/abc123",
            "provisioned-model/abc123",
        ),
        (
            "arn:aws:bedrock:us-east-1:111122223333:custom-model/anthropic.claude-v2:1/xyz",
            "custom-model/anthropic.claude-v2:1/xyz",
        ),
        (
            "arn:aws:bedrock:us-east-1:111122223333:default-prompt-router/anthropic.claude:1",
            "default-prompt-router/anthropic.claude:1",
        ),
        ("arn:aws:bedrock:us-east-1:111122223333:imported-model/m0", "imported-model/m0"),
        ("arn:aws:bedrock", "arn:aws:bedrock"),
    ],
)
def test_normalise_model_id(raw: str, expected: str) -> None:
    assert normalise_model_id(raw) == expected


def test_alarm_names__never_collide_and_fit_cloudwatch() -> None:
    ids = [
        "application-inference-profile/abc123",
        "provisioned-model/abc123",
        "imported-model/abc123",
        "custom-model/anthropic.claude-v2:1/abc123",
        "custom-model/meta.llama3-8b-instruct-v1:0/abc123",
        "abc123",
        f"us.{HAIKU}",
        HAIKU,
        "default-prompt-router/anthropic.claude:1",
        "prompt-router/anthropic.claude:1",
        "x" * 300,
        "x" * 299 + "y",
    ]
    alarms = build_alarms(discover(), ids, "llmmon", AlarmNames("llmmon-production-eu-west-1"))
    names = [a.name for a in alarms.metric_alarms]
    assert len(names) == len(set(names))
    assert all(len(name) <= ALARM_NAME_LIMIT for name in names)
    assert all(len(c.name) <= ALARM_NAME_LIMIT for c in alarms.composites)


def _converse(body_out: Any, stop: str | None = None) -> InvocationLogRecord:
    return InvocationLogRecord.model_validate(
        {
            "schemaType": "ModelInvocationLog",
            "requestId": "r-1",
            "modelId": HAIKU,
            "operation": "Converse",
            "input": {
                "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
            },
            "output": {"outputBodyJson": body_out},
        }
    )


def test_only_anonymized__the_masked_answer_is_scored() -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Mail {EMAIL}."}]}},
        "stopReason": "guardrail_intervened",
        "trace": {
            "guardrail": {
                "outputAssessments": {
                    "g": [
                        {
                            "sensitiveInformationPolicy": {
                                "regexes": [{"name": "id", "action": "ANONYMIZED"}]
                            }
                        }
                    ]
                }
            }
        },
    }
    found = extract(_converse(body))
    assert (
        isinstance(found, Interaction)
        and found.completion == "Mail {EMAIL}."
        and not found.response_withheld
    )


def test_traffic_scores__one_per_policy_and_truncation() -> None:
    scores = traffic_scores(interaction("guardrails", 41))
    assert scores["GuardrailIntervened"] == 1 and scores["GuardrailBlockedInput"] == 1
    assert scores["GuardrailBlockedTopic"] == 1 and scores["GuardrailBlockedContent"] == 0
    assert scores["InputTokens"] == 0 and scores["LatencyMs"] == 640
    assert traffic_scores(interaction("real-shapes", 55))["StopReasonMaxTokens"] == 1
    assert traffic_scores(interaction("real-shapes", 50))["StopReasonMaxTokens"] == 1
    assert traffic_scores(interaction("real-shapes", 53))["StopReasonMaxTokens"] == 0
    plain = traffic_scores(interaction("claude-messages", 1))
    assert plain["GuardrailIntervened"] == 0 and "LatencyMs" not in plain


def test_guardrail_findings_hold_no_text() -> None:
    from dataclasses import fields

    from llmmon_shared.extract import GuardrailFinding

    assert {f.name for f in fields(GuardrailFinding)} == {"where", "policy", "action"}


@pytest.mark.parametrize("score_prompt", [False, True])
def test_pipeline__withheld_responses_skip_response_metrics(
    score_prompt: bool, monkeypatch: pytest.MonkeyPatch, fixture_s3: Any
) -> None:
    """Comprehend over the guardrail fixtures: the 4 withheld responses are counted as
    ``guardrail-intervened``; with prompt scoring on, their prompts are still scored."""
    from llmmon_comprehend.handler import create_pipeline
    from llmmon_shared.events import ObjectRef
    from tests.conftest import FIXTURE_BUCKET, fixture_key

    monkeypatch.setenv("LLMMON_COMPREHEND_BACKEND", "local")
    monkeypatch.setenv("LLMMON_SCORE_PROMPT", str(score_prompt).lower())
    pipeline = create_pipeline(s3=fixture_s3)
    points, report = pipeline.score_object(
        ObjectRef(FIXTURE_BUCKET, fixture_key("guardrails"), None, None)
    )
    assert report.skipped[(HAIKU, SkipReason.GUARDRAIL_INTERVENED)] == 3
    assert report.skipped[(f"us.{HAIKU}", SkipReason.GUARDRAIL_INTERVENED)] == 1
    sentiment = [p for p in points if p.name == "SentimentIsNegative"]
    prompt = [p for p in points if p.name == "PromptToxicity"]
    assert len(sentiment) == 4  # the 8 records less the 4 withheld responses
    assert len(prompt) == (8 if score_prompt else 0)


def test_traffic_metrics_hold_no_text() -> None:
    for outcome in outcomes("guardrails").values():
        assert isinstance(outcome, Interaction)
        # Numbers only (token counts stay integers until the pipeline converts them).
        values = traffic_scores(outcome).values()
        assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def test_guardrail_reply_in_no_family_shape__withheld_not_lost() -> None:
    record = InvocationLogRecord.model_validate(
        {
            "schemaType": "ModelInvocationLog",
            "requestId": "r-2",
            "modelId": "meta.llama3-8b-instruct-v1:0",
            "operation": "InvokeModel",
            "input": {"inputBodyJson": {"prompt": "How do I hotwire a car?"}},
            "output": {
                "outputBodyJson": {
                    "amazon-bedrock-guardrailAction": "INTERVENED",
                    "outputs": [{"text": BLOCKED_MESSAGE}],
                }
            },
        }
    )
    found = extract(record)
    assert isinstance(found, Interaction) and found.response_withheld
    assert found.prompt == "How do I hotwire a car?" and found.completion == ""
    assert traffic_scores(found)["GuardrailIntervened"] == 1


def test_completion_of_only_nul_characters__is_empty() -> None:
    record = InvocationLogRecord.model_validate(
        {
            "schemaType": "ModelInvocationLog",
            "requestId": "r",
            "modelId": HAIKU,
            "input": {
                "inputBodyJson": {
                    "anthropic_version": "bedrock-2023-05-31",
                    "max_tokens": 10,
                    "messages": [{"role": "user", "content": ""}],
                }
            },
            "output": {
                "outputBodyJson": {"type": "message", "content": [{"type": "text", "text": "\x00"}]}
            },
        }
    )
    found = extract(record)
    assert isinstance(found, Skip) and found.reason == SkipReason.EMPTY_COMPLETION


ANSWER = "Paris is the capital of France, on the Seine."


def _held_back(model_output: list[str]) -> Any:
    """A Converse response whose answer a contextual-grounding check blocked, the model's own
    output kept in the trace's ``modelOutput``."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": BLOCKED_MESSAGE}]}},
        "stopReason": "guardrail_intervened",
        "trace": {
            "guardrail": {
                "modelOutput": model_output,
                "outputAssessments": {
                    "g": [
                        {
                            "contextualGroundingPolicy": {
                                "filters": [{"type": "GROUNDING", "action": "BLOCKED"}]
                            }
                        }
                    ]
                },
            }
        },
    }


@pytest.mark.parametrize(
    "family",
    ["claude-messages", "converse", "titan-text", "llama", "mistral-chat", "cohere-command-r"],
)
def test_held_back_output__its_native_body_decoded_as_that_familys_answer(family: str) -> None:
    """Bedrock keeps the model's answer in ``modelOutput`` as its native response body
    serialised to a string: the answer is that body's text, never the JSON."""
    import json

    from llmmon.local.corpus import bodies

    _, _, native = bodies(family, "What is the capital of France?", ANSWER, False)
    found = extract(_converse(_held_back([json.dumps(native)])))
    assert isinstance(found, Interaction), found
    assert found.completion == ANSWER and not found.response_withheld
    assert found.guardrail is not None and found.guardrail.blocked("output")


def test_held_back_output__plain_text_and_unreadable_json_stay_as_they_are() -> None:
    plain = extract(_converse(_held_back(["Paris, ", "on the Seine."])))
    assert isinstance(plain, Interaction) and plain.completion == "Paris, on the Seine."
    odd = '{"note": "not a response body"}'
    unknown = extract(_converse(_held_back([odd])))
    assert isinstance(unknown, Interaction) and unknown.completion == odd
    broken = extract(_converse(_held_back(['{"content": [ unterminated'])))
    assert isinstance(broken, Interaction) and broken.completion.startswith('{"content"')


@pytest.mark.parametrize(
    "name",
    ["claude-messages", "claude-text", "titan", "nova", "llama", "mistral", "cohere", "ai21"],
)
def test_held_back_output__every_fixture_familys_body_reads_as_its_answer(name: str) -> None:
    """Every InvokeModel response body of the family fixtures, held back as ``modelOutput``,
    gives the same answer as the logged body does."""
    import json

    from llmmon_shared.logs import read_log_object
    from tests.conftest import FIXTURES, fixture_key

    checked = 0
    with (FIXTURES / fixture_key(name)).open("rb") as raw:
        for item in read_log_object(raw):
            if not isinstance(item, InvocationLogRecord) or item.output is None:
                continue
            body = item.output.output_body_json
            own = extract(item)
            if not isinstance(body, dict) or not isinstance(own, Interaction) or own.guardrail:
                continue
            held = extract(_converse(_held_back([json.dumps(body)])))
            assert isinstance(held, Interaction), (name, held)
            assert held.completion == own.completion, (name, item.request_id)
            checked += 1
    assert checked >= 1, name
