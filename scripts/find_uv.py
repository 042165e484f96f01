"""Print the path of a uv executable, installing a pinned uv into ``.tools/`` when none is usable.

Standard library only, so it runs on any Python 3.8+: a python.org or uv-managed Python, and
Debian's or Ubuntu's system Python, where ``pip install`` outside a virtual environment is refused
(PEP 668, ``externally-managed-environment``). Nothing is installed into that Python:

1. ``$LLMMON_UV``, or a ``uv`` on ``PATH`` of at least ``MINIMUM``, is used as it is;
2. else ``pip install --target .tools/uv-VERSION uv==VERSION`` (a target folder is not an
   externally managed environment, so PEP 668 does not apply);
3. else, where this Python has no pip at all, the uv wheel is fetched from PyPI's simple index
   (JSON, PEP 691) with urllib, its SHA-256 checked against the index, and the binary taken out.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

VERSION = "0.13.9"
MINIMUM = (0, 9, 0)
ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / ".tools" / f"uv-{VERSION}"
BINARY = TARGET / "bin" / "uv"


def say(text: str) -> None:
    print(f"find_uv: {text}", file=sys.stderr)


def version_of(uv: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=30).stdout
        return tuple(int(part) for part in out.split()[1].split(".")[:3])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def from_pip() -> bool:
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode:
        return False
    say(f"installing uv {VERSION} into {TARGET.relative_to(ROOT)} with pip")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--no-warn-script-location", "--target", str(TARGET), f"uv=={VERSION}"]
    return subprocess.run(command).returncode == 0 and BINARY.exists()


def wheel_tags() -> tuple[str, str]:
    """(platform family, machine) as they appear in uv's wheel names."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if sys.platform == "darwin":
        return "macosx", "arm64" if machine == "aarch64" else "x86_64"
    return "manylinux", machine


def from_pypi() -> bool:
    index = os.environ.get("LLMMON_PYPI_SIMPLE", "https://pypi.org/simple").rstrip("/")
    say(f"this Python has no pip: fetching the uv {VERSION} wheel from {index}")
    request = urllib.request.Request(
        f"{index}/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    family, machine = wheel_tags()
    for item in files:
        name = item["filename"]
        if (
            name.startswith(f"uv-{VERSION}-")
            and name.endswith(".whl")
            and family in name
            and (f"_{machine}." in name or f"_{machine}.whl" in name)
        ):
            with urllib.request.urlopen(item["url"], timeout=300) as response:
                data = response.read()
            if hashlib.sha256(data).hexdigest() != item["hashes"]["sha256"]:
                raise SystemExit(f"find_uv: {name}: SHA-256 does not match the index")
            with zipfile.ZipFile(io.BytesIO(data)) as wheel:
                member = next(n for n in wheel.namelist() if n.endswith(".data/scripts/uv"))
                BINARY.parent.mkdir(parents=True, exist_ok=True)
                BINARY.write_bytes(wheel.read(member))
            BINARY.chmod(0o755)
            return True
    raise SystemExit(f"find_uv: no uv {VERSION} wheel for {family} {machine} on {index}")


def main() -> int:
    for candidate in (os.environ.get("LLMMON_UV"), shutil.which("uv")):
        found = version_of(candidate) if candidate else None
        if candidate and found and found >= MINIMUM:
            print(candidate)
            return 0
    if not (BINARY.exists() and version_of(str(BINARY))) and not (from_pip() or from_pypi()):
        raise SystemExit("find_uv: could not install uv; install it (https://docs.astral.sh/uv/)")
    print(BINARY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
