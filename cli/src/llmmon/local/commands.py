"""``llmmon local up``, ``llmmon replay`` and ``llmmon alarms ...``."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmmon.alarm_eval import AlarmEngine, CloudWatchSource, models_in_history
from llmmon.local.demo import bar
from llmmon.local.endpoint import client
from llmmon.local.stack import (
    STATE_FILE,
    LocalConfig,
    LocalStack,
    Topology,
    alarm_engine,
    alarm_set,
    publish_queue_metrics,
    put_alarms,
)
from llmmon_shared.alarms import PIPELINE_UNHEALTHY, AlarmNames, AlarmSet, build_alarms
from llmmon_shared.events import classify_key
from llmmon_shared.spec import discover


def local_up(
    port: int,
    models: Sequence[str],
    alarm_interval: float,
    state_file: Path = STATE_FILE,
    duration: float | None = None,
) -> int:
    """Run the local stack until Ctrl-C (or ``duration`` seconds): workers drain the queues;
    every ``alarm_interval`` seconds queue metrics are published and alarms evaluated."""
    config = LocalConfig(models=tuple(models))
    stack = LocalStack(config)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        topology = stack.start(port)
        topology.save(state_file)
        print(f"llmmon local stack on {topology.endpoint}")
        print(f"  aws --endpoint-url {topology.endpoint} s3 ls s3://{topology.bucket}/")
        print(f"  log objects go under s3://{topology.bucket}/{topology.log_prefix}/AWSLogs/")
        for name in topology.queues:
            print(f"  {name:<11} queue {topology.queues[name]}")
            print(f"  {'':<11} dlq   {topology.dead_letter_queues[name]}")
        print(f"  alarm topic {topology.alarm_topic_arn} (inbox {topology.alarm_inbox_url})")
        print(f"  state: {state_file} (used by `llmmon replay` and `llmmon alarms`)")
        print("Press Ctrl-C to stop.", flush=True)
        cloudwatch = client("cloudwatch", topology.endpoint)
        engine: AlarmEngine | None = None
        started = time.monotonic()
        next_round = started + alarm_interval
        while not stopping:
            if duration is not None and time.monotonic() - started > duration:
                break
            if not stack.workers_alive():
                print("a worker exited; stopping", file=sys.stderr)
                return 1
            if time.monotonic() >= next_round:
                alarms = alarm_set(topology, config, stack.services, cloudwatch)
                put_alarms(cloudwatch, alarms, topology.alarm_topic_arn)
                if engine is None:
                    engine = alarm_engine(topology, alarms)
                engine.update(alarms)
                publish_queue_metrics(topology)
                for change in engine.evaluate():
                    note = (
                        " (notified)"
                        if change.notified
                        else (
                            f" (suppressed by {change.suppressed_by})"
                            if change.suppressed_by
                            else ""
                        )
                    )
                    print(
                        f"{change.time:%H:%M:%S} {change.alarm}: {change.old} -> "
                        f"{change.new}{note}",
                        flush=True,
                    )
                next_round = time.monotonic() + alarm_interval
            time.sleep(0.2)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        stack.stop()
        state_file.unlink(missing_ok=True)
        print("local stack stopped", flush=True)


def _s3_event(bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "llmmon-replay",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag},
                },
            }
        ]
    }


def replay(
    source: str,
    state_file: Path,
    topic_arn: str | None,
    endpoint: str | None,
    log_prefix: str | None,
) -> int:
    """A folder: upload its log objects into the local bucket (keys kept, the log prefix added
    when they start at AWSLogs/). ``s3://bucket/prefix``: publish an S3 event for every log
    object under the prefix to the log topic, as S3 would have (a backfill)."""
    if source.startswith("s3://"):
        import boto3

        bucket, _, prefix = source[5:].partition("/")
        if topic_arn is None:
            topology = Topology.load(state_file)
            topic_arn, endpoint = topology.log_topic_arn, endpoint or topology.endpoint
        s3 = client("s3", endpoint) if endpoint else boto3.client("s3")
        sns = client("sns", endpoint) if endpoint else boto3.client("sns")
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if classify_key(item["Key"], item["Size"]) is None:
                    keys.append((item["Key"], item["Size"], item["ETag"].strip('"')))
        for index, (key, size, etag) in enumerate(keys, 1):
            sns.publish(
                TopicArn=topic_arn,
                Message=json.dumps(_s3_event(bucket, key, size, etag)),
                Subject="Amazon S3 Notification",
            )
            bar(index, len(keys), "events published")
        print(f"published {len(keys)} S3 events for s3://{bucket}/{prefix} to {topic_arn}")
        return 0
    topology = Topology.load(state_file)
    root = Path(source)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    prefix = (log_prefix if log_prefix is not None else topology.log_prefix).strip("/")
    s3 = client("s3", topology.endpoint)
    data_first = sorted(files, key=lambda p: "/data/" not in p.as_posix())
    for index, path in enumerate(data_first, 1):
        relative = path.relative_to(root).as_posix() if root.is_dir() else path.name
        if "AWSLogs/" in relative:
            relative = relative[relative.index("AWSLogs/") :]
        key = f"{prefix}/{relative}" if prefix else relative
        s3.put_object(Bucket=topology.bucket, Key=key, Body=path.read_bytes())
        bar(index, len(data_first), "objects uploaded")
    print(f"uploaded {len(data_first)} objects to s3://{topology.bucket}/{prefix}")
    return 0


def _parse_overrides(items: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """``service.Alarm.field=value`` -> {service: {Alarm: {field: value}}}."""
    overrides: dict[str, dict[str, dict[str, Any]]] = {}
    for item in items:
        path, _, raw = item.partition("=")
        service, alarm, name = path.split(".")
        value: Any = json.loads(raw) if raw not in ("",) else raw
        overrides.setdefault(service, {}).setdefault(alarm, {})[name] = value
    return overrides


def backtest_alarms(
    namespace: str,
    models: Sequence[str],
    start: datetime,
    end: datetime,
    step_s: int,
    cloudwatch: Any,
    prefix: str,
    overrides: dict[str, dict[str, dict[str, Any]]],
    quality_only: bool = True,
) -> tuple[AlarmSet, AlarmEngine]:
    services = discover()
    models = list(models) or models_in_history(
        cloudwatch, namespace, [a.metric for s in services.values() for a in s.alarms]
    )
    alarms = build_alarms(services, models, namespace, AlarmNames(prefix), overrides=overrides)
    if quality_only:
        # Health metrics (AWS/SQS, AWS/Lambda) are not history worth replaying: keep the
        # quality alarms and their composite, without the suppressor it would point to.
        pipeline = AlarmNames(prefix).composite(PIPELINE_UNHEALTHY)
        alarms = replace(
            alarms,
            metric_alarms=tuple(a for a in alarms.metric_alarms if a.kind == "quality"),
            composites=tuple(
                replace(c, suppressor=None)
                for c in alarms.composites
                if not c.name.startswith(pipeline)
            ),
        )
    engine = AlarmEngine(alarms, CloudWatchSource(cloudwatch))
    moment = start
    while moment <= end:
        engine.evaluate(moment)
        moment += timedelta(seconds=step_s)
    return alarms, engine


def backtest(args: Any) -> int:
    import boto3

    if args.endpoint:
        cloudwatch = client("cloudwatch", args.endpoint)
    elif args.local:
        cloudwatch = client("cloudwatch", Topology.load(args.state).endpoint)
    else:
        cloudwatch = boto3.client("cloudwatch")
    end = datetime.now(UTC) if args.end is None else datetime.fromisoformat(args.end)
    start = (
        end - timedelta(hours=args.hours)
        if args.start is None
        else datetime.fromisoformat(args.start)
    )
    alarms, engine = backtest_alarms(
        args.namespace,
        args.models,
        start,
        end,
        args.step,
        cloudwatch,
        args.prefix,
        _parse_overrides(args.set),
        quality_only=not args.with_health,
    )
    print(
        f"backtest {start:%Y-%m-%d %H:%M} .. {end:%H:%M} UTC, every {args.step} s, "
        f"{len(alarms.metric_alarms)} alarms"
    )
    fired = 0
    for change in engine.history:
        if change.new == "INSUFFICIENT_DATA" and change.old == "INSUFFICIENT_DATA":
            continue
        marker = "FIRES " if change.new == "ALARM" else "clears" if change.old == "ALARM" else ""
        if change.new == "ALARM":
            fired += 1
        if marker:
            print(f"{change.time:%Y-%m-%d %H:%M}  {marker}  {change.alarm}")
            print(f"{'':>18}{change.reason[:150]}")
    print(f"{fired} alarm transitions to ALARM")
    print(
        json.dumps(
            {
                "alarms": len(alarms.metric_alarms),
                "fired": fired,
                "final": {k: v for k, v in engine.states.items() if v == "ALARM"},
            }
        )
    )
    return 0
