"""The context of an interaction: text the application inserted for the model to read (retrieved
passages, documents, tool results, grounding sources), apart from what the user typed.

One extractor for every service that needs it: the prompt-attack service scores inserted text
for indirect injections (instructions hidden in content that address the model), and a grounding
check compares an answer with it. Sources, in the order they are looked for:

* ``grounding``: Converse ``guardContent`` blocks qualified ``grounding_source``
  (``Interaction.grounding``);
* ``tool``: tool results in the last user turn (``Interaction.inserted``);
* ``tagged``: passages in the prompt between tags applications and Knowledge Bases' prompt
  templates use: ``<context>``, ``<documents>``/``<document>``, ``<search_results>``/
  ``<search_result>``, ``<passage>``, ``<source>``, ``<retrieved>``, ``<reference>``;
* ``delimited``: passages between an application's own delimiters
  (``LLMMON_CONTEXT_DELIMITERS``: ``start|end`` pairs separated by commas, e.g.
  ``<<<|>>>,[DOC]|[/DOC]``).

What remains of the prompt outside every passage is the user's own text (``direct``). Positions
are character offsets into ``Interaction.prompt`` (tagged and delimited passages) and carry no
text of their own anywhere but in memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmmon_shared.extract import Interaction

TAGS = (
    "context",
    "documents",
    "document",
    "search_results",
    "search_result",
    "passage",
    "passages",
    "source",
    "sources",
    "retrieved",
    "reference",
    "references",
)
_TAGGED = re.compile(
    r"<(?P<tag>" + "|".join(TAGS) + r")(?:\s[^>]*)?>(?P<body>.*?)</(?P=tag)\s*>",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Passage:
    """One piece of inserted text: where it came from and, for passages inside the prompt,
    where it sits there (``start``..``end``; -1 outside the prompt)."""

    source: str
    text: str
    start: int = -1
    end: int = -1


@dataclass(frozen=True, slots=True)
class Context:
    direct: str
    """The user's own text: the prompt outside every passage."""
    passages: tuple[Passage, ...]

    @property
    def has_context(self) -> bool:
        return any(p.text.strip() for p in self.passages)


def parse_delimiters(setting: str) -> tuple[tuple[str, str], ...]:
    """``"<<<|>>>,[DOC]|[/DOC]"`` -> ``(("<<<", ">>>"), ("[DOC]", "[/DOC]"))``."""
    pairs = []
    for item in setting.split(","):
        if not item.strip():
            continue
        start, sep, end = item.strip().partition("|")
        if not sep or not start or not end:
            raise ValueError(f"context delimiter {item!r}: write START|END")
        pairs.append((start, end))
    return tuple(pairs)


def _spans(prompt: str, delimiters: Sequence[tuple[str, str]]) -> list[tuple[str, int, int]]:
    """(source, start, end) of the passages inside the prompt, outermost first, no overlaps."""
    found: list[tuple[str, int, int]] = []
    for match in _TAGGED.finditer(prompt):
        found.append(("tagged", match.start("body"), match.end("body")))
    for start_mark, end_mark in delimiters:
        at = 0
        while (begin := prompt.find(start_mark, at)) >= 0:
            body = begin + len(start_mark)
            finish = prompt.find(end_mark, body)
            if finish < 0:
                break
            found.append(("delimited", body, finish))
            at = finish + len(end_mark)
    found.sort(key=lambda span: (span[1], -span[2]))
    kept: list[tuple[str, int, int]] = []
    for span in found:
        if kept and span[1] < kept[-1][2]:
            continue  # inside (or across) a passage already kept
        kept.append(span)
    return kept


def extract_context(
    interaction: Interaction, delimiters: Sequence[tuple[str, str]] = ()
) -> Context:
    prompt = interaction.prompt
    passages: list[Passage] = []
    if interaction.grounding:
        passages.append(Passage("grounding", interaction.grounding))
    if interaction.inserted:
        passages.append(Passage("tool", interaction.inserted))
    direct: list[str] = []
    at = 0
    for source, start, end in _spans(prompt, delimiters):
        direct.append(prompt[at:start])
        passages.append(Passage(source, prompt[start:end], start, end))
        at = end
    direct.append(prompt[at:])
    return Context("".join(direct), tuple(passages))
