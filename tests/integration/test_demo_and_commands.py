"""The README's demo command and the local stack's command line, run for real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmmon.local.demo import run_demo

pytestmark = pytest.mark.integration


def test_demo__fires_the_refusal_alarm_fills_the_dlqs_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "demo.html"
    assert run_demo(minutes=60, report_path=report) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "\r" not in captured.err  # no progress bar drawn into a file or a pipe
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
    for service in ("comprehend", "refusal", "similarity", "traffic"):
        assert f"    {service:<11} " in out.split("Dead-letter queues:")[1]
    page = report.read_text()
    assert page.count("<svg") >= 5 and "Refusal" in page
    assert "us.anthropic.claude-3-5-sonnet-20241022-v2:0" in page  # full names in the legends
    assert page.count('stroke-dasharray="6 4"') == 8  # a threshold on each alarmed chart
    # The canary: its over-refusal climbs after the model's version 2 (recorded answers), while
    # the same model's ordinary refusal line has no canary traffic in it.
    canary = page.split("CanaryOverRefusal (anthropic.claude-3-haiku", 1)[1].split("</svg>")[0]
    ys = [float(y) for y in re.findall(r'<circle cx="[^"]+" cy="([^"]+)"', canary)]
    assert len(ys) == 4 and min(ys[2:]) < max(ys[:2])  # higher up the chart = a larger ratio
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
    guardrail = out.split("Evidence: llmmon investigate llmmon-local-traffic-HighGuardrail")[1]
    assert "what changed first: guardrail = gr-support:2" in guardrail
    assert "Evidence: llmmon-local-refusal-HighRefusalRatio-meta" in page
    assert "GuardrailIntervened" in page
    worker_log = (tmp_path / "llmmon-demo-workers.log").read_text()
    for service in ("comprehend", "refusal", "similarity", "traffic"):  # who failed what, and why
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
