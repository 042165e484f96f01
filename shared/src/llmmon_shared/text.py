"""Text helpers every service needs: deterministic sampling and safe truncation."""

from __future__ import annotations

import hashlib

__all__ = ["is_sampled", "sample_fraction", "truncate_chars", "truncate_utf8"]


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
