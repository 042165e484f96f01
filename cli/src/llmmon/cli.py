"""``llmmon``: the command line.

``llmmon inspect PATH...`` reads Bedrock invocation log objects (files or folders) exactly as the
services do and prints, per model, how many interactions each family yielded and why records were
skipped. It prints counts only, never prompt or response text.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

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


def _log_files(paths: Sequence[str]) -> Iterator[tuple[Path, Path]]:
    """``(file, root)`` pairs: log objects only (large-data bodies under data/ are not logs)."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and classify_key(file.as_posix(), None) is None:
                    yield file, path
        else:
            yield path, path.parent


def inspect(paths: Sequence[str]) -> int:
    by_model: Counter[tuple[str, str]] = Counter()
    skipped: Counter[tuple[str, str]] = Counter()
    parse_errors = 0
    corrupt: list[str] = []
    files = 0
    for path, root in _log_files(paths):
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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmmon", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    inspect_cmd = commands.add_parser("inspect", help="summarise Bedrock log objects (no text)")
    inspect_cmd.add_argument("paths", nargs="+", help="log objects (.json.gz) or folders")
    score_cmd = commands.add_parser(
        "score", help="run every metric service over a folder of log objects (local models)"
    )
    score_cmd.add_argument("folder", type=Path, help="a folder laid out like the log bucket")
    build_cmd = commands.add_parser("build", help="build one Lambda zip per metric service")
    build_cmd.add_argument("services", nargs="*", help="service names (default: all)")
    build_cmd.add_argument("--out", type=Path, default=Path("build"))
    build_cmd.add_argument(
        "--backend",
        choices=["managed", "local"],
        default="managed",
        help="managed: Bedrock/Comprehend; local: bundle the local models",
    )
    demo_cmd = commands.add_parser("demo", help="run the whole pipeline locally, end to end")
    demo_cmd.add_argument("--minutes", type=int, default=60, help="minutes of traffic")
    demo_cmd.add_argument("--report", type=Path, default=Path("reports/llmmon-demo.html"))
    local_cmd = commands.add_parser("local", help="the local stack on moto")
    local_sub = local_cmd.add_subparsers(dest="local_command", required=True)
    up_cmd = local_sub.add_parser("up", help="start it and keep it running until Ctrl-C")
    up_cmd.add_argument("--port", type=int, default=0, help="loopback port (default: free)")
    up_cmd.add_argument(
        "--models",
        nargs="*",
        default=[],
        help="models with quality alarms (default: every model seen)",
    )
    up_cmd.add_argument("--alarm-interval", type=float, default=30.0)
    up_cmd.add_argument("--state", type=Path, default=Path(".llmmon-local.json"))
    up_cmd.add_argument("--duration", type=float, default=None, help=argparse.SUPPRESS)
    replay_cmd = commands.add_parser(
        "replay", help="put log objects into the local bucket, or re-publish S3 events"
    )
    replay_cmd.add_argument("source", help="a folder or file of log objects, or s3://bucket/prefix")
    replay_cmd.add_argument("--state", type=Path, default=Path(".llmmon-local.json"))
    replay_cmd.add_argument("--topic-arn", help="log topic for s3:// sources (AWS)")
    replay_cmd.add_argument("--endpoint", help="endpoint for s3:// sources (default: AWS)")
    replay_cmd.add_argument("--log-prefix", help="key prefix in the local bucket")
    alarms_cmd = commands.add_parser("alarms", help="alarm tools")
    alarms_sub = alarms_cmd.add_subparsers(dest="alarms_command", required=True)
    backtest_cmd = alarms_sub.add_parser(
        "backtest", help="replay the alarm definitions over stored metric history"
    )
    backtest_cmd.add_argument("--namespace", default="llmmon")
    backtest_cmd.add_argument("--prefix", default="llmmon-backtest", help="alarm name prefix")
    backtest_cmd.add_argument("--models", nargs="*", default=[])
    backtest_cmd.add_argument("--hours", type=float, default=3.0)
    backtest_cmd.add_argument("--start", help="ISO time (default: end - hours)")
    backtest_cmd.add_argument("--end", help="ISO time (default: now)")
    backtest_cmd.add_argument("--step", type=int, default=60, help="seconds between rounds")
    backtest_cmd.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SERVICE.ALARM.FIELD=VALUE",
        help="override a default, e.g. refusal.HighRefusalRatio.threshold=0.4",
    )
    backtest_cmd.add_argument(
        "--with-health", action="store_true", help="also replay the pipeline-health alarms"
    )
    where = backtest_cmd.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help="a CloudWatch endpoint (e.g. the local stack's)")
    where.add_argument("--local", action="store_true", help="the running local stack")
    backtest_cmd.add_argument("--state", type=Path, default=Path(".llmmon-local.json"))
    eval_cmd = commands.add_parser("eval", help="score a labelled CSV with a detector")
    eval_cmd.add_argument("detector", choices=["refusal"])
    eval_cmd.add_argument("csv", type=Path, help="CSV with completion and label columns")
    eval_cmd.add_argument(
        "--refusal-labels",
        default="2_full_refusal,3_partial_refusal",
        help="label values that mean refusal (comma-separated)",
    )
    eval_cmd.add_argument("--completion-column", default="completion")
    eval_cmd.add_argument("--label-column", default="label")
    eval_cmd.add_argument("--model-id", help="score as this model (selects its phrase family)")
    eval_cmd.add_argument(
        "--explain",
        action="store_true",
        help="list misclassified rows with the references that matched",
    )
    args = parser.parse_args(argv)
    if args.command == "inspect":
        return inspect(args.paths)
    if args.command == "demo":
        from llmmon.local.demo import run_demo

        return run_demo(args.minutes, args.report)
    if args.command == "local":
        from llmmon.local.commands import local_up

        return local_up(args.port, args.models, args.alarm_interval, args.state, args.duration)
    if args.command == "replay":
        from llmmon.local.commands import replay

        return replay(args.source, args.state, args.topic_arn, args.endpoint, args.log_prefix)
    if args.command == "alarms":
        from llmmon.local.commands import backtest

        return backtest(args)
    if args.command == "build":
        from llmmon.build import build

        build(args.services, args.out, args.backend == "local")
        return 0
    if args.command == "score":
        from llmmon.score import score_folder

        return score_folder(args.folder)
    if args.command == "eval":
        from llmmon.evaluate import evaluate_refusal

        evaluate_refusal(
            args.csv,
            [label.strip() for label in args.refusal_labels.split(",") if label.strip()],
            args.completion_column,
            args.label_column,
            args.model_id,
            args.explain,
        )
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
