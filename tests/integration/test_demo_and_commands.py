"""The README's demo command and the local stack's command line, run for real."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmmon.local.demo import run_demo
from llmmon.local.endpoint import client
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration


def test_demo__fires_the_refusal_alarm_fills_the_dlqs_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "demo.html"
    assert run_demo(minutes=45, report_path=report) == 0
    out = capsys.readouterr().out
    assert "ALARM              llmmon-local-refusal-HighRefusalRatio-meta.llama3-70b" in out
    assert "ALARM  llmmon-local-model-quality-degraded" in out
    assert "ALARM  llmmon-local-monitoring-pipeline-unhealthy" in out
    for service in ("comprehend", "refusal", "similarity"):
        assert f"    {service:<11} " in out.split("Dead-letter queues:")[1]
    page = report.read_text()
    assert page.count("<svg") >= 5 and "Refusal" in page
    worker_log = (tmp_path / "llmmon-demo-workers.log").read_text()
    from tests.functional.test_privacy import pieces, user_texts

    for text in user_texts():  # nothing the demo wrote holds user text
        for piece in pieces(text):
            assert piece not in page and piece not in worker_log and piece not in out


def test_local_up_replay_and_backtest(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmmon.cli",
            "local",
            "up",
            "--state",
            str(state),
            "--alarm-interval",
            "2",
            "--duration",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not state.exists():
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        topology = json.loads(state.read_text())
        endpoint = topology["endpoint"]
        subprocess.run(
            [sys.executable, "-m", "llmmon.cli", "replay", str(FIXTURES), "--state", str(state)],
            check=True,
            env=env,
            capture_output=True,
        )
        cloudwatch = client("cloudwatch", endpoint)
        deadline = time.monotonic() + 90
        while True:
            names = {
                m["MetricName"] for m in cloudwatch.list_metrics(Namespace="llmmon")["Metrics"]
            }
            if {"Refusal", "Toxicity", "PromptResponseSimilarity"} <= names:
                break
            assert time.monotonic() < deadline, names
            time.sleep(1)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "llmmon.cli",
                "alarms",
                "backtest",
                "--endpoint",
                endpoint,
                "--hours",
                "1",
                "--step",
                "300",
                "--set",
                "refusal.HighRefusalRatio.threshold=0.1",
            ],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["alarms"] > 0
    finally:
        os.killpg(up.pid, signal.SIGINT)
        output, _ = up.communicate(timeout=30)
    assert "llmmon local stack on http://127.0.0.1:" in output
    assert "local stack stopped" in output
    assert not state.exists()
    port = int(endpoint.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
