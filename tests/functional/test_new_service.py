"""``llmmon new service NAME``: the folder, its entry point, a unit test and an infra test, and
the workspace lines, written so that the service works as written (its tests pass, lint is clean)."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from llmmon.errors import CliError
from llmmon.new_service import new_service

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    assert new_service(tmp_path, "lengths", "Answer lengths", lock=False, uv=None) == 0
    assert "sh scripts/dev.sh lock" in capsys.readouterr().out
    source = str(tmp_path / "services" / "lengths" / "src")
    sys.path.insert(0, source)
    yield tmp_path
    sys.path.remove(source)
    for name in [m for m in sys.modules if m.startswith("llmmon_lengths")]:
        del sys.modules[name]


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_workspace_gains_the_service(written: Path) -> None:
    root = tomllib.loads((written / "pyproject.toml").read_text())
    assert "llmmon-lengths" in root["project"]["dependencies"]
    assert root["tool"]["uv"]["sources"]["llmmon-lengths"] == {"workspace": True}
    before = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert set(before["tool"]["uv"]["sources"]) < set(root["tool"]["uv"]["sources"])
    project = tomllib.loads((written / "services/lengths/pyproject.toml").read_text())
    entry = project["project"]["entry-points"]["llmmon.services"]
    assert entry == {"lengths": "llmmon_lengths.spec:SERVICE"}


def test_the_generated_tests_pass(written: Path) -> None:
    from llmmon_shared.spec import ServiceSpec

    spec = importlib.import_module("llmmon_lengths.spec").SERVICE
    assert isinstance(spec, ServiceSpec)
    assert importlib.import_module("llmmon_lengths.handler").lambda_handler
    unit = load(written / "tests/unit/services/test_lengths.py")
    unit.test_an_empty_answer_counts_and_a_real_one_does_not()
    unit.test_every_value_is_a_declared_metric()
    load(
        written / "tests/infra/test_lengths_service.py"
    ).test_queue_dead_letter_queue_function_and_alarms_per_model()


def test_the_alarmed_metric_is_a_headline_column(written: Path) -> None:
    from llmmon_shared.spec import headline_columns

    spec = importlib.import_module("llmmon_lengths.spec").SERVICE
    assert [c.name for c in headline_columns({"lengths": spec})] == [
        "Interactions",
        "LengthsEmptyAnswer",
    ]


@pytest.mark.parametrize("name", ["lengths", "zeta"])  # before and after llmmon_shared
def test_lint_is_clean(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    description = "A service " + "that says a great deal about itself " * (name == "zeta") * 4
    new_service(tmp_path, name, description, lock=False, uv=None)
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff
    files = [str(p) for p in tmp_path.rglob("*.py")]
    checked = subprocess.run(
        [ruff, "check", "--config", str(REPO / "pyproject.toml"), *files],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout
    formatted = subprocess.run(
        [ruff, "format", "--check", "--config", str(REPO / "pyproject.toml"), *files],
        capture_output=True,
        text=True,
    )
    assert formatted.returncode == 0, formatted.stdout


def test_a_taken_or_bad_name_writes_nothing(tmp_path: Path) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for name in ("refusal", "canary", "Bad-Name", "x"):
        with pytest.raises(CliError):
            new_service(tmp_path, name, "", lock=False, uv=None)
    assert not (tmp_path / "services").exists()
    assert (tmp_path / "pyproject.toml").read_text() == (REPO / "pyproject.toml").read_text()
