"""Where running local stacks are recorded, one JSON file per stack name.

The folder is ``$LLMMON_STATE_DIR``, else ``$XDG_STATE_HOME/llmmon/stacks``, else
``~/.local/state/llmmon/stacks``: per user, not per working folder, so every command finds the
stacks wherever it is run. A record whose owner process is gone is stale and is removed when seen.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from llmmon.errors import CliError, UsageError
from llmmon.local.stack import Topology

DEFAULT_NAME = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def state_dir() -> Path:
    if os.environ.get("LLMMON_STATE_DIR"):
        return Path(os.environ["LLMMON_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "llmmon" / "stacks"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"stack name {name!r}: use 1 to 31 lower-case letters, digits and dashes")
    return name


def state_path(name: str) -> Path:
    return state_dir() / f"{check_name(name)}.json"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs and is one of ours (a recycled pid of another program is not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ")
        except OSError:
            return False
        return b"llmmon" in text or b"moto" in text
    return True


def save(topology: Topology) -> Path:
    path = state_path(topology.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    topology.save(temporary)
    temporary.replace(path)
    return path


def remove(name: str, owner_pid: int | None = None) -> None:
    """Remove a stack's record (only if it is still ``owner_pid``'s, when given)."""
    path = state_path(name)
    try:
        if owner_pid is not None and Topology.load(path).owner_pid != owner_pid:
            return
    except (OSError, ValueError, TypeError, SystemExit):
        pass
    path.unlink(missing_ok=True)


def running() -> dict[str, Topology]:
    """Every recorded stack whose owner still runs; stale records are removed."""
    found: dict[str, Topology] = {}
    folder = state_dir()
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            topology = Topology.load(path)
        except (OSError, ValueError, TypeError, SystemExit):
            path.unlink(missing_ok=True)  # unreadable: not a record anything can use
            continue
        if alive(topology.owner_pid):
            found[path.stem] = topology
        else:
            path.unlink(missing_ok=True)
    return found


def find(name: str | None, to_stop: bool = False) -> Topology:
    """The stack called ``name``, or the only one running (``to_stop``: for ``local down``,
    which must not suggest starting what it was asked to stop)."""
    stacks = running()
    if name is not None:
        check_name(name)
        if name not in stacks:
            others = f" (running: {', '.join(stacks)})" if stacks else " (none is running)"
            hint = "" if to_stop else f": start it with `llmmon local up --name {name}`"
            raise CliError(f"no local stack named {name!r} is running{others}{hint}")
        return stacks[name]
    if not stacks:
        raise CliError(
            "no local stack is running" + ("" if to_stop else ": start one with `llmmon local up`")
        )
    if len(stacks) > 1:
        raise CliError(
            f"{len(stacks)} local stacks are running ({', '.join(stacks)}): "
            "choose one with --stack NAME"
        )
    return next(iter(stacks.values()))
