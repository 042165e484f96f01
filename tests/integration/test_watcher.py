"""The stopped-emitting watcher on the local stack: a deploy does not page, a quiet night does not
page, logs arriving with a broken scorer do.

A new stack's bucket notification makes S3 send its test event, which reaches every queue and is
skipped: before, SQS's received count with no object scored read as a broken scorer, and the
"monitoring pipeline unhealthy" composite paged about a minute after every deploy. Messages that
name no log object are now counted by the service (``MessagesWithoutLogObject``) and taken off
SQS's count; a scorer whose metrics never arrive takes nothing off."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from llmmon.alarm_eval import ALARM, OK
from llmmon.local.corpus import generate, with_bucket
from llmmon.local.endpoint import client
from llmmon.local.stack import (
    LocalConfig,
    LocalStack,
    alarm_engine,
    alarm_set,
    publish_queue_metrics,
    put_log_objects,
    wait_until_drained,
)
from llmmon_shared.spec import discover

pytestmark = pytest.mark.integration

SERVICES = {"traffic": discover()["traffic"]}


def states(stack: LocalStack, config: LocalConfig) -> dict[str, str]:
    topology = stack.topology
    assert topology is not None
    cloudwatch = client("cloudwatch", topology.endpoint)
    engine = alarm_engine(topology, alarm_set(topology, config, SERVICES, cloudwatch))
    publish_queue_metrics(topology)
    engine.evaluate()
    return dict(engine.states)


def received_test_event(stack: LocalStack) -> float:
    """SQS's received count on the service's queue (the worker publishes it), once the test
    event was taken."""
    topology = stack.topology
    assert topology is not None
    cloudwatch = client("cloudwatch", topology.endpoint)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="NumberOfMessagesReceived",
            Dimensions=[
                {"Name": "QueueName", "Value": topology.queues["traffic"].rsplit("/", 1)[-1]}
            ],
            StartTime=datetime.fromtimestamp(time.time() - 3600, UTC),
            EndTime=datetime.fromtimestamp(time.time() + 60, UTC),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        if points:
            return float(sum(p["Sum"] for p in points))
        time.sleep(0.5)
    raise AssertionError("the test event never reached the queue")


def run(config: LocalConfig, check: Any) -> None:
    stack = LocalStack(config, SERVICES)
    stack.start()
    try:
        check(stack)
    finally:
        stack.stop()


def test_a_deploy_and_a_quiet_night__do_not_page() -> None:
    config = LocalConfig(prefix="deploy", visibility_timeout_s=1, batching_window_s=0.2)

    def check(stack: LocalStack) -> None:
        assert stack.topology is not None
        assert received_test_event(stack) >= 1  # S3's test event, as on every deploy
        wait_until_drained(stack.topology, timeout=60)
        deployed = states(stack, config)
        assert deployed["deploy-traffic-NoObjectsScored"] == ALARM  # nothing scored, as expected
        assert deployed["deploy-traffic-MessagesReceived"] == OK  # the test event taken off
        assert deployed["deploy-traffic-StoppedEmitting"] == OK
        assert deployed["deploy-monitoring-pipeline-unhealthy"] == OK
        time.sleep(2)  # a quiet night: no traffic at all
        assert states(stack, config)["deploy-monitoring-pipeline-unhealthy"] == OK

    run(config, check)


def test_logs_arriving_with_a_broken_scorer__page() -> None:
    """The worker's metrics go to another namespace (as a sink writing nowhere would): its own
    counts never arrive, so nothing is taken off SQS's received count."""
    config = LocalConfig(
        prefix="broken",
        visibility_timeout_s=1,
        batching_window_s=0.2,
        extra_env={"LLMMON_NAMESPACE": "somewhere-else"},
    )

    def check(stack: LocalStack) -> None:
        topology = stack.topology
        assert topology is not None
        corpus = with_bucket(generate(datetime.now(UTC), minutes=5, seed=3), topology.bucket)
        put_log_objects(topology, corpus.objects)
        wait_until_drained(topology, timeout=120)
        found = states(stack, config)
        assert found["broken-traffic-MessagesReceived"] == ALARM
        assert found["broken-traffic-StoppedEmitting"] == ALARM
        assert found["broken-monitoring-pipeline-unhealthy"] == ALARM

    run(config, check)
