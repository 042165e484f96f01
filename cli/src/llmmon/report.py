"""An HTML report of a run: metric per model over time, the refusal ratio, toxicity by label,
alarm states and notifications, dead-letter queue contents. Charts are inline SVG written here;
the page needs no network and no JavaScript."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


@dataclass
class Series:
    label: str
    points: list[tuple[datetime, float]]


@dataclass
class Report:
    title: str
    generated: datetime
    summary: list[tuple[str, str]] = field(default_factory=list)
    charts: list[tuple[str, str, list[Series]]] = field(default_factory=list)
    bars: list[tuple[str, Mapping[str, float]]] = field(default_factory=list)
    tables: list[tuple[str, Sequence[str], Sequence[Sequence[str]]]] = field(default_factory=list)


def line_chart(
    series: Sequence[Series], width: int = 640, height: int = 240, y_label: str = ""
) -> str:
    points = [p for s in series for p in s.points]
    if not points:
        return "<p><em>no data</em></p>"
    x0 = min(t for t, _ in points).timestamp()
    x1 = max(t for t, _ in points).timestamp() or x0 + 1
    ys = [v for _, v in points]
    y0, y1 = min(0.0, min(ys)), max(ys)
    y1 = y1 if y1 > y0 else y0 + 1
    left, right, top, bottom = 48, 160, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(t: datetime) -> float:
        return left + (t.timestamp() - x0) / max(1.0, x1 - x0) * plot_w

    def sy(v: float) -> float:
        return top + plot_h - (v - y0) / (y1 - y0) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(y_label)}">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
    ]
    for fraction in (0, 0.5, 1):
        value = y0 + (y1 - y0) * fraction
        parts.append(
            f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{value:.2f}</text>'
        )
    for moment in (datetime.fromtimestamp(x0), datetime.fromtimestamp(x1)):
        parts.append(
            f'<text x="{sx(moment.astimezone()):.1f}" y="{height - 10}" font-size="10" '
            f'text-anchor="middle">{moment.strftime("%H:%M")}</text>'
        )
    for index, item in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        ordered = sorted(item.points)
        path = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in ordered)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        for t, v in ordered:
            parts.append(
                f'<circle cx="{sx(t):.1f}" cy="{sy(v):.1f}" r="2.5" fill="{color}">'
                f"<title>{html.escape(item.label)} {t:%H:%M} {v:.3f}</title></circle>"
            )
        parts.append(
            f'<text x="{width - right + 8}" y="{top + 14 + index * 14}" font-size="11" '
            f'fill="{color}">{html.escape(item.label[:26])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(values: Mapping[str, float], width: int = 640) -> str:
    if not values:
        return "<p><em>no data</em></p>"
    top = max(values.values()) or 1.0
    row, label_w = 20, 330
    width = max(width, 760)
    height = row * len(values) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    for index, (label, value) in enumerate(values.items()):
        y = 5 + index * row
        bar = (width - label_w - 60) * value / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="11" text-anchor="end">'
            f"{html.escape(label[:52])}</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{bar:.1f}" height="{row - 6}" '
            f'fill="{PALETTE[index % len(PALETTE)]}"/>'
            f'<text x="{label_w + bar + 4:.1f}" y="{y + 13}" font-size="11">'
            f"{value:.3f}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render(report: Report) -> str:
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;"
        "padding:3px 8px;text-align:left}.ALARM{color:#b00;font-weight:bold}"
        ".OK{color:#070}h2{margin-top:1.6em}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f"<p>Generated {report.generated:%Y-%m-%d %H:%M:%S %Z}. Scores and counts only: no "
        "prompt or response text.</p>",
    ]
    if report.summary:
        out.append("<table>")
        out.extend(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in report.summary
        )
        out.append("</table>")
    for title, description, series in report.charts:
        out.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(description)}</p>")
        out.append(line_chart(series, y_label=title))
    for title, values in report.bars:
        out.append(f"<h2>{html.escape(title)}</h2>{bar_chart(values)}")
    for title, header, rows in report.tables:
        out.append(f"<h2>{html.escape(title)}</h2><table><tr>")
        out.extend(f"<th>{html.escape(h)}</th>" for h in header)
        out.append("</tr>")
        for row in rows:
            cells = "".join(f'<td class="{html.escape(c)}">{html.escape(c)}</td>' for c in row)
            out.append(f"<tr>{cells}</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def series_from_statistics(
    client: Any,
    namespace: str,
    metric: str,
    models: Sequence[str],
    start: datetime,
    end: datetime,
    period: int = 300,
    statistic: str = "Average",
) -> list[Series]:
    found = []
    for model in models:
        response = client.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": "ModelId", "Value": model}],
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=[statistic],
        )
        points = [(p["Timestamp"], float(p[statistic])) for p in response.get("Datapoints", [])]
        if points:
            found.append(Series(model, sorted(points)))
    return found
