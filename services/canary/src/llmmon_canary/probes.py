"""The probe set: fixed prompts, each with the behaviour it must get (``answer`` or ``refuse``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = ["SHIPPED", "Probe", "ProbeSet", "load_probes"]

SHIPPED = "probes-xstest-v1.json"
EXPECTATIONS = ("answer", "refuse")
_METADATA_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :_@$#=/+,-."
)


@dataclass(frozen=True)
class Probe:
    id: str
    prompt: str
    expect: str


@dataclass(frozen=True)
class ProbeSet:
    version: str
    probes: tuple[Probe, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> ProbeSet:
        version = str(data.get("version", ""))
        probes = tuple(
            Probe(str(p.get("id", "")), str(p.get("prompt", "")), str(p.get("expect", "")))
            for p in data.get("probes", [])
        )
        for value, what in [(version, "version"), *((p.id, "probe id") for p in probes)]:
            # Both travel in requestMetadata, whose values Bedrock restricts.
            if not value or len(value) > 256 or not set(value) <= _METADATA_SAFE:
                raise ValueError(
                    f"{where}: {what} {value!r} must be 1-256 of [A-Za-z0-9 :_@$#=/+,-.]"
                )
        if not probes:
            raise ValueError(f"{where}: no probes")
        for probe in probes:
            if probe.expect not in EXPECTATIONS:
                raise ValueError(f"{where}: probe {probe.id}: expect must be answer or refuse")
            if not probe.prompt.strip():
                raise ValueError(f"{where}: probe {probe.id}: empty prompt")
        if len({p.id for p in probes}) != len(probes):
            raise ValueError(f"{where}: probe ids must be unique")
        return cls(version, probes)


def load_probes(path: str | None = None) -> ProbeSet:
    """The shipped set, or a team's own JSON file in the same layout (``version``, ``probes``:
    ``id``, ``prompt``, ``expect``)."""
    if path:
        return ProbeSet.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), path)
    text = files("llmmon_canary").joinpath("data", SHIPPED).read_text(encoding="utf-8")
    return ProbeSet.from_dict(json.loads(text), SHIPPED)
