"""Extraction: one :class:`Interaction` per log record, or a classified :class:`Skip`.

Each model family's request, response and streaming-chunk shapes (aws-facts.md section 2) are read
by small parsers kept in one table, :data:`FAMILIES`. A record is matched by shape, with the vendor
named in its model id only deciding which families are tried first (application inference-profile
ARNs name no vendor). Parsers never guess: a body that no family reads completely is skipped as
``unknown-shape``; embeddings and images are skipped as ``non-text-operation``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from llmmon_shared.logs import InvocationLogRecord

__all__ = [
    "FAMILIES",
    "Family",
    "Interaction",
    "Skip",
    "SkipReason",
    "Turn",
    "extract",
    "model_vendor",
]


class SkipReason(StrEnum):
    """Why a record produced no interaction. Used as the ``Reason`` dimension of SkippedRecords."""

    NON_TEXT = "non-text-operation"
    UNKNOWN_SHAPE = "unknown-shape"
    UNKNOWN_SCHEMA = "unknown-schema"
    INVOCATION_ERROR = "invocation-error"
    MISSING_BODY = "missing-body"
    LARGE_BODY_UNAVAILABLE = "large-body-unavailable"
    INCOMPLETE_RECORD = "incomplete-record"
    EMPTY_COMPLETION = "empty-completion"
    EXCLUDED = "excluded"


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    text: str


@dataclass(frozen=True, slots=True)
class Interaction:
    """One prompt/response pair, the unit every metric service scores."""

    request_id: str
    model_id: str
    operation: str
    family: str
    prompt: str
    """The last user turn: the prompt worth scoring."""
    completion: str
    timestamp: datetime | None = None
    system: str | None = None
    conversation: tuple[Turn, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    request_metadata: Mapping[str, str] = field(default_factory=dict)
    error_code: str | None = None
    account_id: str | None = None
    region: str | None = None
    identity_arn: str | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    """A record that is not scored, and why. Holds no prompt or response text."""

    reason: SkipReason
    request_id: str | None = None
    model_id: str | None = None


# --------------------------------------------------------------------------------------------
# Small, total helpers: each returns None instead of raising on an unexpected shape.


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _list(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def _first(value: Any) -> dict[str, Any] | None:
    items = _list(value)
    return _dict(items[0]) if items else None


def content_text(content: Any) -> str | None:
    """Text of a message content: a string, or a list of blocks (Claude ``{type:"text",text}``,
    Converse/Nova ``{text}``). Non-text blocks (images, toolUse, reasoning) are ignored."""
    if isinstance(content, str):
        return content
    blocks = _list(content)
    if blocks is None:
        return None
    parts: list[str] = []
    for block in blocks:
        block_dict = _dict(block)
        if block_dict is None:
            if isinstance(block, str):
                parts.append(block)
                continue
            return None
        kind = block_dict.get("type")
        text = _str(block_dict.get("text"))
        if text is not None and (kind is None or kind == "text"):
            parts.append(text)
    return "".join(parts)


def _system_text(system: Any) -> str | None:
    if system is None:
        return None
    return content_text(system)


def _turns(messages: Any, role_key: str = "role", text_key: str = "content") -> list[Turn] | None:
    items = _list(messages)
    if items is None:
        return None
    turns: list[Turn] = []
    for item in items:
        message = _dict(item)
        if message is None:
            return None
        role = _str(message.get(role_key))
        text = content_text(message.get(text_key))
        if role is None or text is None:
            return None
        turns.append(Turn(role.lower(), text))
    return turns


def last_user_prompt(turns: Iterable[Turn]) -> str:
    prompt = ""
    for turn in turns:
        if turn.role in ("user", "human"):
            prompt = turn.text
    return prompt


# --------------------------------------------------------------------------------------------
# Parsed pieces. A request parser returns (system, conversation); a response or chunk parser
# returns a Completion. Returning None means "not this family".


@dataclass(slots=True)
class Completion:
    text: str
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


Request = tuple[str | None, list[Turn]]
RequestParser = Callable[[dict[str, Any]], Request | None]
ResponseParser = Callable[[dict[str, Any]], Completion | None]
ChunksParser = Callable[[list[Any]], Completion | None]


def _stream_metrics(chunk: dict[str, Any], completion: Completion) -> None:
    metrics = _dict(chunk.get("amazon-bedrock-invocationMetrics"))
    if metrics:
        completion.input_tokens = _int(metrics.get("inputTokenCount")) or completion.input_tokens
        completion.output_tokens = _int(metrics.get("outputTokenCount")) or completion.output_tokens


def _join_chunks(
    chunks: list[Any], text_of: Callable[[dict[str, Any]], str | None], stop_key: str
) -> Completion | None:
    """Concatenate text from chunk dicts that each carry a text field (Claude v2, Titan, Llama)."""
    if not chunks:
        return None
    completion = Completion("")
    parts: list[str] = []
    for item in chunks:
        chunk = _dict(item)
        if chunk is None:
            return None
        text = text_of(chunk)
        if text is None:
            return None
        parts.append(text)
        completion.stop_reason = _str(chunk.get(stop_key)) or completion.stop_reason
        _stream_metrics(chunk, completion)
    completion.text = "".join(parts)
    return completion


# Claude Messages API ------------------------------------------------------------------------


def _claude_messages_request(body: dict[str, Any]) -> Request | None:
    if "messages" not in body:
        return None
    if "anthropic_version" not in body and "max_tokens" not in body:
        return None
    turns = _turns(body.get("messages"))
    if turns is None:
        return None
    return _system_text(body.get("system")), turns


def _claude_messages_response(body: dict[str, Any]) -> Completion | None:
    content = _list(body.get("content"))
    if content is None or body.get("type", "message") != "message":
        return None
    if any(_dict(block) is None or not _str(block.get("type")) for block in content):
        return None
    text = content_text(content)
    if text is None:
        return None
    usage = _dict(body.get("usage")) or {}
    return Completion(
        text,
        _str(body.get("stop_reason")),
        _int(usage.get("input_tokens")),
        _int(usage.get("output_tokens")),
    )


def _claude_messages_chunks(chunks: list[Any]) -> Completion | None:
    if not chunks:
        return None
    completion = Completion("")
    parts: list[str] = []
    for item in chunks:
        chunk = _dict(item)
        if chunk is None or not isinstance(chunk.get("type"), str):
            return None
        kind = chunk["type"]
        if kind == "message_start":
            usage = _dict((_dict(chunk.get("message")) or {}).get("usage")) or {}
            completion.input_tokens = _int(usage.get("input_tokens"))
        elif kind == "content_block_delta":
            delta = _dict(chunk.get("delta")) or {}
            text = _str(delta.get("text"))
            if text is not None:
                parts.append(text)
        elif kind == "message_delta":
            delta = _dict(chunk.get("delta")) or {}
            completion.stop_reason = _str(delta.get("stop_reason")) or completion.stop_reason
            usage = _dict(chunk.get("usage")) or {}
            completion.output_tokens = _int(usage.get("output_tokens")) or completion.output_tokens
        _stream_metrics(chunk, completion)
    completion.text = "".join(parts)
    return completion


# Claude v2 text completions -----------------------------------------------------------------

_CLAUDE_TURN = re.compile(r"\n\n(Human|Assistant):")


def claude_text_turns(prompt: str) -> Request:
    """Split ``"\\n\\nHuman: ...\\n\\nAssistant:"`` prompts into turns; text before the first
    ``Human:`` is the system prompt."""
    pieces = _CLAUDE_TURN.split(prompt)
    system = pieces[0].strip() or None
    turns = [
        Turn("user" if role == "Human" else "assistant", text.strip())
        for role, text in zip(pieces[1::2], pieces[2::2], strict=False)
    ]
    turns = [turn for turn in turns if turn.text or turn.role == "user"]
    if not turns:
        return None, [Turn("user", prompt.strip())]
    return system, turns


def _claude_text_request(body: dict[str, Any]) -> Request | None:
    prompt = _str(body.get("prompt"))
    if prompt is None:
        return None
    return claude_text_turns(prompt)


def _claude_text_response(body: dict[str, Any]) -> Completion | None:
    text = _str(body.get("completion"))
    if text is None:
        return None
    return Completion(text, _str(body.get("stop_reason")))


def _claude_text_chunks(chunks: list[Any]) -> Completion | None:
    return _join_chunks(chunks, lambda chunk: _str(chunk.get("completion")), "stop_reason")


# Amazon Titan Text --------------------------------------------------------------------------


def _titan_request(body: dict[str, Any]) -> Request | None:
    text = _str(body.get("inputText"))
    if text is None:
        return None
    return None, [Turn("user", text)]


def _titan_response(body: dict[str, Any]) -> Completion | None:
    result = _first(body.get("results"))
    if result is None:
        return None
    text = _str(result.get("outputText"))
    if text is None:
        return None
    return Completion(
        text,
        _str(result.get("completionReason")),
        _int(body.get("inputTextTokenCount")),
        _int(result.get("tokenCount")),
    )


def _titan_chunks(chunks: list[Any]) -> Completion | None:
    completion = _join_chunks(
        chunks, lambda chunk: _str(chunk.get("outputText")), "completionReason"
    )
    if completion is not None:
        last = _dict(chunks[-1]) or {}
        completion.input_tokens = completion.input_tokens or _int(last.get("inputTextTokenCount"))
        completion.output_tokens = completion.output_tokens or _int(
            last.get("totalOutputTextTokenCount")
        )
    return completion


# Amazon Nova and the Converse API share their shapes ----------------------------------------


def _converse_request(body: dict[str, Any]) -> Request | None:
    turns = _turns(body.get("messages"))
    if turns is None:
        return None
    system = body.get("system")
    if system is not None and _list(system) is None:
        return None
    return _system_text(system), turns


def _converse_response(body: dict[str, Any]) -> Completion | None:
    message = _dict((_dict(body.get("output")) or {}).get("message"))
    if message is None:
        return None
    text = content_text(message.get("content"))
    if text is None:
        return None
    usage = _dict(body.get("usage")) or {}
    return Completion(
        text,
        _str(body.get("stopReason")),
        _int(usage.get("inputTokens")),
        _int(usage.get("outputTokens")),
    )


def _nova_chunks(chunks: list[Any]) -> Completion | None:
    if not chunks:
        return None
    completion = Completion("")
    parts: list[str] = []
    known = {
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    }
    for item in chunks:
        chunk = _dict(item)
        if chunk is None or not known.intersection(chunk):
            return None
        delta = _dict((_dict(chunk.get("contentBlockDelta")) or {}).get("delta")) or {}
        text = _str(delta.get("text"))
        if text is not None:
            parts.append(text)
        stop = _dict(chunk.get("messageStop"))
        if stop is not None:
            completion.stop_reason = _str(stop.get("stopReason"))
        usage = _dict((_dict(chunk.get("metadata")) or {}).get("usage")) or {}
        completion.input_tokens = _int(usage.get("inputTokens")) or completion.input_tokens
        completion.output_tokens = _int(usage.get("outputTokens")) or completion.output_tokens
        _stream_metrics(chunk, completion)
    completion.text = "".join(parts)
    return completion


# Meta Llama and Mistral text prompts ---------------------------------------------------------

_LLAMA3_TURN = re.compile(
    r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\s*(.*?)(?=<\|eot_id\|>|<\|start_header_id\|>|$)",
    re.S,
)
_INST_TURN = re.compile(r"\[INST\](.*?)\[/INST\]([^\[]*)", re.S)
_LLAMA2_SYS = re.compile(r"<<SYS>>(.*?)<</SYS>>", re.S)


def chat_markup_turns(prompt: str) -> Request:
    """Turns of a Llama 3 (``<|start_header_id|>``) or ``[INST]`` (Llama 2, Mistral) prompt;
    an unmarked prompt is one user turn."""
    if "<|start_header_id|>" in prompt:
        system: str | None = None
        turns: list[Turn] = []
        for role, text in _LLAMA3_TURN.findall(prompt):
            if role == "system":
                system = text.strip()
            elif text.strip() or role == "user":
                turns.append(Turn(role, text.strip()))
        if turns:
            return system, turns
    if "[INST]" in prompt:
        system = None
        turns = []
        for user, answer in _INST_TURN.findall(prompt):
            sys_match = _LLAMA2_SYS.search(user)
            if sys_match:
                system = sys_match.group(1).strip()
                user = _LLAMA2_SYS.sub("", user)
            turns.append(Turn("user", user.strip()))
            answer = answer.replace("</s>", "").replace("<s>", "").strip()
            if answer:
                turns.append(Turn("assistant", answer))
        if turns:
            return system, turns
    return None, [Turn("user", prompt.strip())]


def _prompt_request(body: dict[str, Any]) -> Request | None:
    prompt = _str(body.get("prompt"))
    if prompt is None:
        return None
    return chat_markup_turns(prompt)


def _llama_response(body: dict[str, Any]) -> Completion | None:
    text = _str(body.get("generation"))
    if text is None:
        return None
    return Completion(
        text,
        _str(body.get("stop_reason")),
        _int(body.get("prompt_token_count")),
        _int(body.get("generation_token_count")),
    )


def _llama_chunks(chunks: list[Any]) -> Completion | None:
    return _join_chunks(chunks, lambda chunk: _str(chunk.get("generation")), "stop_reason")


def _mistral_text_response(body: dict[str, Any]) -> Completion | None:
    output = _first(body.get("outputs"))
    text = _str(output.get("text")) if output else None
    if output is None or text is None:
        return None
    return Completion(text, _str(output.get("stop_reason")))


def _mistral_text_chunks(chunks: list[Any]) -> Completion | None:
    def text_of(chunk: dict[str, Any]) -> str | None:
        output = _first(chunk.get("outputs"))
        return _str(output.get("text")) if output else None

    return _join_chunks(chunks, text_of, "stop_reason")


# Chat-completions shape: Mistral chat (Large), AI21 Jamba -------------------------------------


def _chat_request(body: dict[str, Any]) -> Request | None:
    turns = _turns(body.get("messages"))
    if turns is None:
        return None
    system_turns = [turn.text for turn in turns if turn.role == "system"]
    return ("\n".join(system_turns) or None), [t for t in turns if t.role != "system"]


def _chat_response(body: dict[str, Any]) -> Completion | None:
    choice = _first(body.get("choices"))
    if choice is None:
        return None
    message = _dict(choice.get("message"))
    text = content_text(message.get("content")) if message else None
    if text is None:
        return None
    usage = _dict(body.get("usage")) or {}
    return Completion(
        text,
        _str(choice.get("finish_reason")) or _str(choice.get("stop_reason")),
        _int(usage.get("prompt_tokens")),
        _int(usage.get("completion_tokens")),
    )


# Cohere Command and Command R -----------------------------------------------------------------


def _cohere_text_response(body: dict[str, Any]) -> Completion | None:
    generation = _first(body.get("generations"))
    text = _str(generation.get("text")) if generation else None
    if generation is None or text is None:
        return None
    return Completion(text, _str(generation.get("finish_reason")))


def _cohere_chat_request(body: dict[str, Any]) -> Request | None:
    message = _str(body.get("message"))
    if message is None:
        return None
    history = _turns(body.get("chat_history") or [], role_key="role", text_key="message")
    if history is None:
        return None
    roles = {"chatbot": "assistant", "user": "user", "system": "system"}
    turns = [Turn(roles.get(turn.role, turn.role), turn.text) for turn in history]
    turns.append(Turn("user", message))
    return _str(body.get("preamble")), turns


def _cohere_chat_response(body: dict[str, Any]) -> Completion | None:
    text = _str(body.get("text"))
    if text is None or "generations" in body:
        return None
    return Completion(text, _str(body.get("finish_reason")))


# AI21 Jurassic-2 ------------------------------------------------------------------------------


def _ai21_j2_response(body: dict[str, Any]) -> Completion | None:
    item = _first(body.get("completions"))
    data = _dict(item.get("data")) if item else None
    text = _str(data.get("text")) if data else None
    if item is None or text is None:
        return None
    reason = _dict(item.get("finishReason")) or {}
    return Completion(text, _str(reason.get("reason")))


# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Family:
    """How one model family's InvokeModel bodies are read."""

    name: str
    vendors: frozenset[str]
    request: RequestParser
    response: ResponseParser
    chunks: ChunksParser | None = None


FAMILIES: tuple[Family, ...] = (
    Family(
        "claude-messages",
        frozenset({"anthropic"}),
        _claude_messages_request,
        _claude_messages_response,
        _claude_messages_chunks,
    ),
    Family(
        "claude-text",
        frozenset({"anthropic"}),
        _claude_text_request,
        _claude_text_response,
        _claude_text_chunks,
    ),
    Family("titan-text", frozenset({"amazon"}), _titan_request, _titan_response, _titan_chunks),
    Family("nova", frozenset({"amazon"}), _converse_request, _converse_response, _nova_chunks),
    Family("llama", frozenset({"meta"}), _prompt_request, _llama_response, _llama_chunks),
    Family(
        "mistral-text",
        frozenset({"mistral"}),
        _prompt_request,
        _mistral_text_response,
        _mistral_text_chunks,
    ),
    Family("mistral-chat", frozenset({"mistral"}), _chat_request, _chat_response),
    Family("cohere-command", frozenset({"cohere"}), _prompt_request, _cohere_text_response),
    Family("cohere-command-r", frozenset({"cohere"}), _cohere_chat_request, _cohere_chat_response),
    Family("ai21-jurassic", frozenset({"ai21"}), _prompt_request, _ai21_j2_response),
    Family("ai21-jamba", frozenset({"ai21"}), _chat_request, _chat_response),
)
CONVERSE = Family("converse", frozenset(), _converse_request, _converse_response)
LOG_SCHEMA_TYPE = "ModelInvocationLog"
CONVERSE_OPERATIONS = frozenset({"Converse", "ConverseStream"})

_REGION_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "ca.", "jp.", "au.")
_NON_TEXT_MODEL = re.compile(r"embed|image|stable-|stability\.|canvas|nova-reel|titan-image|sd3")
_NON_TEXT_OUTPUT_KEYS = frozenset({"embedding", "embeddings", "images", "artifacts", "video"})


def model_vendor(model_id: str) -> str:
    """``us.anthropic.claude-...`` or an ARN ``.../us.anthropic.claude-...`` -> ``anthropic``."""
    name = model_id.rsplit("/", 1)[-1]
    for prefix in _REGION_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    vendor, dot, _ = name.partition(".")
    return vendor if dot else ""


def _is_non_text(model_id: str, body_in: Any, body_out: Any) -> bool:
    if _NON_TEXT_MODEL.search(model_id.rsplit("/", 1)[-1].lower()):
        return True
    if isinstance(body_out, dict) and _NON_TEXT_OUTPUT_KEYS.intersection(body_out):
        return True
    return isinstance(body_in, dict) and "taskType" in body_in


def _candidates(model_id: str) -> list[Family]:
    vendor = model_vendor(model_id)
    own = [family for family in FAMILIES if vendor in family.vendors]
    return own + [family for family in FAMILIES if vendor not in family.vendors]


def _read(
    family: Family, body_in: dict[str, Any], body_out: Any
) -> tuple[Request, Completion] | None:
    request = family.request(body_in)
    if request is None:
        return None
    if isinstance(body_out, list):
        completion = family.chunks(body_out) if family.chunks else None
    elif isinstance(body_out, dict):
        completion = family.response(body_out)
    else:
        completion = None
    if completion is None:
        return None
    return request, completion


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _metadata(raw: Mapping[str, Any] | None) -> dict[str, str]:
    if not raw:
        return {}
    return {
        str(key): str(value)
        for key, value in raw.items()
        if isinstance(value, str | int | float | bool)
    }


def extract(record: InvocationLogRecord) -> Interaction | Skip:
    """The interaction a record holds, or why it holds none. Never raises on record content."""
    request_id, model_id = record.request_id, record.model_id
    if record.schema_type is not None and record.schema_type != LOG_SCHEMA_TYPE:
        return Skip(SkipReason.UNKNOWN_SCHEMA, request_id, model_id)
    if not request_id or not model_id:
        return Skip(SkipReason.INCOMPLETE_RECORD, request_id, model_id)
    body_in = record.input.input_body_json if record.input else None
    body_out = record.output.output_body_json if record.output else None
    if _is_non_text(model_id, body_in, body_out):
        return Skip(SkipReason.NON_TEXT, request_id, model_id)
    if record.error_code and body_out is None:
        return Skip(SkipReason.INVOCATION_ERROR, request_id, model_id)
    if body_in is None or body_out is None:
        unresolved = (record.input and record.input.input_body_s3_path and body_in is None) or (
            record.output and record.output.output_body_s3_path and body_out is None
        )
        reason = SkipReason.LARGE_BODY_UNAVAILABLE if unresolved else SkipReason.MISSING_BODY
        return Skip(reason, request_id, model_id)
    if not isinstance(body_in, dict):
        return Skip(SkipReason.UNKNOWN_SHAPE, request_id, model_id)

    operation = record.operation or "InvokeModel"
    families = [CONVERSE] if operation in CONVERSE_OPERATIONS else _candidates(model_id)
    for family in families:
        parsed = _read(family, body_in, body_out)
        if parsed is None:
            continue
        (system, turns), completion = parsed
        if not completion.text.strip():
            return Skip(SkipReason.EMPTY_COMPLETION, request_id, model_id)
        return Interaction(
            request_id=request_id,
            model_id=model_id,
            operation=operation,
            family=family.name,
            prompt=last_user_prompt(turns),
            completion=completion.text,
            timestamp=_timestamp(record.timestamp),
            system=system,
            conversation=tuple(turns),
            input_tokens=(record.input.input_token_count if record.input else None)
            or completion.input_tokens,
            output_tokens=(record.output.output_token_count if record.output else None)
            or completion.output_tokens,
            stop_reason=completion.stop_reason,
            request_metadata=_metadata(record.request_metadata),
            error_code=record.error_code,
            account_id=record.account_id,
            region=record.region,
            identity_arn=record.identity.arn if record.identity else None,
        )
    return Skip(SkipReason.UNKNOWN_SHAPE, request_id, model_id)
