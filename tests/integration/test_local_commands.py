"""The local stack's command line, run for real as a user runs it: ``local up`` in its own
process group, then ``status``, ``env``, ``replay``, ``alarms backtest`` and ``down`` from other
processes; every signal that ends a terminal session stops everything ``local up`` started."""

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

from llmmon_shared.spec import discover
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration


def llmmon(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmmon.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_up(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``llmmon local up`` as a terminal would run it: its own process group (session)."""
    return subprocess.Popen(
        [sys.executable, "-m", "llmmon.cli", "local", "up", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


def wait_for_state(
    state: Path, up: subprocess.Popen[str], timeout: float = 60
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while not state.exists():
        assert up.poll() is None, up.stdout.read() if up.stdout else ""
        assert time.monotonic() < deadline, "local up did not record its state"
        time.sleep(0.2)
    return json.loads(state.read_text())


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not running; it only waits to be reaped
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


def wait_until(check: object, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**clean, "LLMMON_STATE_DIR": str(tmp_path / "stacks"), "HOME": str(tmp_path)}


def test_up_status_env_replay_backtest_down(env: dict[str, str], tmp_path: Path) -> None:
    up = start_up(env, "--alarm-interval", "2")
    try:
        topology = wait_for_state(tmp_path / "stacks" / "default.json", up)
        endpoint = str(topology["endpoint"])
        port = int(endpoint.rsplit(":", 1)[1])

        # a second stack of the same name, and a busy port, are refused with one line
        again = llmmon("local", "up", env=env)
        assert again.returncode == 1 and "already running" in again.stderr
        busy = llmmon("local", "up", "--name", "other", "--port", str(port), env=env)
        assert busy.returncode == 1 and "is in use" in busy.stderr
        assert "Traceback" not in again.stderr + busy.stderr

        status = llmmon("local", "status", env=env)
        assert status.returncode == 0 and endpoint in status.stdout
        services = sorted(discover())
        assert status.stdout.count("worker running") == len(services)

        # the exports make boto3 work as printed, with no other AWS configuration
        exports = llmmon("local", "env", env=env).stdout
        aws_env = dict(env)
        for line in exports.splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                aws_env[key] = value
        listed = subprocess.run(
            [
                sys.executable,
                "-c",
                "import boto3; print(boto3.client('s3').list_buckets()['Buckets'][0]['Name'])",
            ],
            env=aws_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.strip() == topology["bucket"]

        replayed = llmmon("replay", str(FIXTURES), env=env)
        assert replayed.returncode == 0, replayed.stderr
        assert f"will be scored by {len(services)} services" in replayed.stdout

        from llmmon.local.endpoint import client

        cloudwatch = client("cloudwatch", endpoint)
        assert wait_until(
            lambda: (
                {"Refusal", "Toxicity", "PromptResponseSimilarity"}
                <= {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="llmmon")["Metrics"]}
            ),
            timeout=120,
        )
        # no --endpoint: the running local stack is used; a misspelt override is refused
        wrong = llmmon(
            "alarms", "backtest", "--set", "refusal.HighRefusalRatio.treshold=0.1", env=env
        )
        assert wrong.returncode == 2 and "'treshold' cannot be overridden" in wrong.stderr
        result = llmmon(
            "alarms",
            "backtest",
            "--start",
            "2026-11-28T06:30",
            "--end",
            "2026-11-28T08:00",
            "--set",
            "refusal.HighRefusalRatio.threshold=0.1",
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert "local stack 'default'" in result.stdout
        assert "metric histories read" in result.stderr  # progress
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["alarms"] > 0
        assert set(summary["states"]) >= {n for n in summary["states"] if "HighRefusalRatio" in n}
        for name, final in summary["states"].items():  # every alarm is listed with its state
            assert f"{final:<18} {name}" in result.stdout

        down = llmmon("local", "down", env=env)
        assert down.returncode == 0, down.stderr
        up.wait(timeout=30)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
        output = up.communicate(timeout=30)[0]
    assert "local stack stopped" in output and "Traceback" not in output
    assert not (tmp_path / "stacks" / "default.json").exists()
    assert all(not pid_running(int(pid)) for pid in topology["pids"].values())  # type: ignore[union-attr]
    assert port_closed(port)
    assert llmmon("local", "status", env=env).returncode == 1


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_closing_the_terminal_or_a_signal__stops_everything(
    env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    up = start_up(env, "--name", "sig")
    topology = wait_for_state(tmp_path / "stacks" / "sig.json", up)
    port = int(str(topology["endpoint"]).rsplit(":", 1)[1])
    # moto's server installs its own SIGINT and SIGTERM handlers: in the owner's group it would
    # die at once on a Ctrl-C, before the workers still calling it (a Traceback, now and then).
    assert os.getpgid(int(topology["pids"]["moto"])) != os.getpgid(up.pid)  # type: ignore[index]
    os.killpg(up.pid, sig)  # what a closed terminal or Ctrl-C does: the whole group
    output = up.communicate(timeout=60)[0]
    assert "local stack stopped" in output and "Traceback" not in output, output
    assert not (tmp_path / "stacks" / "sig.json").exists()
    assert wait_until(lambda: not any(pid_running(int(p)) for p in topology["pids"].values()))  # type: ignore[union-attr]
    assert port_closed(port)


def test_a_killed_owner__takes_its_children_with_it(env: dict[str, str], tmp_path: Path) -> None:
    up = start_up(env, "--name", "killed")
    topology = wait_for_state(tmp_path / "stacks" / "killed.json", up)
    port = int(str(topology["endpoint"]).rsplit(":", 1)[1])
    os.kill(up.pid, signal.SIGKILL)  # the owner alone: no clean-up code runs
    up.communicate(timeout=30)
    children = [int(p) for p in topology["pids"].values()]  # type: ignore[union-attr]
    try:
        assert wait_until(lambda: not any(pid_running(p) for p in children))
        assert wait_until(lambda: port_closed(port))
        status = llmmon("local", "status", env=env)  # the stale record is noticed and removed
        assert status.returncode == 1 and "no local stack is running" in status.stdout
        assert not (tmp_path / "stacks" / "killed.json").exists()
    finally:
        for pid in children:
            if pid_running(pid):
                os.kill(pid, signal.SIGKILL)
