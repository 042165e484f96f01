"""``llmmon local up|status|down|env``, ``llmmon replay`` and ``llmmon alarms backtest``."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmmon.alarm_eval import (
    INSUFFICIENT,
    AlarmEngine,
    HistorySource,
    drift_scores,
    models_in_history,
)
from llmmon.errors import CliError, UsageError
from llmmon.local import state
from llmmon.local.endpoint import CREDENTIALS, REGION, PortBusyError, client
from llmmon.local.stack import (
    LocalConfig,
    LocalStack,
    Topology,
    alarm_engine,
    alarm_set,
    publish_queue_metrics,
    put_alarms,
    queue_depths,
    stop_on_signals,
)
from llmmon.terminal import bar, run_hint
from llmmon_shared.alarms import QUALITY_DEGRADED, AlarmNames, AlarmSet, build_alarms
from llmmon_shared.events import classify_key
from llmmon_shared.spec import discover


def environment(topology: Topology) -> dict[str, str]:
    """What makes the aws CLI and boto3 talk to the local stack, as printed by ``local env``."""
    return {
        "AWS_ENDPOINT_URL": topology.endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def local_up(
    name: str,
    port: int,
    models: Sequence[str],
    alarm_interval: float,
    duration: float | None = None,
) -> int:
    """Run the local stack until Ctrl-C, SIGTERM, SIGHUP or ``llmmon local down`` (or
    ``duration`` seconds): workers drain the queues; every ``alarm_interval`` seconds queue
    metrics are published and alarms evaluated."""
    existing = state.running().get(state.check_name(name))
    if existing is not None:
        raise CliError(
            f"a local stack named {name!r} is already running at {existing.endpoint} "
            f"(pid {existing.owner_pid}): stop it with `llmmon local down --stack {name}`, "
            "or start another one with --name"
        )
    config = LocalConfig(models=tuple(models))
    stack = LocalStack(config)
    recorded = False
    try:
        with stop_on_signals():
            try:
                topology = stack.start(port, name=name)
            except PortBusyError as exc:
                raise CliError(str(exc)) from None
            path = state.save(topology)
            recorded = True
            hint = f" --stack {name}" if name != state.DEFAULT_NAME else ""
            print(f"llmmon local stack {name!r} on {topology.endpoint}")
            print(f"  log objects go under s3://{topology.bucket}/{topology.log_prefix}/AWSLogs/")
            for service in topology.queues:
                print(f"  {service:<11} queue {topology.queues[service]}")
                print(f"  {'':<11} dlq   {topology.dead_letter_queues[service]}")
            print(f"  alarm topic {topology.alarm_topic_arn} (inbox {topology.alarm_inbox_url})")
            print(f"  state: {path}")
            print("In another terminal:")
            run = run_hint()
            print(f"  {run} replay tests/fixtures/logs{hint}   # put log objects in")
            print(f'  eval "$({run} local env{hint})"; aws s3 ls s3://{topology.bucket}/')
            print(f"  {run} local status{hint}; {run} local down{hint}")
            print("Press Ctrl-C to stop.", flush=True)
            _serve(stack, topology, config, alarm_interval, duration)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()
        if recorded:
            state.remove(name, os.getpid())
            print("local stack stopped", flush=True)


def _serve(
    stack: LocalStack,
    topology: Topology,
    config: LocalConfig,
    alarm_interval: float,
    duration: float | None,
) -> None:
    cloudwatch = client("cloudwatch", topology.endpoint)
    engine: AlarmEngine | None = None
    started = time.monotonic()
    next_round = started + alarm_interval
    while duration is None or time.monotonic() - started <= duration:
        dead = [n for n, p in stack.workers.items() if p.poll() is not None]
        if dead:
            raise CliError(f"the {', '.join(dead)} worker exited; stopping (see its log above)")
        if time.monotonic() >= next_round:
            alarms = alarm_set(topology, config, stack.services, cloudwatch)
            put_alarms(cloudwatch, alarms, topology.alarm_topic_arn)
            if engine is None:
                engine = alarm_engine(topology, alarms)
            engine.update(alarms)
            publish_queue_metrics(topology)
            for change in engine.evaluate():
                print(change.line(), flush=True)
            next_round = time.monotonic() + alarm_interval
        time.sleep(0.2)


def local_status(name: str | None) -> int:
    stacks = state.running()
    if name is not None:
        stacks = {name: state.find(name)}
    if not stacks:
        print("no local stack is running (start one with `llmmon local up`)")
        return 1
    for stack_name, topology in stacks.items():
        print(
            f"{stack_name}: {topology.endpoint}  pid {topology.owner_pid}  since {topology.started}"
        )
        try:
            depths = queue_depths(topology)
        except Exception as exc:  # the owner runs but its endpoint does not answer
            from llmmon.errors import describe

            print(f"  endpoint not answering: {describe(exc)}")
            continue
        for service, (visible, in_flight, dead) in depths.items():
            alive = state.alive(topology.pids.get(service, 0))
            print(
                f"  {service:<11} worker {'running' if alive else 'NOT RUNNING'}  "
                f"queue {visible} visible, {in_flight} in flight  dlq {dead}"
            )
    return 0


def local_down(name: str | None, every: bool, timeout: float = 30.0) -> int:
    targets = list(state.running().values()) if every else [state.find(name, to_stop=True)]
    if not targets:
        print("no local stack is running")
        return 0
    for topology in targets:
        os.kill(topology.owner_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while state.alive(topology.owner_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        leftovers = [p for p in [topology.owner_pid, *topology.pids.values()] if state.alive(p)]
        for pid in leftovers:  # the owner did not stop in time: end what it started
            os.kill(pid, signal.SIGKILL)
        state.remove(topology.name)
        print(f"stopped local stack {topology.name!r} ({topology.endpoint})")
    return 0


def local_aws(name: str | None, arguments: Sequence[str]) -> int:
    """``llmmon local aws ARGS``: the aws CLI (v1 or v2) with the stack's endpoint, region and
    credentials, as a process: usable from scripts and every shell."""
    import shutil

    if not arguments:
        raise UsageError("give the aws CLI's arguments: llmmon local aws s3 ls")
    topology = state.find(name)
    aws = shutil.which("aws")
    if aws is None:
        raise CliError(
            "the aws CLI is not installed (pip install awscli, or AWS's installer); boto3 and "
            "CLI v2 also work with the exports of `llmmon local env`"
        )
    env = {**os.environ, **environment(topology)}
    done = subprocess.run(
        [aws, "--endpoint-url", topology.endpoint, *arguments], env=env, check=False
    )
    return done.returncode


def local_env(name: str | None) -> int:
    topology = state.find(name)
    for key, value in environment(topology).items():
        print(f"export {key}={value}")
    # AWS CLI v2 (2.13 and later) and boto3 read AWS_ENDPOINT_URL; CLI v1 ignores it for some
    # services (SQS): `llmmon local aws ARGS` passes the endpoint explicitly (and, unlike an
    # alias, works in scripts). The alias stays for an interactive shell.
    print(f"alias aws-local='aws --endpoint-url {topology.endpoint}'")
    print("# in scripts: llmmon local aws sqs list-queues")
    print(f'# eval "$(llmmon local env)", then: aws s3 ls s3://{topology.bucket}/')
    print("# (with AWS CLI v1: aws-local sqs list-queues)")
    return 0


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


def backfill(source: str, topic_arn: str, endpoint: str | None, region: str | None) -> int:
    """Publish an S3 event for every log object under ``s3://bucket/prefix`` to the log topic,
    as S3 would have: every service scores them (a backfill against AWS, or a local stack)."""
    import boto3

    bucket, _, prefix = source[5:].partition("/")
    if not bucket:
        raise CliError(f"{source}: no bucket; write s3://BUCKET/PREFIX")
    s3 = client("s3", endpoint) if endpoint else boto3.client("s3", region_name=region)
    sns = client("sns", endpoint) if endpoint else boto3.client("sns", region_name=region)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if classify_key(item["Key"], item["Size"]) is None:
                keys.append((item["Key"], item["Size"], item["ETag"].strip('"')))
    if not keys:
        raise CliError(f"no log objects (*.json.gz outside data/) under {source}")
    for index, (key, size, etag) in enumerate(keys, 1):
        sns.publish(
            TopicArn=topic_arn,
            Message=json.dumps(_s3_event(bucket, key, size, etag)),
            Subject="Amazon S3 Notification",
        )
        bar(index, len(keys), "events published")
    print(f"published {len(keys)} S3 events for {source} to {topic_arn}")
    return 0


LOG_LAYOUT = "AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{time:%Y/%m/%d/%H}"
BODY_FIELDS = ("inputBodyS3Path", "outputBodyS3Path")


@dataclass
class ReplayPlan:
    """What ``replay`` puts where: (local file, key, bytes or None to send the file as it is)."""

    uploads: list[tuple[Path, str, bytes | None]] = field(default_factory=list)
    records_in: dict[Path, int] = field(default_factory=dict)
    bodies: int = 0
    missing_bodies: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)


def _lines(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as handle:
        yield from handle


def _first_record(path: Path) -> dict[str, Any] | None:
    try:
        for line in _lines(path):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "timestamp" in record:
                return record
    except (OSError, EOFError, zlib.error):
        return None
    return None


def _layout(record: dict[str, Any]) -> str:
    """The folder Bedrock writes a record's log object to (``AWSLogs/...`` up to the hour); empty
    when the record's timestamp is not a time."""
    try:
        stamp = datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00"))
    except ValueError:
        return ""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return LOG_LAYOUT.format(
        account=record.get("accountId") or "123456789012",
        region=record.get("region") or REGION,
        time=stamp.astimezone(UTC),
    )


def plan_replay(files: Sequence[Path], root: Path, bucket: str, prefix: str) -> ReplayPlan:
    """Keys under the bucket layout the notification expects, derived from each log object's
    first record (timestamp, account, region) unless its path already has that layout; large-data
    body paths rewritten into the local bucket, with the body files found under ``root``."""
    plan = ReplayPlan()
    base = f"{prefix}/" if prefix else ""
    by_name: dict[str, Path] = {}
    by_tail: dict[str, Path] = {}
    for path in files:
        by_name.setdefault(path.name, path)
        text = path.as_posix()
        if "AWSLogs/" in text:
            by_tail[text[text.index("AWSLogs/") :]] = path
    for path in files:
        text = path.relative_to(root).as_posix() if root.is_dir() else path.name
        if not path.name.endswith(".json.gz"):
            plan.skipped.append((path, "not a log object (.json.gz)"))
            continue
        if "/data/" in f"/{text}":
            continue  # a large-data body: uploaded where a record names it
        record = _first_record(path)
        if "AWSLogs/" in text:
            folder = text[text.index("AWSLogs/") :].rsplit("/", 1)[0]
        elif record is not None and _layout(record):
            folder = _layout(record)
        else:
            folder = LOG_LAYOUT.format(
                account="123456789012", region=REGION, time=datetime.now(UTC)
            )
        if record is None:
            plan.unreadable.append(path)
        key = f"{base}{folder}/{path.name}"
        plan.uploads.append(
            (path, key, _rewrite_bodies(path, bucket, base, plan, by_name, by_tail))
        )
    # A file that a record names as its large-data body is a body, wherever it lay.
    bodies = {path for path, key, _ in plan.uploads if "/data/" in key}
    plan.uploads = [u for u in plan.uploads if "/data/" in u[1] or u[0] not in bodies]
    plan.unreadable = [path for path in plan.unreadable if path not in bodies]
    return plan


def _records(plan: ReplayPlan) -> int:
    return sum(plan.records_in.get(path, 0) for path, key, _ in plan.uploads if "/data/" not in key)


def _rewrite_bodies(
    path: Path,
    bucket: str,
    base: str,
    plan: ReplayPlan,
    by_name: dict[str, Path],
    by_tail: dict[str, Path],
) -> bytes | None:
    """The object with every ``...BodyS3Path`` pointed into the local bucket (None: unchanged),
    and the bodies it names added to the plan."""
    try:
        lines = list(_lines(path))
    except (OSError, EOFError, zlib.error):
        return None
    changed = False
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if not isinstance(record, dict):
            out.append(line)
            continue
        plan.records_in[path] = plan.records_in.get(path, 0) + 1
        for name in BODY_FIELDS:
            for holder in (record.get("input"), record.get("output")):
                if isinstance(holder, dict) and isinstance(holder.get(name), str):
                    changed |= _rebase(holder, name, bucket, base, plan, by_name, by_tail)
        out.append((json.dumps(record) + "\n").encode())
    return gzip.compress(b"".join(out), mtime=0) if changed else None


def _rebase(
    holder: dict[str, Any],
    name: str,
    bucket: str,
    base: str,
    plan: ReplayPlan,
    by_name: dict[str, Path],
    by_tail: dict[str, Path],
) -> bool:
    original = holder[name]
    if not original.startswith("s3://"):
        return False
    old_key = original[5:].partition("/")[2]
    tail = old_key[old_key.index("AWSLogs/") :] if "AWSLogs/" in old_key else None
    local = by_tail.get(tail) if tail else None
    local = local or by_name.get(old_key.rsplit("/", 1)[-1])
    if local is None:
        plan.missing_bodies += 1
        return False
    key = f"{base}{tail}" if tail else f"{base}data/{local.name}"
    holder[name] = f"s3://{bucket}/{key}"
    if all(existing != key for _, existing, _ in plan.uploads):
        plan.uploads.insert(0, (local, key, None))  # bodies before the records that name them
        plan.bodies += 1
    return True


def replay(source: str, name: str | None) -> int:
    """Upload log objects (a file or a folder) into a local stack's bucket, laid out as Bedrock
    writes them under the prefix the bucket notification watches, so every service scores them."""
    topology = state.find(name)
    root = Path(source)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    prefix = topology.log_prefix.strip("/")
    plan = plan_replay(files, root, topology.bucket, prefix)
    logs = [u for u in plan.uploads if "/data/" not in u[1]]
    for path, reason in plan.skipped:
        print(f"skipped {path}: {reason}")
    if not logs:
        raise CliError(f"no log objects (*.json.gz) in {source}")
    s3 = client("s3", topology.endpoint)
    for index, (path, key, body) in enumerate(plan.uploads, 1):
        s3.put_object(Bucket=topology.bucket, Key=key, Body=body or path.read_bytes())
        bar(index, len(plan.uploads), "objects uploaded")
    watched = f"{prefix}/AWSLogs/" if prefix else "AWSLogs/"
    scored = [k for _, k, _ in logs if k.startswith(watched) and classify_key(k, 1) is None]
    folders = sorted({k.rsplit("/", 1)[0] for _, k, _ in logs})
    print(
        f"uploaded {len(logs)} log object(s) ({_records(plan)} records) and {plan.bodies} large "
        f"bodies to s3://{topology.bucket}/ under {', '.join(folders[:3])}"
        + (f" and {len(folders) - 3} more folders" if len(folders) > 3 else "")
    )
    print(
        f"{len(scored)} log object(s) are under s3://{topology.bucket}/{watched} and will be "
        f"scored by {len(topology.queues)} services ({', '.join(topology.queues)})"
    )
    if plan.missing_bodies:
        print(
            f"{plan.missing_bodies} large-data body paths name files not found in {source}: "
            "those records will be skipped as large-body-unavailable"
        )
    for path in plan.unreadable:
        print(
            f"{path}: no readable record; uploaded as it is (it will go to the dead-letter queues)"
        )
    return 0


def backtest_alarms(
    namespace: str,
    models: Sequence[str],
    start: datetime,
    end: datetime,
    step_s: int,
    cloudwatch: Any,
    prefix: str,
    overrides: Mapping[str, Mapping[str, Mapping[str, Any]]],
    quality_only: bool = True,
    progress: bool = False,
    min_samples: int | None = None,
) -> tuple[AlarmSet, AlarmEngine]:
    """Evaluate the alarm definitions (with overrides) at every ``step_s`` from ``start`` to
    ``end``. Each alarm's metric history is read once for the whole window."""
    services = discover()
    models = list(models) or models_in_history(
        cloudwatch, namespace, [a.metric for s in services.values() for a in s.alarms]
    )
    alarms = build_alarms(
        services,
        models,
        namespace,
        AlarmNames(prefix),
        overrides=overrides,
        min_samples=min_samples,
    )
    if quality_only:
        # Health metrics (AWS/SQS, AWS/Lambda) are not history worth replaying: keep the
        # quality alarms and their composite, without the suppressor it would point to.
        quality = AlarmNames(prefix).composite(QUALITY_DEGRADED)
        alarms = replace(
            alarms,
            metric_alarms=tuple(a for a in alarms.metric_alarms if a.kind == "quality"),
            composites=tuple(
                replace(c, suppressor=None) for c in alarms.composites if c.name.startswith(quality)
            ),
        )
    source = HistorySource(cloudwatch, start, end)
    for index, alarm in enumerate(alarms.metric_alarms, 1):
        source.prefetch(alarm)
        if progress:
            bar(index, len(alarms.metric_alarms), "metric histories read")
    engine = AlarmEngine(alarms, source)
    rounds = int((end - start).total_seconds() // step_s) + 1
    for index in range(rounds):
        engine.evaluate(start + timedelta(seconds=step_s * index))
        if progress and (index % 10 == 0 or index == rounds - 1):
            bar(index + 1, rounds, "evaluation rounds")
    return alarms, engine


def backtest(
    cloudwatch: Any,
    where: str,
    namespace: str,
    models: Sequence[str],
    start: datetime,
    end: datetime,
    step_s: int,
    prefix: str,
    overrides: dict[str, dict[str, dict[str, Any]]],
    with_health: bool,
    min_samples: int | None = None,
    drift_start: datetime | None = None,
) -> int:
    print(
        f"backtest on {where}: {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC, "
        f"every {step_s} s",
        flush=True,
    )
    alarms, engine = backtest_alarms(
        namespace,
        models,
        start,
        end,
        step_s,
        cloudwatch,
        prefix,
        overrides,
        quality_only=not with_health,
        progress=True,
        min_samples=min_samples,
    )
    if not alarms.metric_alarms:
        raise CliError(
            f"no models with llmmon metrics in namespace {namespace!r} at {where}: "
            "pass --models, or check --namespace"
        )
    fired = 0
    print("\ntransitions:")
    for change in engine.history:
        if change.old == change.new or change.new == INSUFFICIENT or change.decided_at:
            continue
        marker = "FIRES " if change.new == "ALARM" else "clears" if change.old == "ALARM" else ""
        if not marker:
            continue
        fired += change.new == "ALARM"
        print(f"  {change.time:%Y-%m-%d %H:%M}  {marker}  {change.alarm}")
        print(f"  {'':>18}{change.reason[:150]}")
    if not fired:
        print("  none: no alarm went into ALARM in this window")
    print(f"\nfinal states of the {len(alarms.metric_alarms) + len(alarms.composites)} alarms:")
    for composite in alarms.composites:
        print(f"  {engine.states.get(composite.name, INSUFFICIENT):<18} {composite.name}")
    for alarm in alarms.metric_alarms:
        print(
            f"  {engine.states.get(alarm.name, INSUFFICIENT):<18} {alarm.name}  "
            f"({alarm.statistic} {alarm.comparison} {alarm.threshold:g}, "
            f"{alarm.datapoints_to_alarm} of {alarm.evaluation_periods} x {alarm.period_s} s)"
        )
    print(f"{fired} alarm transitions to ALARM")
    figures: dict[str, Any] = {
        "alarms": len(alarms.metric_alarms),
        "fired": fired,
        "final": {k: v for k, v in engine.states.items() if v == "ALARM"},
        "states": dict(engine.states),
    }
    if drift_start is not None:
        scores = drift_scores(engine.history, [a.name for a in alarms.metric_alarms], drift_start)
        print(f"\nagainst the drift that starts at {drift_start:%H:%M} UTC:")
        for name, score in scores.items():
            if score["false_alarms"] or score["detection_delay_s"] is not None:
                delay = score["detection_delay_s"]
                shown = "never" if delay is None else f"{delay / 60:.0f} min"
                print(f"  {score['false_alarms']} false alarms, detected after {shown}  {name}")
        figures["false_alarms"] = sum(int(s["false_alarms"] or 0) for s in scores.values())
        figures["drift"] = {
            n: s
            for n, s in scores.items()
            if s["false_alarms"] or s["detection_delay_s"] is not None
        }
    print(json.dumps(figures))
    return 0
