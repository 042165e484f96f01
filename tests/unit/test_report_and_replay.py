"""The report's charts (full names, thresholds, round time ticks) and replay's plan (bucket
layout from the records, large-data bodies rewritten into the local bucket)."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llmmon.local.commands import plan_replay
from llmmon.report import Chart, Series, Threshold, line_chart, time_ticks
from tests.conftest import FIXTURES, HOUR


def test_time_ticks__round_times_including_full_hours() -> None:
    first = datetime(2026, 11, 30, 20, 7, 12, tzinfo=UTC)
    ticks = time_ticks(first, first + timedelta(minutes=65))
    assert [t.strftime("%H:%M") for t in ticks] == [
        "20:10",
        "20:20",
        "20:30",
        "20:40",
        "20:50",
        "21:00",
        "21:10",
    ]
    day = time_ticks(first, first + timedelta(hours=20))
    assert all(t.minute == 0 for t in day) and 3 <= len(day) <= 8


def test_line_chart__full_names_and_a_threshold_line() -> None:
    start = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    name = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
    chart = Chart(
        "Refusal",
        "ratio",
        [Series(name, [(start + timedelta(minutes=5 * i), 0.1 * i) for i in range(4)])],
        [Threshold("alarm: > 0.25", 0.25)],
    )
    svg = line_chart(chart)
    assert name in svg  # in the legend, not cut
    assert 'stroke-dasharray="6 4"' in svg and "alarm: &gt; 0.25" in svg
    assert ">20:05<" in svg and ">20:10<" in svg


def _write_log(path: Path, records: list[dict[str, object]]) -> None:
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))


def test_replay_plan__keys_from_the_records_and_bodies_rewritten(tmp_path: Path) -> None:
    source = FIXTURES / HOUR
    shutil.copy(source / "20261128T072000000Z_large-data.json.gz", tmp_path / "big.json.gz")
    for body in (source / "data").iterdir():
        shutil.copy(body, tmp_path / body.name)
    _write_log(
        tmp_path / "loose.json.gz",
        [{"timestamp": "2026-11-29T23:59:01Z", "accountId": "111122223333", "region": "eu-west-1"}],
    )
    (tmp_path / "notes.txt").write_text("not a log\n")
    files = sorted(p for p in tmp_path.iterdir())
    plan = plan_replay(files, tmp_path, "local-bucket", "bedrock")
    keys = {path.name: key for path, key, _ in plan.uploads}
    assert keys["loose.json.gz"] == (
        "bedrock/AWSLogs/111122223333/BedrockModelInvocationLogs/eu-west-1/2026/11/29/23/loose.json.gz"
    )
    assert keys["big.json.gz"].startswith(
        "bedrock/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/28/07/"
    )
    bodies = [key for key in keys.values() if "/data/" in key]
    assert len(bodies) == 2 and plan.bodies == 2
    assert plan.missing_bodies == 2  # the fixture's second record has no bodies, by design
    assert [p.name for p, _ in plan.skipped] == ["notes.txt"]
    assert not plan.unreadable
    rewritten = next(body for path, _, body in plan.uploads if path.name == "big.json.gz")
    assert rewritten is not None
    first = json.loads(gzip.decompress(rewritten).splitlines()[0])
    assert (
        first["input"]["inputBodyS3Path"]
        == f"s3://local-bucket/{bodies[0] if 'input' in bodies[0] else bodies[1]}"
    )
    order = [key for _, key, _ in plan.uploads]
    assert max(order.index(b) for b in bodies) < order.index(keys["big.json.gz"])
