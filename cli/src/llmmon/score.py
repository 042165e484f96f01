"""``llmmon score PATH``: run every installed metric service over a folder of Bedrock log objects,
in process, with the same pipeline and handler wiring the Lambdas use (local backends by default),
and print a per-model table of every metric. Counts and scores only, never text."""

from __future__ import annotations

import importlib
import os
import time
from collections import defaultdict
from pathlib import Path

from llmmon_shared.events import ObjectRef, classify_key
from llmmon_shared.logs import CorruptObjectError, FolderS3Reader
from llmmon_shared.metrics import MemorySink
from llmmon_shared.runtime import ObjectUnavailableError
from llmmon_shared.spec import discover, headline_columns


def score_folder(root: Path) -> int:
    os.environ.setdefault("LLMMON_EMBEDDING_BACKEND", "local")
    os.environ.setdefault("LLMMON_COMPREHEND_BACKEND", "local")
    os.environ.setdefault("LLMMON_LOG_LEVEL", "ERROR")  # counts are in the table
    keys = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and classify_key(p.relative_to(root).as_posix(), p.stat().st_size) is None
    )
    if not keys:
        from llmmon.errors import CliError

        raise CliError(f"no log objects (*.json.gz outside data/) under {root}")
    reader = FolderS3Reader(root)
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    failed: dict[str, str] = {}
    # Nothing leaves this process: every score is shown, detail included.
    os.environ.setdefault("LLMMON_DETAIL_METRICS", "true")
    for name, spec in discover().items():
        started = time.perf_counter()
        handler = importlib.import_module(spec.handler.rsplit(".", 1)[0])
        sink = MemorySink()
        pipeline = handler.create_pipeline(s3=reader, sink=sink)
        for key in keys:
            try:
                points, _ = pipeline.score_object(ObjectRef("local", key, None, None))
            except (CorruptObjectError, ObjectUnavailableError) as exc:
                failed[key] = str(exc)
                continue
            sink.add(points)
        sink.flush()
        metrics = {m.name for m in spec.metrics}
        for point in sink.flushed:
            if point.name in metrics:
                table[point.dimension_map.get("ModelId", "?")][point.name].append(point.value)
            elif point.name == "Interactions" and name == next(iter(discover())):
                table[point.dimension_map.get("ModelId", "?")]["Interactions"].append(point.value)
        print(f"{name:<11} scored {len(keys)} objects in {time.perf_counter() - started:.1f} s")
    columns = headline_columns(discover())
    if not table:
        from llmmon.errors import CliError

        unreadable = "".join(
            f"\n  would go to the dead-letter queue: {Path(k).name}: {r}"
            for k, r in sorted(failed.items())
        )
        raise CliError(
            f"no record of the {len(keys)} log object(s) under {root} could be scored "
            f"({len(failed)} unreadable){unreadable}"
        )
    width = max(len(m) for m in table)
    print()
    widths = [max(12, len(c.name)) for c in columns]
    print(
        f"{'model':<{width}} "
        + " ".join(f"{c.name:>{w}}" for c, w in zip(columns, widths, strict=True))
    )
    for model in sorted(table):
        cells = []
        for column, w in zip(columns, widths, strict=True):
            values = table[model].get(column.name, [])
            if not values:
                cells.append(f"{'-':>{w}}")
                continue
            value = sum(values) if column.statistic == "Sum" else sum(values) / len(values)
            cells.append(f"{column.format.format(value):>{w}}")
        print(f"{model:<{width}} " + " ".join(cells))
    shares = ", ".join(c.name for c in columns if c.binary)
    print(f"\n(Sums of counts, Averages of scores; {shares} are shares of 0/1 metrics)")
    for key, reason in sorted(failed.items()):
        print(f"would go to the dead-letter queue: {Path(key).name}: {reason}")
    return 0
