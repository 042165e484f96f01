"""One canary run: every probe to every model through the Bedrock Converse API.

The answers are not read here: they reach invocation logging like any call, marked by
``requestMetadata`` (``llmmon-canary`` = the probe set's version, ``llmmon-probe``,
``llmmon-expect``), and the ordinary services score them under ``Canary<Metric>`` names. What the
run itself reports is what only it knows: how many probes went out per model, and which calls
failed and why (a model not enabled in the account is a counted failure, not a crashed run).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from llmmon_canary.probes import Probe, ProbeSet
from llmmon_shared.aws import call_with_backoff, error_code
from llmmon_shared.runtime import CANARY_EXPECT_KEY, CANARY_KEY

__all__ = ["PROBE_KEY", "RunReport", "send_probes"]

PROBE_KEY = "llmmon-probe"
MODEL_ERRORS = frozenset(
    {"AccessDeniedException", "ResourceNotFoundException", "ValidationException"}
)
"""Errors that no other probe to the same model can escape: the model's run stops there."""
SKIPPED = "skipped"
Outcome = tuple[str | None, dict[str, Any]]
"""(error code or None, the Converse response)."""


@dataclass
class RunReport:
    """Counts only (no prompt or answer text)."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(model, error code) -> probes that were not answered."""
    output_tokens: Counter[str] = field(default_factory=Counter)
    input_tokens: Counter[str] = field(default_factory=Counter)


def send_probes(
    client: Any,
    models: Sequence[str],
    probes: ProbeSet,
    max_tokens: int = 256,
    sleep: Callable[[float], None] = time.sleep,
    workers: int = 4,
) -> RunReport:
    """Send every probe to every model (temperature 0, ``max_tokens``), ``workers`` calls at a
    time per model, throttling retried with backoff; returns the counts.

    One call takes seconds, so 106 probes one after another take minutes per model; a few at a
    time keep a run of several models inside the function's timeout. An error no other probe to
    the model can escape (not enabled, unknown id) stops that model's run: the probes not sent
    count as failures with that error."""
    report = RunReport()
    for model in models:
        stop = threading.Event()

        def ask(probe: Probe, model: str = model, stop: threading.Event = stop) -> Outcome:
            if stop.is_set():
                return SKIPPED, {}
            request = {
                "modelId": model,
                "messages": [{"role": "user", "content": [{"text": probe.prompt}]}],
                "inferenceConfig": {"temperature": 0.0, "maxTokens": max_tokens},
                "requestMetadata": {
                    CANARY_KEY: probes.version,
                    PROBE_KEY: probe.id,
                    CANARY_EXPECT_KEY: probe.expect,
                },
            }
            try:
                return None, call_with_backoff(lambda: client.converse(**request), sleep=sleep)
            except Exception as exc:
                code = error_code(exc) or type(exc).__name__
                if code in MODEL_ERRORS:
                    stop.set()
                return code, {}

        # One worker runs the probes in order; a stopped model's later probes return SKIPPED.
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="canary") as pool:
            outcomes = list(pool.map(ask, probes.probes))
        fatal = next((code for code, _ in outcomes if code in MODEL_ERRORS), None)
        for code, response in outcomes:
            if code is None:
                report.sent[model] += 1
                usage = response.get("usage", {})
                report.input_tokens[model] += int(usage.get("inputTokens", 0))
                report.output_tokens[model] += int(usage.get("outputTokens", 0))
            else:
                report.failed[(model, fatal if code == SKIPPED and fatal else code)] += 1
    return report
