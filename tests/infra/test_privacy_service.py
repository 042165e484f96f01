"""The Pulumi program deploys the privacy service (Pulumi mocks, offline)."""

from __future__ import annotations

from llmmon_infra.config import StackConfig
from llmmon_privacy.spec import SERVICE
from tests.infra.conftest import run_stack

MODELS = ("anthropic.claude-3-haiku-20240307-v1:0",)


def test_queue_dead_letter_queue_function_and_alarms_per_model() -> None:
    config = StackConfig(stack="test", models=MODELS, alarm_emails=("oncall@example.com",))
    stack = run_stack(config, {SERVICE.name: SERVICE})
    queues = {q["name"] for q in stack.inputs("aws:sqs/queue:Queue")}
    assert {"llmmon-test-privacy", "llmmon-test-privacy-dlq"} <= queues
    (function,) = stack.inputs("aws:lambda/function:Function")
    assert function["handler"] == SERVICE.handler
    alarms = {a["name"] for a in stack.inputs("aws:cloudwatch/metricAlarm:MetricAlarm")}
    for alarm in SERVICE.alarms:
        assert any(alarm.name in name for name in alarms), alarm.name
