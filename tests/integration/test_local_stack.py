"""The local stack for real: moto in server mode on a free loopback port, one worker process per
service, the handlers fed Lambda's event shape, metrics in the local CloudWatch."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from llmmon.alarm_eval import ALARM
from llmmon.local.endpoint import client
from llmmon.local.stack import (
    LocalConfig,
    LocalStack,
    alarm_engine,
    alarm_set,
    publish_queue_metrics,
    put_log_objects,
    read_inbox,
    wait_until_drained,
)
from llmmon_shared.spec import discover
from tests.conftest import FIXTURES, fixture_key

pytestmark = pytest.mark.integration
CONFIG = LocalConfig(
    prefix="itest",
    visibility_timeout_s=1,
    max_receive_count=2,
    batching_window_s=0.5,
    suppressor_wait_s=0,
)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(CONFIG, discover())
    local.start()
    try:
        yield local
    finally:
        local.stop()


def fixture_object(tag: str, prefix: str = "bedrock") -> tuple[str, bytes]:
    key = fixture_key(tag)
    return f"{prefix}/{key}", (FIXTURES / key).read_bytes()


def metric_names(endpoint: str, namespace: str = "llmmon") -> set[str]:
    cloudwatch = client("cloudwatch", endpoint)
    names: set[str] = set()
    for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace):
        names.update(m["MetricName"] for m in page["Metrics"])
    return names


def test_log_object__becomes_metrics_of_all_three_services(stack: LocalStack) -> None:
    topology = stack.topology
    assert topology is not None
    put_log_objects(topology, [fixture_object("nova"), fixture_object("claude-messages")])
    wait_until_drained(topology, timeout=90)
    names = metric_names(topology.endpoint)
    for spec in discover().values():
        assert {
            m.name
            for m in spec.emitted()  # the lean default set: the detail scores are opt-in
            if not m.name.startswith(
                (
                    "Prompt",
                    "Scoring",
                    "ToxicityG",
                    "ToxicityH",
                    "ToxicityI",
                    "ToxicityS",
                    "ToxicityV",
                    "ToxicityB",  # the cascade's (managed path) only
                    "ToxicityL",
                    "Canary",  # canary traffic only
                )
            )
        } <= names
    cloudwatch = client("cloudwatch", topology.endpoint)
    now = datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace="llmmon",
        MetricName="Interactions",
        Dimensions=[
            {"Name": "Service", "Value": "refusal"},
            {"Name": "ModelId", "Value": "us.amazon.nova-lite-v1:0"},
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
        Period=600,
        Statistics=["Sum"],
    )
    assert sum(p["Sum"] for p in stats["Datapoints"]) == 1
    assert stack.workers_alive()


def test_corrupt_object__lands_in_every_dead_letter_queue(stack: LocalStack) -> None:
    topology = stack.topology
    assert topology is not None
    put_log_objects(topology, [fixture_object("truncated")])
    depths = wait_until_drained(topology, expected_dlq=1, timeout=90)
    assert all(dlq == 1 for _, _, dlq in depths.values())
    sqs = client("sqs", topology.endpoint)
    for url in topology.dead_letter_queues.values():
        (message,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], VisibilityTimeout=0)[
            "Messages"
        ]
        assert "truncated" in json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"]
        assert int(message["Attributes"]["ApproximateReceiveCount"]) > CONFIG.max_receive_count


def test_breaching_data__alarm_fires_and_notifies_the_alarm_topic(stack: LocalStack) -> None:
    topology = stack.topology
    assert topology is not None
    cloudwatch = client("cloudwatch", topology.endpoint)
    now = datetime.now(UTC)
    model = "test.breaching-model-v1"
    cloudwatch.put_metric_data(
        Namespace="llmmon",
        MetricData=[
            {
                "MetricName": "Refusal",
                "Dimensions": [{"Name": "ModelId", "Value": model}],
                "Values": [1.0],
                "Counts": [25],  # enough samples per period for a ratio alarm to judge it
                "Timestamp": now - timedelta(minutes=minutes),
            }
            for minutes in (0, 5, 10)
        ],
    )
    alarms = alarm_set(
        topology, LocalConfig(prefix="itest", models=(model,)), discover(), cloudwatch
    )
    engine = alarm_engine(topology, alarms)
    publish_queue_metrics(topology)
    engine.evaluate()
    refusal_alarm = f"itest-refusal-HighRefusalRatio-{model}"
    assert engine.states[refusal_alarm] == ALARM
    stored = cloudwatch.describe_alarms(AlarmNames=[refusal_alarm])["MetricAlarms"]
    assert stored == [] or stored[0]["StateValue"] == ALARM
    # The DLQs hold the corrupt object from the previous test: the pipeline alarm fires too,
    # and suppresses the quality composite's notification.
    assert engine.states["itest-monitoring-pipeline-unhealthy"] == ALARM
    assert engine.states["itest-model-quality-degraded"] == ALARM
    notifications = read_inbox(topology)
    notified = {(n["AlarmName"], n["NewStateValue"]) for n in notifications}
    assert ("itest-monitoring-pipeline-unhealthy", ALARM) in notified
    assert ("itest-model-quality-degraded", ALARM) not in notified
    message = next(n for n in notifications if n["NewStateValue"] == ALARM)
    assert message["AlarmArn"].endswith(":alarm:itest-monitoring-pipeline-unhealthy")
    assert "DeadLetterQueueNotEmpty" in message["NewStateReason"]


def test_composite_rule__notifies_quality_once_the_pipeline_is_healthy(stack: LocalStack) -> None:
    topology = stack.topology
    assert topology is not None
    sqs = client("sqs", topology.endpoint)
    for url in topology.dead_letter_queues.values():
        sqs.purge_queue(QueueUrl=url)
    model = "test.quality-only-v1"
    cloudwatch = client("cloudwatch", topology.endpoint)
    now = datetime.now(UTC)
    cloudwatch.put_metric_data(
        Namespace="llmmon",
        MetricData=[
            {
                "MetricName": "Refusal",
                "Dimensions": [{"Name": "ModelId", "Value": model}],
                "Values": [1.0, 0.0],
                "Counts": [27, 3],  # a 0.9 ratio over 30 calls per period
                "Timestamp": now - timedelta(minutes=minutes),
            }
            for minutes in (0, 5)
        ],
    )
    config = LocalConfig(prefix="itest2", models=(model,), suppressor_wait_s=0)
    engine = alarm_engine(topology, alarm_set(topology, config, discover(), cloudwatch))
    publish_queue_metrics(topology)
    engine.evaluate()
    assert engine.states["itest2-monitoring-pipeline-unhealthy"] == "OK"
    notified = {(n["AlarmName"], n["NewStateValue"]) for n in read_inbox(topology)}
    assert ("itest2-model-quality-degraded", ALARM) in notified


def test_stop__leaves_nothing_listening() -> None:
    local = LocalStack(LocalConfig(prefix="stoptest"), discover())
    topology = local.start()
    port = int(topology.endpoint.rsplit(":", 1)[1])
    processes = [*local.workers.values(), local.server.process]
    local.stop()
    assert all(p is not None and p.poll() is not None for p in processes)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
