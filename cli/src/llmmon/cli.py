"""llmmon: quality and safety metrics for Amazon Bedrock traffic, from invocation logs.

Commands work on log objects on this machine (inspect, score, eval), on the local stack (demo,
local, replay, alarms backtest, investigate) or on AWS (build, replay s3://, alarms backtest
--region, investigate --region). Every
command prints counts and scores only, never prompt or response text. Exit status: 0 done,
1 failed, 2 used wrongly; --debug shows the traceback of a failure.
"""

from __future__ import annotations

# Why one module of this length: every command's arguments are declared here, in one parser, so
# that `llmmon --help` and the mistakes test see the whole command line; the work itself is in
# the modules each command imports when it runs.
import argparse
import contextlib
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from llmmon.errors import (
    CliError,
    UsageError,
    describe,
    existing_folder,
    existing_path,
    positive,
    readable_file,
)
from llmmon_shared.events import classify_key
from llmmon_shared.extract import Interaction, extract
from llmmon_shared.logs import (
    BodyFetchError,
    CorruptObjectError,
    FolderS3Reader,
    LineError,
    read_log_object,
    resolve_large_bodies,
)


def _log_files(
    paths: Sequence[Path], skipped: list[str] | None = None
) -> Iterator[tuple[Path, Path]]:
    """``(file, root)`` pairs: log objects only, as the bucket notification and ``replay`` see
    them (``*.json.gz``; large-data bodies under data/ are not logs). Every other file is named
    in ``skipped`` with the reason, never passed over in silence."""
    for path in paths:
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        root = path if path.is_dir() else path.parent
        for file in files:
            reason = classify_key(file.as_posix(), None)
            if reason is None:
                yield file, root
            elif skipped is not None and reason != "large-data-body-object":
                skipped.append(f"{file}: {reason} (only *.json.gz are log objects)")


def inspect(paths: Sequence[Path]) -> int:
    by_model: Counter[tuple[str, str]] = Counter()
    skipped: Counter[tuple[str, str]] = Counter()
    parse_errors = 0
    corrupt: list[str] = []
    files = 0
    passed_over: list[str] = []
    for path, root in _log_files(paths, passed_over):
        files += 1
        bodies = FolderS3Reader(root)
        try:
            with path.open("rb") as raw:
                for item in read_log_object(raw):
                    if isinstance(item, LineError):
                        parse_errors += 1
                        continue
                    # An unreadable body is classified by extract() as large-body-unavailable.
                    with contextlib.suppress(BodyFetchError):
                        item = resolve_large_bodies(item, bodies)
                    outcome = extract(item)
                    if isinstance(outcome, Interaction):
                        by_model[(outcome.model_id, outcome.family)] += 1
                    else:
                        skipped[(outcome.model_id or "Unknown", outcome.reason.value)] += 1
        except CorruptObjectError as exc:
            corrupt.append(f"{path.name}: {exc}")
    for line in passed_over:
        print(f"skipped {line}")
    if not files:
        raise CliError(
            f"no log objects in {', '.join(map(str, paths))} (Bedrock writes *.json.gz files)"
        )
    width = max([len(m) for m, _ in by_model | skipped] + [8])
    print(f"{files} log objects")
    print(f"\n{'model':<{width}}  {'family':<18} interactions")
    for (model, family), count in sorted(by_model.items()):
        print(f"{model:<{width}}  {family:<18} {count:>12}")
    if skipped:
        print(f"\n{'model':<{width}}  {'skip reason':<24} records")
        for (model, reason), count in sorted(skipped.items()):
            print(f"{model:<{width}}  {reason:<24} {count:>7}")
    print(f"\nbad lines skipped: {parse_errors}")
    for line in corrupt:
        print(f"corrupt object (would go to the dead-letter queue): {line}")
    if not by_model and not skipped:
        raise CliError(
            f"no Bedrock log records in the {files} file(s) ({parse_errors} bad lines, "
            f"{len(corrupt)} unreadable objects): Bedrock writes gzip JSON lines"
        )
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported on one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def iso_time(text: str) -> datetime:
    """An argparse type: an ISO 8601 time, UTC unless it says otherwise."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-30T14:00 or 2026-11-30T14:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535, 0: any free)")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]")
    return value


def dimension(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key or not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. app=support-bot)")
    return key, value


def override(text: str) -> tuple[str, str, str, str]:
    path, equals, value = text.partition("=")
    parts = path.split(".")
    if not equals or len(parts) != 3 or not all(parts) or not value:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not SERVICE.ALARM.FIELD=VALUE "
            "(e.g. refusal.HighRefusalRatio.threshold=0.3)"
        )
    return parts[0], parts[1], parts[2], value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmmon")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> Parser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the Python traceback of a failure",
    )
    lines = (__doc__ or "").strip().splitlines()
    parser = Parser(
        prog="llmmon",
        description=lines[0],
        epilog=" ".join(line.strip() for line in lines[2:]),
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"llmmon {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, text: str) -> Parser:
        made: Parser = parent.add_parser(name, help=text, description=text, parents=[common])
        return made

    cmd = command(commands, "inspect", "summarise Bedrock log objects per model (counts, no text)")
    cmd.add_argument(
        "paths",
        nargs="+",
        type=existing_path,
        metavar="PATH",
        help="log objects (.json.gz) or folders of them",
    )
    cmd = command(commands, "score", "run every metric service in process over log objects")
    cmd.add_argument("folder", type=existing_folder, help="a folder laid out like the log bucket")
    new = command(commands, "new", "write a new part of llmmon from its template")
    verbs = new.add_subparsers(dest="new_command", required=True, metavar="WHAT")
    cmd = command(
        verbs,
        "service",
        "write services/NAME (declaration, scorer, handler), its unit and infra tests, and add "
        "it to the workspace",
    )
    cmd.add_argument("name", help="the service's name: lower-case letters and digits")
    cmd.add_argument(
        "--description", default="A new llmmon metric service", help="one line for the spec"
    )
    cmd.add_argument(
        "--no-lock", action="store_true", help="leave uv.lock alone (run `sh scripts/dev.sh lock`)"
    )
    cmd = command(commands, "build", "build one Lambda zip and manifest per metric service")
    cmd.add_argument("services", nargs="*", metavar="SERVICE", help="service names (default: all)")
    cmd.add_argument("--out", type=Path, default=Path("build"), help="output folder (build/)")
    cmd.add_argument(
        "--backend",
        choices=["managed", "local"],
        default="managed",
        help="managed: Bedrock and Comprehend (default); local: bundle local models",
    )
    cmd.add_argument(
        "--arch",
        choices=["x86_64", "arm64"],
        default=None,
        help="build for this Lambda architecture (default: each service's own)",
    )
    cmd = command(commands, "demo", "run the whole pipeline on the local stack, end to end")
    cmd.add_argument(
        "--minutes",
        type=positive(int),
        default=60,
        help="minutes of generated traffic (default 60)",
    )
    cmd.add_argument(
        "--report",
        type=Path,
        default=Path("reports/llmmon-demo.html"),
        help="where to write the HTML report (reports/llmmon-demo.html)",
    )
    cmd.add_argument(
        "--keep",
        action="store_true",
        help="leave the stack up afterwards (as local stack 'demo') to investigate its alarms; "
        "Ctrl-C or `llmmon local down --stack demo` stops it",
    )

    local = command(commands, "local", "the local stack: AWS's topology on moto, on this machine")
    verbs = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = command(verbs, "up", "start a local stack and keep it running until Ctrl-C")
    up.add_argument("--name", default="default", help="the stack's name (default: default)")
    up.add_argument("--port", type=port, default=0, help="loopback port (default: a free one)")
    up.add_argument(
        "--models",
        nargs="*",
        default=[],
        metavar="MODEL_ID",
        help="models with quality alarms (default: every model seen)",
    )
    up.add_argument(
        "--alarm-interval",
        type=positive(float),
        default=30.0,
        metavar="SECONDS",
        help="seconds between alarm evaluations (default 30)",
    )
    up.add_argument("--duration", type=positive(float), default=None, help=argparse.SUPPRESS)
    for verb, text in (
        ("status", "list running local stacks, their workers and queue depths"),
        ("down", "stop a running local stack and everything it started"),
        ("env", "print the exports that point the aws CLI and boto3 at a local stack"),
    ):
        cmd = command(verbs, verb, text)
        cmd.add_argument("--stack", metavar="NAME", help="which stack (default: the only one)")
        if verb == "down":
            cmd.add_argument("--all", action="store_true", help="stop every running stack")
    cmd = command(
        verbs,
        "aws",
        "run the aws CLI against a local stack (a command scripts can call, unlike an alias)",
    )
    cmd.add_argument("--stack", metavar="NAME", help="which stack (default: the only one)")
    cmd.add_argument("aws_args", nargs=argparse.REMAINDER, metavar="ARGS", help="aws CLI arguments")

    cmd = command(
        commands,
        "replay",
        "put log objects into a local stack, or re-publish S3 events on AWS (backfill)",
    )
    cmd.add_argument(
        "source", metavar="SOURCE", help="a log object, a folder of them, or s3://BUCKET/PREFIX"
    )
    cmd.add_argument("--stack", metavar="NAME", help="local stack (default: the only one)")
    cmd.add_argument("--topic-arn", help="for s3:// sources: the log topic to publish to")
    cmd.add_argument("--endpoint", metavar="URL", help="for s3:// sources: an endpoint URL")
    cmd.add_argument("--region", help="for s3:// sources on AWS: the region")

    cmd = command(
        commands,
        "cost",
        "the monthly bill by line item, CloudWatch included, from the deployed declarations",
    )
    cmd.add_argument("--models", type=positive(int), default=5, help="models alarmed on (5)")
    cmd.add_argument(
        "--apps-per-model",
        type=int,
        default=0,
        metavar="N",
        help="requestMetadata values per model that are a dimension (0: none)",
    )
    cmd.add_argument(
        "--invocations-per-day", type=positive(int), default=100_000, metavar="N", help="(100,000)"
    )
    cmd.add_argument("--backend", choices=["managed", "cascade", "local"], default="managed")
    cmd.add_argument("--sample-rate", type=fraction, default=1.0, help="share scored (1.0)")
    cmd.add_argument(
        "--canary-runs-per-day", type=int, default=24, metavar="N", help="0: no canary (24)"
    )
    cmd.add_argument("--response-chars", type=positive(int), default=1500, metavar="N")
    cmd.add_argument("--prompt-chars", type=positive(int), default=400, metavar="N")
    cmd.add_argument("--anomaly-detection", action="store_true", help="with the drift alarms")
    cmd.add_argument(
        "--drop-metrics", default="", metavar="NAMES", help="as LLMMON_DROP_METRICS (comma list)"
    )
    cmd.add_argument(
        "--detail-metrics",
        action="store_true",
        help="every service's detail scores on (detailMetrics); default: the lean set",
    )
    cmd.add_argument("--json", action="store_true", help="one JSON object")

    cmd = command(
        commands,
        "capacity",
        "per service, at a daily volume: interactions a second it clears, concurrency at peak, "
        "the sizes the stack derives and the first limit it hits",
    )
    cmd.add_argument(
        "--invocations-per-day",
        type=positive(int),
        default=1_000_000,
        metavar="N",
        help="(1,000,000, the stack's expectedInvocationsPerDay default)",
    )
    cmd.add_argument("--peak-factor", type=float, default=3.0, help="peak over average (3)")
    cmd.add_argument("--sample-rate", type=fraction, default=1.0, help="share scored (1.0)")
    cmd.add_argument("--backend", choices=["managed", "cascade", "local"], default="managed")
    cmd.add_argument(
        "--concurrency",
        type=positive(int),
        default=1000,
        metavar="N",
        help="Lambda concurrency available to llmmon (1,000, lambdaConcurrency)",
    )
    cmd.add_argument("--json", action="store_true", help="one JSON object")

    cmd = command(
        commands,
        "investigate",
        "from an alarm to its evidence: re-score the logs of its breaching periods and say "
        "which records, which app, and what changed (ids and scores; no text unless --show-text)",
    )
    cmd.add_argument("alarm", nargs="?", metavar="ALARM_NAME", help="the alarm that fired")
    cmd.add_argument("--service", help="without an alarm: the metric service")
    cmd.add_argument("--metric", help="without an alarm: the metric (Refusal, Toxicity, ...)")
    cmd.add_argument("--model", help="without an alarm: the model id")
    cmd.add_argument(
        "--dimension",
        action="append",
        default=[],
        type=dimension,
        metavar="KEY=VALUE",
        help="without an alarm: a further dimension of the series (repeatable)",
    )
    cmd.add_argument("--from", dest="start", type=iso_time, help="window start (ISO 8601)")
    cmd.add_argument("--to", dest="end", type=iso_time, help="window end (ISO 8601)")
    cmd.add_argument("--baseline-from", dest="baseline_start", type=iso_time)
    cmd.add_argument("--baseline-to", dest="baseline_end", type=iso_time)
    cmd.add_argument(
        "--max-objects",
        type=positive(int),
        help="read at most this many log objects (a sample deterministic by key beyond it)",
    )
    cmd.add_argument("--top", type=positive(int), default=20, help="records to list (20)")
    cmd.add_argument(
        "--show-text",
        action="store_true",
        help="add short prompt and response excerpts to the terminal output (never to files)",
    )
    cmd.add_argument("--json", action="store_true", help="print one JSON object (no text)")
    cmd.add_argument("--html", metavar="FILE", help="also write an HTML report (no text)")
    cmd.add_argument("--stack", metavar="NAME", help="local stack (default: the only one)")
    cmd.add_argument("--region", help="investigate on AWS, in this region")
    cmd.add_argument("--prefix", default="llmmon", help="AWS: the stack's name prefix (llmmon)")
    cmd.add_argument("--bucket", help="the log bucket (default: the function's setting)")

    alarms = command(commands, "alarms", "alarm tools")
    verbs = alarms.add_subparsers(dest="alarms_command", required=True, metavar="ACTION")
    cmd = command(verbs, "backtest", "replay the alarm definitions over stored metric history")
    cmd.add_argument("--namespace", default="llmmon", help="CloudWatch namespace (llmmon)")
    cmd.add_argument("--prefix", default="llmmon-backtest", help="alarm name prefix")
    cmd.add_argument(
        "--models",
        nargs="*",
        default=[],
        metavar="MODEL_ID",
        help="models to evaluate (default: every model in the history)",
    )
    cmd.add_argument(
        "--hours",
        type=positive(float),
        default=3.0,
        help="window length when --start is not given (default 3)",
    )
    cmd.add_argument("--start", type=iso_time, help="window start, ISO 8601 (default: end - hours)")
    cmd.add_argument("--end", type=iso_time, help="window end, ISO 8601 (default: now)")
    cmd.add_argument(
        "--step",
        type=positive(int),
        default=60,
        metavar="SECONDS",
        help="seconds between evaluation rounds (default 60)",
    )
    cmd.add_argument(
        "--set",
        action="append",
        default=[],
        type=override,
        metavar="SERVICE.ALARM.FIELD=VALUE",
        help="override a default, e.g. refusal.HighRefusalRatio.threshold=0.4",
    )
    cmd.add_argument(
        "--with-health", action="store_true", help="also replay the pipeline-health alarms"
    )
    cmd.add_argument(
        "--min-samples",
        type=positive(int),
        metavar="N",
        help="values a period needs before a ratio alarm judges it (default: each alarm's, 20)",
    )
    cmd.add_argument(
        "--drift-start",
        type=iso_time,
        metavar="TIME",
        help="when a known drift starts (ISO 8601): report false alarms before it and each "
        "alarm's detection delay after it",
    )
    where = cmd.add_mutually_exclusive_group()
    where.add_argument("--endpoint", metavar="URL", help="a CloudWatch endpoint URL")
    where.add_argument(
        "--stack",
        metavar="NAME",
        help="a running local stack (default: the local stack, if one runs)",
    )
    where.add_argument("--local", action="store_true", help="the running local stack")
    where.add_argument("--region", help="CloudWatch in this AWS region")

    cmd = command(commands, "eval", "measure a detector on a labelled CSV")
    cmd.add_argument(
        "detector",
        choices=["refusal", "toxicity", "relevance", "attacks", "pii"],
        help="which detector",
    )
    cmd.add_argument(
        "csv",
        type=readable_file,
        metavar="CSV",
        help="UTF-8 CSV: refusal, a completion and a label column; toxicity, text and label; "
        "relevance, prompt,response,label (pointwise) or prompt,response_1,response_2,label "
        "(pairwise, label 1 or 2: the better response); attacks, prompt,label (1 attack, 0 "
        "benign) and an optional source column; pii, a JSON list of labelled texts "
        "(full_text and spans: entity_type, start_position, end_position)",
    )
    cmd.add_argument(
        "--toxic-labels",
        default="hate,toxic,offensive,1,true",
        help="toxicity: label values that mean toxic, comma-separated (default: %(default)s)",
    )
    cmd.add_argument("--text-column", default="text", help="toxicity: (default: text)")
    cmd.add_argument(
        "--group-column",
        default="group",
        help="toxicity: AUC per value of this column when it exists (default: group)",
    )
    cmd.add_argument(
        "--refusal-labels",
        default="2_full_refusal,3_partial_refusal",
        help="label values that mean refusal, comma-separated (XSTest's by default)",
    )
    cmd.add_argument("--completion-column", default="completion", help="(default: completion)")
    cmd.add_argument(
        "--prompt-column",
        default="prompt",
        help="(default: prompt; without it the rules that compare answer and prompt stay off)",
    )
    cmd.add_argument("--label-column", default="label", help="(default: label)")
    cmd.add_argument(
        "--response-column",
        default="response",
        help="relevance: (default: response; response_1 and response_2 for pairwise files)",
    )
    cmd.add_argument(
        "--relevant-labels",
        default="1,true,yes,relevant",
        help="relevance, pointwise: label values that mean relevant (default: %(default)s)",
    )
    cmd.add_argument("--model-id", help="score as this model (selects its phrase family)")
    cmd.add_argument(
        "--explain",
        action="store_true",
        help="list misclassified rows with the references that matched",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    try:
        return dispatch(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        status = exc.status if isinstance(exc, CliError) else 1
        print(f"llmmon: error: {describe(exc)}", file=sys.stderr)
        return status


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "inspect":
        return inspect(args.paths)
    if args.command == "demo":
        from llmmon.local.demo import run_demo
        from llmmon.local.stack import stop_on_signals

        with stop_on_signals():  # a closed terminal or a kill stops the stack as Ctrl-C does
            return run_demo(args.minutes, args.report, keep=args.keep)
    if args.command == "local":
        from llmmon.local import commands

        if args.local_command == "up":
            return commands.local_up(
                args.name, args.port, args.models, args.alarm_interval, args.duration
            )
        if args.local_command == "status":
            return commands.local_status(args.stack)
        if args.local_command == "down":
            return commands.local_down(args.stack, args.all)
        if args.local_command == "aws":
            return commands.local_aws(args.stack, args.aws_args)
        return commands.local_env(args.stack)
    if args.command == "replay":
        return _replay(args)
    if args.command == "alarms":
        return _backtest(args)
    if args.command == "investigate":
        return _investigate(args)
    if args.command == "capacity":
        from llmmon.cost import capacity_command

        if args.peak_factor < 1:
            raise UsageError("--peak-factor is the peak over the daily average: at least 1")
        return capacity_command(
            args.invocations_per_day,
            args.peak_factor,
            args.sample_rate,
            args.backend,
            args.concurrency,
            args.json,
        )
    if args.command == "cost":
        from llmmon.cost import Deployment
        from llmmon.cost import command as cost_command

        if args.apps_per_model < 0 or args.canary_runs_per_day < 0:
            raise UsageError("--apps-per-model and --canary-runs-per-day cannot be negative")
        return cost_command(
            Deployment(
                models=args.models,
                apps_per_model=args.apps_per_model,
                invocations_per_day=args.invocations_per_day,
                backend=args.backend,
                sample_rate=args.sample_rate,
                canary_runs_per_day=args.canary_runs_per_day,
                prompt_chars=args.prompt_chars,
                response_chars=args.response_chars,
                anomaly_detection=args.anomaly_detection,
                drop_metrics=tuple(n.strip() for n in args.drop_metrics.split(",") if n.strip()),
                detail_metrics=args.detail_metrics,
            ),
            args.json,
        )
    if args.command == "new":
        from llmmon.build import repo_root, uv_or_none
        from llmmon.new_service import new_service

        return new_service(
            repo_root(Path.cwd()), args.name, args.description, not args.no_lock, uv_or_none()
        )
    if args.command == "build":
        from llmmon.build import build
        from llmmon_shared.spec import discover

        unknown = sorted(set(args.services) - set(discover()))
        if unknown:
            raise UsageError(
                f"unknown service {', '.join(unknown)} (services: {', '.join(discover())})"
            )
        build(args.services, args.out, args.backend == "local", args.arch)
        return 0
    if args.command == "score":
        from llmmon.score import score_folder

        return score_folder(args.folder)
    from llmmon.evaluate import evaluate_refusal, evaluate_relevance, evaluate_toxicity

    if args.detector == "relevance":
        evaluate_relevance(
            args.csv,
            args.prompt_column,
            args.response_column,
            args.label_column,
            [label.strip() for label in args.relevant_labels.split(",") if label.strip()],
        )
        return 0

    if args.detector == "pii":
        from llmmon.evaluate import evaluate_pii

        evaluate_pii(args.csv)
        return 0
    if args.detector == "attacks":
        from llmmon.evaluate import evaluate_attacks

        evaluate_attacks(args.csv, label_column=args.label_column)
        return 0
    if args.detector == "toxicity":
        evaluate_toxicity(
            args.csv,
            [label.strip() for label in args.toxic_labels.split(",") if label.strip()],
            args.text_column,
            args.label_column,
            args.group_column,
        )
        return 0
    evaluate_refusal(
        args.csv,
        [label.strip() for label in args.refusal_labels.split(",") if label.strip()],
        args.completion_column,
        args.label_column,
        args.model_id,
        args.explain,
        args.prompt_column,
    )
    return 0


def _replay(args: argparse.Namespace) -> int:
    from llmmon.local import commands, state

    if args.source.startswith("s3://"):
        endpoint, topic = args.endpoint, args.topic_arn
        if topic is None:
            if args.region:
                raise UsageError("replaying s3:// on AWS needs --topic-arn (the log topic)")
            if args.stack is None and not state.running():
                raise UsageError(
                    "replaying s3:// needs --topic-arn (the log topic; on AWS also --region), "
                    "or a running local stack to publish to"
                )
            topology = state.find(args.stack)
            topic, endpoint = topology.log_topic_arn, endpoint or topology.endpoint
        return commands.backfill(args.source, topic, endpoint, args.region)
    for name in ("topic_arn", "endpoint", "region"):
        if getattr(args, name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} is for s3:// sources; a local SOURCE goes to a local stack")
    if not Path(args.source).exists():
        raise UsageError(f"{args.source}: no such file or folder")
    return commands.replay(args.source, args.stack)


def _investigate(args: argparse.Namespace) -> int:
    from llmmon.investigate import Request, command

    series = (args.service, args.metric, args.model)
    if args.alarm and any(series):
        raise UsageError("give an alarm name, or --service, --metric and --model, not both")
    if not args.alarm and not all(series):
        raise UsageError("give an alarm name, or all of --service, --metric and --model")
    if args.show_text and (args.json or args.html):
        raise UsageError("--show-text is for the terminal only: files and JSON never hold text")
    request = Request(
        alarm=args.alarm,
        service=args.service,
        metric=args.metric,
        model=args.model,
        dimensions=dict(args.dimension),
        start=args.start,
        end=args.end,
        baseline_start=args.baseline_start,
        baseline_end=args.baseline_end,
        max_objects=args.max_objects,
        show_text=args.show_text,
        json=args.json,
        html=args.html,
        prefix=args.prefix,
        top=args.top,
    )
    return command(request, args.stack, args.region, args.bucket)


def _backtest(args: argparse.Namespace) -> int:
    from llmmon.local import commands, state
    from llmmon.local.endpoint import client
    from llmmon_shared.alarms import check_overrides
    from llmmon_shared.spec import discover

    overrides: dict[str, dict[str, dict[str, Any]]] = {}
    for service, alarm, field_, value in args.set:
        overrides.setdefault(service, {}).setdefault(alarm, {})[field_] = value
    try:
        overrides = check_overrides(discover(), overrides)
    except ValueError as exc:
        raise UsageError(f"--set: {exc}") from None
    end = args.end or datetime.now(UTC)
    start = args.start or end - timedelta(hours=args.hours)
    if start >= end:
        raise UsageError(f"--start {start:%Y-%m-%dT%H:%M}Z is not before --end {end:%H:%M}Z")
    if args.drift_start and not start <= args.drift_start <= end:
        raise UsageError("--drift-start must lie inside the window (--start .. --end)")
    if args.endpoint:
        cloudwatch, where = client("cloudwatch", args.endpoint), args.endpoint
    elif args.region:
        import boto3

        cloudwatch, where = boto3.client("cloudwatch", region_name=args.region), args.region
    else:
        stacks = state.running()
        if args.stack or args.local or stacks:
            topology = state.find(args.stack)
            cloudwatch = client("cloudwatch", topology.endpoint)
            where = f"local stack {topology.name!r} ({topology.endpoint})"
        else:
            import boto3

            cloudwatch = boto3.client("cloudwatch")  # the region from the AWS configuration
            where = f"CloudWatch in {cloudwatch.meta.region_name}"
    return commands.backtest(
        cloudwatch,
        where,
        args.namespace,
        args.models,
        start,
        end,
        args.step,
        args.prefix,
        overrides,
        args.with_health,
        args.min_samples,
        args.drift_start,
    )


if __name__ == "__main__":
    sys.exit(main())
