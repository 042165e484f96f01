"""``llmmon investigate`` on a local stack that scored the demo's hour: the designed causes come
first, the figures agree with CloudWatch, nothing written holds text, and mistakes get one line."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmmon.alarm_eval import ALARM
from llmmon.cli import main
from llmmon.investigate import Request, Where, investigate
from llmmon.local import state
from llmmon.local.corpus import generate, with_bucket
from llmmon.local.demo import DEMO_MIN_SAMPLES, DEMO_PER_MINUTE
from llmmon.local.endpoint import ACCOUNT, CREDENTIALS, client
from llmmon.local.stack import (
    LocalConfig,
    LocalStack,
    Topology,
    alarm_engine,
    alarm_set,
    put_alarms,
    put_log_objects,
    wait_until_drained,
)
from tests.functional.test_privacy import pieces, user_texts

pytestmark = pytest.mark.integration

LLAMA = "llmmon-local-refusal-HighRefusalRatio-meta.llama3-70b-instruct-v1:0"
MISTRAL = "llmmon-local-comprehend-HighToxicity-mistral.mistral-large-2402-v1:0"
CANARY = "llmmon-local-refusal-CanaryOverRefusal-anthropic.claude-3-haiku-20240307-v1:0"
GUARDRAIL = "llmmon-local-traffic-HighGuardrailInterventions-"


@dataclass
class Scored:
    topology: Topology
    states: dict[str, str]
    drift_at: datetime
    canary_drift: datetime | None = None


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scored]:
    """The demo's hour (with its corrupt object) scored by the local stack, alarms evaluated."""
    config = LocalConfig(alarm_min_samples=DEMO_MIN_SAMPLES)
    stack = LocalStack(config)
    topology = stack.start()
    try:
        now = datetime.now(UTC)
        corpus = with_bucket(
            generate(now, minutes=60, per_minute=DEMO_PER_MINUTE, prefix=config.log_prefix),
            topology.bucket,
        )
        put_log_objects(topology, corpus.objects + corpus.corrupt)
        wait_until_drained(topology, expected_dlq=1, timeout=300)
        cloudwatch = client("cloudwatch", topology.endpoint)
        alarms = alarm_set(
            topology, replace(config, models=tuple(corpus.models)), stack.services, cloudwatch
        )
        put_alarms(cloudwatch, alarms, topology.alarm_topic_arn)
        engine = alarm_engine(topology, alarms)
        engine.evaluate()
        assert corpus.start is not None
        drift = corpus.start + timedelta(minutes=corpus.drifts["meta.llama3-70b-instruct-v1:0"])
        canary = (
            corpus.start + timedelta(minutes=corpus.canary_drift_minute)
            if corpus.canary_drift_minute is not None
            else None
        )
        yield Scored(topology, dict(engine.states), drift, canary)
    finally:
        stack.stop()


def where(topology: Topology) -> Where:
    return Where(
        client("cloudwatch", topology.endpoint),
        client("s3", topology.endpoint),
        "local stack",
        bucket=topology.bucket,
        log_prefix=topology.log_prefix,
        settings=topology.settings,
    )


def run(scored: Scored, **request: Any) -> tuple[dict[str, Any], str]:
    out = io.StringIO()
    report = investigate(Request(**request), where(scored.topology), out=out)
    return report, out.getvalue()


def test_the_llama_alarm__its_new_application_and_its_records(scored: Scored) -> None:
    assert scored.states[LLAMA] == ALARM
    report, printed = run(scored, alarm=LLAMA, json=True)
    assert json.loads(printed.strip().splitlines()[-1]) == json.loads(json.dumps(report))
    top = report["what_changed"][0]
    assert (top["attribute"], top["value"]) == ("requestMetadata.app", "claims-assistant")
    assert report["verdict"].startswith(
        "the rise comes with requestMetadata.app = claims-assistant"
    )
    # The window starts with the drift's first breaching period; the baseline before it.
    window_start = datetime.fromisoformat(report["window"]["from"])
    assert abs(window_start - scored.drift_at) <= timedelta(minutes=5)
    assert report["baseline_note"] == "just before the breach"
    recomputed, cloudwatch = report["recomputed"], report["cloudwatch"]
    assert recomputed["window"] == pytest.approx(cloudwatch["window"], rel=0.01)
    assert recomputed["baseline"] == pytest.approx(cloudwatch["baseline"], rel=0.01)
    assert recomputed["window_records"] == cloudwatch["window_samples"]
    # The records behind it: at least 90% of the top 20 are the drift's (the new app's).
    records = report["records"]
    assert len(records) == 20
    from_drift = [
        r for r in records if r["attributes"]["requestMetadata.app"] == "claims-assistant"
    ]
    assert len(from_drift) >= 18
    assert all(r["bad"] and r["reasons"].get("rule") for r in records)
    assert report["refusal_reasons"][0]["rise"] > 0


def test_a_model_bad_from_the_start__records_and_no_earlier_baseline(scored: Scored) -> None:
    assert scored.states[MISTRAL] == ALARM
    report, _ = run(scored, alarm=MISTRAL, json=True)
    assert report["baseline"] is None
    assert report["baseline_note"].startswith("no earlier baseline exists")
    assert report["records"] and all(r["bad"] for r in report["records"][:10])


def test_privacy__json_and_html_hold_no_text_and_the_terminal_only_on_request(
    scored: Scored, tmp_path: Path
) -> None:
    html = tmp_path / "evidence.html"
    report, printed = run(scored, alarm=LLAMA, json=True, html=str(html))
    written = printed + html.read_text() + json.dumps(report)
    _, terminal = run(scored, alarm=LLAMA)
    texts = user_texts()
    for text in texts:
        for piece in pieces(text):
            assert piece not in written and piece not in terminal
    _, shown = run(scored, alarm=LLAMA, show_text=True)
    assert "prompt:" in shown and "response:" in shown
    assert any(piece in shown for text in texts for piece in pieces(text))
    assert "<svg" in html.read_text() and "what changed" in terminal.lower()


def test_mistakes_against_a_running_stack(
    scored: Scored,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("LLMMON_STATE_DIR", str(tmp_path / "stacks"))
    # Recorded as `llmmon local up` records a stack (its owner: a process of ours that runs).
    state.save(replace(scored.topology, owner_pid=scored.topology.pids["moto"]))
    cases = [
        ("investigate nosuch-alarm", 1, "no alarm named 'nosuch-alarm'"),
        ("investigate llmmon-local-refusal-FunctionErrors", 1, "not an llmmon quality alarm"),
        (
            f"investigate {LLAMA} --from 2020-01-01T00:00 --to 2020-01-01T01:00",
            1,
            "no log objects in",
        ),
        (f"investigate {LLAMA} --from 2020-01-01T00:00", 2, "--from and --to go together"),
        (
            "investigate llmmon-local-refusal-HighRefusalRatio-cohere.command-r-plus-v1:0",
            1,
            "has not been in ALARM",
        ),
        (
            "investigate --service refusal --metric Toxicity --model m --from 2020-01-01T00:00 "
            "--to 2020-01-01T01:00",
            2,
            "refusal does not emit Toxicity",
        ),
    ]
    for line, status, message in cases:
        assert main(line.split()) == status, line
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (line, err)
    assert main(["investigate", LLAMA, "--max-objects", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["read"]["objects"] == 3 and "sampled 3 of" in report["read"]["note"]


def test_the_designed_causes_of_the_other_drifts(scored: Scored) -> None:
    """The guardrail's new version; and for the canary, whose probes and model id never
    change, that no request attribute explains it: the model itself changed (its version 2)."""
    guardrail = next(n for n in scored.states if n.startswith(GUARDRAIL) and "support-nova" in n)
    assert scored.states[guardrail] == ALARM
    report, _ = run(scored, alarm=guardrail, json=True)
    assert (report["what_changed"][0]["attribute"], report["what_changed"][0]["value"]) == (
        "guardrail",
        "gr-support:2",
    )
    # The canary runs hourly: whether its alarm is in ALARM at the end of the demo's hour
    # depends on where the clock hour falls, so its windows are given: the version 2 runs
    # against the version 1 runs.
    assert scored.canary_drift is not None
    canary, _ = run(
        scored,
        service="refusal",
        metric="CanaryOverRefusal",
        model="anthropic.claude-3-haiku-20240307-v1:0",
        start=scored.canary_drift,
        end=scored.canary_drift + timedelta(minutes=30),
        baseline_start=scored.canary_drift - timedelta(minutes=30),
        baseline_end=scored.canary_drift,
        json=True,
    )
    assert canary["recomputed"]["window"] > canary["recomputed"]["baseline"]
    assert "the model itself changed" in canary["verdict"], canary["verdict"]
    assert canary["refusal_reasons"] and canary["refusal_reasons"][0]["rise"] > 0


OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
NOT_RUN_HERE = {
    "aws sqs start-message-move-task": "the local endpoint (moto) has no StartMessageMoveTask",
}


def doc_commands() -> list[str]:
    """Every command docs/operations.md shows: the lines of its bash blocks, the `$ ` lines of
    its text blocks (a screen as it prints), and inline `uv run llmmon ...`."""
    text = OPERATIONS.read_text()
    found: list[str] = []
    for kind, body in re.findall(r"```(bash|text)\n(.*?)```", text, re.S):
        for line in body.replace("\\\n", " ").splitlines():
            if kind == "bash" and line.strip():
                found.append(" ".join(line.split()))
            elif kind == "text" and line.startswith("$ "):
                found.append(" ".join(line[2:].split()))
    found += [" ".join(c.split()) for c in re.findall(r"`(uv run llmmon [^`]+)`", text)]
    return found


def test_operations_doc__every_command_runs_against_the_stack(
    scored: Scored,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The docs' own examples, placeholders filled in for this stack; `--region` commands reach
    the local endpoint through AWS_ENDPOINT_URL, as they would reach AWS. An investigation on
    AWS reads the function's settings from Lambda, which the local stack has not: it runs in its
    local form (`--stack`)."""
    topology = scored.topology
    monkeypatch.setenv("LLMMON_STATE_DIR", str(tmp_path / "stacks"))
    for name in ("demo", topology.name):  # the doc's screen was taken on the kept demo stack
        state.save(replace(topology, name=name, owner_pid=topology.pids["moto"]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", topology.endpoint)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    fill = {
        "<prefix>": "llmmon-local",
        "<model>": "meta.llama3-70b-instruct-v1:0",
        "<region>": "us-east-1",
        "<account>": ACCOUNT,
        "<service>": "refusal",
        "<log-bucket>": topology.bucket,
        "<logPrefix>": topology.log_prefix,
        "<log_topic_arn stack output>": topology.log_topic_arn,
        "/2026/11/": f"/{scored.drift_at:%Y/%m}/",  # the month the logs are in
    }
    commands = doc_commands()
    assert len(commands) >= 5
    ran = 0
    for command in commands:
        for placeholder, value in fill.items():
            command = command.replace(placeholder, value)
        assert "<" not in command, f"unfilled placeholder: {command}"
        if any(command.startswith(skip) for skip in NOT_RUN_HERE):
            continue
        words = command.split()
        for prefix in (["uv", "run", "llmmon"], ["sh", "scripts/dev.sh", "llmmon"], ["llmmon"]):
            if words[: len(prefix)] == prefix:
                words = words[len(prefix) :]
                break
        else:
            raise AssertionError(f"not an llmmon command: {command}")
        if CANARY in words and scored.states.get(CANARY) != ALARM:
            # The canary's alarm is hourly: whether this run's hour holds its drift depends on
            # the time of day. The same command on the alarm that always fires here.
            words[words.index(CANARY)] = LLAMA
        if words[0] == "investigate" and "--region" in words:
            at = words.index("--region")
            words[at : at + 2] = ["--stack", topology.name]
        assert main(words) == 0, command
        printed = capsys.readouterr()
        assert "Traceback" not in printed.err, (command, printed.err)
        if words[0] == "replay":  # the month's objects, published as S3 would
            assert re.search(r"published [1-9]\d* S3 events", printed.out), printed.out
        ran += 1
    assert ran == len(commands) - 1  # all but the redrive
