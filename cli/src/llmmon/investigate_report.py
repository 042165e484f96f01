"""What ``llmmon investigate`` shows: the one JSON object (``--json``, and the HTML's source),
the terminal's report (excerpts only there, with ``--show-text``), the HTML page, and a short
summary for the demo. JSON and HTML are built from :func:`public_report`, which holds ids, scores
and fingerprints only."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from llmmon.evidence import POINTS_MEANS, Row, Target, Window, per_period, points, statistic
from llmmon.report import Bars, Table

# --------------------------------------------------------------------------------------------
# Reports


def _rise(findings: Mapping[str, Any]) -> float | None:
    """The rise in the bad-record rate, window against baseline, in percentage points."""
    if not findings["window_records"] or not findings["baseline_records"]:
        return None
    rise = float(
        findings["window_bad"] / findings["window_records"]
        - findings["baseline_bad"] / findings["baseline_records"]
    )
    return round(rise * 100, 1)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def public_report(
    target: Target,
    window: Window,
    baseline: Window | None,
    baseline_note: str,
    findings: Mapping[str, Any],
    cloudwatch: Mapping[str, Any],
    reading: Mapping[str, Any],
    episode: str = "",
) -> dict[str, Any]:
    """The one JSON object ``--json`` prints and the HTML is made from: no text."""
    changes = [asdict(c) for c in findings["changes"][:15]]
    return {
        "alarm": target.alarm,
        "episode": episode,
        "service": target.service,
        "metric": target.metric,
        "model": target.model,
        "statistic": target.statistic,
        "threshold": target.threshold,
        "window": window.public(),
        "baseline": baseline.public() if baseline else None,
        "baseline_note": baseline_note,
        "read": dict(reading),
        "recomputed": {
            "window": findings["window_value"],
            "baseline": findings["baseline_value"],
            "window_records": findings["window_records"],
            "window_bad": findings["window_bad"],
            "baseline_records": findings["baseline_records"],
            "baseline_bad": findings["baseline_bad"],
            "bad_means": (
                f"{target.score_name} {'>' if target.high_is_bad else '<'} "
                f"{findings['bad_threshold']:g}"
            ),
        },
        "cloudwatch": dict(cloudwatch),
        "records": [r.public() for r in findings["records"]],
        "verdict": findings["verdict"],
        "rise_points": _rise(findings),
        "points_mean": POINTS_MEANS,
        "what_changed": changes,
        "how_the_answers_changed": [asdict(c) for c in findings["answer_changes"][:6]],
        "refusal_reasons": findings.get("reasons", [])[:10],
    }


def print_report(report: Mapping[str, Any], rows: Sequence[Row], out: Any = None) -> None:
    """The terminal's view of the report (with excerpts when the rows carry them)."""
    out = out or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out)

    recomputed, cw = report["recomputed"], report["cloudwatch"]
    # First screen: the alarm, its episode and window, the metric against its baseline, the
    # verdict. Evidence after.
    say(f"{report['alarm'] or report['metric']}: {report['metric']} of {report['model']}")
    if report.get("episode"):
        say(f"  episode  {report['episode']}")
    say(f"  window   {report['window']['from']} .. {report['window']['to']}")
    if report["baseline"]:
        base = report["baseline"]
        say(f"  baseline {base['from']} .. {base['to']} ({report['baseline_note']})")
    else:
        say(f"  baseline: {report['baseline_note']}")
    say(
        f"  {report['statistic']} of {report['metric']}: {_fmt(recomputed['window'])} in the "
        f"window, {_fmt(recomputed['baseline'])} in the baseline (CloudWatch "
        f"{_fmt(cw.get('window'))} and {_fmt(cw.get('baseline'))})"
    )
    say(f"  => {report['verdict']}")
    say("")
    say(f"1. {report['statistic']} of {report['metric']}")
    say(f"   {'':<10} {'llmmon':>8} {'CloudWatch':>11} {'records':>8} {'bad':>6}")
    say(
        f"   {'window':<10} {_fmt(recomputed['window']):>8} {_fmt(cw.get('window')):>11} "
        f"{recomputed['window_records']:>8} {recomputed['window_bad']:>6}"
    )
    say(
        f"   {'baseline':<10} {_fmt(recomputed['baseline']):>8} {_fmt(cw.get('baseline')):>11} "
        f"{recomputed['baseline_records']:>8} {recomputed['baseline_bad']:>6}"
    )
    say(f"   {cw.get('agreement', '')}")
    say(f"   a record is bad when {recomputed['bad_means']}")
    read = report["read"]
    megabytes = read["bytes"] / 1e6
    say(f"   read {read['objects']} log objects ({megabytes:.1f} MB){read.get('note', '')}")
    say("")
    rise = report.get("rise_points")
    say(
        "2. what changed in the requests"
        + (f" (a {rise:+.0f}-point rise in bad records)" if rise is not None else "")
    )
    say(f"   {report['points_mean']}")
    for change in report["what_changed"][:8]:
        say(_change_line(change))
    if report["how_the_answers_changed"]:
        say("   how the answers changed (effects, not causes):")
        for change in report["how_the_answers_changed"][:3]:
            say("  " + _change_line(change))
    if report["refusal_reasons"]:
        say("")
        say("3. refusal rules and reference phrases (share of all records: window vs baseline)")
        for reason in report["refusal_reasons"][:6]:
            base = reason["baseline_share"]
            say(
                f"   {reason['reason']}: {reason['window_share']:.1%} vs "
                f"{'-' if base is None else f'{base:.1%}'}"
            )
    say("")
    say(f"records behind the alarm (top {len(rows)}; object key and line to read them)")
    for row in rows:
        reasons = ", ".join(
            f"{k}={v}"
            for k, v in row.reasons.items()
            if v not in (None, "", (), []) and k != "refusal"
        )
        say(
            f"   {'BAD ' if row.bad else '    '}{row.time:%H:%M:%S} {row.request_id} "
            f"{row.value:.3f}  {row.key.rsplit('/', 1)[-1]}:{row.line}"
        )
        say(f"        {reasons}")
        if row.excerpt is not None:
            say(f"        prompt:   {row.excerpt[0]}")
            say(f"        response: {row.excerpt[1]}")


def what_changed_bars(report: Mapping[str, Any]) -> list[Bars]:
    """Each value's points of the rise in bad records, when there is a baseline (without one
    there is no rise to split, and no bar)."""
    if not report["baseline"] or report.get("rise_points") is None or not report["what_changed"]:
        return []
    return [
        Bars(
            f"What changed (a {report['rise_points']:+.0f}-point rise in bad records)",
            report["points_mean"],
            {
                f"{c['attribute']}={c['value']}": max(0.0, c["contribution"] * 100)
                for c in report["what_changed"][:8]
                if c["contribution"] is not None
            },
        )
    ]


def reason_tables(report: Mapping[str, Any]) -> list[Table]:
    """Refusal: the rules, reference phrases and cues behind the bad records, window against
    baseline (ids, never text)."""
    reasons = report.get("refusal_reasons", [])
    if not reasons:
        return []
    return [
        (
            "Refusal rules, reference phrases and cues (share of all records)",
            ["rule, phrase id or cue", "window", "baseline"],
            [
                [
                    r["reason"],
                    f"{r['window_share']:.1%}",
                    "-" if r["baseline_share"] is None else f"{r['baseline_share']:.1%}",
                ]
                for r in reasons[:8]
            ],
        )
    ]


def html_report(
    report: Mapping[str, Any], window_rows: Sequence[Row], base_rows: Sequence[Row], period_s: int
) -> str:
    from llmmon.report import Chart, Report, Series, Threshold, render

    def series(label: str, rows: Sequence[Row], shift: timedelta) -> Series:
        points = per_period(rows, period_s)
        return Series(
            label,
            [(t + shift, statistic(v, report["statistic"]) or 0.0) for t, v in points.items()],
        )

    charts = []
    if window_rows:
        shift = timedelta(0)
        if report["baseline"] and base_rows:
            shift = datetime.fromisoformat(report["window"]["from"]) - datetime.fromisoformat(
                report["baseline"]["from"]
            )
        lines = [series("window", window_rows, timedelta(0))]
        if base_rows:
            lines.append(series("baseline (shifted onto the window)", base_rows, shift))
        thresholds = (
            [Threshold("alarm threshold", float(report["threshold"]))]
            if report["threshold"] is not None
            else []
        )
        charts.append(
            Chart(
                f"{report['metric']} of {report['model']}",
                "Recomputed per period from the log objects: the window against its baseline.",
                lines,
                thresholds,
            )
        )
    page = Report(
        title=f"llmmon investigate: {report['alarm'] or report['metric']}",
        generated=datetime.now(UTC),
        summary=[
            ("verdict", report["verdict"]),
            *([("episode", report["episode"])] if report.get("episode") else []),
            ("metric", f"{report['statistic']} of {report['metric']} ({report['model']})"),
            ("window", f"{report['window']['from']} .. {report['window']['to']}"),
            (
                "baseline",
                f"{report['baseline']['from']} .. {report['baseline']['to']}"
                if report["baseline"]
                else report["baseline_note"],
            ),
            (
                "recomputed",
                f"{_fmt(report['recomputed']['window'])} (window), "
                f"{_fmt(report['recomputed']['baseline'])} (baseline)",
            ),
            ("CloudWatch", report["cloudwatch"].get("agreement", "")),
        ],
        charts=charts,
        bars=what_changed_bars(report),
        tables=[
            *reason_tables(report),
            (
                "Records behind the alarm",
                ["request id", "time", "value", "bad", "object", "line", "reasons"],
                [
                    [
                        r["request_id"],
                        r["time"],
                        f"{r['value']:.3f}",
                        "ALARM" if r["bad"] else "",
                        r["key"].rsplit("/", 1)[-1],
                        str(r["line"]),
                        json.dumps(r["reasons"], sort_keys=True),
                    ]
                    for r in report["records"]
                ],
            ),
        ],
    )
    return render(page)


def _change_line(change: Mapping[str, Any]) -> str:
    base = change["baseline_bad_share"]
    lead = f"   {change['attribute']} = {change['value']}: "
    if base is not None:
        lead += f"{points(change['contribution'])} of the rise; "
    return (
        lead + f"{change['window_bad_share']:.0%} vs {'-' if base is None else f'{base:.0%}'}"
        f" of bad records; {change['window_share']:.0%} of traffic"
    )


def rising_reasons(report: Mapping[str, Any], most: int = 3) -> list[str]:
    """The refusal rules, reference phrases and cues whose share of records rose most, when
    there is a baseline to rise from."""
    return [
        f"{r['reason']} {r['baseline_share']:.0%} -> {r['window_share']:.0%}"
        for r in report.get("refusal_reasons", [])
        if r["baseline_share"] is not None and r["rise"] > 0
    ][:most]


def summary(report: Mapping[str, Any]) -> list[str]:
    """A few lines for a person who has seconds: the figures, the top cause, where to read."""
    recomputed = report["recomputed"]
    lines = [
        f"{report['metric']} of {report['model']}: {_fmt(recomputed['window'])} in the window "
        f"({recomputed['window_bad']} of {recomputed['window_records']} records bad) against "
        f"{_fmt(recomputed['baseline'])} in the baseline ({report['baseline_note']}); "
        f"{report['cloudwatch'].get('agreement', '')}",
    ]
    if report["what_changed"]:
        top = report["what_changed"][0]
        explained = top["explained"]
        rise = report.get("rise_points")
        lines.append(
            f"what changed first: {top['attribute']} = {top['value']} "
            f"({top['window_bad_share']:.0%} of the bad records"
            + (
                f"; {points(top['contribution'])} of the {rise:+.0f}-point rise)"
                if explained is not None and rise is not None
                else ")"
            )
        )
    lines.append(f"verdict: {report['verdict']}")
    rose = rising_reasons(report)
    if rose:
        lines.append(
            "refusal rules that rose most (share of records, baseline -> window): "
            + "; ".join(rose)
        )
    if report["records"]:
        first = report["records"][0]
        lines.append(
            f"worst record: {first['request_id']} in {first['key'].rsplit('/', 1)[-1]} "
            f"line {first['line']}"
        )
    return lines
