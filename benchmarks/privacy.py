"""The privacy service's costs: CPU-seconds per interaction of its whole pipeline over the
benchmark workload, and the time to scan one record of 1 MB of adversarial text per pattern
family (the regular expressions must stay linear: the service's cut raised to 1 MB so that the
figure is not truncation's). Prints the CPU (model and ISA) first; one JSON line at the end.

Run: ``uv run python benchmarks/privacy.py``
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from benchmarks.bench import cpu_info
    from benchmarks.capacity import pipeline_cpu_s
    from benchmarks.workload import build
    from llmmon_privacy.detectors import ADVERSARIAL, find

    cpu = cpu_info()
    print(f"CPU: {cpu['model']} ({', '.join(cpu['isa'])}), {cpu['cores']} cores", flush=True)
    os.environ["LLMMON_MAX_CHARS"] = "1000000"
    worst = {}
    for unit in ADVERSARIAL:
        text = unit * (1_000_000 // len(unit))
        started = time.perf_counter()
        find(text)
        worst[unit] = round(time.perf_counter() - started, 3)
        print(f"1 MB of {unit!r}: {worst[unit]:.3f} s", flush=True)
    work = build(640)
    cpu_s = pipeline_cpu_s("privacy", work) / 640
    print(f"CPU-seconds per interaction (whole pipeline): {cpu_s:.5f}")
    print(json.dumps({"cpu": cpu, "cpu_s_per_interaction": cpu_s, "adversarial_1mb_s": worst}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
