"""``LLMMON_EXPLAIN=true``: one decision line per scored record (request id, rule, reference ids,
scores, cues; never text) in ``llmmon score``, under a process-wide WARNING level as the local
worker and Lambda have, whatever ``LLMMON_LOG_LEVEL`` says."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest

from llmmon.cli import main
from tests.conftest import FIXTURES, all_texts

LINE = re.compile(
    r"^refusal decision request_id=\S+ refusal=(True|False) rule=\S+ similarity=[\d.-]+ "
    r"compliance_similarity=[\d.-]+ fuzzy=[\d.-]+ similarity_reference=\S+ "
    r"fuzzy_reference=\S+ cues=\S+$"
)


@pytest.fixture
def explain(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LLMMON_EXPLAIN", "true")
    monkeypatch.setenv("LLMMON_LOG_LEVEL", "ERROR")
    decisions = logging.getLogger("llmmon.refusal.decisions")
    saved = (decisions.level, list(decisions.handlers), decisions.propagate)
    yield
    decisions.setLevel(saved[0])
    decisions.handlers[:] = saved[1]
    decisions.propagate = saved[2]


def scored_refusal_records(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("refusal decision ")]


def test_score__prints_one_decision_line_per_scored_record(
    explain: None, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # a fresh `llmmon score`: no handler configured
    assert main(["score", str(FIXTURES)]) == 0
    captured = capfd.readouterr()
    lines = scored_refusal_records(captured.err)
    table = captured.out.splitlines()
    assert lines and all(LINE.match(line) for line in lines), lines[:3]
    assert any(" refusal=True rule=" in line for line in lines)
    texts = [t for t in all_texts() if len(t) >= 12]
    for text in texts:
        assert text[:12] not in captured.err
    assert table  # the table is still printed, its column headers whole
    assert "PromptResponseSimilarity" in captured.out and "SentimentIsNegative" in captured.out


def test_worker_and_lambda_levels__decisions_still_logged(explain: None) -> None:
    """The local worker and Lambda configure the root logger at WARNING: decisions show."""
    from llmmon_refusal.handler import create_pipeline
    from llmmon_shared.events import ObjectRef
    from llmmon_shared.logs import FolderS3Reader
    from tests.conftest import fixture_keys

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        pipeline = create_pipeline(s3=FolderS3Reader(FIXTURES))
        scored = 0
        for key in fixture_keys():
            try:
                _, report = pipeline.score_object(ObjectRef("local", key, None, None))
            except Exception:
                continue  # the corrupt fixture
            scored += report.scored
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = scored_refusal_records(stream.getvalue())
    assert scored > 0 and len(lines) == scored


def test_score__a_new_service_s_alarmed_metric_is_a_column(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service added the documented way shows in `llmmon score`'s table with no table edited."""
    import llmmon.score
    from llmmon_shared.spec import discover
    from tests.functional.answer_length_service import SERVICE

    installed = discover()
    monkeypatch.setattr(
        llmmon.score, "discover", lambda: {"traffic": installed["traffic"], "lengths": SERVICE}
    )
    assert main(["score", str(FIXTURES)]) == 0
    out = capfd.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("model "))
    assert header.split()[1:] == [
        "Interactions",
        "GuardrailIntervened",
        "StopReasonMaxTokens",
        "LongAnswer",
    ]
    rows = [line for line in out.splitlines() if line.startswith("amazon.") and "%" in line]
    assert rows  # per model, the share of long answers as a percentage
