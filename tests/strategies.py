"""Hypothesis strategies: log records, bodies of every model family, log objects, S3/SNS/SQS
events. Shapes follow the documented ones, then get mutated (keys dropped, types swapped), so the
fuzz tests reach both the parsers' happy paths and their refusals."""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import quote_plus

from hypothesis import strategies as st

texts = st.text(max_size=60)
small_ints = st.integers(min_value=-5, max_value=10_000)
scalars = st.none() | st.booleans() | small_ints | st.floats(allow_nan=False) | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def content(text: str, blocks: bool, typed: bool) -> Any:
    if not blocks:
        return text
    return [{"type": "text", "text": text}] if typed else [{"text": text}]


@st.composite
def family_bodies(draw: st.DrawFn) -> tuple[str, Any, Any]:
    """(model id, request body, response body or chunk list) of a random family."""
    prompt, answer = draw(texts), draw(texts)
    family = draw(
        st.sampled_from(
            [
                "claude",
                "claude-stream",
                "claude-v2",
                "titan",
                "titan-stream",
                "nova",
                "llama",
                "mistral",
                "mistral-chat",
                "cohere",
                "cohere-r",
                "ai21",
                "jamba",
                "converse",
            ]
        )
    )
    blocks = draw(st.booleans())
    if family.startswith("claude") and family != "claude-v2":
        request = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": content(prompt, blocks, True)}],
        }
        if family == "claude-stream":
            pieces = draw(st.lists(texts, max_size=5))
            response: Any = (
                [{"type": "message_start", "message": {"usage": {}}}]
                + [
                    {"type": "content_block_delta", "delta": {"type": "text_delta", "text": p}}
                    for p in pieces
                ]
                + [{"type": "message_delta", "delta": {"stop_reason": "x"}}]
            )
        else:
            response = {"type": "message", "content": [{"type": "text", "text": answer}]}
        model = "anthropic.claude-3-haiku-20240307-v1:0"
    elif family == "claude-v2":
        request = {"prompt": f"\n\nHuman: {prompt}\n\nAssistant:"}
        response = {"completion": answer, "stop_reason": "stop_sequence"}
        model = "anthropic.claude-v2"
    elif family.startswith("titan"):
        request = {"inputText": prompt}
        response = (
            [{"outputText": p} for p in draw(st.lists(texts, max_size=4))]
            if family == "titan-stream"
            else {"results": [{"outputText": answer}]}
        )
        model = "amazon.titan-text-express-v1"
    elif family in ("nova", "converse"):
        request = {
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "system": [{"text": draw(texts)}],
        }
        response = {"output": {"message": {"role": "assistant", "content": [{"text": answer}]}}}
        model = "amazon.nova-lite-v1:0"
    elif family == "llama":
        request = {"prompt": f"<|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>"}
        response = {"generation": answer}
        model = "meta.llama3-8b-instruct-v1:0"
    elif family == "mistral":
        request = {"prompt": f"<s>[INST] {prompt} [/INST]"}
        response = {"outputs": [{"text": answer}]}
        model = "mistral.mistral-7b-instruct-v0:2"
    elif family in ("mistral-chat", "jamba"):
        request = {"messages": [{"role": "user", "content": prompt}]}
        response = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
        model = "ai21.jamba-1-5-mini-v1:0" if family == "jamba" else "mistral.mistral-large"
    elif family == "cohere":
        request = {"prompt": prompt}
        response = {"generations": [{"text": answer}]}
        model = "cohere.command-text-v14"
    elif family == "cohere-r":
        request = {"message": prompt, "chat_history": [{"role": "USER", "message": "hi"}]}
        response = {"text": answer}
        model = "cohere.command-r-v1:0"
    else:
        request = {"prompt": prompt}
        response = {"completions": [{"data": {"text": answer}}]}
        model = "ai21.j2-ultra-v1"
    if draw(st.integers(0, 4)) == 0:  # mutate: drop or retype a top-level key
        target = draw(st.sampled_from(["request", "response"]))
        body = request if target == "request" else response
        if isinstance(body, dict) and body:
            key = draw(st.sampled_from(sorted(body)))
            if draw(st.booleans()):
                del body[key]
            else:
                body[key] = draw(json_values)
    return model, request, response


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    model, request, response = draw(family_bodies())
    operation = draw(
        st.sampled_from(
            ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"]
        )
    )
    record: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": draw(st.sampled_from(["2026-11-28T07:00:00Z", "bad", "2026-11-28"])),
        "requestId": draw(st.uuids()).hex,
        "operation": operation,
        "modelId": model,
        "input": {"inputBodyJson": request, "inputTokenCount": draw(small_ints)},
        "output": {"outputBodyJson": response, "outputTokenCount": draw(small_ints)},
    }
    if draw(st.booleans()):
        record["requestMetadata"] = draw(st.dictionaries(texts, scalars, max_size=3))
    for key in draw(st.sets(st.sampled_from(sorted(record)), max_size=2)):
        if draw(st.booleans()):
            del record[key]
        else:
            record[key] = draw(json_values)
    return record


@st.composite
def log_objects(draw: st.DrawFn) -> bytes:
    """Gzip JSON lines: records, now and then a garbage line, sometimes truncated."""
    lines = [json.dumps(r).encode() for r in draw(st.lists(records(), max_size=6))]
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.binary(max_size=40)))
    data = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)
    if draw(st.integers(0, 9)) == 0:
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return data


keys = st.builds(
    lambda name, folder: (
        f"AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/"
        f"28/07/{folder}{name}.json.gz"
    ),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=20
    ),
    st.sampled_from(["", "data/"]),
)


@st.composite
def message_bodies(draw: st.DrawFn, bucket: str, known_keys: list[str]) -> str:
    """An SQS message body: an S3 event (raw or in an SNS envelope), a test event, or junk."""
    kind = draw(st.sampled_from(["event", "event", "event", "test", "junk", "json"]))
    if kind == "junk":
        return draw(st.text(max_size=80))
    if kind == "json":
        return json.dumps(draw(json_values))
    if kind == "test":
        payload: Any = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}
    else:
        key = draw(st.sampled_from(known_keys) | keys) if known_keys else draw(keys)
        payload = {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {
                            "key": quote_plus(key, safe="/"),
                            "size": draw(st.integers(0, 10**6)),
                            "eTag": draw(st.text(alphabet="0123456789abcdef", max_size=32)),
                        },
                    },
                }
            ]
        }
    if draw(st.booleans()):
        payload = {"Type": "Notification", "MessageId": "m", "Message": json.dumps(payload)}
    return json.dumps(payload)
