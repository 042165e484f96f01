"""The canary's declaration. It is not a log consumer (no queue, no DLQ): EventBridge Scheduler
invokes it; the answers it provokes reach the ordinary services through invocation logging. Its
metrics are the run's own counts; over- and under-refusal come from the refusal service."""

from __future__ import annotations

from llmmon_shared.metrics import Unit
from llmmon_shared.spec import MetricSpec, ServiceSpec

SERVICE = ServiceSpec(
    name="canary",
    description="Sends the versioned probe set to every canary model on a schedule",
    handler="llmmon_canary.handler.lambda_handler",
    metrics=(
        MetricSpec("CanaryProbesSent", Unit.COUNT, "Probes a model answered in a run", "Sum"),
        MetricSpec(
            "CanaryProbeFailures",
            Unit.COUNT,
            "Probes a model did not answer, by Reason (error code)",
            "Sum",
        ),
        MetricSpec("CanaryInputTokens", Unit.COUNT, "Input tokens of a run", "Sum"),
        MetricSpec("CanaryOutputTokens", Unit.COUNT, "Output tokens of a run", "Sum"),
    ),
    memory_mb=256,
    timeout_s=600,
)
