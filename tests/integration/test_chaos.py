"""The chaos cases of benchmarks/chaos.py, each in a fresh process, against their targets: nothing
counted twice, nothing lost without a counted reason, peak RSS under the function's memory with
25% to spare, the handler well inside the function timeout.

CI runs the fast ones; ``uv run pytest -m chaos`` runs all of them, the random kills included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import chaos  # noqa: E402

MEMORY_MB = 1024  # similarity's and refusal's function memory
SLOW = {
    "idempotency_endpoint_never_answers",
    "32_mib_of_empty_objects",
    "60k_records_in_one_object",
}
"""Marked ``slow``: ``-m "not slow"`` leaves them out of a quick run; CI runs them."""
ELSEWHERE = {"table_silent_midway_60_and_120_s"}
"""Run by tests/integration/test_silent_table.py on the same harness (minutes of real timeouts,
not run twice)."""

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def run_case(name: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--case", name],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
        for n in sorted(chaos.CASES)
        if n not in ELSEWHERE
    ],
)
def test_chaos_case__nothing_twice_nothing_lost_within_bounds(name: str) -> None:
    result = run_case(name)
    assert result["double"] == 0, result
    assert result["lost"] == 0, result
    assert result["peak_rss_mb"] <= MEMORY_MB * 0.75, result
    assert result["wall_s"] < chaos.TIMEOUT_S * 0.5, result


@pytest.mark.slow
def test_random_kills__no_value_counted_twice() -> None:
    result = chaos.random_kills(kills=12)
    assert result["double"] == 0, result
    # A kill between a chunk's announcement and its confirmation leaves the chunk unknown: the
    # retry passes over it and counts it (UnconfirmedRecords), at most one chunk per kill.
    assert result["lost"] == 0 and result["torn_lines"] == 0, result
    assert result["unconfirmed_records"] <= result["kills"] * chaos.KILL_BATCH, result


def test_handover_kills__a_5000_record_object_under_a_5_s_timeout_completes() -> None:
    """Far more records than one invocation scores, a kill after each hand-over step (checkpoint
    saved, continuation sent, invocation returned): the object completes through its
    continuations, nothing reaches the dead-letter queue, nothing counted twice or lost."""
    result = chaos.handover_kills()
    assert result["kills"] == list(chaos.HANDOVER_STEPS), result
    assert result["double"] == 0 and result["lost"] == 0, result
    assert result["scored"] == chaos.HANDOVER_RECORDS, result
    assert result["dead_letter_messages"] == 0, result
    assert result["requeued"] >= 2, result  # the object needed continuations
