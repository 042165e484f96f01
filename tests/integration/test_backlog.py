"""A backlog on the local stack: traffic above the service's capacity for a while (a scorer slowed
to one batch a second, objects of 100 records arriving all at once) builds a queue; the backlog
alarm (``OldestMessageAge``, one 30 s period and a 10 s threshold so the test stays short)
fires, the queue drains, the alarm clears, and every interaction is counted exactly once with
nothing in the dead-letter queue. The worker's short timeout makes objects hand over midway and
messages it has no time for go back as new ones: none of that may reach the dead-letter queue.
(A message put back starts a new age; the backlog's age is that of the messages still waiting
to be received, which keep theirs.)"""

from __future__ import annotations

import gzip
import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from llmmon.alarm_eval import ALARM, OK
from llmmon.local.corpus import object_key
from llmmon.local.endpoint import client
from llmmon.local.stack import (
    LocalConfig,
    LocalStack,
    alarm_engine,
    alarm_set,
    publish_queue_metrics,
    put_log_objects,
    queue_depths,
)
from llmmon_shared.spec import discover

pytestmark = pytest.mark.integration

OBJECTS, RECORDS = 16, 100
MODEL = "amazon.titan-text-express-v1"


def log_object(n: int) -> bytes:
    lines = [
        json.dumps(
            {
                "schemaType": "ModelInvocationLog",
                "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "requestId": f"backlog-{n}-{r}",
                "modelId": MODEL,
                "input": {"inputBodyJson": {"inputText": "Where is Paris?"}},
                "output": {"outputBodyJson": {"results": [{"outputText": "In France."}]}},
            }
        ).encode()
        for r in range(RECORDS)
    ]
    return gzip.compress(b"\n".join(lines) + b"\n")


def test_traffic_over_capacity__backlog_alarm_fires_drains_and_clears() -> None:
    config = LocalConfig(
        prefix="backlog",
        visibility_timeout_s=2,
        batching_window_s=0.2,
        function_timeout_s=25,  # 20 s of work an invocation, then hand-over / put back
        extra_env={
            "LLMMON_FAULT_LATENCY_S": "3",  # per batch of 50: 6 s an object
            "LLMMON_BATCH_SIZE": "50",
            "LLMMON_LOCAL_BATCH_SIZE": "4",  # 24 s of work an invocation: the rest waits
        },
        oldest_message_age_s=10,
        backlog_period_s=30,  # one period; the worker publishes the age at each receive
        models=("none",),
    )
    services = {"traffic": discover()["traffic"]}
    stack = LocalStack(config, services)
    topology = stack.start()
    started = datetime.now(UTC)
    try:
        cloudwatch = client("cloudwatch", topology.endpoint)
        engine = alarm_engine(topology, alarm_set(topology, config, services, cloudwatch))
        backlog = "backlog-traffic-OldestMessageAge"
        rng = random.Random(1)
        now = datetime.now(UTC)
        put_log_objects(
            topology,
            [
                (object_key("bedrock", now + timedelta(seconds=n), rng), log_object(n))
                for n in range(OBJECTS)
            ],
        )
        states, fired_at, drained_at = [], None, None
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            publish_queue_metrics(topology)
            engine.evaluate()
            state = engine.states[backlog]
            states.append(state)
            if state == ALARM and fired_at is None:
                fired_at = time.monotonic()
            visible, in_flight, dlq = queue_depths(topology)["traffic"]
            assert dlq == 0, "a message reached the dead-letter queue"
            if not visible and not in_flight and drained_at is None:
                drained_at = time.monotonic()
            if drained_at is not None and fired_at is not None and state == OK:
                break
            time.sleep(2)
        assert fired_at is not None, f"the backlog alarm never fired: {states}"
        assert drained_at is not None, f"the queue never drained: {queue_depths(topology)}"
        assert engine.states[backlog] == OK, f"the backlog alarm did not clear: {states}"
        points = cloudwatch.get_metric_statistics(
            Namespace="llmmon",
            MetricName="GuardrailIntervened",
            Dimensions=[{"Name": "ModelId", "Value": MODEL}],
            StartTime=started - timedelta(minutes=5),
            EndTime=datetime.now(UTC) + timedelta(minutes=2),
            Period=60,
            Statistics=["SampleCount"],
        )["Datapoints"]
        assert int(sum(p["SampleCount"] for p in points)) == OBJECTS * RECORDS
        requeued = {
            reason: sum(
                p["Sum"]
                for p in cloudwatch.get_metric_statistics(
                    Namespace="llmmon",
                    MetricName="Requeued",
                    Dimensions=[
                        {"Name": "Reason", "Value": reason},
                        {"Name": "Service", "Value": "traffic"},
                    ],
                    StartTime=started - timedelta(minutes=5),
                    EndTime=datetime.now(UTC) + timedelta(minutes=2),
                    Period=60,
                    Statistics=["Sum"],
                )["Datapoints"]
            )
            for reason in ("deferred", "continuation")
        }
        # Four objects of 6 s each outrun a 20 s deadline: the rest went back on the queue.
        assert requeued["deferred"] + requeued["continuation"] > 0, requeued
    finally:
        stack.stop()
