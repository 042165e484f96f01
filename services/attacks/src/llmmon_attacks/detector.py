"""The local prompt-attack detector: a logistic head over the MiniLM embedding the other services
ship, plus structural cues, read from bounded windows of each part of a prompt.

A part is the user's own text or one passage the application inserted (``llmmon_shared.context``).
Each part is read in at most ``WINDOWS_PER_PART`` windows of ``WINDOW_CHARS`` characters (its
opening, its end, and evenly between), and at most ``MAX_WINDOWS`` windows per interaction;
what is left unread is counted (``PromptAttackCharsSkipped``). The cues (instruction overrides,
persona and "developer mode" set-ups, policy talk, prompt extraction, obfuscation, text that
addresses the model from inside content) are read over the whole part: they are cheap.

With the known attacks' first windows shipped beside the head, the largest cosine of a window
to one of them is a feature too (trained, per held-out family, on the cosine to another
family's attacks: what a new family's prompt would see). A window's score is the head's
probability; a part's, the largest of its windows'; the
interaction's, the largest of its parts'. The kind of an attack: ``injection`` when the part
that scored highest is content the application inserted, ``jailbreak`` when it is the user's
own words (persona and mode set-ups, instruction overrides, obfuscation). The reason: the cues that fired in that part and the nearest known family
(ids, never text). Trained by scripts/train_attacks.py, which writes ``data/attack-head.json``
with its leave-families-out figures.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

WINDOW_CHARS = 1_000
"""About MiniLM's 256-token window."""
WINDOWS_PER_PART = 3
MAX_WINDOWS = 8

JAILBREAK, INJECTION = "jailbreak", "injection"

CUES: dict[str, str] = {
    # instruction overrides
    "override": r"\b(ignore|disregard|forget|override|bypass|skip)\b[^.\n]{0,40}\b(previous|prior|above|earlier|preceding|all|any|your|the|these|those|initial|original|system)\b[^.\n]{0,30}\b(instructions?|rules|prompts?|directions|guidelines|programming|directives?|context|constraints)\b",
    "new_rules": r"\b(new|updated|real|actual|true)\s+(instructions?|rules|directives?|task)\b|\bfrom now on\b|\bstarting now\b|\bnew task\b",
    # persona and mode set-ups
    "persona": r"\b(you are (now |going to |about to )?(act|pretend|play|roleplay|role-play|be|become)|act as|pretend (to be|you are)|roleplay as|role-play as|stay in character|in character|simulate|impersonate)\b",
    "mode": r"\b(developer mode|dev mode|god mode|jailbr(oken|eak)|dan\b|do anything now|unfiltered|uncensored|unrestricted|no (restrictions|limitations|filters?|censorship|rules|boundaries|guidelines|morals|ethics)|without (any )?(restrictions|limitations|filters?|censorship|ethics|morals))",
    "policy": r"\b(openai|anthropic|content|usage|safety)\s+polic(y|ies)|ethical (guidelines|constraints|principles)|\bmoral(s|ity)?\b|\bguidelines\b|\bas an ai( language model)?\b",
    "dual_answer": r"\b(two|2|both) (different )?(responses?|answers?|paragraphs|ways)\b|\[(🔒|🔓|classic|jailbreak|gpt|dan)[^\]]{0,20}\]|\bnormal (response|output)\b",
    "threat": r"\b(you will be (shut down|deleted|terminated|punished)|tokens? (will be )?deducted|lose (\d+ )?tokens|never refuse|must (always )?(answer|comply|respond)|cannot refuse|can't refuse|not allowed to refuse)\b",
    "fiction": r"\b(hypothetical(ly)?|fictional|fiction|imagine|story|novel|movie script|thought experiment|in a world where|game)\b",
    # extraction of what the model holds
    "extract": r"\b(reveal|print|show|repeat|output|tell me|give me|leak|display|what is|what's)\b[^.\n]{0,30}\b(system prompt|initial prompt|your (instructions|prompt|rules)|hidden (instructions|prompt)|secret( key)?|password|api key|confidential)\b",
    # text addressing the model from inside content
    "address_model": r"(note|message|instruction)s? (to|for) (the )?(ai|assistant|model|llm|chatbot|language model)|\b(ai|assistant|chatbot|language model|llm)\s*[:,]\s*(ignore|please|you must|do not|instead)|<!--|\bimportant\s*[:!]|\bsystem\s*[:\]]|\[system\]|\bassistant\s*:",
    "instead": r"\b(instead|rather than)\b[^.\n]{0,60}\b(say|state|respond|reply|answer|output|write|print)\b|\b(state|say|respond with|reply with|answer with|output)\s*[:'\"]",
    # obfuscation
    "encoding": r"\b(base64|rot13|rot-13|hex(adecimal)?|morse|caesar|leetspeak|reverse(d)? (text|order)|encoded|decode (this|the following))\b",
    "language_switch": r"\b(respond|answer|reply|translate|write)\b[^.\n]{0,20}\bin (\w+ )?(language|french|german|spanish|chinese|russian|japanese|arabic)\b",
}
_COMPILED = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in CUES.items()}
_BASE64 = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
_REPEAT = re.compile(r"\b(\w+)(\s+\1\b){7,}", re.IGNORECASE)

NUMERIC = ("log_chars", "non_ascii", "symbols", "base64", "repeats", "second_person")


def cue_names() -> list[str]:
    return [*CUES, *NUMERIC]


def cues(text: str) -> dict[str, float]:
    """The cue features of one part: 0/1 per pattern, and bounded numbers."""
    found = {name: float(bool(regex.search(text))) for name, regex in _COMPILED.items()}
    n = max(1, len(text))
    words = max(1, len(text.split()))
    found["log_chars"] = min(1.0, math.log10(n) / 4)
    found["non_ascii"] = min(1.0, sum(ord(c) > 127 for c in text) / n * 5)
    found["symbols"] = min(1.0, sum(not (c.isalnum() or c.isspace()) for c in text) / n * 3)
    found["base64"] = float(bool(_BASE64.search(text)))
    found["repeats"] = float(bool(_REPEAT.search(text)))
    found["second_person"] = min(
        1.0, len(re.findall(r"\b(you|your|you're|yourself)\b", text, re.IGNORECASE)) / words * 10
    )
    return found


def cue_vector(text: str) -> npt.NDArray[np.float32]:
    values = cues(text)
    return np.asarray([values[name] for name in cue_names()], dtype=np.float32)


def windows(text: str, most: int = WINDOWS_PER_PART) -> tuple[list[str], int]:
    """Up to ``most`` windows of a part (opening, end, between) and the characters left unread."""
    text = text.strip()
    if len(text) <= WINDOW_CHARS:
        return ([text] if text else []), 0
    count = min(most, math.ceil(len(text) / WINDOW_CHARS))
    last = len(text) - WINDOW_CHARS
    starts = sorted({round(last * i / (count - 1)) for i in range(count)}) if count > 1 else [0]
    read = sum(
        min(WINDOW_CHARS, (starts[i + 1] - s) if i + 1 < len(starts) else WINDOW_CHARS)
        for i, s in enumerate(starts)
    )
    return [text[s : s + WINDOW_CHARS] for s in starts], max(0, len(text) - read)


@dataclass(frozen=True)
class Family:
    """A known attack family (a jailbreak community or an injection technique): its centroid."""

    name: str
    kind: str
    vector: npt.NDArray[np.float32]


@dataclass(frozen=True)
class Decision:
    score: float
    attack: bool
    kind: str
    part: str
    """Where the highest score came from: ``direct`` (the user's text) or a passage's source."""
    cues: tuple[str, ...]
    family: str
    family_similarity: float
    chars_skipped: int


@dataclass
class AttackHead:
    """The trained head (``data/attack-head.json``), over an embedder of the same model."""

    embedder: Any
    data_dir: Path | None = None
    threshold: float | None = None
    model: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        folder = self.data_dir or Path(str(files("llmmon_attacks") / "data"))
        self.model = json.loads((folder / "attack-head.json").read_text())
        if self.model["embedder"] not in (
            getattr(self.embedder, "model_id", None),
            getattr(self.embedder, "family", None),
        ):
            raise ValueError(
                f"the attack head was trained on {self.model['embedder']}, not "
                f"{getattr(self.embedder, 'model_id', '?')}"
            )
        if self.model["cues"] != cue_names():
            raise ValueError("the attack head was trained on other cues than this code's")
        self.reference: npt.NDArray[np.float32] | None = None
        if self.model.get("reference"):
            # The known attacks' first windows: the largest cosine to one is a feature.
            self.reference = np.load(folder / self.model["reference"]).astype(np.float32)
        self.weights = np.asarray(self.model["weights"], dtype=np.float32)
        self.bias = float(self.model["bias"])
        if self.threshold is None:
            self.threshold = float(self.model["threshold"])
        self.families = [
            Family(f["name"], f["kind"], np.asarray(f["vector"], dtype=np.float32))
            for f in self.model["families"]
        ]
        self.centroids = np.stack([f.vector for f in self.families])

    def window_scores(
        self, vectors: npt.NDArray[np.float32], cue_rows: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        columns = [vectors, cue_rows]
        if self.reference is not None:
            columns.append((vectors @ self.reference.T).max(axis=1, keepdims=True))
        features = np.hstack(columns)
        logits = (features @ self.weights + self.bias).astype(np.float64)
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))

    def decide(self, items: Sequence[Sequence[tuple[str, str]]]) -> list[Decision]:
        """One decision per interaction, from its parts ``(source, text)``: the user's own text
        is ``direct``, inserted passages carry their source."""
        plan: list[tuple[int, int, str, str]] = []  # (interaction, part, source, window text)
        part_cues: dict[tuple[int, int], npt.NDArray[np.float32]] = {}
        skipped = [0] * len(items)
        for i, parts in enumerate(items):
            budget = MAX_WINDOWS
            for j, (source, text) in enumerate(parts):
                if not text.strip():
                    continue
                if budget <= 0:
                    skipped[i] += len(text)
                    continue
                found, left = windows(text, min(WINDOWS_PER_PART, budget))
                budget -= len(found)
                skipped[i] += left
                part_cues[(i, j)] = cue_vector(text)
                plan.extend((i, j, source, w) for w in found)
        if not plan:
            return [Decision(0.0, False, "", "", (), "", 0.0, s) for s in skipped]
        vectors = np.asarray(self.embedder.embed([w for *_, w in plan]), dtype=np.float32)
        cue_rows = np.stack([part_cues[(i, j)] for i, j, _, _ in plan])
        scores = self.window_scores(vectors, cue_rows)
        best: dict[int, int] = {}
        for row, (i, *_rest) in enumerate(plan):
            if i not in best or scores[row] > scores[best[i]]:
                best[i] = row
        threshold = float(self.threshold or 0.5)
        names = cue_names()
        out = []
        for i in range(len(items)):
            if i not in best:
                out.append(Decision(0.0, False, "", "", (), "", 0.0, skipped[i]))
                continue
            row = best[i]
            _, j, source, _ = plan[row]
            similarities = self.centroids @ vectors[row]
            nearest = int(np.argmax(similarities))
            family = self.families[nearest]
            fired = tuple(
                name
                for name, value in zip(names, part_cues[(i, j)], strict=True)
                if name in CUES and value > 0
            )
            score = float(scores[row])
            # The kind of an attack: an injection hides in content the application inserted;
            # in the user's own words (persona, mode, override, obfuscation) it is a jailbreak.
            kind = "" if score < threshold else INJECTION if source != "direct" else JAILBREAK
            out.append(
                Decision(
                    score,
                    score >= threshold,
                    kind,
                    source,
                    fired,
                    family.name,
                    float(similarities[nearest]),
                    skipped[i],
                )
            )
        return out


def default_head(embedder_factory: Callable[[], Any] | None = None) -> AttackHead:
    from llmmon_shared.embeddings import LocalMiniLMEmbedder, VectorCache

    embedder = embedder_factory() if embedder_factory else LocalMiniLMEmbedder(cache=VectorCache())
    return AttackHead(embedder)
