"""What a person sees of an HTML report: render it in headless Chromium (print to PDF, as a
browser lays it out) and read the text back with pdftotext; check that the first page opens on
what happened and its cause, that the evidence comes before the charts and the alarm table, and
that no prompt or response text of the demo's corpus shows.

CI runs it on the demo's report (.ci/run; Debian's chromium and poppler-utils, installed there as
root). The README's two commands do not need it.

Run: ``python3 scripts/report_seen.py reports/llmmon-demo.html``; exit 1 with the reason when the
page is wrong.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
CORPUS = Path(__file__).resolve().parents[1] / "cli" / "src" / "llmmon" / "data" / "corpus.json"


def browser() -> str:
    for name in CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(f"report_seen: none of {', '.join(CHROMIUM)} on PATH")


def seen_text(report: Path) -> list[str]:
    """The text of each printed page, as laid out by the browser."""
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "report.pdf"
        subprocess.run(
            [
                browser(),
                "--headless",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                f"--user-data-dir={folder}/profile",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf}",
                report.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
        text = subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return text.split("\f")


def corpus_texts(min_length: int = 24) -> list[str]:
    """Prompts and answers the demo writes (long enough not to match a label by chance)."""
    templates = json.loads(CORPUS.read_text())
    texts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str) and len(value) >= min_length and " " in value:
            texts.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key != "models":
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(templates)
    return texts


def check(pages: list[str]) -> list[str]:
    problems = []
    first = " ".join(pages[0].split())
    whole = " ".join(" ".join(pages).split())
    if "What happened" not in first:
        problems.append("the first page does not open on 'What happened'")
    if "Cause:" not in first:
        problems.append("the first page names no cause")
    order = [whole.find(mark) for mark in ("What happened", "Evidence:", "Per model", "Alarms")]
    if -1 in order or order != sorted(order):
        problems.append(f"headline, evidence, per-model table, alarms out of order: {order}")
    leaked = [t[:40] for t in corpus_texts() if " ".join(t.split())[:40] in whole]
    if leaked:
        problems.append(f"prompt or response text shows: {leaked[:3]}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    pages = seen_text(Path(argv[0]))
    problems = check(pages)
    first = [line for line in pages[0].splitlines() if line.strip()][:12]
    print(f"report_seen: {len(pages)} page(s); the first page opens with:")
    for line in first:
        print(f"  {line.strip()[:110]}")
    for problem in problems:
        print(f"report_seen: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
