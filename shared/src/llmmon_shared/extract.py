"""Extraction: one :class:`Interaction` per log record, or a classified :class:`Skip`.

Each model family's request, response and streaming-chunk shapes (the Amazon Bedrock User Guide's
inference parameters per family, and shapes seen in real logs) are read
by small parsers kept in one table, :data:`FAMILIES`. A record is matched by shape, with the vendor
named in its model id only deciding which families are tried first (application inference-profile
ARNs name no vendor). Parsers never guess: a body that no family reads completely is skipped as
``unknown-shape``; embeddings and images are skipped as ``non-text-operation``.

Why one module of this length: the family table, the total helpers every parser shares, and the
Converse and Guardrails readers every family falls back to are one unit; split by family, each
file would import all of the rest, and the table would no longer show every shape in one place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from llmmon_shared.logs import InvocationLogRecord
from llmmon_shared.model_ids import normalise_model_id

__all__ = [
    "FAMILIES",
    "Family",
    "Guardrail",
    "GuardrailFinding",
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
    NO_TEXT_OUTPUT = "no-text-output"
    """The output holds no text-bearing block (only documents, images, tool calls...)."""
    GUARDRAIL_INTERVENED = "guardrail-intervened"
    """A guardrail replaced the response and the log does not hold the model's own output: the
    response metrics skip it (the guardrail's message is not the model's answer)."""
    LARGE_BODY_TOO_LARGE = "large-body-too-large"
    """A large-data body decompresses to more than ``LLMMON_MAX_BODY_BYTES``."""
    LARGE_BODY_TOO_COMPLEX = "large-body-too-complex"
    """A large-data body holds more than ``LLMMON_MAX_JSON_NODES`` JSON nodes (parsing it would
    cost more memory and time than a record may)."""
    BODY_OUTSIDE_LOG_PREFIX = "body-outside-log-prefix"
    """A large-data path names another bucket or a key outside the log object's prefix."""
    SCORING_ERROR = "scoring-error"
    """The scorer failed on this record alone (the rest of its batch was scored)."""
    EXCLUDED = "excluded"


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    text: str


GUARDRAIL_POLICIES = {
    "topicPolicy": ("topic", ("topics",)),
    "contentPolicy": ("content", ("filters",)),
    "wordPolicy": ("word", ("customWords", "managedWordLists")),
    "sensitiveInformationPolicy": ("sensitive-information", ("piiEntities", "regexes")),
    "contextualGroundingPolicy": ("contextual-grounding", ("filters",)),
    "automatedReasoningPolicy": ("automated-reasoning", ("findings",)),
}
"""Guardrail assessment keys -> (policy kind, the lists of findings under it)."""
BLOCKED, ANONYMIZED, NONE = "BLOCKED", "ANONYMIZED", "NONE"


@dataclass(frozen=True, slots=True)
class GuardrailFinding:
    """One policy finding of a guardrail: where (``input``/``output``), which policy kind, and the
    action (``BLOCKED``, ``ANONYMIZED``, or ``NONE``: detect-only, let through). Never the matched
    text."""

    where: str
    policy: str
    action: str


@dataclass(frozen=True, slots=True)
class Guardrail:
    """What Amazon Bedrock Guardrails did to one invocation, as far as the log tells."""

    intervened: bool
    """The log says a guardrail intervened (``stopReason: guardrail_intervened`` or
    ``amazon-bedrock-guardrailAction: INTERVENED``)."""
    findings: tuple[GuardrailFinding, ...] = ()
    model_output: str | None = None
    """The model's own output that the guardrail held back (Converse trace ``modelOutput``)."""

    def blocked(self, where: str | None = None) -> bool:
        return any(
            f.action == BLOCKED and (where is None or f.where == where) for f in self.findings
        )

    @property
    def blocked_policies(self) -> frozenset[str]:
        return frozenset(f.policy for f in self.findings if f.action == BLOCKED)

    @property
    def acted(self) -> bool:
        """Intervened: the log says so, or a policy blocked something."""
        return self.intervened or self.blocked()

    @property
    def detected_not_blocked(self) -> bool:
        return any(f.action == NONE for f in self.findings)

    @property
    def replaced_output(self) -> bool:
        """The response in the log is the guardrail's message, not the model's text: something was
        blocked, or it intervened and nothing says it only masked (ANONYMIZED) the text."""
        if self.blocked():
            return True
        masked_only = any(f.action == ANONYMIZED for f in self.findings)
        return self.intervened and not masked_only


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
    turns: int = 0
    """Turns of the request's conversation. Their texts are not kept (no service reads them, and
    a long conversation per record held every earlier turn in memory)."""
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    request_metadata: Mapping[str, str] = field(default_factory=dict)
    error_code: str | None = None
    account_id: str | None = None
    region: str | None = None
    identity_arn: str | None = None
    raw_model_id: str | None = None
    """``modelId`` as logged (``model_id`` is its normalised form, see model_ids.py)."""
    grounding: str | None = None
    """Reference material sent for contextual grounding (``guardContent`` blocks qualified
    ``grounding_source``): context, not the user's question."""
    inserted: str | None = None
    """Text the application inserted into the last user turn from tools (Converse
    ``toolResult``, Claude ``tool_result`` blocks): content, not the user's words. Other inserted
    text (retrieved passages, documents pasted in) is inside ``prompt``; ``llmmon_shared.context``
    finds it."""
    guardrail: Guardrail | None = None
    response_withheld: bool = False
    """A guardrail replaced the response and the log does not hold the model's own output:
    ``completion`` is empty and response metrics skip it (``guardrail-intervened``)."""
    latency_ms: int | None = None
    chars_cut: int = 0
    """Characters of the prompt and the completion the pipeline cut off before scoring
    (``LLMMON_MAX_CHARS``): a scorer that must not call unread text clean counts them."""


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


_GROUNDING = "grounding_source"


def _guard_text(block: dict[str, Any]) -> tuple[str, bool] | None:
    """``(text, is_grounding)`` of a Converse ``guardContent`` block, or None."""
    guard = _dict(block.get("guardContent"))
    if guard is None:
        return None
    inner = _dict(guard.get("text"))
    if inner is None or _str(inner.get("text")) is None:
        return None
    text: str = inner["text"]
    qualifiers = _list(inner.get("qualifiers")) or []
    return text, _GROUNDING in qualifiers and not {"query", "guard_content"} & set(qualifiers)


def content_parts(content: Any) -> tuple[str, str, bool] | None:
    """``(text, grounding, has_text_block)`` of a message content: a string, or a list of blocks
    (Claude ``{type:"text",text}``, Converse/Nova ``{text}``, Converse ``guardContent``). Text is
    taken only from text-bearing blocks; documents, images, tool use and results and reasoning
    are ignored. A ``guardContent`` block qualified ``grounding_source`` is context, kept apart."""
    if isinstance(content, str):
        return content, "", True
    blocks = _list(content)
    if blocks is None:
        return None
    parts: list[str] = []
    grounding: list[str] = []
    has_text = False
    for block in blocks:
        block_dict = _dict(block)
        if block_dict is None:
            if isinstance(block, str):
                parts.append(block)
                has_text = True
                continue
            return None
        guarded = _guard_text(block_dict)
        if guarded is not None:
            (grounding if guarded[1] else parts).append(guarded[0])
            has_text = has_text or not guarded[1]
            continue
        kind = block_dict.get("type")
        text = _str(block_dict.get("text"))
        if text is not None and (kind is None or kind == "text"):
            parts.append(text)
            has_text = True
    return "".join(parts), "\n".join(grounding), has_text


def content_text(content: Any) -> str | None:
    parts = content_parts(content)
    return parts[0] if parts is not None else None


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
    has_text: bool = True
    """False when the output held no text-bearing block at all (documents, tool calls only)."""
    latency_ms: int | None = None


Request = tuple[str | None, list[Turn]]
RequestParser = Callable[[dict[str, Any]], Request | None]
ResponseParser = Callable[[dict[str, Any]], Completion | None]
ChunksParser = Callable[[list[Any]], Completion | None]


def _stream_metrics(chunk: dict[str, Any], completion: Completion) -> None:
    metrics = _dict(chunk.get("amazon-bedrock-invocationMetrics"))
    if metrics:
        completion.input_tokens = _int(metrics.get("inputTokenCount")) or completion.input_tokens
        completion.output_tokens = _int(metrics.get("outputTokenCount")) or completion.output_tokens
        completion.latency_ms = _int(metrics.get("invocationLatency")) or completion.latency_ms


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
    parts = content_parts(content)
    if parts is None:
        return None
    usage = _dict(body.get("usage")) or {}
    return Completion(
        parts[0],
        _str(body.get("stop_reason")),
        _int(usage.get("input_tokens")),
        _int(usage.get("output_tokens")),
        has_text=parts[2] or not content,
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
    content = message.get("content")
    parts = content_parts(content)
    if parts is None:
        return None
    usage = _dict(body.get("usage")) or {}
    metrics = _dict(body.get("metrics")) or {}
    return Completion(
        parts[0],
        _str(body.get("stopReason")),
        _int(usage.get("inputTokens")),
        _int(usage.get("outputTokens")),
        has_text=parts[2] or not content,
        latency_ms=_int(metrics.get("latencyMs")),
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
        metadata = _dict(chunk.get("metadata")) or {}
        usage = _dict(metadata.get("usage")) or {}
        completion.input_tokens = _int(usage.get("inputTokens")) or completion.input_tokens
        completion.output_tokens = _int(usage.get("outputTokens")) or completion.output_tokens
        latency = _int((_dict(metadata.get("metrics")) or {}).get("latencyMs"))
        completion.latency_ms = latency or completion.latency_ms
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


def _bedrock_only(chunk: dict[str, Any]) -> bool:
    return bool(chunk) and all(str(key).startswith("amazon-bedrock-") for key in chunk)


def _findings(node: Any, where: str) -> list[GuardrailFinding]:
    """Policy findings in a guardrail assessment, or in any map or list of them (Converse keys
    assessments by guardrail id; InvokeModel's trace nests lists of such maps)."""
    found: list[GuardrailFinding] = []
    if isinstance(node, list):
        for item in node:
            found += _findings(item, where)
        return found
    assessment = _dict(node)
    if assessment is None:
        return found
    policies = [key for key in GUARDRAIL_POLICIES if key in assessment]
    if not policies:
        for value in assessment.values():
            if isinstance(value, dict | list):
                found += _findings(value, where)
        return found
    for key in policies:
        kind, lists = GUARDRAIL_POLICIES[key]
        policy = _dict(assessment[key]) or {}
        for name in lists:
            for item in _list(policy.get(name)) or []:
                entry = _dict(item) or {}
                action = _str(entry.get("action"))
                if action is None or entry.get("detected") is False:
                    continue
                found.append(GuardrailFinding(where, kind, action.upper()))
    return found


def guardrail_of(body_out: Any) -> Guardrail | None:
    """What a guardrail did, from a response body or stream: Converse ``stopReason`` and
    ``trace.guardrail`` (``inputAssessment``, ``outputAssessments``, ``modelOutput``), or
    InvokeModel's ``amazon-bedrock-guardrailAction`` and ``amazon-bedrock-trace.guardrail``
    (``input``, ``outputs``). None when no guardrail left a trace."""
    parts = [body_out] if isinstance(body_out, dict) else _list(body_out) or []
    intervened, seen = False, False
    findings: list[GuardrailFinding] = []
    model_output: str | None = None
    for part in parts:
        body = _dict(part)
        if body is None:
            continue
        action = _str(body.get("amazon-bedrock-guardrailAction"))
        stop = _str(body.get("stopReason")) or _str(
            (_dict(body.get("messageStop")) or {}).get("stopReason")
        )
        if action is not None or stop == "guardrail_intervened":
            seen = True
            intervened = intervened or action == "INTERVENED" or stop == "guardrail_intervened"
        for trace_key in ("trace", "amazon-bedrock-trace"):
            trace = _dict((_dict(body.get(trace_key)) or {}).get("guardrail"))
            if trace is None:
                trace = _dict((_dict(body.get("metadata")) or {}).get("trace"))
                trace = _dict((trace or {}).get("guardrail"))
            if trace is None:
                continue
            seen = True
            findings += _findings(trace.get("inputAssessment"), "input")
            findings += _findings(trace.get("input"), "input")
            findings += _findings(trace.get("outputAssessments"), "output")
            findings += _findings(trace.get("outputs"), "output")
            held = [t for t in _list(trace.get("modelOutput")) or [] if isinstance(t, str)]
            if held:
                model_output = "".join(decoded_output(held))
    if not seen:
        return None
    return Guardrail(intervened, tuple(findings), model_output)


MAX_HELD_NODES = 250_000
"""JSON nodes a held-back output may have to be decoded (a line is under 1 MiB already)."""


def decoded_output(held: list[str]) -> list[str]:
    """The text of each ``modelOutput`` element. Bedrock keeps the model's own answer there
    **as its native response body serialised to a string** (Claude:
    ``{"id": "msg_bdrk_...", "type": "message", "content": [{"type": "text", ...}]}``): each
    element is decoded with the response parsers of every family (the body's own shape decides,
    as for a logged body) and falls back to the plain string when it is not such a body."""
    from llmmon_shared.logs import json_nodes

    texts = []
    for element in held:
        text = element
        stripped = element.strip()
        if stripped.startswith("{") and json_nodes(stripped.encode()) <= MAX_HELD_NODES:
            try:
                body = json.loads(stripped)
            except (ValueError, RecursionError):
                body = None
            if isinstance(body, dict):
                for family in (*FAMILIES, CONVERSE):
                    completion = family.response(body)
                    if completion is not None and completion.has_text:
                        text = completion.text
                        break
        texts.append(text)
    return texts


def _read(
    family: Family, body_in: dict[str, Any], body_out: Any
) -> tuple[Request, Completion] | None:
    request = family.request(body_in)
    if request is None:
        return None
    if isinstance(body_out, list):
        # Stream lists may end with a bare "[DONE]" sentinel (or other non-chunk items), and
        # Bedrock may add chunks of its own (guardrail action, trace, invocation metrics only).
        chunks = [item for item in body_out if isinstance(item, dict)]
        content = [chunk for chunk in chunks if not _bedrock_only(chunk)]
        completion = family.chunks(content) if family.chunks and content else None
        if completion is not None:
            for chunk in chunks:
                if _bedrock_only(chunk):
                    _stream_metrics(chunk, completion)
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


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text every scorer can take: lone surrogates (``"\\ud800"`` in JSON) become U+FFFD and NUL
    characters are dropped. Done once, here, so one odd record cannot fail a tokenizer or an API
    call for a whole batch."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _clean(interaction: Interaction) -> Interaction:
    texts = [interaction.prompt, interaction.completion, interaction.system or ""]
    texts += [interaction.grounding or "", interaction.inserted or ""]
    if all(clean_text(text) is text for text in texts):
        return interaction  # the usual case: nothing to clean, no copy per record
    return replace(
        interaction,
        prompt=clean_text(interaction.prompt),
        completion=clean_text(interaction.completion),
        system=clean_text(interaction.system) if interaction.system is not None else None,
        grounding=clean_text(interaction.grounding) if interaction.grounding else None,
        inserted=clean_text(interaction.inserted) if interaction.inserted else None,
    )


def _grounding(body_in: dict[str, Any]) -> str | None:
    """Contextual-grounding reference text of the user turns (``guardContent`` blocks qualified
    ``grounding_source``)."""
    found = []
    for message in _list(body_in.get("messages")) or []:
        parts = content_parts((_dict(message) or {}).get("content"))
        if parts is not None and parts[1]:
            found.append(parts[1])
    return "\n".join(found) or None


def _tool_result_text(block: dict[str, Any]) -> str | None:
    """The text of a tool result block: Converse ``{"toolResult": {"content": [{"text"}|
    {"json"}]}}`` or Claude ``{"type": "tool_result", "content": str | [{"type": "text"}]}``."""
    result = _dict(block.get("toolResult"))
    content: Any = None
    if result is not None:
        content = result.get("content")
    elif block.get("type") == "tool_result":
        content = block.get("content")
    if isinstance(content, str):
        return content
    parts = []
    for item in _list(content) or []:
        item_dict = _dict(item) or {}
        text = _str(item_dict.get("text"))
        if text is not None:
            parts.append(text)
        elif item_dict.get("json") is not None:
            parts.append(json.dumps(item_dict["json"], ensure_ascii=False))
    return "\n".join(parts) if parts else None


def _inserted(body_in: dict[str, Any]) -> str | None:
    """Tool results in the conversation's last user message (what the application inserted
    for the model to read on this turn)."""
    messages = [_dict(m) or {} for m in _list(body_in.get("messages")) or []]
    users = [m for m in messages if str(m.get("role", "")).lower() == "user"]
    if not users:
        return None
    found = [
        text
        for block in _list(users[-1].get("content")) or []
        if (text := _tool_result_text(_dict(block) or {})) is not None
    ]
    return "\n".join(found) or None


def extract(record: InvocationLogRecord) -> Interaction | Skip:
    """The interaction a record holds, or why it holds none. Never raises on record content.
    Its texts are cleaned (:func:`clean_text`)."""
    outcome = _extract(record)
    return _clean(outcome) if isinstance(outcome, Interaction) else outcome


def _interaction(
    record: InvocationLogRecord,
    family: str,
    request: Request,
    completion: Completion,
    text: str,
    *,
    guardrail: Guardrail | None,
    withheld: bool,
    grounding: str | None = None,
    inserted: str | None = None,
) -> Interaction:
    system, turns = request
    return Interaction(
        request_id=str(record.request_id),
        model_id=normalise_model_id(str(record.model_id)),
        operation=record.operation or "InvokeModel",
        family=family,
        prompt=last_user_prompt(turns),
        completion=text,
        timestamp=_timestamp(record.timestamp),
        system=system,
        turns=len(turns),
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
        raw_model_id=record.model_id,
        grounding=grounding,
        inserted=inserted,
        guardrail=guardrail,
        response_withheld=withheld,
        latency_ms=completion.latency_ms,
    )


def _extract(record: InvocationLogRecord) -> Interaction | Skip:
    request_id, raw_model_id = record.request_id, record.model_id
    model_id = normalise_model_id(raw_model_id) if raw_model_id else raw_model_id
    if record.schema_type is not None and record.schema_type != LOG_SCHEMA_TYPE:
        return Skip(SkipReason.UNKNOWN_SCHEMA, request_id, model_id)
    if not request_id or not model_id or not raw_model_id:
        return Skip(SkipReason.INCOMPLETE_RECORD, request_id, model_id)
    body_in = record.input.input_body_json if record.input else None
    body_out = record.output.output_body_json if record.output else None
    if _is_non_text(model_id, body_in, body_out):
        return Skip(SkipReason.NON_TEXT, request_id, model_id)
    if record.error_code and (body_out is None or body_in is None):
        # A failed call: its large-data bodies are never fetched (resolve_large_bodies).
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
        guardrail = guardrail_of(body_out)
        text, withheld = completion.text, False
        if guardrail is not None and guardrail.replaced_output:
            # The logged response is the guardrail's message: score the model's own output if
            # the log holds it, else nothing of the response.
            held = guardrail.model_output
            text, withheld = (held, False) if held and held.strip() else ("", True)
        elif not completion.has_text:
            return Skip(SkipReason.NO_TEXT_OUTPUT, request_id, model_id)
        if not withheld and not clean_text(text).strip():
            return Skip(SkipReason.EMPTY_COMPLETION, request_id, model_id)
        return _interaction(
            record,
            family.name,
            (system, turns),
            completion,
            text,
            guardrail=guardrail,
            withheld=withheld,
            grounding=_grounding(body_in) if family is CONVERSE else None,
            inserted=_inserted(body_in),
        )
    guardrail = guardrail_of(body_out)
    if guardrail is not None and guardrail.replaced_output:
        # A guardrail's reply in no family's shape: no model text to score, but the call and
        # the intervention count (the traffic service reads them).
        request = next((r for f in families if (r := f.request(body_in)) is not None), None)
        return _interaction(
            record,
            "guardrail-reply",
            request if request is not None else (None, []),
            Completion("", has_text=False),
            "",
            guardrail=guardrail,
            withheld=True,
        )
    return Skip(SkipReason.UNKNOWN_SHAPE, request_id, model_id)
