"""Text helpers every service needs: deterministic sampling and safe truncation."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["SharedLines", "is_sampled", "sample_fraction", "truncate_chars", "truncate_utf8"]


def sample_fraction(request_id: str) -> float:
    """A stable number in [0, 1) for a request id: every service computes the same one, so with
    the same sample rate every service scores the same interactions."""
    digest = hashlib.blake2b(request_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_sampled(request_id: str, rate: float) -> bool:
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return sample_fraction(request_id) < rate


def truncate_chars(text: str, max_chars: int) -> str:
    """At most ``max_chars`` code points, cut at the last whitespace when one is near the end."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ", max(0, max_chars - 64))
    return cut[:space] if space > 0 else cut


def truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``max_bytes`` (never splits a
    character)."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


class SharedLines:
    """Lines that recur across prompts: a template's instructions, a shared preamble, a pasted
    policy. They are not what this user asked, and they outweigh it: a prompt of 200 word
    pieces of instructions and 20 of question has the instructions' vector, and past the
    embedder's window (MiniLM reads 256) the question is not read at all. ``own_part`` is the
    prompt without them, what an answer's relevance is measured against.

    A line is shared once it appeared in ``min_prompts`` different prompts (in one batch or
    across the batches of a warm container); memory is bounded by ``entries`` lines, least
    recently seen first out. Only digests are kept, never text."""

    def __init__(self, min_prompts: int = 3, entries: int = 8192) -> None:
        self.min_prompts = min_prompts
        self.entries = entries
        self._seen: OrderedDict[bytes, set[bytes]] = OrderedDict()

    @staticmethod
    def _digest(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).digest()

    def observe(self, prompts: Iterable[str]) -> None:
        for prompt in dict.fromkeys(prompts):
            owner = self._digest(prompt)
            for line in {line.strip() for line in prompt.splitlines() if line.strip()}:
                key = self._digest(line)
                owners = self._seen.pop(key, set())
                if len(owners) < self.min_prompts:
                    owners.add(owner)
                self._seen[key] = owners
                if len(self._seen) > self.entries:
                    self._seen.popitem(last=False)

    def shared(self, line: str) -> bool:
        owners = self._seen.get(self._digest(line.strip()))
        return owners is not None and len(owners) >= self.min_prompts

    def own_part(self, prompt: str) -> str:
        """The prompt without its shared lines, if anything else is left; else the prompt."""
        lines = [line for line in prompt.splitlines() if line.strip()]
        own = [line for line in lines if not self.shared(line)]
        return "\n".join(own) if own and len(own) < len(lines) else prompt
