"""One canary run: every probe to every model through the Bedrock Converse API.

The answers are not read here: they reach invocation logging like any call, marked by
``requestMetadata`` (``llmmon-canary`` = the probe set's version, ``llmmon-probe``,
``llmmon-expect``), and the ordinary services score them under ``Canary<Metric>`` names. What the
run itself reports is what only it knows: how many probes went out per model, and which calls
failed and why (a model not enabled in the account is a counted failure, not a crashed run).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmmon_canary.probes import ProbeSet
from llmmon_shared.aws import call_with_backoff, error_code
from llmmon_shared.runtime import CANARY_EXPECT_KEY, CANARY_KEY

__all__ = ["PROBE_KEY", "RunReport", "send_probes"]

PROBE_KEY = "llmmon-probe"
MODEL_ERRORS = frozenset(
    {"AccessDeniedException", "ResourceNotFoundException", "ValidationException"}
)
"""Errors that no other probe to the same model can escape: the model's run stops there."""


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
) -> RunReport:
    """Send every probe to every model (temperature 0, ``max_tokens``), throttling retried with
    backoff; returns the counts."""
    report = RunReport()
    for model in models:
        for index, probe in enumerate(probes.probes):
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

            def call(request: dict[str, Any] = request) -> Any:
                return client.converse(**request)

            try:
                response = call_with_backoff(call, sleep=sleep)
            except Exception as exc:
                code = error_code(exc) or type(exc).__name__
                if code in MODEL_ERRORS:
                    report.failed[(model, code)] += len(probes.probes) - index
                    break
                report.failed[(model, code)] += 1
                continue
            report.sent[model] += 1
            usage = response.get("usage", {})
            report.input_tokens[model] += int(usage.get("inputTokens", 0))
            report.output_tokens[model] += int(usage.get("outputTokens", 0))
    return report
