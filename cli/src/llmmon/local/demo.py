"""``llmmon demo``: the whole pipeline on this machine, end to end, in a few minutes.

1. Start the local stack (moto server, bucket, notification, topic, queues with DLQs, one worker
   per service playing Lambda).
2. Write an hour of realistic Bedrock log objects into the bucket (several models and families;
   the Llama model's refusal ratio climbs in the last 25 minutes).
3. Wait until every message is processed; evaluate the alarms (the refusal alarm fires and the
   "model quality degraded" composite notifies the alarm topic).
4. A corrupt log object arrives: every service fails it until SQS moves it to the service's
   dead-letter queue; the DLQ alarms fire and "monitoring pipeline unhealthy" notifies.
5. Show a per-model table of every metric (read back from the local CloudWatch), alarm states,
   the notifications received, the DLQ contents, and write an HTML report.
Everything started is stopped at the end, on errors and on Ctrl-C.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmmon.alarm_eval import ALARM, AlarmEngine
from llmmon.errors import CliError
from llmmon.local.corpus import CANARY_MODEL, CANARY_RUNS, Corpus, generate, with_bucket
from llmmon.local.endpoint import client
from llmmon.local.stack import (
    LocalConfig,
    LocalStack,
    Topology,
    alarm_engine,
    alarm_set,
    publish_queue_metrics,
    put_alarms,
    put_log_objects,
    queue_depths,
    read_inbox,
    wait_until_drained,
)
from llmmon.report import (
    Bars,
    Chart,
    Evidence,
    Report,
    Series,
    Table,
    Threshold,
    colors_for,
    render,
    series_from_statistics,
)
from llmmon.terminal import bar, run_hint
from llmmon_shared.alarms import QUALITY, WATCH, AlarmSet
from llmmon_shared.events import InvalidEventError, ObjectRef, unwrap_message
from llmmon_shared.model_ids import normalise_model_id
from llmmon_shared.spec import MetricSpec, discover, headline_columns


def table_metrics() -> list[MetricSpec]:
    """The per-model table's columns and the report's charts: the services' declarations."""
    return headline_columns(discover())


def say(text: str) -> None:
    print(text, flush=True)


def wait_with_progress(topology: Topology, total: int, expected_dlq: int, timeout: float) -> None:
    started = time.monotonic()
    ended = False

    def progress(depths: dict[str, tuple[int, int, int]]) -> None:
        # A message retried on its way to the dead-letter queue comes back: the bar ends once.
        nonlocal ended
        if ended:
            return
        done = max(0, total - sum(v + f for v, f, _ in depths.values()))
        ended = done >= total
        bar(done, total, f"messages processed ({time.monotonic() - started:.0f} s)")

    wait_until_drained(topology, expected_dlq=expected_dlq, timeout=timeout, progress=progress)


def window_value(
    cloudwatch: Any,
    namespace: str,
    metric: str,
    model: str,
    start: datetime,
    end: datetime,
    statistic: str = "Average",
) -> float | None:
    """A model's Sum, or its Average over every value in the window (Sum / SampleCount, not an
    average of period averages), as the table and the report's bars both show it."""
    dimensions = [{"Name": "ModelId", "Value": model}]
    if metric == "Interactions":  # the traffic service counts every interaction
        dimensions.append({"Name": "Service", "Value": "traffic"})
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=dimensions,
        StartTime=start,
        EndTime=end,
        Period=300,
        Statistics=["Sum", "SampleCount"],
    ).get("Datapoints", [])
    total = sum(p["Sum"] for p in points)
    count = sum(p["SampleCount"] for p in points)
    return total if statistic == "Sum" else (total / count if count else None)


def model_table(
    cloudwatch: Any, namespace: str, models: Sequence[str], start: datetime, end: datetime
) -> list[list[str]]:
    rows = []
    for model in models:
        row = [model]
        for column in table_metrics():
            value = window_value(
                cloudwatch, namespace, column.name, model, start, end, column.statistic
            )
            row.append("-" if value is None else column.format.format(value))
        rows.append(row)
    return rows


def thresholds(alarms: AlarmSet, metric: str) -> list[Threshold]:
    """The thresholds of the alarms on ``metric`` (one line per distinct threshold)."""
    symbols = {
        "GreaterThanThreshold": ">",
        "GreaterThanOrEqualToThreshold": ">=",
        "LessThanThreshold": "<",
        "LessThanOrEqualToThreshold": "<=",
    }
    found = {
        (a.comparison, a.threshold)
        for a in alarms.metric_alarms
        if a.metric == metric and a.anomaly_band is None and a.kind == "quality"
    }
    return [Threshold(f"alarm: {symbols.get(c, c)} {t:g}", t) for c, t in sorted(found, key=str)]


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    for line in [header, *rows]:
        say(
            "  "
            + "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=False))
            )
        )


def dlq_contents(topology: Topology) -> list[list[str]]:
    """What sits in each DLQ: the object key of the S3 event and how often it was received."""
    sqs = client("sqs", topology.endpoint)
    rows = []
    for service, url in topology.dead_letter_queues.items():
        response = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
        )
        for message in response.get("Messages", []):
            # An S3 event, or the continuation of an object that failed after some progress.
            try:
                refs = unwrap_message(message["Body"])
                key = ", ".join(
                    (ref.key or "").rsplit("/", 1)[-1]
                    + (
                        f" from record {ref.start}"
                        if isinstance(ref, ObjectRef) and ref.start
                        else ""
                    )
                    if ref.key
                    else f"({getattr(ref, 'reason', 'no key')})"
                    for ref in refs
                )
            except InvalidEventError:
                key = "(not an S3 event)"
            rows.append([service, key, message["Attributes"].get("ApproximateReceiveCount", "?")])
    return rows


DEMO_PER_MINUTE = 36
"""Interactions per minute over all models: 10 to 42 per model in a 5-minute period."""
DEMO_MIN_SAMPLES = 20
"""The demo's ratio alarms judge periods with 10 values or more (a real stack's default is 20):
enough that a model's 10% refusals do not read as 30% in a thin period."""


def backtest_hour(
    cloudwatch: Any, config: LocalConfig, corpus: Corpus, end: datetime
) -> tuple[list[list[str]], int]:
    """The quality alarms replayed over the demo's traffic minute by minute, as they would have
    run live: per alarm that fired, its transitions to ALARM before its model's designed drift
    (false alarms, unless the corpus makes that model bad from minute 0; every ALARM of a model
    without a drift) and its delay after the drift begins. Also returns the false alarms."""
    from llmmon.alarm_eval import drift_scores
    from llmmon.local.commands import backtest_alarms

    assert corpus.start is not None
    alarms, engine = backtest_alarms(
        config.namespace,
        corpus.models,
        corpus.start,
        end,
        60,
        cloudwatch,
        config.prefix,
        config.alarm_overrides,
        min_samples=config.alarm_min_samples,
    )
    rows, false_alarms = [], 0
    for alarm in alarms.metric_alarms:
        model = alarm.dimensions.get("ModelId", "")
        minute = corpus.drift_at(model, alarm.metric)
        drift = end if minute is None else corpus.start + timedelta(minutes=minute)
        score = drift_scores(engine.history, [alarm.name], drift)[alarm.name]
        early, delay = int(score["false_alarms"] or 0), score["detection_delay_s"]
        if not early and delay is None:
            continue
        expected = (model, alarm.metric) in corpus.bad_from_start
        false_alarms += 0 if expected else early
        rows.append(
            [
                alarm.name,
                "-" if minute is None else str(minute),
                f"{early}" + (" (designed: bad from minute 0)" if expected and early else ""),
                "-" if delay is None else f"{delay / 60:.0f} min",
            ]
        )
    return rows, false_alarms


INVESTIGATED = (
    "refusal-HighRefusalRatio-meta.",
    "refusal-HighRefusalRatio-amazon.titan",  # the attack wave: the refusals answer attacks
    "traffic-HighGuardrailInterventions-",
    "refusal-CanaryOverRefusal-",
)
"""The demo's designed drifts whose alarms it investigates once they fire."""


def investigate_drifts(
    topology: Topology, cloudwatch: Any, alarms: AlarmSet, engine: AlarmEngine
) -> list[dict[str, Any]]:
    """Run ``llmmon investigate`` on each designed drift's alarm that fired; print its summary."""
    import io

    from llmmon.investigate import Request, Where, investigate
    from llmmon.investigate_report import summary

    where = Where(
        cloudwatch,
        client("s3", topology.endpoint),
        f"local stack {topology.name!r}",
        bucket=topology.bucket,
        log_prefix=topology.log_prefix,
        settings=topology.settings,
    )
    found = []
    for alarm in alarms.metric_alarms:
        if engine.states.get(alarm.name) != ALARM or not any(
            f"-{part}" in alarm.name for part in INVESTIGATED
        ):
            continue
        say(f"\n  Evidence: llmmon investigate {alarm.name}")
        report = investigate(Request(alarm=alarm.name, json=True), where, out=io.StringIO())
        for line in summary(report):
            say(f"    {line}")
        found.append(report)
    return found


def evaluate_alarms(engine: AlarmEngine, topology: Topology, wait_s: int) -> None:
    publish_queue_metrics(topology)
    engine.evaluate()
    time.sleep(wait_s + 0.5)  # the suppressor wait period of the quality composite
    publish_queue_metrics(topology)
    engine.evaluate()


REPORT_TABLE_IDS = {"Alarms": "alarms", "Per model": "per-model"}


def queue_line(depths: dict[str, tuple[int, int, int]]) -> str:
    """Each service's queue as a person reads it."""
    return "; ".join(
        f"{service}: {visible} waiting, {in_flight} in flight, {dlq} in the dead-letter queue"
        for service, (visible, in_flight, dlq) in sorted(depths.items())
    )


def demo_report(
    *,
    corpus: Any,
    cloudwatch: Any,
    namespace: str,
    alarms: AlarmSet,
    engine: AlarmEngine,
    window: tuple[datetime, datetime, datetime],
    evidence: list[dict[str, Any]],
    firing: list[Any],
    notifications: list[dict[str, Any]],
    dlq_rows: list[list[str]],
    backtest: tuple[list[list[str]], int],
    facts: list[tuple[str, str]],
    per_model: tuple[list[str], list[list[str]]],
) -> Report:
    """The demo's HTML report: what happened first (alarms, models, from when, the cause), the
    evidence of each investigated alarm, then the charts and the tables."""
    from llmmon.investigate_report import reason_tables, rising_reasons, summary

    start, end, now = window
    colors = colors_for(corpus.models)
    report = Report("llmmon demo", datetime.now(UTC), colors=colors)
    watch = {a.name for a in alarms.metric_alarms if a.kind == WATCH}
    investigated = {found["alarm"] for found in evidence}
    for found in evidence:
        recomputed = found["recomputed"]
        rose = rising_reasons(found)
        report.headline.append(
            f"{found['alarm']}: {found['metric']} of {found['model']} "
            f"{_short(recomputed['baseline'])} -> {_short(recomputed['window'])} from "
            f"{found['window']['from'][11:16]} UTC. Cause: {found['verdict']}"
            + (f"; refusal rules that rose most: {'; '.join(rose)}" if rose else "")
        )
    for alarm in alarms.metric_alarms:
        if (
            alarm.kind == QUALITY
            and engine.states.get(alarm.name) == ALARM
            and alarm.name not in investigated
        ):
            model = alarm.dimensions.get("ModelId", "")
            why = (
                "bad from the hour's first minute, as designed: no earlier baseline to compare"
                if (model, alarm.metric) in corpus.bad_from_start
                else f"`llmmon investigate {alarm.name}` for its evidence"
            )
            report.headline.append(
                f"{alarm.name}: in ALARM ({alarm.metric} of {model or 'all models'}); {why}"
            )
    if dlq_rows:
        held = sorted({row[1] for row in dlq_rows})
        report.headline.append(
            f"monitoring pipeline: {len(dlq_rows)} dead-letter queue message(s) hold "
            f"{', '.join(held)} (the demo's corrupt object, as designed)"
        )
    report.summary = [
        *facts,
        ("alarms firing", ", ".join(c.name for c in firing) or "none"),
        ("false alarms before the drift (backtest)", str(backtest[1])),
    ]
    for found in evidence:
        changed = [
            [
                c["attribute"],
                c["value"],
                f"{c['window_bad_share']:.0%}",
                "-" if c["baseline_bad_share"] is None else f"{c['baseline_bad_share']:.0%}",
                f"{c['window_share']:.0%}",
            ]
            for c in found["what_changed"][:6]
        ]
        tables: list[Table] = []
        if changed:
            tables.append(
                (
                    "What changed in the requests",
                    ["attribute", "value", "bad records: window", "baseline", "traffic share"],
                    changed,
                )
            )
        tables.extend(reason_tables(found))
        report.evidence.append(
            Evidence(
                f"Evidence: {found['alarm']} (llmmon investigate; ids and scores, no text)",
                summary(found),
                tables,
            )
        )
    covered = (corpus.start, now)
    partial = "5-minute periods the hour covers only in part are left out"
    for column in table_metrics()[1:]:
        metric = column.name
        series: list[Series] = series_from_statistics(
            cloudwatch, namespace, metric, corpus.models, start, end, covered=covered
        )
        report.charts.append(
            Chart(
                metric,
                f"{column.description}; per model, 5-minute Averages ({partial})",
                series,
                thresholds(alarms, metric),
            )
        )
    canary_model = normalise_model_id(CANARY_MODEL)
    for metric, description in [
        (
            "CanaryOverRefusal",
            f"Canary: share of the probes that must be answered that {canary_model} refused, "
            "per run (version 2 of the model, deployed halfway through, grows cautious)",
        ),
        (
            "Refusal",
            f"Ordinary traffic of the same model ({canary_model}): its refusal ratio does not "
            f"move, because canary traffic never enters the ordinary metrics ({partial})",
        ),
    ]:
        series = series_from_statistics(
            cloudwatch, namespace, metric, [canary_model], start, end, covered=covered
        )
        report.charts.append(
            Chart(f"{metric} ({canary_model})", description, series, thresholds(alarms, metric))
        )
    labels: dict[str, float] = {}
    label_colors: dict[str, str] = {}
    for metric in ("Toxicity", "ToxicityProfanity", "ToxicityHateSpeech", "Toxic"):
        for model in corpus.models:
            value = window_value(cloudwatch, namespace, metric, model, start, end)
            if value is not None:
                labels[f"{metric} {model}"] = value
                label_colors[f"{metric} {model}"] = colors[model]
    report.bars.append(
        Bars(
            "Toxicity by label and model (local backend: PROFANITY and HATE_SPEECH)",
            "The Average of every value in the run (Sum / SampleCount), as in the table "
            "(Toxic is a ratio); each model in its colour of the line charts.",
            labels,
            label_colors,
        )
    )
    report.tables.append(("Per model", *per_model))
    shown = [(n, st) for n, st in engine.states.items() if n not in watch]
    report.tables.append(
        (
            "Alarms",
            ["state", "alarm"],
            [
                [state, name]
                for name, state in sorted(shown, key=lambda kv: (kv[1] != ALARM, kv[0]))
                if state == ALARM
            ]
            + [
                [
                    "",
                    f"{sum(1 for _, st in shown if st != ALARM)} more alarms OK (and "
                    f"{len(watch)} watch alarms, the building blocks of each service's "
                    "StoppedEmitting: in ALARM whenever traffic flows, never a reason to act)",
                ]
            ],
        )
    )
    report.tables.append(
        (
            "Notifications",
            ["state", "alarm", "reason"],
            [[n["NewStateValue"], n["AlarmName"], n["NewStateReason"]] for n in notifications],
        )
    )
    report.tables.append(("Dead-letter queues", ["service", "object", "receives"], dlq_rows))
    report.tables.append(
        (
            "Backtest over the hour: alarms before their model's designed drift, and "
            "detection delays",
            ["alarm", "drift at minute", "ALARMs before the drift", "detected after"],
            backtest[0],
        )
    )
    return report


def _short(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


DEMO_STACK = "demo"
"""The name a kept demo stack runs under (``llmmon local status``, ``--stack demo``)."""


def run_demo(
    minutes: int = 60,
    report_path: Path = Path("reports/llmmon-demo.html"),
    timeout: float = 240.0,
    keep: bool = False,
    alarm_interval: float = 10.0,
) -> int:
    """The demo end to end. ``keep``: leave the stack up afterwards, recorded as a running local
    stack named ``demo``, evaluating its alarms every ``alarm_interval`` seconds, until Ctrl-C,
    SIGTERM or ``llmmon local down --stack demo``: its alarms can then be investigated."""
    began = time.monotonic()
    # The demo's traffic is thin (about 4 interactions per model per 5-minute period), so its
    # ratio alarms judge periods with 2 values or more (never one call alone); a real stack's
    # default is 20.
    # The demo shows every score, detail included (RefusalSimilarity, Toxic, toxicity labels):
    # a deployed stack emits the lean default set unless detailMetrics is on.
    config = LocalConfig(
        alarm_min_samples=DEMO_MIN_SAMPLES, extra_env={"LLMMON_DETAIL_METRICS": "true"}
    )
    stack = LocalStack(config, log_path=report_path.parent / "llmmon-demo-workers.log")
    try:
        say("1/5 starting the local stack (moto server + one worker per service)")
        from llmmon.local import state as stacks

        if keep and DEMO_STACK in stacks.running():
            raise CliError(
                f"a kept demo stack is running already: stop it with `{run_hint()} local down "
                f"--stack {DEMO_STACK}`"
            )
        topology = stack.start(name=DEMO_STACK)
        say(
            f"    endpoint {topology.endpoint}  bucket {topology.bucket}  "
            f"services {', '.join(topology.queues)}"
        )
        now = datetime.now(UTC)
        corpus: Corpus = with_bucket(
            generate(now, minutes=minutes, per_minute=DEMO_PER_MINUTE, prefix=config.log_prefix),
            topology.bucket,
        )
        log_objects = [(k, b) for k, b in corpus.objects if "/data/" not in k]
        say(
            f"2/5 writing {len(corpus.objects)} objects: {corpus.interactions} interactions "
            f"over {minutes} min from {len(corpus.models)} models "
            f"({', '.join(f'{v} {k}' for k, v in sorted(corpus.by_kind.items()))}), "
            f"plus {corpus.canary} canary probes in {len(CANARY_RUNS)} runs, an embedding call "
            "and a malformed line"
        )
        for index, log_object in enumerate(corpus.objects, 1):
            put_log_objects(topology, [log_object])
            bar(index, len(corpus.objects), "objects written")
        messages = len(corpus.objects) * len(topology.queues)
        say(f"3/5 processing {len(log_objects)} log objects in {len(topology.queues)} services")
        wait_with_progress(topology, messages, 0, timeout)
        cloudwatch = client("cloudwatch", topology.endpoint)
        alarms = alarm_set(
            topology, replace(config, models=tuple(corpus.models)), stack.services, cloudwatch
        )
        put_alarms(cloudwatch, alarms, topology.alarm_topic_arn)
        engine = alarm_engine(topology, alarms)
        evaluate_alarms(engine, topology, config.suppressor_wait_s)
        say("4/5 a corrupt log object arrives (truncated gzip)")
        put_log_objects(topology, corpus.corrupt)
        wait_with_progress(topology, len(topology.queues), 1, timeout)
        evaluate_alarms(engine, topology, config.suppressor_wait_s)
        notifications = read_inbox(topology)

        say("5/5 results")
        end = datetime.now(UTC) + timedelta(minutes=1)
        start = now - timedelta(minutes=minutes + 5)
        header = ["model", *[m.name for m in table_metrics()]]
        rows = model_table(cloudwatch, config.namespace, corpus.models, start, end)
        say("\n  Per model (from the local CloudWatch; ratios are Averages of 0/1 metrics):")
        print_table(header, rows)
        say("\n  Alarms:")
        firing = [c for c in alarms.composites if engine.states.get(c.name) == ALARM]
        # The watch alarms (messages received, objects scored) are the building blocks of each
        # service's "stopped emitting" composite: in ALARM whenever traffic flows, never alone
        # a reason to act, so they are not listed with the alarms that are.
        watch = {a.name for a in alarms.metric_alarms if a.kind == WATCH}
        shown = [kv for kv in engine.states.items() if kv[0] not in watch]
        for name, state in sorted(shown, key=lambda kv: (kv[1] != ALARM, kv[0])):
            if state == ALARM or name in {c.name for c in alarms.composites}:
                say(f"    {state:<18} {name}")
        say(f"    (+ {sum(1 for _, s in shown if s != ALARM)} alarms not in ALARM)")
        say("\n  Notifications received on the alarm topic:")
        for item in notifications:
            # The whole reason: it names every child alarm in ALARM, the one that matters too.
            say(f"    {item['NewStateValue']:<6} {item['AlarmName']}: {item['NewStateReason']}")
        dlq_rows = dlq_contents(topology)
        say("\n  Dead-letter queues:")
        for service, key, received in dlq_rows:
            say(f"    {service:<11} {key}  (received {received} times)")
        say(
            f"\n  Backtest: the quality alarms replayed minute by minute over the hour (at least "
            f"{config.alarm_min_samples} values a period), each against its model's designed "
            "drift:"
        )
        backtest_rows, false_alarms = backtest_hour(cloudwatch, config, corpus, now)
        print_table(
            ["alarm", "drift at minute", "ALARMs before the drift", "detected after"],
            backtest_rows,
        )
        say(f"    false alarms in the stable part: {false_alarms}")
        evidence = investigate_drifts(topology, cloudwatch, alarms, engine)
        depths = queue_depths(topology)
        report = demo_report(
            corpus=corpus,
            cloudwatch=cloudwatch,
            namespace=config.namespace,
            alarms=alarms,
            engine=engine,
            window=(start, end, now),
            evidence=evidence,
            firing=firing,
            notifications=notifications,
            dlq_rows=dlq_rows,
            backtest=(backtest_rows, false_alarms),
            facts=[
                ("interactions written", str(corpus.interactions)),
                ("log objects", str(len(log_objects))),
                ("models", ", ".join(corpus.models)),
                ("queues", queue_line(depths)),
                ("wall time", f"{time.monotonic() - began:.0f} s"),
            ],
            per_model=(header, rows),
        )
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(render(report, REPORT_TABLE_IDS), encoding="utf-8")
        say(f"\nReport: {report_path.resolve()}")
        say(f"Worker logs: {stack.log_path}")
        fired = [a.name for a in alarms.metric_alarms if engine.states.get(a.name) == ALARM]
        example = next((n for n in fired if "HighRefusalRatio" in n), fired[0] if fired else None)
        if not keep:
            say(f"Done in {time.monotonic() - began:.0f} s; stopping the local stack.")
            say(
                f"To investigate its alarms yourself, run it with the stack left up: "
                f"`{run_hint('demo')} --keep`, then `{run_hint()} investigate ALARM_NAME "
                f"--stack {DEMO_STACK}` in another terminal (docs/local-stack.md)."
            )
            return 0
        path = stacks.save(topology)
        say(f"Done in {time.monotonic() - began:.0f} s. The stack stays up as {DEMO_STACK!r}:")
        if example:
            say(f"  {run_hint()} investigate {example} --stack {DEMO_STACK}")
        say(f"  {run_hint()} local status --stack {DEMO_STACK}")
        say(f"  {run_hint()} local down --stack {DEMO_STACK}   (or Ctrl-C here)")
        say(f"  state: {path}; alarms evaluated every {alarm_interval:g} s")
        try:
            while True:
                time.sleep(alarm_interval)
                publish_queue_metrics(topology)
                for change in engine.evaluate():
                    say(change.line())
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM (`llmmon local down`): the end asked for
            say("stopping the demo's local stack")
            return 0
        finally:
            stacks.remove(DEMO_STACK, os.getpid())
    except KeyboardInterrupt:
        say("\ninterrupted: stopping the local stack")
        return 130
    finally:
        stack.stop()
