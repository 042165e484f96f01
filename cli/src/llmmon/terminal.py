"""What the commands show on a terminal while they work (shared by the demo and the local
stack's commands, so neither imports the other)."""

from __future__ import annotations

import sys


def bar(done: int, total: int, label: str, width: int = 30) -> None:
    """A progress bar on a terminal; elsewhere (a log file, CI) only the line that ends it."""
    if not sys.stderr.isatty():
        if done >= total:
            sys.stderr.write(f"  {done}/{total} {label}\n")
        return
    filled = int(width * done / max(1, total))
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}   ")
    sys.stderr.flush()
    if done >= total:
        sys.stderr.write("\n")


def run_hint(command: str = "") -> str:
    """How this user runs llmmon, for the hints we print: ``uv run llmmon`` where uv is on PATH,
    the README's ``sh scripts/dev.sh llmmon`` (``... demo``) in a checkout where it is not (the
    set-up installs uv under .tools/), else ``llmmon``. ``command``: a sub-command to append."""
    import shutil
    from pathlib import Path

    if shutil.which("uv"):
        base = "uv run llmmon"
    elif Path("scripts/dev.sh").is_file():
        if command == "demo":
            return "sh scripts/dev.sh demo"
        base = "sh scripts/dev.sh llmmon"
    else:
        base = "llmmon"
    return f"{base} {command}" if command else base
