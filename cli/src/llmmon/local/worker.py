"""A worker plays Lambda's SQS event source mapping for one service, against the local endpoint.

It long-polls its queue, gathers a batch (up to ``batch_size`` messages, for at most the
batching window after the first one), hands the handler the event Lambda would (``Records`` of
SQS messages with ``messageId``, ``receiptHandle``, ``body``, ``attributes``, ...), then deletes
only the messages the handler did not report in ``batchItemFailures``. Reported failures stay in
the queue: they come back after the visibility timeout, and the queue's redrive policy moves them
to the dead-letter queue after ``maxReceiveCount`` receives, as in AWS. A handler that raises fails
the whole batch (nothing deleted), counted as a Lambda ``Errors`` datapoint.

Run as ``python -m llmmon.local.worker SERVICE QUEUE_URL`` with ``AWS_ENDPOINT_URL`` set.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmmon_shared.spec import discover


@dataclass
class LambdaContext:
    """The parts of Lambda's context object handlers read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, from a ReceiveMessage result."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class Worker:
    def __init__(
        self, service: str, queue_url: str, function_name: str, namespace_lambda: str = "AWS/Lambda"
    ) -> None:
        from llmmon_shared.aws import client

        self.spec = discover()[service]
        self.handler = importlib.import_module(self.spec.module)
        self.sqs = client("sqs")
        self.cloudwatch = client("cloudwatch")
        self.queue_url = queue_url
        self.function_name = function_name
        self.namespace_lambda = namespace_lambda
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]
        self.queue_arn = attributes["QueueArn"]
        self.region = self.queue_arn.split(":")[3]
        self.batch_size = int(os.environ.get("LLMMON_LOCAL_BATCH_SIZE", self.spec.batch_size))
        self.window_s = float(
            os.environ.get("LLMMON_LOCAL_BATCHING_WINDOW_S", self.spec.batching_window_s)
        )
        self.running = True
        # Lambda's init phase: the pipeline (settings, models) is built before the first
        # invocation, so its time does not count against the function timeout.
        if hasattr(self.handler, "pipeline"):
            self.handler.pipeline()

    def gather(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        first_at: float | None = None
        while self.running and len(messages) < self.batch_size:
            if first_at is not None and time.monotonic() - first_at >= self.window_s:
                break
            wait = (
                1
                if first_at is None
                else max(0, min(1, self.window_s - (time.monotonic() - first_at)))
            )
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                WaitTimeSeconds=int(wait),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            if received and first_at is None:
                first_at = time.monotonic()
            messages.extend(received)
            if not received and first_at is not None and self.window_s <= 0:
                break
        return messages

    def received(self, messages: list[dict[str, Any]]) -> None:
        """What AWS/SQS would publish: messages received from the queue, and the age of the
        oldest one received (SQS receives roughly oldest first: the queue's oldest message, as
        far as the local endpoint can tell; moto does not compute it)."""
        now = datetime.now(UTC)
        sent = [
            int(m.get("Attributes", {}).get("SentTimestamp", 0)) / 1000
            for m in messages
            if m.get("Attributes", {}).get("SentTimestamp")
        ]
        dimensions = [{"Name": "QueueName", "Value": self.queue_url.rsplit("/", 1)[-1]}]
        data: list[dict[str, Any]] = [
            {
                "MetricName": "NumberOfMessagesReceived",
                "Dimensions": dimensions,
                "Value": len(messages),
                "Unit": "Count",
                "Timestamp": now,
            }
        ]
        if sent:
            data.append(
                {
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": dimensions,
                    "Value": max(0.0, now.timestamp() - min(sent)),
                    "Unit": "Seconds",
                    "Timestamp": now,
                }
            )
        self.cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=data)

    def invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        """Run the handler on one batch; returns the ids of failed messages."""
        event = {"Records": [sqs_record(m, self.queue_arn, self.region) for m in messages]}
        timeout = float(os.environ.get("LLMMON_LOCAL_TIMEOUT_S", self.spec.timeout_s))
        context = LambdaContext(
            self.function_name,
            self.spec.memory_mb,
            f"arn:aws:lambda:{self.region}:000000000000:function:{self.function_name}",
            str(uuid.uuid4()),
            time.monotonic() + timeout,
        )
        errors = 0
        try:
            response = self.handler.lambda_handler(event, context)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception as exc:
            logging.getLogger("llmmon").error(
                "invocation failed",
                extra={
                    "messages": len(messages),
                    "error": type(exc).__name__,
                    "detail": str(exc).splitlines()[0][:200] if str(exc) else "",
                },
            )
            failed = {m["MessageId"] for m in messages}
            errors = 1
        self._lambda_metrics(errors)
        return failed

    def _lambda_metrics(self, errors: int) -> None:
        now = datetime.now(UTC)
        dims = [{"Name": "FunctionName", "Value": self.function_name}]
        self.cloudwatch.put_metric_data(
            Namespace=self.namespace_lambda,
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": dims,
                    "Value": 1,
                    "Unit": "Count",
                    "Timestamp": now,
                },
                {
                    "MetricName": "Errors",
                    "Dimensions": dims,
                    "Value": errors,
                    "Unit": "Count",
                    "Timestamp": now,
                },
            ],
        )

    def delete(self, messages: list[dict[str, Any]], failed: set[str]) -> None:
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )

    def run(self) -> None:
        while self.running:
            try:
                messages = self.gather()
                if messages:
                    self.received(messages)
                    self.delete(messages, self.invoke(messages))
            except Exception:
                if not self.running:  # stopping: the endpoint may already be gone
                    return
                raise


class KeyValueFormatter(logging.Formatter):
    """``time LEVEL [service] message key=value ...``: the ``extra`` fields the pipeline logs
    (service, object, error, reason) shown on the line, as Lambda's JSON log format would."""

    STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s [{service}] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in self.STANDARD}
        return super().format(record) + "".join(f" {k}={v}" for k, v in extras.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service")
    parser.add_argument("queue_url")
    parser.add_argument("--function-name", required=True)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter(args.service))
    logging.basicConfig(level=os.environ.get("LLMMON_LOG_LEVEL", "WARNING"), handlers=[handler])
    # The stop handlers come first: a stop that arrives while the handler module loads (seconds)
    # ends the worker quietly, whatever call it interrupts.
    stop_state: dict[str, Any] = {"stopped": False, "worker": None}

    def stop(*_: Any) -> None:
        stop_state["stopped"] = True
        if stop_state["worker"] is not None:
            stop_state["worker"].running = False

    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, stop)
    try:
        worker = Worker(args.service, args.queue_url, args.function_name)
    except Exception:
        if stop_state["stopped"]:  # the endpoint may already be gone
            return 0
        raise
    stop_state["worker"] = worker
    if stop_state["stopped"]:
        return 0
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
