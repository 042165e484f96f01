"""``llmmon local up``: the stack's topology on moto, built from the same service declarations and
names as the Pulumi program, with one worker process per service playing Lambda.

What differs from AWS, on purpose: queues get a short visibility timeout (``visibility_timeout_s``,
default 2 s instead of 6x the function timeout) so that redelivery and the dead-letter queue show
up in seconds; metrics go through PutMetricData (moto ignores EMF); AWS/SQS queue depths and
AWS/Lambda errors, which AWS would publish, are published by the stack itself; the alarm engine
(:mod:`llmmon.alarm_eval`) plays CloudWatch's alarm evaluation, and an SQS queue subscribed to the
alarm topic plays the e-mail inbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmmon.alarm_eval import AlarmEngine, CloudWatchSource, Transition, cloudwatch_message
from llmmon.errors import CliError
from llmmon.local.endpoint import (
    ACCOUNT,
    CREDENTIALS,
    REGION,
    MotoServer,
    client,
    die_with_parent,
    queue_counts,
    stop_process,
)
from llmmon_shared.alarms import AlarmNames, AlarmSet, build_alarms
from llmmon_shared.spec import ServiceSpec, discover


@dataclass(frozen=True)
class LocalConfig:
    prefix: str = "llmmon-local"
    namespace: str = "llmmon"
    bucket: str = "llmmon-local-invocation-logs"
    log_prefix: str = "bedrock"
    models: tuple[str, ...] = ()
    """Models with quality alarms; empty: every model found in the metric history."""
    visibility_timeout_s: int = 2
    max_receive_count: int | None = None
    """Receives before the DLQ; None: each service's declaration."""
    batching_window_s: float | None = 1.0
    """None: each service's declaration (seconds of waiting per batch)."""
    suppressor_wait_s: int = 5
    idempotency: bool = True
    """Create the DynamoDB idempotency table and point the services at it."""
    function_timeout_s: int | None = None
    """None: each service's declared timeout (the in-progress expiry of idempotency records)."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """More environment for the workers (fault injection in tests, for example)."""
    alarm_overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    alarm_min_samples: int | None = None
    """Values a period needs before a ratio alarm judges it; None: the declarations' (20)."""
    oldest_message_age_s: int = 900
    """The backlog alarm's threshold (``oldestMessageAgeS`` of a stack)."""
    backlog_period_s: int | None = None
    """The backlog alarm's period, judged on one period alone; None: as deployed (60 s, 3 of
    3). Tests shorten it (the local workers publish the age at each receive)."""


@dataclass
class Topology:
    endpoint: str
    bucket: str
    log_prefix: str
    namespace: str
    prefix: str
    log_topic_arn: str
    alarm_topic_arn: str
    alarm_inbox_url: str
    queues: dict[str, str]
    dead_letter_queues: dict[str, str]
    functions: dict[str, str]
    idempotency_table: str | None = None
    alarm_history: str = ""
    """The file the stack's alarm engine records every state change in (one JSON line each):
    the local endpoint keeps no alarm history, and ``llmmon investigate`` needs the last ALARM
    episode after the alarm went back to OK."""
    pids: dict[str, int] = field(default_factory=dict)
    name: str = "default"
    owner_pid: int = 0
    """The ``llmmon`` process that started the stack and stops it."""
    started: str = ""
    settings: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per service, the ``LLMMON_*`` settings its worker runs with (``llmmon investigate``
    re-scores with them, as it reads a deployed function's configuration on AWS)."""

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Topology:
        if not path.exists():
            raise CliError(f"no local stack found ({path} is missing): run `llmmon local up`")
        return cls(**json.loads(path.read_text()))


def _queue_arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def provision(endpoint: str, config: LocalConfig, services: Mapping[str, ServiceSpec]) -> Topology:
    """Bucket, notification, log topic, per-service queue + DLQ + redrive + subscription, and
    the alarm topic with its inbox queue. Names come from AlarmNames, as in the Pulumi program."""
    names = AlarmNames(config.prefix)
    s3, sns, sqs = client("s3", endpoint), client("sns", endpoint), client("sqs", endpoint)
    s3.create_bucket(Bucket=config.bucket)
    log_topic = sns.create_topic(Name=f"{config.prefix}-invocation-logs")["TopicArn"]
    queues, dlqs, functions = {}, {}, {}
    for name, spec in services.items():
        dlq = sqs.create_queue(
            QueueName=names.dlq(name), Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)}
        )
        redrive = {
            "deadLetterTargetArn": _queue_arn(sqs, dlq["QueueUrl"]),
            "maxReceiveCount": str(config.max_receive_count or spec.max_receive_count),
        }
        queue = sqs.create_queue(
            QueueName=names.queue(name),
            Attributes={
                "VisibilityTimeout": str(config.visibility_timeout_s),
                "RedrivePolicy": json.dumps(redrive),
            },
        )
        sns.subscribe(
            TopicArn=log_topic,
            Protocol="sqs",
            Endpoint=_queue_arn(sqs, queue["QueueUrl"]),
            Attributes={"RawMessageDelivery": "true"},
        )
        queues[name], dlqs[name] = queue["QueueUrl"], dlq["QueueUrl"]
        functions[name] = names.function(name)
    prefix = config.log_prefix.strip("/")
    s3.put_bucket_notification_configuration(
        Bucket=config.bucket,
        NotificationConfiguration={
            "TopicConfigurations": [
                {
                    "TopicArn": log_topic,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {
                                    "Name": "prefix",
                                    "Value": f"{prefix}/AWSLogs/" if prefix else "AWSLogs/",
                                },
                                {"Name": "suffix", "Value": ".json.gz"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    alarm_topic = sns.create_topic(Name=f"{config.prefix}-alarms")["TopicArn"]
    inbox = sqs.create_queue(QueueName=f"{config.prefix}-alarm-inbox")["QueueUrl"]
    sns.subscribe(TopicArn=alarm_topic, Protocol="sqs", Endpoint=_queue_arn(sqs, inbox))
    table = None
    if config.idempotency:
        table = names.idempotency_table()
        dynamodb = client("dynamodb", endpoint)
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        dynamodb.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
        )
    return Topology(
        endpoint,
        config.bucket,
        config.log_prefix,
        config.namespace,
        config.prefix,
        log_topic,
        alarm_topic,
        inbox,
        queues,
        dlqs,
        functions,
        table,
    )


def worker_environment(
    endpoint: str, config: LocalConfig, spec: ServiceSpec, topology: Topology | None = None
) -> dict[str, str]:
    """What a worker's handler sees: the service's declared environment, switched to the local
    backends and the PutMetricData sink, pointed at the local endpoint."""
    env = {**os.environ, **CREDENTIALS, **spec.environment}
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "LLMMON_SINK": "putmetricdata",
            "LLMMON_NAMESPACE": config.namespace,
            "LLMMON_EMBEDDING_BACKEND": "local",
            "LLMMON_COMPREHEND_BACKEND": "local",
            "LLMMON_LOG_LEVEL": env.get("LLMMON_LOG_LEVEL", "WARNING"),
        }
    )
    if config.batching_window_s is not None:
        env["LLMMON_LOCAL_BATCHING_WINDOW_S"] = str(config.batching_window_s)
    if config.function_timeout_s is not None:
        env["LLMMON_LOCAL_TIMEOUT_S"] = str(config.function_timeout_s)
    if topology is not None:
        env["LLMMON_LOG_BUCKET"] = topology.bucket
        env["LLMMON_LOG_PREFIX"] = topology.log_prefix.strip("/")
    if topology is not None and topology.idempotency_table:
        env["LLMMON_IDEMPOTENCY_TABLE"] = topology.idempotency_table
        env["AWS_LAMBDA_FUNCTION_NAME"] = topology.functions[spec.name]
    env.update(config.extra_env)
    return env


def spawn_worker(
    topology: Topology, config: LocalConfig, spec: ServiceSpec, log: Any = None
) -> subprocess.Popen[bytes]:
    """One worker process for a service, in this process group; it dies with this process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmmon.local.worker",
            spec.name,
            topology.queues[spec.name],
            "--function-name",
            topology.functions[spec.name],
        ],
        env=worker_environment(topology.endpoint, config, spec, topology),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        preexec_fn=die_with_parent,
    )


def start_workers(
    topology: Topology, config: LocalConfig, services: Mapping[str, ServiceSpec], log: Any = None
) -> dict[str, subprocess.Popen[bytes]]:
    """One process per service; their logs go to ``log`` (a file) or to this stderr."""
    return {name: spawn_worker(topology, config, spec, log) for name, spec in services.items()}


def alarm_set(
    topology: Topology, config: LocalConfig, services: Mapping[str, ServiceSpec], cloudwatch: Any
) -> AlarmSet:
    from llmmon.alarm_eval import models_in_history

    models = list(config.models) or models_in_history(
        cloudwatch, config.namespace, [a.metric for s in services.values() for a in s.alarms]
    )
    alarms = build_alarms(
        services,
        models,
        config.namespace,
        AlarmNames(config.prefix),
        overrides=config.alarm_overrides,
        min_samples=config.alarm_min_samples,
        oldest_message_s=config.oldest_message_age_s,
    )
    if config.backlog_period_s is not None:
        alarms = replace(
            alarms,
            metric_alarms=tuple(
                replace(
                    a, period_s=config.backlog_period_s, evaluation_periods=1, datapoints_to_alarm=1
                )
                if a.metric == "ApproximateAgeOfOldestMessage"
                else a
                for a in alarms.metric_alarms
            ),
        )
    composites = tuple(
        replace(c, suppressor_wait_s=config.suppressor_wait_s) if c.suppressor else c
        for c in alarms.composites
    )
    return replace(alarms, composites=composites)


def put_alarms(cloudwatch: Any, alarms: AlarmSet, topic_arn: str) -> None:
    """Store the metric alarms in the local CloudWatch (moto keeps them; it has no composites)."""
    for alarm in alarms.metric_alarms:
        if alarm.anomaly_band is not None:
            continue
        cloudwatch.put_metric_alarm(
            AlarmName=alarm.name,
            AlarmDescription=alarm.description,
            Namespace=alarm.namespace,
            MetricName=alarm.metric,
            Statistic=alarm.statistic,
            Period=alarm.period_s,
            EvaluationPeriods=alarm.evaluation_periods,
            DatapointsToAlarm=alarm.datapoints_to_alarm,
            Threshold=alarm.threshold,
            ComparisonOperator=alarm.comparison,
            TreatMissingData=alarm.treat_missing_data,
            Dimensions=[{"Name": k, "Value": v} for k, v in alarm.dimensions.items()],
        )


def publish_queue_metrics(topology: Topology) -> None:
    """What AWS/SQS would publish: messages visible per queue (the DLQ alarm reads it), and an
    empty queue's oldest message age, 0 (the workers publish the age they see in the messages
    they receive: moto does not tell it)."""
    sqs, cloudwatch = client("sqs", topology.endpoint), client("cloudwatch", topology.endpoint)
    now = datetime.now(UTC)
    data = []
    for url in [*topology.queues.values(), *topology.dead_letter_queues.values()]:
        counts = queue_counts(sqs, url)
        dimensions = [{"Name": "QueueName", "Value": url.rsplit("/", 1)[-1]}]
        data.append(
            {
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": dimensions,
                "Value": float(counts["visible"]),
                "Unit": "Count",
                "Timestamp": now,
            }
        )
        if not any(counts.values()):
            data.append(
                {
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": dimensions,
                    "Value": 0.0,
                    "Unit": "Seconds",
                    "Timestamp": now,
                }
            )
    cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=data)


def queue_depths(topology: Topology) -> dict[str, tuple[int, int, int]]:
    """(visible, in flight, in the DLQ) per service."""
    sqs = client("sqs", topology.endpoint)
    depths = {}
    for name, url in topology.queues.items():
        counts = queue_counts(sqs, url)
        dlq = queue_counts(sqs, topology.dead_letter_queues[name])
        depths[name] = (counts["visible"], counts["in_flight"], dlq["visible"])
    return depths


def record_transition(path: Path, alarm: str, state: str, moment: datetime | None = None) -> None:
    """One line of the local stack's alarm history (alarm names and states only)."""
    line = {
        "time": (moment or datetime.now(UTC)).isoformat(timespec="seconds"),
        "alarm": alarm,
        "state": state,
    }
    with contextlib.suppress(OSError), path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")


def recorded_transitions(path: Path, alarm: str) -> list[tuple[datetime, str]]:
    """``(time, state)`` of ``alarm``'s changes recorded by :func:`record_transition`."""
    moves: list[tuple[datetime, str]] = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                item = json.loads(line)
                if item["alarm"] == alarm:
                    moves.append((datetime.fromisoformat(item["time"]), str(item["state"])))
    return moves


def alarm_engine(topology: Topology, alarms: AlarmSet) -> AlarmEngine:
    """An engine that sets states in the local CloudWatch and notifies the alarm topic."""
    cloudwatch, sns = client("cloudwatch", topology.endpoint), client("sns", topology.endpoint)
    descriptions = {c.name: c.description for c in alarms.composites}

    def notify(transition: Transition, _: Any) -> None:
        subject, message = cloudwatch_message(
            transition, None, ACCOUNT, REGION, descriptions.get(transition.alarm, "")
        )
        sns.publish(TopicArn=topology.alarm_topic_arn, Subject=subject, Message=message)

    def set_state(name: str, state: str, reason: str) -> None:
        with contextlib.suppress(Exception):  # anomaly alarms are not stored in moto
            cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason[:1023])
        if topology.alarm_history:
            record_transition(Path(topology.alarm_history), name, state)

    return AlarmEngine(alarms, CloudWatchSource(cloudwatch), notify=notify, set_state=set_state)


def read_inbox(topology: Topology) -> list[dict[str, Any]]:
    """Alarm notifications that reached the alarm topic (the stand-in for e-mail)."""
    sqs = client("sqs", topology.endpoint)
    found: list[dict[str, Any]] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=topology.alarm_inbox_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            envelope = json.loads(message["Body"])
            found.append({"Subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
            sqs.delete_message(
                QueueUrl=topology.alarm_inbox_url, ReceiptHandle=message["ReceiptHandle"]
            )


@dataclass
class LocalStack:
    """Everything started for the local stack; ``stop`` ends all of it."""

    config: LocalConfig = field(default_factory=LocalConfig)
    services: Mapping[str, ServiceSpec] = field(default_factory=discover)
    server: MotoServer = field(default_factory=MotoServer)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    topology: Topology | None = None
    log_path: Path | None = None
    _log: Any = None

    def start(self, port: int = 0, workers: bool = True, name: str = "default") -> Topology:
        self.server.port = port
        endpoint = self.server.start()
        try:
            self.topology = provision(endpoint, self.config, self.services)
            self.topology.name, self.topology.owner_pid = name, os.getpid()
            from llmmon.local.state import state_dir  # (state imports this module)

            history = state_dir() / f"{name}-alarm-history.jsonl"
            history.parent.mkdir(parents=True, exist_ok=True)
            history.write_text("")  # a new stack: a new history
            self.topology.alarm_history = str(history)
            self.topology.started = datetime.now(UTC).isoformat(timespec="seconds")
            self.topology.settings = {
                name: {
                    k: v
                    for k, v in worker_environment(
                        endpoint, self.config, spec, self.topology
                    ).items()
                    if k.startswith("LLMMON_")
                }
                for name, spec in self.services.items()
            }
            if workers:
                if self.log_path is not None:
                    self.log_path.parent.mkdir(parents=True, exist_ok=True)
                    self._log = self.log_path.open("ab")
                self.workers = start_workers(self.topology, self.config, self.services, self._log)
            self.topology.pids = {name: p.pid for name, p in self.workers.items()}
            if self.server.process is not None:
                self.topology.pids["moto"] = self.server.process.pid
        except BaseException:
            self.stop()
            raise
        return self.topology

    def stop(self) -> None:
        with signals_ignored():  # a second Ctrl-C must not cut the clean-up short
            for process in self.workers.values():
                stop_process(process)
            self.workers.clear()
            self.server.stop()
            if self._log is not None:
                self._log.close()
                self._log = None

    def restart_worker(self, name: str, kill: bool = True) -> None:
        """Kill a worker (SIGKILL, as a crashed Lambda would die) and start a new one."""
        assert self.topology is not None
        process = self.workers[name]
        if kill and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        self.workers[name] = spawn_worker(
            self.topology, self.config, self.services[name], self._log
        )

    def workers_alive(self) -> bool:
        return all(p.poll() is None for p in self.workers.values())

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP (a closed terminal) end the command as Ctrl-C does, with
    a KeyboardInterrupt, so one clean-up path stops everything the stack started."""
    if not _in_main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, interrupt) for s in STOP_SIGNALS if s != signal.SIGINT}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    if not _in_main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def running_stack(
    config: LocalConfig | None = None,
    port: int = 0,
    services: Mapping[str, ServiceSpec] | None = None,
) -> Iterator[LocalStack]:
    stack = LocalStack(config or LocalConfig(), services or discover())
    try:
        stack.start(port)
        yield stack
    finally:
        stack.stop()


def wait_until_drained(
    topology: Topology, expected_dlq: int = 0, timeout: float = 120.0, progress: Any = None
) -> dict[str, tuple[int, int, int]]:
    """Wait until every queue is empty and ``expected_dlq`` messages sit in each DLQ."""
    deadline = time.monotonic() + timeout
    while True:
        depths = queue_depths(topology)
        if progress is not None:
            progress(depths)
        if all(v == 0 and f == 0 and d >= expected_dlq for v, f, d in depths.values()):
            return depths
        if time.monotonic() > deadline:
            raise TimeoutError(f"queues not drained: {depths}")
        time.sleep(0.5)


def put_log_objects(topology: Topology, objects: Sequence[tuple[str, bytes]]) -> None:
    s3 = client("s3", topology.endpoint)
    for key, body in objects:
        s3.put_object(Bucket=topology.bucket, Key=key, Body=body)
