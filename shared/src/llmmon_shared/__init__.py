"""llmmon's shared schema package: log records, events, extraction, metrics, settings, runtime."""

from llmmon_shared.events import InvalidEventError, ObjectRef, SkippedObject, unwrap_message
from llmmon_shared.extract import Interaction, Skip, SkipReason, Turn, extract
from llmmon_shared.logs import (
    CorruptObjectError,
    InvocationLogRecord,
    LineError,
    S3Reader,
    read_log_object,
    resolve_large_bodies,
)
from llmmon_shared.metrics import (
    DimensionPolicy,
    EmfSink,
    MemorySink,
    MetricPoint,
    MetricSink,
    PutMetricDataSink,
    Unit,
)
from llmmon_shared.settings import ServiceSettings

__all__ = [
    "CorruptObjectError",
    "DimensionPolicy",
    "EmfSink",
    "Interaction",
    "InvalidEventError",
    "InvocationLogRecord",
    "LineError",
    "MemorySink",
    "MetricPoint",
    "MetricSink",
    "ObjectRef",
    "PutMetricDataSink",
    "S3Reader",
    "ServiceSettings",
    "Skip",
    "SkipReason",
    "SkippedObject",
    "Turn",
    "Unit",
    "extract",
    "read_log_object",
    "resolve_large_bodies",
    "unwrap_message",
]
