"""The committed fixture objects are exactly what tests/fixtures/make_fixtures.py writes."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import FIXTURES
from tests.fixtures import make_fixtures


def test_fixtures__are_up_to_date(tmp_path: Path) -> None:
    written = {
        p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in make_fixtures.write(tmp_path)
    }
    committed = {
        p.relative_to(FIXTURES).as_posix(): p.read_bytes()
        for p in FIXTURES.rglob("*")
        if p.is_file()
    }
    assert written == committed, "run: uv run python tests/fixtures/make_fixtures.py"


def test_fixture_keys__follow_the_bedrock_layout() -> None:
    from llmmon_shared.events import LOG_KEY_PATTERN, classify_key

    logs = [p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.json.gz")]
    log_objects = [k for k in logs if classify_key(k, None) is None]
    assert len(log_objects) >= 15
    assert all(LOG_KEY_PATTERN.search(k) for k in log_objects)
