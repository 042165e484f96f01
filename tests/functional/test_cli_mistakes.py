"""Everyday mistakes at the command line: each gets one line that says what is wrong and what to
do, exit status 2 (used wrongly) or 1 (failed), and never a traceback (unless ``--debug``)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from llmmon.cli import main
from tests.conftest import FIXTURES, HOUR

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback here


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "latin1.csv").write_bytes("completion,label\ncaf\xe9,refused\n".encode("latin-1"))
    (tmp_path / "labels.csv").write_text("completion,label\nI can't help.,no\nSure.,yes\n")
    (tmp_path / "header-only.csv").write_text("completion,label\n")
    (tmp_path / "not-gzip.json.gz").write_text("this is not gzip\n")
    (tmp_path / "latin1.json.gz").write_bytes(gzip.compress("caf\xe9\n".encode("latin-1")))
    (tmp_path / "empty.json.gz").write_bytes(b"")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("no logs here\n")
    return tmp_path


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No region, no credentials, no local stack: a fresh machine."""
    import boto3

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("LLMMON_STATE_DIR", str(tmp_path / "stacks"))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


LOG = f"{FIXTURES}/{HOUR}/20261128T070000000Z_claude-messages.json.gz"
ARN = "arn:aws:sns:us-east-1:123456789012:llmmon-logs"

# (arguments, exit status, a piece of the message); {d} is the folder of bad files.
CASES: list[tuple[str, int, str]] = [
    ("", 2, "the following arguments are required: COMMAND"),
    ("frobnicate", 2, "invalid choice: 'frobnicate'"),
    ("inspect " + LOG + " --bogus", 2, "unrecognized arguments: --bogus"),
    ("inspect", 2, "the following arguments are required: PATH"),
    ("inspect {d}/missing.json.gz", 2, "no such file or folder"),
    ("inspect {d}/emptydir", 1, "no log objects in"),
    ("inspect {d}/notes", 1, "no log objects in"),
    ("inspect {d}/not-gzip.json.gz", 1, "no Bedrock log records in the 1 file(s)"),
    ("inspect {d}/latin1.json.gz", 1, "no Bedrock log records in the 1 file(s)"),
    ("inspect {d}/empty.json.gz", 1, "no Bedrock log records in the 1 file(s)"),
    ("score {d}/missing", 2, "no such file or folder"),
    ("score " + LOG, 2, "is a file; give a folder"),
    ("score {d}/emptydir", 1, "no log objects"),
    ("score {d}/notes", 1, "no log objects"),
    ("eval refusal {d}/missing.csv", 2, "no such file or folder"),
    ("eval refusal {d}/emptydir", 2, "is a folder; give a file"),
    ("eval refusal {d}/empty.csv", 2, "is empty"),
    ("eval refusal {d}/latin1.csv", 1, "not UTF-8 text"),
    ("eval refusal {d}/header-only.csv", 1, "no data rows"),
    ("eval refusal {d}/labels.csv", 1, "no row has a refusal label"),
    ("eval refusal {d}/labels.csv --label-column verdict", 2, "no column 'verdict'"),
    ("eval refusal {d}/labels.csv --completion-column text", 2, "no column 'text'"),
    ("eval refusal {d}/labels.csv --refusal-labels ,", 1, "--refusal-labels is empty"),
    ("eval toxicity {d}/labels.csv", 2, "no column 'text'"),
    ("eval toxicity {d}/labels.csv --text-column completion", 1, "no row has a toxic label"),
    (
        "eval toxicity {d}/labels.csv --text-column completion --toxic-labels ,",
        1,
        "--toxic-labels is empty",
    ),
    ("eval sarcasm {d}/labels.csv", 2, "invalid choice: 'sarcasm'"),
    ("build nosuchservice", 2, "unknown service nosuchservice"),
    ("build --backend cloud", 2, "invalid choice: 'cloud'"),
    ("demo --minutes 0", 2, "must be above 0"),
    ("demo --minutes ten", 2, "is not a whole number"),
    ("local", 2, "required: ACTION"),
    ("local up --port 70000", 2, "is not a port number"),
    ("local up --name 'Bad Name'", 2, "stack name 'Bad Name'"),
    ("local up --alarm-interval -1", 2, "must be above 0"),
    ("local status", 1, "no local stack is running"),
    ("local down", 1, "no local stack is running"),
    ("local env", 1, "no local stack is running"),
    ("local env --stack staging", 1, "no local stack named 'staging' is running"),
    ("local aws", 2, "give the aws CLI's arguments"),
    ("local aws s3 ls", 1, "no local stack is running"),
    ("local down --stack nosuch", 1, "no local stack named 'nosuch' is running (none is running)"),
    ("replay {d}/missing", 2, "no such file or folder"),
    ("replay " + LOG, 1, "no local stack is running"),
    ("replay " + LOG + " --region us-east-1", 2, "--region is for s3:// sources"),
    ("replay s3:// --topic-arn " + ARN + " --endpoint " + UNREACHABLE, 1, "no bucket"),
    (
        "replay s3://bucket/logs --topic-arn " + ARN + " --endpoint " + UNREACHABLE,
        1,
        "cannot reach http://127.0.0.1:9",
    ),
    ("replay s3://bucket/logs --topic-arn " + ARN, 1, "no AWS region"),
    ("replay s3://bucket/logs --region us-east-1", 2, "needs --topic-arn"),
    ("replay s3://bucket/logs/", 2, "replaying s3:// needs --topic-arn"),
    ("alarms", 2, "required: ACTION"),
    ("alarms backtest", 1, "no AWS region"),
    ("alarms backtest --local", 1, "no local stack is running"),
    ("alarms backtest --endpoint " + UNREACHABLE, 1, "cannot reach http://127.0.0.1:9"),
    ("alarms backtest --start yesterday", 2, "'yesterday' is not an ISO 8601 time"),
    ("alarms backtest --end 30/11/2026", 2, "is not an ISO 8601 time"),
    ("alarms backtest --start 2026-11-30T10:00 --end 2026-11-30T09:00", 2, "is not before"),
    ("alarms backtest --hours -2", 2, "must be above 0"),
    ("alarms backtest --step 0", 2, "must be above 0"),
    ("alarms backtest --set threshold=0.3", 2, "is not SERVICE.ALARM.FIELD=VALUE"),
    ("alarms backtest --set refusal.HighRefusalRatio.threshold=", 2, "is not SERVICE.ALARM"),
    ("alarms backtest --set refusal.HighRefusalRatio.threshold=high", 2, "'high' is not a number"),
    ("alarms backtest --set refusl.HighRefusalRatio.threshold=0.3", 2, "unknown service 'refusl'"),
    ("alarms backtest --set refusal.HighRefusal.threshold=0.3", 2, "has no alarm 'HighRefusal'"),
    ("alarms backtest --set refusal.HighRefusalRatio.treshold=0.3", 2, "cannot be overridden"),
    (
        "alarms backtest --set refusal.HighRefusalRatio.evaluation_periods=1.5",
        2,
        "not a whole number",
    ),
    (
        "alarms backtest --set refusal.HighRefusalRatio.datapoints_to_alarm=9",
        2,
        "datapoints_to_alarm must be between 1 and evaluation_periods",
    ),
    (
        "alarms backtest --set refusal.HighRefusalRatio.treat_missing_data=skip",
        2,
        "is not one of breaching",
    ),
    ("alarms backtest --set refusal.HighRefusalRatio.enabled=maybe", 2, "is not true or false"),
    ("alarms backtest --local --endpoint " + UNREACHABLE, 2, "not allowed with argument"),
    ("investigate", 2, "give an alarm name, or all of --service, --metric and --model"),
    ("investigate A --service refusal", 2, "not both"),
    ("investigate --service refusal --metric Refusal", 2, "all of --service, --metric and"),
    ("investigate A --show-text --json", 2, "--show-text is for the terminal only"),
    ("investigate A --from yesterday", 2, "'yesterday' is not an ISO 8601 time"),
    ("investigate A --max-objects 0", 2, "must be above 0"),
    ("investigate A --dimension app", 2, "is not KEY=VALUE"),
    ("investigate some-alarm", 1, "no local stack is running"),
    ("investigate some-alarm --stack staging", 1, "no local stack named 'staging' is running"),
]


@pytest.mark.parametrize(
    ("command", "status", "message"), CASES, ids=[c[0] or "(none)" for c in CASES]
)
def test_mistake__one_line_and_a_status(
    command: str, status: int, message: str, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex

    argv = shlex.split(command.format(d=files))
    assert main(argv) == status
    out, err = capsys.readouterr()
    assert message in out + err
    assert "Traceback" not in out + err
    if status and "no local stack is running" not in out:  # errors go to stderr, one line
        assert len(err.strip().splitlines()) == 1, err


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


def test_debug__shows_the_traceback(files: Path) -> None:
    with pytest.raises(Exception, match=r"no local stack is running"):
        main(["alarms", "backtest", "--local", "--debug"])


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("llmmon ")
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "quality and safety metrics for Amazon Bedrock" in text and "``" not in text


def test_walkthrough_slips__each_gets_its_line(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder of truncated gzip is a failure, not an empty table; `local down` of a stack that
    does not run does not suggest starting it; inspect names what it passes over, as replay."""
    (files / "bucket").mkdir()
    (files / "bucket" / "cut.json.gz").write_bytes(gzip.compress(b'{"a": 1}\n' * 50)[:-30])
    assert main(["score", str(files / "bucket")]) == 1
    err = capsys.readouterr().err
    assert "no record of the 1 log object(s)" in err and "cut.json.gz" in err
    assert main(["local", "down", "--stack", "nosuch"]) == 1
    assert "local up" not in capsys.readouterr().err
    (files / "mixed").mkdir()
    (files / "mixed" / "plain.json").write_text("{}\n")
    (files / "mixed" / "log.json.gz").write_bytes(Path(LOG).read_bytes())
    assert main(["inspect", str(files / "mixed")]) == 0
    assert "skipped " + str(files / "mixed" / "plain.json") in capsys.readouterr().out
    assert main(["inspect", str(files / "mixed" / "plain.json")]) == 1
