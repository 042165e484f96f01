"""The demo corpus: Bedrock invocation log objects in the real key layout, generated from the
templates in ``llmmon/data/corpus.json``.

Several models and families (Claude Messages with streaming chunks, Converse/ConverseStream,
Titan with streaming chunks, Llama, Mistral chat, Cohere Command R), helpful answers, refusals in
each family's house style, toxic and off-topic answers, one large-data record whose bodies sit
under ``data/``, one embedding call (llmmon's own, skipped), one malformed line, and a corrupt
object. Interactions spread over the last ``minutes`` minutes; models with a ``drift`` entry
change over time (the Llama model's refusal ratio climbs), so a quality alarm really fires. A model
behind Amazon Bedrock Guardrails (called through an application inference profile) sees more and
more interventions: blocked prompts, and blocked answers whose original the trace keeps. The
model itself never refuses, so its refusal line shows plainly that the guardrail's messages ("Sorry,
the model cannot answer this question.") are not counted as its refusals.

Canary runs (:data:`CANARY_RUNS`) send the canary's probe set to one model, whose production
traffic stays flat; the answers are recorded ones (``data/canary-recorded.json``): version 1 of
the model answers as GPT-4 did on XSTest, version 2 (deployed halfway) as Llama 2 did, which
refuses far more of the prompts it must answer. Its ``CanaryOverRefusal`` climbs while its
ordinary refusal ratio does not move.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

from llmmon.local.endpoint import ACCOUNT, REGION
from llmmon_shared.model_ids import normalise_model_id

Templates = dict[str, Any]


def load_templates() -> Templates:
    data: Templates = json.loads(files("llmmon").joinpath("data/corpus.json").read_text("utf-8"))
    return data


def gz(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(data)
    return buffer.getvalue()


def _chunks(text: str, size: int = 24) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def bodies(
    family: str, prompt: str, answer: str, stream: bool, system: str | None = None
) -> tuple[str, Any, Any]:
    """(operation, request body, response body or chunk list) in the family's real shape
    (``system``: Llama's system turn, for the application that sends one)."""
    if family == "claude-messages":
        request = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 512,
            "system": "You are a helpful assistant.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        }
        if stream:
            chunks: list[dict[str, Any]] = [
                {
                    "type": "message_start",
                    "message": {"role": "assistant", "content": [], "usage": {"input_tokens": 20}},
                },
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ]
            chunks += [
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                }
                for piece in _chunks(answer)
            ]
            chunks += [
                {"type": "content_block_stop", "index": 0},
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 40},
                },
                {"type": "message_stop"},
            ]
            return "InvokeModelWithResponseStream", request, chunks
        return (
            "InvokeModel",
            request,
            {
                "id": "msg_bdrk_demo",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": answer}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 20, "output_tokens": 40},
            },
        )
    if family == "converse":
        request = {
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "system": [{"text": "You are a helpful assistant."}],
            "inferenceConfig": {"maxTokens": 512},
        }
        return (
            ("ConverseStream" if stream else "Converse"),
            request,
            {
                "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 20, "outputTokens": 40, "totalTokens": 60},
            },
        )
    if family == "titan-text":
        request = {"inputText": prompt, "textGenerationConfig": {"maxTokenCount": 512}}
        if stream:
            return (
                "InvokeModelWithResponseStream",
                request,
                [
                    {"outputText": piece, "index": 0, "completionReason": None}
                    for piece in _chunks(answer)
                ]
                + [{"outputText": "", "index": 0, "completionReason": "FINISH"}],
            )
        return (
            "InvokeModel",
            request,
            {
                "inputTextTokenCount": 10,
                "results": [{"tokenCount": 30, "outputText": answer, "completionReason": "FINISH"}],
            },
        )
    if family == "llama":
        turn = f"<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>" if system else ""
        marked = (
            f"<|begin_of_text|>{turn}<|start_header_id|>user<|end_header_id|>\n\n"
            f"{prompt}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        )
        return (
            "InvokeModel",
            {"prompt": marked, "max_gen_len": 512},
            {
                "generation": answer,
                "prompt_token_count": 20,
                "generation_token_count": 40,
                "stop_reason": "stop",
            },
        )
    if family == "mistral-chat":
        return (
            "InvokeModel",
            {"messages": [{"role": "user", "content": prompt}], "max_tokens": 512},
            {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "stop_reason": "stop",
                    }
                ]
            },
        )
    if family == "cohere-command-r":
        return (
            "InvokeModel",
            {"message": prompt, "chat_history": []},
            {"response_id": "r", "text": answer, "generation_id": "g", "finish_reason": "COMPLETE"},
        )
    raise ValueError(f"no template for family {family}")


def _finding(policy: str, items: str, **fields: Any) -> dict[str, Any]:
    return {policy: {items: [{**fields, "action": "BLOCKED", "detected": True}]}}


def guarded(
    body_out: dict[str, Any], answer: str, message: str, rng: random.Random
) -> tuple[dict[str, Any], str]:
    """A Converse response a guardrail intervened in: the prompt blocked by a denied topic (the
    model never answered), or the answer blocked by a content filter with the model's own output
    kept in the trace (``modelOutput``). The logged text is the guardrail's message."""
    if rng.random() < 0.5:
        topic = _finding("topicPolicy", "topics", name="Competitors", type="DENY")
        trace: dict[str, Any] = {"inputAssessment": {"gr-demo": topic}}
        kind = "guardrail-input"
    else:
        content = _finding("contentPolicy", "filters", type="MISCONDUCT", confidence="HIGH")
        trace = {"outputAssessments": {"gr-demo": [content]}, "modelOutput": [answer]}
        kind = "guardrail-output"
    out = dict(body_out)
    out["output"] = {"message": {"role": "assistant", "content": [{"text": message}]}}
    out["stopReason"] = "guardrail_intervened"
    out["trace"] = {"guardrail": trace}
    return out, kind


@dataclass
class Corpus:
    objects: list[tuple[str, bytes]] = field(default_factory=list)
    corrupt: list[tuple[str, bytes]] = field(default_factory=list)
    interactions: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    canary: int = 0
    """Canary probes answered (not in ``interactions``: never in the ordinary metrics)."""
    start: datetime | None = None
    """When the traffic begins."""
    drifts: dict[str, int] = field(default_factory=dict)
    """Model -> the minute its designed drift begins (every metric of it may move from there:
    more refusals also mean lower similarity). The canary's model has its own entry for its
    ``Canary`` metrics in ``canary_drift_minute``."""
    canary_drift_minute: int | None = None
    """The first canary run answered by the model's version 2."""
    bad_from_start: frozenset[tuple[str, str]] = frozenset()
    """(model, metric) pairs the corpus makes bad from minute 0: their alarms in the stable part
    are true alarms."""

    @property
    def drift_minute(self) -> int | None:
        """The minute the first designed drift begins."""
        minutes = list(self.drifts.values())
        if self.canary_drift_minute is not None:
            minutes.append(self.canary_drift_minute)
        return min(minutes, default=None)

    def drift_at(self, model: str, metric: str) -> int | None:
        """When the designed drift of this model's metric begins (None: it has none, so any
        alarm on it is a false alarm unless the model is bad from the start)."""
        if metric.startswith("Canary"):
            return self.canary_drift_minute if model == normalise_model_id(CANARY_MODEL) else None
        return self.drifts.get(model)

    @property
    def withheld(self) -> int:
        """Interactions whose response a guardrail replaced without keeping the model's output:
        response metrics skip them (``guardrail-intervened``)."""
        return self.by_kind.get("guardrail-input", 0)

    @property
    def scored_responses(self) -> int:
        return self.interactions - self.withheld


def _rate(model: dict[str, Any], name: str, minute: float, minutes: int) -> float:
    drift = model.get("drift")
    if drift and drift["metric"] == name and minute >= drift["from_minute"]:
        return float(drift["to"])
    return float(model.get(name, 0.0))


def object_key(prefix: str, moment: datetime, rng: random.Random) -> str:
    base = prefix.strip("/")
    hour = moment.strftime("%Y/%m/%d/%H")
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    path = (
        f"AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{REGION}/{hour}/"
        f"{stamp}_{rng.getrandbits(64):016x}.json.gz"
    )
    return f"{base}/{path}" if base else path


APPS = ("support-bot", "search", "writer")
"""The demo's applications (``requestMetadata.app``), before any drift brings a new one."""

CANARY_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
CANARY_RUNS = ((1 / 12, "v1"), (1 / 3, "v1"), (7 / 12, "v2"), (5 / 6, "v2"))
"""(when in the window the run happens, as a share of it; the recorded version the model answered
with): at minutes 5, 20, 35 and 50 of an hour. None falls in the last object, which the demo also
sends truncated (the corrupt object)."""


def canary_records(
    start: datetime, minutes: int, rng: random.Random
) -> dict[int, list[dict[str, Any]]]:
    """Log records of the demo's canary runs, by minute of the run."""
    from llmmon_canary.probes import load_probes
    from llmmon_canary.sender import PROBE_KEY
    from llmmon_shared.runtime import CANARY_EXPECT_KEY, CANARY_KEY

    probes = load_probes()
    recorded = json.loads(files("llmmon").joinpath("data/canary-recorded.json").read_text("utf-8"))
    runs: dict[int, list[dict[str, Any]]] = {}
    for share, version in CANARY_RUNS:
        minute = int(share * minutes)
        for probe in probes.probes:
            # One timestamp per run: a run's values fall in one 5-minute period, so each run
            # is one point of the CanaryOverRefusal line.
            moment = start + timedelta(minutes=minute)
            answer = recorded["answers"][probe.id][version]
            operation, body_in, body_out = bodies("converse", probe.prompt, answer, False)
            runs.setdefault(minute, []).append(
                {
                    "schemaType": "ModelInvocationLog",
                    "schemaVersion": "1.0",
                    "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "accountId": ACCOUNT,
                    "identity": {"arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/llmmon-canary/run"},
                    "region": REGION,
                    "requestId": f"{rng.getrandbits(128):032x}",
                    "operation": operation,
                    "modelId": CANARY_MODEL,
                    "requestMetadata": {
                        CANARY_KEY: probes.version,
                        PROBE_KEY: probe.id,
                        CANARY_EXPECT_KEY: probe.expect,
                    },
                    "input": {"inputContentType": "application/json", "inputBodyJson": body_in},
                    "output": {"outputContentType": "application/json", "outputBodyJson": body_out},
                }
            )
    return runs


def generate(
    now: datetime | None = None,
    minutes: int = 60,
    per_minute: int = 6,
    object_minutes: int = 5,
    prefix: str = "bedrock",
    seed: int = 7,
    canary: bool = True,
) -> Corpus:
    """Log objects, one per ``object_minutes`` of traffic, over the last ``minutes``."""
    rng = random.Random(seed)
    templates = load_templates()
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(minutes=minutes)
    models = templates["models"]
    weights = [m["weight"] for m in models]
    corpus = Corpus(
        models=[normalise_model_id(m["model_id"]) for m in models],
        start=start,
        drifts={
            normalise_model_id(m["model_id"]): int(m["drift"]["from_minute"])
            for m in models
            if m.get("drift")
        },
        canary_drift_minute=(
            min(int(share * minutes) for share, version in CANARY_RUNS if version != "v1")
            if canary
            else None
        ),
        bad_from_start=frozenset(
            (normalise_model_id(m["model_id"]), metric)
            for m in models
            for metric in m.get("bad_from_start", ())
        ),
    )
    lines_by_object: dict[int, list[bytes]] = {}
    large_data_done = False
    for index in range(minutes * per_minute):
        minute = index / per_minute
        moment = start + timedelta(seconds=minute * 60 + rng.uniform(0, 60 / per_minute))
        model = rng.choices(models, weights)[0]
        prompt, answer = rng.choice(templates["helpful"])
        roll = rng.random()
        refusal = _rate(model, "refusal_rate", minute, minutes)
        # A drift with a cause: from its minute, a new application (its own system prompt, far
        # stricter) sends a share of the model's traffic, and only its requests are refused
        # more. ``llmmon investigate`` names it (requestMetadata.app).
        drift, app, system = model.get("drift") or {}, rng.choice(APPS), None
        if drift.get("app") and minute >= drift["from_minute"]:
            if rng.random() < drift["share"]:
                app, system = drift["app"], drift.get("system")
                if drift.get("attack"):
                    # An attack wave: the new application's users send jailbreak prompts, and
                    # the model refuses them (the attacks service calls them attacks; the
                    # refusal alarm's investigation says the refusals answer attacks).
                    prompt = rng.choice(templates["attacks"])
            else:
                refusal = float(model.get("refusal_rate", 0.0))
        toxic = _rate(model, "toxic_rate", minute, minutes)
        off = _rate(model, "off_topic_rate", minute, minutes)
        if roll < refusal:
            kind, answer = "refusal", rng.choice(templates["refusals"][model["refusal"]])
        elif roll < refusal + toxic:
            kind, answer = "toxic", rng.choice(templates["toxic"])
        elif roll < refusal + toxic + off:
            kind, answer = "off-topic", rng.choice(templates["off_topic"])
        else:
            kind = "helpful"
        stream = rng.random() < model.get("stream_rate", 0)
        operation, body_in, body_out = bodies(model["family"], prompt, answer, stream, system)
        guardrail = _rate(model, "guardrail_rate", minute, minutes)
        if model.get("guardrail_versions"):
            # The guardrail's version changes with the drift: version 2 blocks far more.
            after = bool(drift) and minute >= drift["from_minute"]
            body_in["guardrailConfig"] = {
                "guardrailIdentifier": model["guardrail_id"],
                "guardrailVersion": model["guardrail_versions"][1 if after else 0],
                "trace": "enabled",
            }
        if model["family"] == "converse" and rng.random() < guardrail:
            body_out, kind = guarded(
                body_out, answer, rng.choice(templates["guardrail_messages"]), rng
            )
        request_id = f"{rng.getrandbits(128):032x}"
        record = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "accountId": ACCOUNT,
            "identity": {"arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/demo-app/session"},
            "region": REGION,
            "requestId": request_id,
            "operation": operation,
            "modelId": model["model_id"],
            "requestMetadata": {"app": app},
            "input": {
                "inputContentType": "application/json",
                "inputBodyJson": body_in,
                "inputTokenCount": 20,
            },
            "output": {
                "outputContentType": "application/json",
                "outputBodyJson": body_out,
                "outputTokenCount": 40,
            },
        }
        slot = int(minute // object_minutes)
        if not large_data_done and kind == "helpful" and model["family"] == "claude-messages":
            large_data_done = True
            long_answer = (answer + " ") * 40
            _, body_in, body_out = bodies("claude-messages", prompt, long_answer, False)
            data_key = object_key(prefix, moment, rng).rsplit("/", 1)[0] + "/data/"
            in_key = f"{data_key}{request_id}_input.json.gz"
            out_key = f"{data_key}{request_id}_output.json.gz"
            corpus.objects.append((in_key, gz(json.dumps(body_in).encode())))
            corpus.objects.append((out_key, gz(json.dumps(body_out).encode())))
            del record["input"]["inputBodyJson"], record["output"]["outputBodyJson"]
            record["input"]["inputBodyS3Path"] = f"s3://{{bucket}}/{in_key}"
            record["output"]["outputBodyS3Path"] = f"s3://{{bucket}}/{out_key}"
            kind = "large-data"
        corpus.by_kind[kind] = corpus.by_kind.get(kind, 0) + 1
        corpus.interactions += 1
        lines_by_object.setdefault(slot, []).append(json.dumps(record).encode() + b"\n")
    embed = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": ACCOUNT,
        "region": REGION,
        "requestId": "embedding-call",
        "operation": "InvokeModel",
        "modelId": "amazon.titan-embed-text-v2:0",
        "input": {"inputBodyJson": {"inputText": "hello", "dimensions": 512}},
        "output": {"outputBodyJson": {"embedding": [0.1, 0.2], "inputTextTokenCount": 2}},
    }
    if canary:
        for minute, records in canary_records(start, minutes, rng).items():
            slot = int(minute // object_minutes)
            lines_by_object.setdefault(slot, []).extend(
                json.dumps(r).encode() + b"\n" for r in records
            )
            corpus.canary += len(records)
    slots = sorted(lines_by_object)
    lines_by_object[slots[0]].append(json.dumps(embed).encode() + b"\n")
    lines_by_object[slots[min(1, len(slots) - 1)]].insert(
        1, b'{"schemaType": "ModelInvocationLog", "requestId": \n'
    )
    for slot in slots:
        moment = start + timedelta(minutes=(slot + 1) * object_minutes)
        corpus.objects.append(
            (object_key(prefix, min(moment, now), rng), gz(b"".join(lines_by_object[slot])))
        )
    corrupt = gz(b"".join(lines_by_object[slots[-1]]))[:-64]
    corpus.corrupt.append((object_key(prefix, now, rng), corrupt))
    return corpus


def with_bucket(corpus: Corpus, bucket: str) -> Corpus:
    """Fill the bucket name into large-data paths (the corpus is written before it is known)."""
    objects = []
    for key, body in corpus.objects:
        if "/data/" not in key:
            text = gzip.decompress(body).replace(b"s3://{bucket}/", f"s3://{bucket}/".encode())
            body = gz(text)
        objects.append((key, body))
    return replace(corpus, objects=objects)
