"""The README's demo command and the local stack's command line, run for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmmon_shared.spec import discover
from tests.unit.test_report_dom import Dom

pytestmark = pytest.mark.integration


KEPT = "The stack stays up as 'demo':"
LLAMA_ALARM = "llmmon-local-refusal-HighRefusalRatio-meta.llama3-70b-instruct-v1:0"


def llmmon(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmmon.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_demo__fires_the_refusal_alarm_fills_the_dlqs_and_writes_the_report(
    tmp_path: Path,
) -> None:
    """The demo as the README runs it, with its stack left up (``--keep``): its alarms are
    investigated afterwards from another process, then ``local down`` ends it."""
    report = tmp_path / "demo.html"
    env = {**os.environ, "LLMMON_STATE_DIR": str(tmp_path / "state")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "llmmon.cli", "demo", "--keep", "--report", str(report)],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "demo.err").open("w"),  # a file: a pipe nobody reads could fill up
        text=True,
        env=env,
    )
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if KEPT in line:
                lines.extend(demo.stdout.readline() for _ in range(4))
                break
        out = "".join(lines)
        assert KEPT in out, out[-3000:]
        # How to investigate, said at the end: the very command, with the kept stack's name.
        assert re.search(r"investigate llmmon-local-refusal-HighRefusalRatio-\S+ --stack demo", out)
        status = llmmon("local", "status", "--stack", "demo", env=env)
        assert status.returncode == 0 and "demo:" in status.stdout, status
        # The alarm is investigated after the demo, from another process.
        found = llmmon("investigate", LLAMA_ALARM, "--stack", "demo", "--json", env=env)
        assert found.returncode == 0, found.stderr[-2000:]
        evidence = json.loads(found.stdout.strip().splitlines()[-1])
        assert evidence["verdict"].startswith(
            "the rise comes with requestMetadata.app = claims-assistant"
        )
        assert evidence["episode"].startswith("the most recent ALARM episode")
        down = llmmon("local", "down", "--stack", "demo", env=env)
        assert down.returncode == 0, down
        assert demo.wait(timeout=60) == 0
        err = (tmp_path / "demo.err").read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert "\r" not in err  # no progress bar drawn into a file or a pipe
    # The backtest of the hour: the drifting alarms fire after the drift, within 15 minutes,
    # and never before it.
    backtest = out.split("Backtest: the quality alarms replayed", 1)[1].split("Report:")[0]
    assert "at least 20 values a period" in backtest
    assert re.search(r"false alarms in the stable part: \d+", backtest)
    for alarm in (
        "refusal-HighRefusalRatio-meta.llama3-70b-instruct-v1:0",
        "traffic-HighGuardrailInterventions-application-inference-profile-support-nova",
        "refusal-CanaryOverRefusal-anthropic.claude-3-haiku-20240307-v1:0",
    ):
        row = next(line for line in backtest.splitlines() if alarm in line).split()
        assert row[2] == "0", row  # no ALARM before the drift (row[1]: its minute)
        # The canary runs every 15 minutes into an hourly period aligned to the clock: when
        # that hour also holds version 1's runs, the mean crosses at the next run, 15 minutes
        # after the first version-2 run, seen at the next one-minute evaluation.
        bound = 16 if "Canary" in alarm else 15
        assert row[-1] == "min" and int(row[-2]) <= bound, row
    assert "ALARM              llmmon-local-refusal-HighRefusalRatio-meta.llama3-70b" in out
    assert "ALARM  llmmon-local-model-quality-degraded" in out
    assert "ALARM  llmmon-local-monitoring-pipeline-unhealthy" in out
    # The model behind Guardrails: its intervention ratio climbs and alarms, its refusal ratio
    # does not (a guardrail's message is not the model's answer).
    firing = [line.split()[-1] for line in out.splitlines() if line.startswith("    ALARM ")]
    nova = "application-inference-profile-support-nova-"
    assert any(
        n.startswith(f"llmmon-local-traffic-HighGuardrailInterventions-{nova}") for n in firing
    )
    assert not any(n.startswith(f"llmmon-local-refusal-HighRefusalRatio-{nova}") for n in firing)
    for service in discover():
        assert f"    {service:<11} " in out.split("Dead-letter queues:")[1]
    page = report.read_text()
    assert page.count("<svg") >= 5 and "Refusal" in page
    assert "us.anthropic.claude-3-5-sonnet-20241022-v2:0" in page  # full names in the legends
    # A threshold line on each alarmed chart (one per distinct threshold), the canary's two.
    lines = sum(
        len({a.threshold for a in spec.alarms if a.metric == m.name and not a.comparison.is_band})
        for spec in discover().values()
        for m in spec.headline_metrics
    )
    assert page.count('stroke-dasharray="6 4"') == lines + 2
    # Read as a browser's DOM: what happened first (each investigated alarm with its cause),
    # the evidence above the charts and the alarm table; the alarm table lists what to act on.
    dom = Dom(page)
    headline = dom.first("section", id="headline")
    evidence = dom.first("section", **{"class": "evidence"})
    alarm_table = dom.first("table", id="alarms")
    assert headline < evidence < dom.first("svg") < alarm_table
    said = "".join(dom.text[headline:evidence])
    assert "HighRefusalRatio-meta.llama3-70b-instruct-v1:0" in said
    assert "Cause: the rise comes with requestMetadata.app = claims-assistant" in said
    if "CanaryOverRefusal" in said:  # the canary's hourly alarm fires by the hour of the day
        assert "so the model itself changed; refusal rules that rose most:" in said
    assert "MessagesReceived" not in "".join(dom.text[alarm_table:])
    assert "5-minute periods the hour covers only in part are left out" in page
    assert "comprehend: 0 waiting, 0 in flight, 1 in the dead-letter queue" in page  # not JSON
    # The canary: its over-refusal climbs after the model's version 2 (recorded answers), while
    # the same model's ordinary refusal line has no canary traffic in it.
    canary = page.split("CanaryOverRefusal (anthropic.claude-3-haiku", 1)[1].split("</svg>")[0]
    ys = [float(y) for y in re.findall(r'<circle cx="[^"]+" cy="([^"]+)"', canary)]
    assert len(ys) == 4 and min(ys[2:]) < max(ys[:2])  # higher up the chart = a larger ratio
    # The canary's evidence: its own previous runs are the baseline, the rules that rose shown.
    if "Evidence: llmmon-local-refusal-CanaryOverRefusal" in page:  # fired this hour
        canary_evidence = page.split("Evidence: llmmon-local-refusal-CanaryOverRefusal")[1]
        canary_evidence = canary_evidence.split("</section>")[0]
        assert "Refusal rules, reference phrases and cues" in canary_evidence
        assert "no earlier baseline" not in canary_evidence
    assert "canary probes in 4 runs" in out
    # Only alarms worth acting on are listed; a notification names every child alarm in full.
    listed = out.split("  Alarms:")[1].split("Notifications received")[0]
    assert "MessagesReceived" not in listed and "NoObjectsScored" not in listed
    notes = out.split("Notifications received on the alarm topic:")[1].split("Dead-letter")[0]
    assert "refusal-HighRefusalRatio-meta.llama3-70b-instruct-v1:0" in notes
    # From the alarm to its cause: the demo investigates its designed drifts' alarms.
    evidence = out.split("Evidence: llmmon investigate llmmon-local-refusal-HighRefusalRatio-meta")[
        1
    ]
    assert "what changed first: requestMetadata.app = claims-assistant" in evidence
    assert "agrees with CloudWatch" in evidence.splitlines()[1]
    # The attack wave: Titan's refusals answer jailbreak prompts from one application; the
    # attack alarm fires with the refusal alarm, never in the stable part.
    titan = out.split("Evidence: llmmon investigate llmmon-local-refusal-HighRefusalRatio-amazon")[
        1
    ]
    assert (
        "verdict: the rise comes with prompt attacks from requestMetadata.app = promo-chat"
        in (titan.split("Evidence:")[0])
    )
    assert "llmmon-local-attacks-HighPromptAttacks-amazon.titan-text-express-v1" in firing
    attack_row = next(
        line
        for line in out.splitlines()
        if "attacks-HighPromptAttacks-amazon.titan" in line and line.strip().endswith("min")
    )
    assert attack_row.split()[2] == "0", attack_row  # no ALARM before minute 35
    guardrail = out.split("Evidence: llmmon investigate llmmon-local-traffic-HighGuardrail")[1]
    assert "what changed first: guardrail = gr-support:2" in guardrail
    assert "Evidence: llmmon-local-refusal-HighRefusalRatio-meta" in page
    assert "GuardrailIntervened" in page
    worker_log = (tmp_path / "llmmon-demo-workers.log").read_text()
    for service in discover():  # who failed what, and why
        assert any(
            f"[{service}] message failed service={service}" in line
            and "objects=llmmon-local-invocation-logs/bedrock/AWSLogs/" in line
            and "error=CorruptObjectError" in line
            for line in worker_log.splitlines()
        ), worker_log
    assert "Traceback" not in worker_log
    from tests.functional.test_privacy import pieces, user_texts

    for text in user_texts():  # nothing the demo wrote holds user text
        for piece in pieces(text):
            assert piece not in page and piece not in worker_log and piece not in out
