"""Fault injection against the local stack (moto server, real worker processes).

Each scenario runs a fresh stack, writes a corpus whose good interactions are known, injects one
fault, waits until every queue is drained, then checks with the local CloudWatch that each
service's SampleCount equals the number of good interactions exactly (nothing lost, nothing
counted twice), that poison sits in the dead-letter queues, and that the DLQ alarms fire.
"""

from __future__ import annotations

import gzip
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from llmmon.alarm_eval import ALARM
from llmmon.local.corpus import Corpus, generate, gz, object_key, with_bucket
from llmmon.local.endpoint import client
from llmmon.local.stack import (
    LocalConfig,
    LocalStack,
    Topology,
    alarm_engine,
    alarm_set,
    publish_queue_metrics,
    put_log_objects,
    queue_depths,
    wait_until_drained,
)
from llmmon_shared.spec import discover
from llmmon_shared.text import is_sampled

pytestmark = pytest.mark.integration

METRIC = {
    "similarity": "PromptResponseSimilarity",
    "comprehend": "Toxicity",
    "refusal": "Refusal",
    "traffic": "GuardrailIntervened",
    "attacks": "PromptAttack",
    "privacy": "SensitiveDataInPrompt",
}
READS_EVERY_CALL = {"traffic", "attacks", "privacy"}
"""Services that judge a call whose answer a guardrail withheld: the log itself (traffic), the
prompt (attacks, privacy)."""


def expected(corpus: Corpus) -> dict[str, int]:
    """Per service, the values a corpus must give exactly once: every interaction for traffic,
    every interaction whose response is the model's for the services that score responses."""
    return {
        s: corpus.interactions if s in READS_EVERY_CALL else corpus.scored_responses for s in METRIC
    }


FAST = LocalConfig(
    prefix="faults",
    visibility_timeout_s=1,
    batching_window_s=0.3,
    max_receive_count=3,
    # Every idempotency and checkpoint write is held to the invocation's time left: a timeout
    # shorter than a loaded 2-core machine needs for a batch of ten objects would fail messages
    # for lack of time, three receives would send them to the DLQ, and that is not the fault
    # under test. (The deployed functions have 60 to 300 s.)
    function_timeout_s=20,
)


@dataclass
class Run:
    stack: LocalStack
    topology: Topology
    corpus: Corpus
    start: datetime


def start(config: LocalConfig, minutes: int = 10, now: datetime | None = None) -> Run:
    now = now or datetime.now(UTC)
    stack = LocalStack(config, discover())
    topology = stack.start()
    corpus = with_bucket(generate(now, minutes=minutes, seed=11), topology.bucket)
    return Run(stack, topology, corpus, now - timedelta(minutes=minutes + 2))


def sample_counts(run: Run) -> dict[str, int]:
    cloudwatch = client("cloudwatch", run.topology.endpoint)
    end = datetime.now(UTC) + timedelta(minutes=2)
    counts = {}
    for service, metric in METRIC.items():
        total = 0
        for model in run.corpus.models:
            points = cloudwatch.get_metric_statistics(
                Namespace="llmmon",
                MetricName=metric,
                Dimensions=[{"Name": "ModelId", "Value": model}],
                StartTime=run.start,
                EndTime=end,
                Period=60,
                Statistics=["SampleCount"],
            )["Datapoints"]
            total += int(sum(p["SampleCount"] for p in points))
        counts[service] = total
    return counts


def dlq_alarms_fire(run: Run) -> bool:
    cloudwatch = client("cloudwatch", run.topology.endpoint)
    alarms = alarm_set(
        run.topology, LocalConfig(prefix="faults", models=("none",)), discover(), cloudwatch
    )
    engine = alarm_engine(run.topology, alarms)
    publish_queue_metrics(run.topology)
    engine.evaluate()
    return (
        all(engine.states[f"faults-{s}-DeadLetterQueueNotEmpty"] == ALARM for s in METRIC)
        and engine.states["faults-monitoring-pipeline-unhealthy"] == ALARM
    )


def event_body(bucket: str, key: str, etag: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": key, "size": 100, "eTag": etag},
                    },
                }
            ]
        }
    )


def publish(topology: Topology, keys: Sequence[str]) -> None:
    """The S3 event of each key once more, as SNS or S3 redeliver it (same object, same ETag;
    an ETag made up when the object does not exist)."""
    sns, s3 = client("sns", topology.endpoint), client("s3", topology.endpoint)
    for key in keys:
        try:
            etag = s3.head_object(Bucket=topology.bucket, Key=key)["ETag"].strip('"')
        except Exception:
            etag = "0123456789abcdef0123456789abcdef"
        sns.publish(TopicArn=topology.log_topic_arn, Message=event_body(topology.bucket, key, etag))


def messages_for(corpus_objects: Sequence[tuple[str, bytes]], extra: int = 0) -> int:
    return (len(corpus_objects) + extra) * len(METRIC)


def test_every_message_delivered_twice__is_counted_once() -> None:
    run = start(FAST)
    try:
        put_log_objects(run.topology, run.corpus.objects)
        publish(run.topology, [k for k, _ in run.corpus.objects])  # each event a second time
        wait_until_drained(run.topology, timeout=120)
        assert sample_counts(run) == expected(run.corpus)
        assert all(dlq == 0 for _, _, dlq in queue_depths(run.topology).values())
    finally:
        run.stack.stop()


def test_ten_percent_poison__lands_in_the_dlqs_and_the_rest_is_counted() -> None:
    run = start(FAST, minutes=45)
    rng = random.Random(3)
    try:
        log_objects = [k for k, _ in run.corpus.objects if "/data/" not in k]
        assert len(log_objects) == 9
        now = datetime.now(UTC)
        poison = [
            (object_key("bedrock", now, rng), gzip.compress(b'{"a": 1}\n' * 50)[:-30]),
        ]  # truncated gzip: 1 of 10 objects
        put_log_objects(run.topology, run.corpus.objects + poison)
        wait_until_drained(run.topology, expected_dlq=len(poison), timeout=120)
        assert sample_counts(run) == expected(run.corpus)
        assert all(dlq == len(poison) for _, _, dlq in queue_depths(run.topology).values())
        assert dlq_alarms_fire(run)
    finally:
        run.stack.stop()


def test_wrong_schema_object__is_poison_too() -> None:
    run = start(FAST)
    try:
        key = object_key("bedrock", datetime.now(UTC), random.Random(5))
        put_log_objects(run.topology, [*run.corpus.objects, (key, gz(b"id,text\n1,hello\n"))])
        wait_until_drained(run.topology, expected_dlq=1, timeout=120)
        assert sample_counts(run) == expected(run.corpus)
        assert dlq_alarms_fire(run)
    finally:
        run.stack.stop()


def test_thirty_percent_throttled_backend_calls__nothing_lost() -> None:
    config = LocalConfig(
        prefix="faults",
        visibility_timeout_s=2,
        batching_window_s=0.3,
        max_receive_count=3,
        function_timeout_s=20,
        extra_env={"LLMMON_FAULT_THROTTLE_RATE": "0.3"},
    )
    run = start(config)
    try:
        put_log_objects(run.topology, run.corpus.objects)
        wait_until_drained(run.topology, timeout=180)
        assert sample_counts(run) == expected(run.corpus)
        assert all(dlq == 0 for _, _, dlq in queue_depths(run.topology).values())
    finally:
        run.stack.stop()


def test_worker_killed_mid_batch_and_restarted__nothing_lost_nothing_twice() -> None:
    config = LocalConfig(
        prefix="faults",
        visibility_timeout_s=2,
        batching_window_s=0.3,
        max_receive_count=20,
        function_timeout_s=4,
    )
    run = start(config, minutes=30)
    try:
        put_log_objects(run.topology, run.corpus.objects)
        deadline = time.monotonic() + 60
        while queue_depths(run.topology)["similarity"][1] == 0:  # wait for messages in flight
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)
        run.stack.restart_worker("similarity")
        wait_until_drained(run.topology, timeout=180)
        assert sample_counts(run) == expected(run.corpus)
    finally:
        run.stack.stop()


def test_object_deleted_before_it_is_read__goes_to_the_dlq() -> None:
    run = start(FAST)
    try:
        put_log_objects(run.topology, run.corpus.objects)
        publish(run.topology, [object_key("bedrock", datetime.now(UTC), random.Random(9))])
        wait_until_drained(run.topology, expected_dlq=1, timeout=120)
        assert sample_counts(run) == expected(run.corpus)
        assert dlq_alarms_fire(run)
    finally:
        run.stack.stop()


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def big_object(target_bytes: int, rng: random.Random) -> tuple[bytes, list[str], int]:
    """Gzip JSON lines of about ``target_bytes`` (uncompressed), long Claude answers."""
    lines, ids, size = [], [], 0
    words = ["river", "mountain", "signal", "harbour", "quiet", "engine", "lantern", "copper"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    while size < target_bytes:
        request_id = f"{rng.getrandbits(128):032x}"
        answer = " ".join(rng.choice(words) for _ in range(3000))
        record = {
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": now,
            "requestId": request_id,
            "operation": "InvokeModel",
            "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
            "input": {
                "inputBodyJson": {
                    "anthropic_version": "bedrock-2023-05-31",
                    "max_tokens": 4000,
                    "messages": [{"role": "user", "content": "Tell a story."}],
                }
            },
            "output": {
                "outputBodyJson": {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "text", "text": answer}],
                }
            },
        }
        line = json.dumps(record).encode() + b"\n"
        lines.append(line)
        ids.append(request_id)
        size += len(line)
    return gz(b"".join(lines)), ids, size


def test_fifty_megabyte_object__memory_stays_bounded() -> None:
    """Peak memory depends on the batch (interactions per scorer call, tokens per forward pass),
    not on the object: after a 50 MB object every worker stays under the 512 MB service target
    and well below what holding the object would take (onnxruntime's arena may still grow a
    little for tensor shapes it has not seen)."""
    rate = 0.05
    config = LocalConfig(
        prefix="faults",
        visibility_timeout_s=120,
        batching_window_s=0.3,
        function_timeout_s=120,
        extra_env={"LLMMON_SAMPLE_RATE": str(rate), "LLMMON_BATCH_SIZE": "8"},
    )
    run = start(config, minutes=5)
    rng = random.Random(1)
    try:
        warm, warm_ids, _ = big_object(5 * 1024 * 1024, rng)
        put_log_objects(run.topology, [(object_key("bedrock", datetime.now(UTC), rng), warm)])
        wait_until_drained(run.topology, timeout=240)
        before = {name: peak_rss_mb(p.pid) for name, p in run.stack.workers.items()}
        body, ids, size = big_object(50 * 1024 * 1024, rng)
        assert size >= 50 * 1024 * 1024
        put_log_objects(run.topology, [(object_key("bedrock", datetime.now(UTC), rng), body)])
        wait_until_drained(run.topology, timeout=300)
        after = {name: peak_rss_mb(p.pid) for name, p in run.stack.workers.items()}
        sampled = sum(is_sampled(i, rate) for i in warm_ids + ids)
        counts = sample_counts(
            Run(
                run.stack,
                run.topology,
                Corpus(models=["anthropic.claude-3-haiku-20240307-v1:0"]),
                run.start,
            )
        )
        assert counts == dict.fromkeys(METRIC, sampled)
        print(f"peak RSS MB after 5 MB object: {before}; after 50 MB object: {after}")
        for name in METRIC:
            assert after[name] < 512, (name, after[name])
            assert after[name] - before[name] < 120, (name, before[name], after[name])
    finally:
        run.stack.stop()
