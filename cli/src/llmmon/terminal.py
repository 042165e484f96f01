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
