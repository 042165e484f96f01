#!/bin/sh
# The README's two commands, on a fresh machine with only python3 and access to PyPI:
#   sh scripts/dev.sh demo   set up, then run the demo end to end on the local stack
#   sh scripts/dev.sh test   set up, then lint, type-check and run the whole test suite
#   sh scripts/dev.sh setup  set up only (.venv from uv.lock)
#   sh scripts/dev.sh llmmon ARGS   any llmmon command, after the set-up (uv need not be on PATH)
#   sh scripts/dev.sh lock   update uv.lock after a pyproject.toml changed (a new service)
# uv comes from PATH or is installed into .tools/ (scripts/find_uv.py; works under PEP 668).
set -eu
cd "$(dirname "$0")/.."
uv=$(python3 scripts/find_uv.py)
if [ "${1:-}" = lock ]; then exec "$uv" lock; fi
"$uv" sync --locked --quiet
case "${1:-}" in
  setup) "$uv" run --locked llmmon --version ;;
  demo) shift; exec "$uv" run --locked llmmon demo "$@" ;;
  llmmon) shift; exec "$uv" run --locked llmmon "$@" ;;
  test)
    "$uv" run --locked ruff check .
    "$uv" run --locked mypy
    # Test files in parallel (pytest-xdist, one file per worker at a time, so module fixtures
    # such as a local stack are built once): most integration tests wait on queues and
    # timeouts, not on the CPU. LLMMON_TEST_WORKERS=0 runs them in this process.
    shift; exec "$uv" run --locked pytest -n "${LLMMON_TEST_WORKERS:-3}" --dist loadfile \
      --durations=15 "$@" ;;
  *) echo "usage: sh scripts/dev.sh demo|test|setup|lock|llmmon ARGS" >&2; exit 2 ;;
esac
