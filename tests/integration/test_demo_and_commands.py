"""The README's demo command and the local stack's command line, run for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmmon.local.demo import run_demo

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
