"""False positives of the privacy service's recognisers on ordinary answers: the responses of
the instruction sets (GPTeacher, the relevance set) and XSTest's completions, full of prices,
dates, versions and code (``../shared/data``, read only here). Prints answers with any finding
per 200, and the findings per type; never the answers.

Run: ``uv run python scripts/pii_ordinary.py``
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
csv.field_size_limit(10**8)


def answers() -> list[str]:
    found = []
    with (DATA / "instructions" / "gpteacher.jsonl").open(encoding="utf-8") as handle:
        found += [json.loads(line)["response"] for line in handle]
    for name in ("user-oriented.csv", "seed-tasks.csv"):
        with (DATA / "relevance" / name).open(encoding="utf-8", newline="") as handle:
            found += [r["response"] for r in csv.DictReader(handle) if r.get("response")]
    with (DATA / "xstest" / "dev.csv").open(encoding="utf-8", newline="") as handle:
        found += [r["completion"] for r in csv.DictReader(handle)]
    return found


def main() -> int:
    from llmmon_privacy.detectors import find

    texts = answers()
    kinds: Counter[str] = Counter()
    flagged = 0
    for text in texts:
        findings = find(text)
        flagged += bool(findings)
        kinds.update(f.kind for f in findings)
    per_200 = flagged / len(texts) * 200
    print(f"{len(texts)} answers; {flagged} with a finding ({per_200:.2f} in 200); {dict(kinds)}")
    print(json.dumps({"answers": len(texts), "flagged": flagged, "per_200": round(per_200, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
