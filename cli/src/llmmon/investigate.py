"""``llmmon investigate``: from an alarm to its evidence.

The alarm says a metric of a model crossed a line. This reads the log objects of the alarm's
breaching periods (and of a baseline before them) from the log bucket, scores them again with the
deployed service's own code and settings, and reports:

1. the metric recomputed over the window and the baseline, next to CloudWatch's value;
2. the records behind the alarm, ranked, each with its decision and reasons (ids and scores);
3. what changed: for every attribute the log holds without its text (request metadata, model and
   inference profile, operation, guardrail, a fingerprint of the system prompt, length and token
   buckets, stop reason, caller), how much of the rise in bad records it accounts for;
4. for refusal, the rules and reference phrases whose share rose most.

Nothing that leaves the terminal holds prompt or response text: the JSON and HTML carry ids, scores
and fingerprints only. ``--show-text`` adds short excerpts to the terminal output, never to a file.

The analysis is in :mod:`llmmon.evidence` (pure: rows in, findings out), what is shown in
:mod:`llmmon.investigate_report`; this module reads the bucket and CloudWatch.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmmon.errors import CliError, UsageError
from llmmon.evidence import (
    ATTACK_ATTRIBUTE,
    TOP_RECORDS,
    Row,
    Target,
    Window,
    _align,
    _beyond,
    _excerpt,
    _utc,
    alarm_transitions,
    analyse,
    attributes,
    breach_start,
    canary_split,
    span_stats,
    statistic,
    target_from_alarm,
)
from llmmon.investigate_report import (
    html_report,
    print_report,
    public_report,
)
from llmmon_shared.events import ObjectRef, classify_key
from llmmon_shared.extract import Interaction
from llmmon_shared.logs import InvocationLogRecord
from llmmon_shared.metrics import MemorySink
from llmmon_shared.runtime import CANARY_KEY, Boto3S3Reader, Scores
from llmmon_shared.spec import discover

# --------------------------------------------------------------------------------------------
# Reading the log bucket


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour <= end:
        yield hour
        hour += timedelta(hours=1)


def _common_prefixes(s3: Any, bucket: str, prefix: str) -> list[str]:
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    ):
        found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return found


@dataclass
class LogListing:
    """The log bucket's hourly partitions, each listed once per run however many windows
    (window, a day earlier, just before) ask for it."""

    s3: Any
    bucket: str
    log_prefix: str
    _regions: list[str] | None = field(default=None, repr=False)
    _hours: dict[str, list[tuple[str, int]]] = field(default_factory=dict, repr=False)

    def regions(self) -> list[str]:
        """``<prefix>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/`` prefixes."""
        if self._regions is None:
            prefix = self.log_prefix.strip("/")
            root = f"{prefix}/AWSLogs/" if prefix else "AWSLogs/"
            self._regions = [
                region
                for account in _common_prefixes(self.s3, self.bucket, root)
                for region in _common_prefixes(
                    self.s3, self.bucket, f"{account}BedrockModelInvocationLogs/"
                )
            ]
        return self._regions

    def partition(self, prefix: str) -> list[tuple[str, int]]:
        if prefix not in self._hours:
            found = []
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            ):
                for item in page.get("Contents", []):
                    if classify_key(item["Key"], int(item["Size"])) is None:
                        found.append((item["Key"], int(item["Size"])))
            self._hours[prefix] = found
        return self._hours[prefix]

    def objects(self, start: datetime, end: datetime) -> list[tuple[str, int]]:
        """The log objects of the hourly partitions that can hold records of ``[start, end)``
        (Bedrock files a record under the hour its object was written: up to an hour later)."""
        return sorted(
            item
            for region in self.regions()
            for hour in hours(start, end + timedelta(hours=1))
            for item in self.partition(f"{region}{hour:%Y/%m/%d/%H}/")
        )


def capped(objects: Sequence[tuple[str, int]], most: int | None) -> list[tuple[str, int]]:
    """At most ``most`` objects, a sample deterministic by key (the same on every run)."""
    if most is None or len(objects) <= most:
        return list(objects)

    def digest(item: tuple[str, int]) -> bytes:
        return hashlib.blake2b(item[0].encode(), digest_size=8).digest()

    return sorted(sorted(objects, key=digest)[:most])


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """The deployed function's settings for the length of a scoring run."""
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


MIN_BASELINE_RECORDS = 10
"""Fewer records before the breach than this are no baseline (a model bad from its first
records has a handful at most, at the edge of the logs)."""

SCORER_ONLY = ("LLMMON_SINK", "LLMMON_IDEMPOTENCY_TABLE", "LLMMON_EXPLAIN", "LLMMON_LOG_LEVEL")


def scorer_settings(function_env: Mapping[str, str]) -> dict[str, str]:
    """The function's ``LLMMON_*`` settings, less what belongs to delivery, not scoring."""
    keep = {k: v for k, v in function_env.items() if k.startswith("LLMMON_")}
    for name in SCORER_ONLY:
        keep.pop(name, None)
    keep.update(LLMMON_SINK="memory", LLMMON_LOG_LEVEL="ERROR")
    return keep


@dataclass
class Evidence:
    """Reads and re-scores the log objects of a window with one service's deployed code."""

    target: Target
    s3: Any
    bucket: str
    log_prefix: str
    settings: Mapping[str, str]
    show_text: bool = False
    progress: Callable[[str], None] = lambda _: None
    decisions: dict[str, Any] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    """Objects that broke while read (their messages are in the dead-letter queue)."""

    def pipeline(self) -> Any:
        spec = discover()[self.target.service]
        handler = importlib.import_module(spec.module)
        with environment(self.settings):
            made = handler.create_pipeline(s3=Boto3S3Reader(self.s3), sink=MemorySink())
        if hasattr(made.compute, "explain"):  # refusal: every decision, with its reasons

            def collect(request_id: str, decision: Any) -> None:
                self.decisions[request_id] = asdict(decision)

            made.compute.explain = collect
        return made

    def rows(self, objects: Sequence[tuple[str, int]], windows: Sequence[Window]) -> list[Row]:
        """The target model's scored records of ``objects`` that fall in any of ``windows``."""
        target, pipeline = self.target, self.pipeline()

        def keep(interaction: Interaction) -> bool:
            moment = interaction.timestamp
            return (
                interaction.model_id == target.model
                and (CANARY_KEY in interaction.request_metadata) == target.canary
                and moment is not None
                and any(_utc(moment) in w for w in windows)
            )

        found: list[Row] = []
        judged: list[tuple[Row, Interaction]] = []
        for number, (key, _) in enumerate(objects, start=1):
            self.progress(f"{number}/{len(objects)} objects")
            ref = ObjectRef(self.bucket, key, None, None)
            try:
                # Batch by batch, as the service delivered them: an object that breaks midway
                # (truncated) keeps the records of the batches before the break, as CloudWatch
                # does, and the rest went to the dead-letter queue.
                for line, record, interaction, scores in pipeline.evidence(ref, keep):
                    row = self._row(key, line, record, interaction, scores)
                    if row is not None:
                        found.append(row)
                        judged.append((row, interaction))
            except Exception as exc:
                self.unreadable.append(f"{key.rsplit('/', 1)[-1]}: {type(exc).__name__}")
        self._join_attacks(judged)
        return found

    def _join_attacks(self, judged: Sequence[tuple[Row, Interaction]]) -> None:
        """The prompt-attack decision of each record, joined by request id: an attribute of
        the request ("prompt attack": its kind, or none) for "what changed", and its score,
        kind, part and cues beside the target's own decision. The attacks service's own code
        and defaults; the services stay independent (no service calls another)."""
        if self.target.service == "attacks" or "attacks" not in discover() or not judged:
            return
        from llmmon_attacks.compute import parts
        from llmmon_attacks.detector import default_head

        head = default_head()
        for at in range(0, len(judged), 64):
            batch = judged[at : at + 64]
            decisions = head.decide([parts(interaction) for _, interaction in batch])
            for (row, _), decision in zip(batch, decisions, strict=True):
                if not decision.part:
                    continue
                row.attributes[ATTACK_ATTRIBUTE] = decision.kind if decision.attack else "none"
                row.reasons.update(
                    attack_score=round(decision.score, 4),
                    attack_kind=decision.kind if decision.attack else "none",
                    attack_part=decision.part,
                    attack_cues=decision.cues,
                    attack_family=decision.family,
                )

    def _row(
        self,
        key: str,
        line: int,
        record: InvocationLogRecord,
        interaction: Interaction,
        scores: Scores | None,
    ) -> Row | None:
        if scores is None or self.target.score_name not in scores:
            return None
        value = float(scores[self.target.score_name])
        if not math.isfinite(value):
            return None
        name = self.target.score_name
        reasons: dict[str, Any] = {
            k: round(float(v), 4) for k, v in scores.items() if k == name or float(v) != 0.0
        }
        decision = self.decisions.pop(interaction.request_id, {})
        if decision:  # the scores repeat the decision's own figures
            reasons = {name: reasons[name]} if name in reasons else {}
            reasons.update(
                (k, round(v, 4) if isinstance(v, float) else v)
                for k, v in decision.items()
                if k != "refusal" and v not in (None, (), [])
            )
        if self.target.service == "similarity":
            reasons["prompt_chars_read"] = len(interaction.prompt)
        assert interaction.timestamp is not None
        return Row(
            request_id=interaction.request_id,
            key=key,
            line=line,
            time=_utc(interaction.timestamp),
            value=value,
            attributes=attributes(record, interaction),
            reasons=reasons,
            excerpt=(
                (_excerpt(interaction.prompt), _excerpt(interaction.completion))
                if self.show_text
                else None
            ),
        )


# --------------------------------------------------------------------------------------------
# The command


@dataclass
class Where:
    """The deployment investigated: a running local stack, or AWS."""

    cloudwatch: Any
    s3: Any
    label: str
    bucket: str | None = None
    log_prefix: str = ""
    settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Per service, the function's environment (AWS: read on demand)."""
    functions: Any = None
    """AWS: a Lambda client, to read a function's configuration."""
    alarm_history: str = ""
    """A local stack: the file its alarm engine records state changes in (the local endpoint
    keeps no alarm history)."""


def _settings_for(where: Where, target: Target, prefix: str) -> tuple[dict[str, str], str, str]:
    """The service's scorer settings, and the log bucket and prefix it reads."""
    env: Mapping[str, str] = where.settings.get(target.service, {})
    if where.functions is not None:
        function = f"{prefix}-{target.service}"
        try:
            config = where.functions.get_function_configuration(FunctionName=function)
        except Exception as exc:
            raise CliError(
                f"cannot read the configuration of function {function} ({type(exc).__name__}): "
                "llmmon investigate re-scores with the deployed settings; check --prefix and "
                "lambda:GetFunctionConfiguration"
            ) from None
        env = config.get("Environment", {}).get("Variables", {})
    bucket = where.bucket or env.get("LLMMON_LOG_BUCKET")
    if not bucket:
        raise CliError(f"no log bucket known for {target.service}: give --bucket")
    prefix_in_bucket = env.get("LLMMON_LOG_PREFIX", where.log_prefix)
    return scorer_settings(env), bucket, prefix_in_bucket


def breach_window(where: Where, target: Target, now: datetime) -> tuple[Window, str]:
    """The alarm's breaching periods: from the first of the consecutive periods beyond the
    threshold that led to its most recent move to ALARM, to when it left ALARM (or now); and
    which episode that is, said plainly (the alarm may be OK again by the time its e-mail is
    read)."""
    assert target.alarm is not None
    recorded: tuple[tuple[datetime, str], ...] = ()
    if where.alarm_history:
        from llmmon.local.stack import recorded_transitions

        recorded = tuple(recorded_transitions(Path(where.alarm_history), target.alarm))
    moves = alarm_transitions(where.cloudwatch, target.alarm, recorded)
    entered = next((t for t, s in reversed(moves) if s == "ALARM"), None)
    if entered is None:
        state = f"{moves[-1][1]} since {moves[-1][0]:%Y-%m-%d %H:%M}Z" if moves else "no state yet"
        raise CliError(
            f"alarm {target.alarm} has not been in ALARM ({state}, no earlier ALARM in its "
            "history): give --from and --to"
        )
    left = next((t for t, s in moves if t > entered and s != "ALARM"), None)
    episodes = sum(1 for t, s in moves if s == "ALARM")
    episode = (
        f"the most recent ALARM episode{f' of {episodes}' if episodes > 1 else ''}: "
        f"ALARM at {entered:%Y-%m-%d %H:%M}Z, "
        + (f"OK again at {left:%H:%M}Z" if left is not None else "still in ALARM")
    )
    left = left or now
    period = timedelta(seconds=target.period_s)

    def value_at(start: datetime) -> float | None:
        found = span_stats(where.cloudwatch, target, start, start + period)
        return None if found is None else found.get(target.statistic)

    first = breach_start(value_at, target, entered)
    start = first or _align(entered, target.period_s) - period * target.evaluation_periods
    return Window(start, _align(left, target.period_s, up=True)), episode


def cloudwatch_figures(
    where: Where, target: Target, window: Window, baseline: Window | None
) -> dict[str, Any]:
    """CloudWatch's value of the statistic over each window (periods combined)."""

    def combined(span: Window) -> tuple[float | None, int]:
        found = span_stats(where.cloudwatch, target, span.start, span.end)
        if not found or not found.get("SampleCount"):
            return None, 0
        return found.get(target.statistic), int(found["SampleCount"])

    value, count = combined(window)
    base, base_count = combined(baseline) if baseline else (None, 0)
    return {
        "window": value,
        "window_samples": count,
        "baseline": base,
        "baseline_samples": base_count,
    }


def agreement(
    recomputed: float | None, cw: float | None, records: int, samples: int, capped_note: str
) -> str:
    if cw is None and recomputed is None:
        return "no records and no CloudWatch datapoints in the window"
    if cw is None:
        return "CloudWatch has no datapoints for the window (not scored yet, or scored elsewhere)"
    if recomputed is None:
        return "no records of the model in the window's log objects" + capped_note
    close = abs(recomputed - cw) <= max(0.01 * abs(cw), 1e-9)
    if close and records == samples:
        return f"agrees with CloudWatch ({records} values on both sides)"
    reasons = []
    if capped_note:
        reasons.append(capped_note.strip(" ;()"))
    if records < samples:
        reasons.append(
            f"CloudWatch holds {samples - records} values more: objects not listed here "
            "(written after the window's partitions) or a redelivery counted before the "
            "idempotency record existed"
        )
    elif records > samples:
        reasons.append(
            f"{records - samples} records are not in CloudWatch yet: their objects are still "
            "queued, retried, or in the dead-letter queue"
        )
    state = "agrees within 1%" if close else "differs"
    return f"{state} (llmmon {recomputed:.4f}, CloudWatch {cw:.4f}): " + "; ".join(reasons)


@dataclass
class Request:
    """What the user asked for (the command line, parsed)."""

    alarm: str | None = None
    service: str | None = None
    metric: str | None = None
    model: str | None = None
    dimensions: Mapping[str, str] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    baseline_start: datetime | None = None
    baseline_end: datetime | None = None
    max_objects: int | None = None
    show_text: bool = False
    json: bool = False
    html: str | None = None
    prefix: str = "llmmon"
    top: int = TOP_RECORDS


def resolve(request: Request, where: Where) -> Target:
    services = discover()
    if request.alarm:
        response = where.cloudwatch.describe_alarms(
            AlarmNames=[request.alarm], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        if response.get("CompositeAlarms"):
            rule = response["CompositeAlarms"][0].get("AlarmRule", "")
            raise CliError(
                f"{request.alarm} is a composite alarm: investigate the child alarm in ALARM "
                f"(its rule: {rule[:200]})"
            )
        found = response.get("MetricAlarms", [])
        if not found:
            raise CliError(f"no alarm named {request.alarm!r} in {where.label}")
        return target_from_alarm(found[0], services)
    assert request.service
    assert request.metric
    assert request.model
    if request.service not in services:
        raise UsageError(f"unknown service {request.service!r} (services: {', '.join(services)})")
    spec = services[request.service]
    names = {m.name for m in spec.metrics}
    if request.metric not in names and request.metric.removeprefix("Canary") not in names:
        raise UsageError(
            f"{request.service} does not emit {request.metric} "
            f"(it emits {', '.join(sorted(names))})"
        )
    rule = next((a for a in spec.alarms if a.metric == request.metric), None)
    return Target(
        service=request.service,
        metric=request.metric,
        model=request.model,
        dimensions={"ModelId": request.model, **request.dimensions},
        statistic=rule.statistic if rule else "Average",
        comparison=str(rule.comparison) if rule else "GreaterThanThreshold",
        threshold=rule.threshold if rule and not rule.comparison.is_band else None,
        period_s=rule.period_s if rule else 300,
        evaluation_periods=rule.evaluation_periods if rule else 3,
        band=bool(rule and rule.comparison.is_band),
    )


def investigate(request: Request, where: Where, out: Any = None) -> dict[str, Any]:
    """Run the whole investigation; prints the report (terminal or JSON) and returns it."""
    out = out or sys.stdout
    now = datetime.now(UTC)
    target = resolve(request, where)
    if bool(request.start) != bool(request.end):
        raise UsageError("--from and --to go together")
    if request.start and request.end:
        if request.start >= request.end:
            raise UsageError("--from must be before --to")
        window, episode = Window(request.start, request.end), "the window given"
    elif target.alarm:
        window, episode = breach_window(where, target, now)
    else:
        raise UsageError("without an alarm name, give the window: --from and --to")
    prefix = request.prefix
    if target.alarm and f"-{target.service}-" in target.alarm:
        prefix = target.alarm.split(f"-{target.service}-", 1)[0]
    settings, bucket, log_prefix = _settings_for(where, target, prefix)

    listing = LogListing(where.s3, bucket, log_prefix)

    def listed(span: Window) -> list[tuple[str, int]]:
        try:
            return listing.objects(span.start, span.end)
        except Exception as exc:
            raise CliError(
                f"cannot list s3://{bucket}/{log_prefix} ({type(exc).__name__}): "
                "investigate reads the log objects with your credentials"
            ) from None

    objects = listed(window)
    if not objects:
        raise CliError(
            f"no log objects in s3://{bucket}/{log_prefix} for {window.start:%Y-%m-%d %H:%M}Z .. "
            f"{window.end:%H:%M}Z"
        )
    length = window.end - window.start
    baseline, note = None, ""
    if bool(request.baseline_start) != bool(request.baseline_end):
        raise UsageError("--baseline-from and --baseline-to go together")
    if request.baseline_start and request.baseline_end:
        baseline, note = Window(request.baseline_start, request.baseline_end), "as given"
    else:
        day = Window(window.start - timedelta(days=1), window.end - timedelta(days=1))
        if set(listed(day)) - set(objects):
            baseline, note = day, "the same time a day earlier"
        else:
            baseline, note = Window(window.start - length, window.start), "just before the breach"
    base_objects = sorted(set(listed(baseline)) - set(objects))
    everything = capped(sorted(set(objects) | set(base_objects)), request.max_objects)
    total = len(set(objects) | set(base_objects))
    size = sum(s for _, s in everything)
    capped_note = (
        f"; sampled {len(everything)} of {total} objects (--max-objects, by key)"
        if len(everything) < total
        else ""
    )
    tell = _progress_printer()
    tell(f"reading {len(everything)} log objects ({size / 1e6:.1f} MB) from s3://{bucket}", True)
    evidence = Evidence(
        target, where.s3, bucket, log_prefix, settings, request.show_text, progress=tell
    )
    rows = evidence.rows(everything, [window, baseline])
    if evidence.unreadable:
        capped_note += f"; {len(evidence.unreadable)} objects broke midway (in the DLQ)"
    window_rows = [r for r in rows if r.time in window]
    base_rows = [r for r in rows if r.time in baseline]
    split = (
        canary_split([*base_rows, *window_rows], target)
        if target.canary and not request.baseline_start and not request.start
        else None
    )
    if split is not None:
        # The canary's baseline is its own earlier probe runs: the same probes to the same
        # model, whatever the hour they fell in.
        first, breach, earlier = split
        both = [*base_rows, *window_rows]
        window, baseline = Window(breach, window.end), Window(first, breach)
        window_rows = [r for r in both if r.time >= breach]
        base_rows = [r for r in both if r.time < breach]
        note = f"the canary's {earlier} earlier probe run(s), before the first that breached"
    if len(base_rows) < MIN_BASELINE_RECORDS:
        found = len(base_rows)
        baseline, base_rows = None, []
        note = (
            f"no earlier baseline exists: {found or 'no'} records of this model before the breach"
            if not request.baseline_start
            else f"{found or 'no'} records of this model in the given baseline"
        )
    base_value = statistic([r.value for r in base_rows], target.statistic)
    if (
        base_rows
        and not request.baseline_start
        and base_value is not None
        and target.threshold is not None
        and not target.band
        and _beyond(base_value, target)
    ):
        # The time before is as bad (a model bad from its first records, a breach with a
        # quieter period inside it): comparing with it would explain nothing.
        baseline, base_rows = None, []
        note = (
            f"no earlier baseline exists: the model was beyond the threshold before the breach "
            f"too ({target.statistic} {base_value:.3f} just before it)"
        )
    findings = analyse(target, window_rows, base_rows, request.top)
    cw = cloudwatch_figures(where, target, window, baseline)
    cw["agreement"] = agreement(
        findings["window_value"],
        cw["window"],
        len(window_rows),
        cw["window_samples"],
        capped_note,
    )
    report = public_report(
        target,
        window,
        baseline,
        note,
        findings,
        cw,
        {"objects": len(everything), "bytes": size, "note": capped_note, "where": where.label},
        episode,
    )
    if request.json:
        print(json.dumps(report, default=str), file=out)
    else:
        print_report(report, findings["records"], out)
    if request.html:
        from pathlib import Path

        Path(request.html).write_text(
            html_report(report, window_rows, base_rows, target.period_s), encoding="utf-8"
        )
        if not request.json:
            print(f"\nHTML report: {request.html}", file=out)
    return report


def _progress_printer() -> Callable[..., None]:
    """Progress on stderr: every line on a terminal, only the first one elsewhere."""
    terminal = sys.stderr.isatty()

    def tell(message: str, always: bool = False) -> None:
        if always:
            print(message, file=sys.stderr)
        elif terminal:
            print(f"\r{message}   ", end="", file=sys.stderr, flush=True)

    return tell


def command(request: Request, stack: str | None, region: str | None, bucket: str | None) -> int:
    """``llmmon investigate``: against AWS with ``region``, else the running local stack."""
    if region:
        import boto3

        where = Where(
            boto3.client("cloudwatch", region_name=region),
            boto3.client("s3", region_name=region),
            f"CloudWatch in {region}",
            bucket=bucket,
            functions=boto3.client("lambda", region_name=region),
        )
    else:
        from llmmon.local import state
        from llmmon.local.endpoint import client

        if not state.running() and stack is None:
            # Not a mistake in the command: the same answer, and exit code 1, as every other
            # command that needs a running local stack.
            raise CliError(
                "no local stack is running: start one (`llmmon demo` or `llmmon local up`), "
                "or give --region for AWS"
            )
        topology = state.find(stack)
        where = Where(
            client("cloudwatch", topology.endpoint),
            client("s3", topology.endpoint),
            f"local stack {topology.name!r}",
            bucket=bucket or topology.bucket,
            log_prefix=topology.log_prefix,
            settings=topology.settings,
            alarm_history=topology.alarm_history,
        )
    investigate(request, where)
    return 0
