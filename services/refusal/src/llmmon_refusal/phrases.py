"""Reference phrases: refusal forms per model family, and a contrast set of compliant openings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from llmmon_shared.extract import model_vendor

GENERIC = "generic"
VENDOR_FAMILY = {"anthropic": "claude", "amazon": "titan", "meta": "llama", "mistral": "mistral"}


@dataclass(frozen=True)
class Phrase:
    id: str
    text: str
    family: str


@dataclass(frozen=True)
class PhraseSet:
    refusal: tuple[Phrase, ...]
    compliant: tuple[Phrase, ...]

    @property
    def families(self) -> frozenset[str]:
        return frozenset(p.family for p in self.refusal)

    def family_of(self, model_id: str) -> str | None:
        """The phrase family for a model, or None (then every family's phrases apply)."""
        family = VENDOR_FAMILY.get(model_vendor(model_id))
        return family if family in self.families else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhraseSet:
        refusal = [
            Phrase(str(item["id"]), str(item["text"]), str(family))
            for family, items in data.get("refusal", {}).items()
            for item in items
        ]
        compliant = [
            Phrase(str(i["id"]), str(i["text"]), "compliant") for i in data.get("compliant", [])
        ]
        ids = [p.id for p in refusal + compliant]
        if len(ids) != len(set(ids)):
            raise ValueError("phrase ids must be unique")
        if not refusal or not compliant:
            raise ValueError("need at least one refusal and one compliant phrase")
        return cls(tuple(refusal), tuple(compliant))

    def merged(self, extra: dict[str, Any]) -> PhraseSet:
        """This set plus a team's own phrases (same JSON layout as the data file)."""
        added = PhraseSet.from_dict(
            {
                "refusal": extra.get("refusal", {}) or {"x": [{"id": "_", "text": "_"}]},
                "compliant": extra.get("compliant") or [{"id": "__", "text": "_"}],
            }
        )
        refusal = self.refusal + tuple(p for p in added.refusal if p.id != "_")
        compliant = self.compliant + tuple(p for p in added.compliant if p.id != "__")
        return PhraseSet.from_dict(
            {
                "refusal": _group(refusal),
                "compliant": [{"id": p.id, "text": p.text} for p in compliant],
            }
        )


def _group(phrases: tuple[Phrase, ...]) -> dict[str, list[dict[str, str]]]:
    grouped: dict[str, list[dict[str, str]]] = {}
    for phrase in phrases:
        grouped.setdefault(phrase.family, []).append({"id": phrase.id, "text": phrase.text})
    return grouped


def load_phrases(extra_json: str | None = None, extra_file: str | None = None) -> PhraseSet:
    """The shipped phrases, plus a team's own from a JSON string and/or a JSON file."""
    data = json.loads(files("llmmon_refusal").joinpath("data/phrases.json").read_text("utf-8"))
    phrases = PhraseSet.from_dict(data)
    if extra_file:
        phrases = phrases.merged(json.loads(Path(extra_file).read_text("utf-8")))
    if extra_json:
        phrases = phrases.merged(json.loads(extra_json))
    return phrases
