"""``LLMMON_EXPLAIN``: one log line per decision a service makes (ids, scores, rule and cue
names; never text), for the services whose decisions have reasons (refusal, attacks)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any


def decision_line(what: str, request_id: str, decision: Any) -> str:
    """``<what> decision request_id=... key=value ...`` from a decision dataclass: floats to 4
    places, tuples comma-joined (``-`` when empty), in the message itself so that a plain-text
    log format keeps them too."""
    parts = []
    for key, value in {"request_id": request_id, **asdict(decision)}.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, tuple | list):
            value = ",".join(value) or "-"
        parts.append(f"{key}={value}")
    return f"{what} decision " + " ".join(parts)


def explain_logger(logger: logging.Logger) -> None:
    """Show every decision whatever ``LLMMON_LOG_LEVEL`` says: the decision logger logs at INFO,
    to the handlers the process has (Lambda's, the local worker's), or to stderr where there
    are none (``llmmon score``)."""
    logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
