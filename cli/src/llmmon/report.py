"""An HTML report of a run: metric per model over time, the refusal ratio, toxicity by label,
alarm states and notifications, dead-letter queue contents. Charts are inline SVG written here;
the page needs no network and no JavaScript."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


@dataclass
class Series:
    label: str
    points: list[tuple[datetime, float]]


@dataclass(frozen=True)
class Threshold:
    """A horizontal line on a chart: an alarm's threshold."""

    label: str
    value: float


@dataclass
class Chart:
    title: str
    description: str
    series: list[Series]
    thresholds: list[Threshold] = field(default_factory=list)


@dataclass
class Bars:
    title: str
    description: str
    values: Mapping[str, float]
    colors: Mapping[str, str] = field(default_factory=dict)
    """A bar's colour by its label (the same model's colour as in the line charts)."""


Table = tuple[str, Sequence[str], Sequence[Sequence[str]]]
"""A titled table: (title, header, rows)."""


@dataclass
class Evidence:
    """What an investigation found for one alarm: its first lines (the verdict among them) and
    its tables. Rendered above every chart and table of the run."""

    title: str
    lines: list[str]
    tables: list[Table] = field(default_factory=list)


@dataclass
class Report:
    title: str
    generated: datetime
    headline: list[str] = field(default_factory=list)
    """What happened, first: which alarms fired, for which model, from when, and the cause."""
    summary: list[tuple[str, str]] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    bars: list[Bars] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    colors: Mapping[str, str] = field(default_factory=dict)
    """A series' colour by its label, the same in every chart (else the palette in order)."""


def colors_for(labels: Sequence[str]) -> dict[str, str]:
    """One palette colour per label, in the order given: a model keeps its colour everywhere."""
    return {label: PALETTE[index % len(PALETTE)] for index, label in enumerate(labels)}


TICK_STEPS_MIN = (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)


def time_ticks(first: datetime, last: datetime, most: int = 8) -> list[datetime]:
    """Round times between ``first`` and ``last`` (UTC), at the smallest step of 5, 10, 15, 30
    minutes or whole hours that gives at most ``most`` ticks; every step divides an hour or a day,
    so full hours are always among the ticks."""
    span_min = max(1.0, (last - first).total_seconds() / 60)
    step = next((s for s in TICK_STEPS_MIN if span_min / s <= most), TICK_STEPS_MIN[-1]) * 60
    tick = (int(first.timestamp()) // step + 1) * step
    ticks = []
    while tick <= last.timestamp():
        ticks.append(datetime.fromtimestamp(tick, UTC))
        tick += step
    return ticks


def line_chart(
    chart: Chart, width: int = 760, height: int = 260, colors: Mapping[str, str] | None = None
) -> str:
    """An SVG line chart with UTC time ticks, dashed threshold lines and a legend table below
    it (full model names: nothing cut)."""
    points = [p for s in chart.series for p in s.points]
    if not points:
        return "<p><em>no data</em></p>"
    first, last = min(t for t, _ in points), max(t for t, _ in points)
    x0, x1 = first.timestamp(), max(last.timestamp(), first.timestamp() + 60)
    ys = [v for _, v in points] + [t.value for t in chart.thresholds]
    y0, y1 = min(0.0, min(ys)), max(ys)
    y1 = y1 * 1.05 if y1 > y0 else y0 + 1
    left, right, top, bottom = 52, 16, 12, 32
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(t: datetime) -> float:
        return left + (t.timestamp() - x0) / (x1 - x0) * plot_w

    def sy(v: float) -> float:
        return top + plot_h - (v - y0) / (y1 - y0) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(chart.title)}">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
    ]
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        value = y0 + (y1 - y0) * fraction
        parts.append(
            f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{value:.2f}</text>'
        )
    for tick in time_ticks(first, last):
        x = sx(tick)
        weight = ' font-weight="bold"' if tick.minute == 0 else ""
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#e4e4e4"/>'
            f'<text x="{x:.1f}" y="{height - 14}" font-size="10" text-anchor="middle"{weight}>'
            f"{tick:%H:%M}</text>"
        )
    parts.append(
        f'<text x="{left + plot_w}" y="{height - 2}" font-size="10" text-anchor="end">'
        f"UTC, {first:%Y-%m-%d}</text>"
    )
    for threshold in chart.thresholds:
        y = sy(threshold.value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#b00" '
            f'stroke-dasharray="6 4" stroke-width="1.5"><title>{html.escape(threshold.label)}'
            f"</title></line>"
            f'<text x="{left + plot_w - 4}" y="{y - 4:.1f}" font-size="10" fill="#b00" '
            f'text-anchor="end">{html.escape(threshold.label)}</text>'
        )
    colors = colors or {}
    for index, item in enumerate(chart.series):
        color = colors.get(item.label, PALETTE[index % len(PALETTE)])
        ordered = sorted(item.points)
        path = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in ordered)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        for t, v in ordered:
            parts.append(
                f'<circle cx="{sx(t):.1f}" cy="{sy(v):.1f}" r="2.5" fill="{color}">'
                f"<title>{html.escape(item.label)} {t:%H:%M} {v:.3f}</title></circle>"
            )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span style="background:{colors.get(s.label, PALETTE[i % len(PALETTE)])}"></span>'
        f"{html.escape(s.label)}</li>"
        for i, s in enumerate(chart.series)
    )
    return "".join(parts) + f'<ul class="legend">{legend}</ul>'


def bar_chart(
    values: Mapping[str, float], width: int = 640, colors: Mapping[str, str] | None = None
) -> str:
    colors = colors or {}
    if not values:
        return "<p><em>no data</em></p>"
    top = max(values.values()) or 1.0
    row = 20
    label_w = min(520, 12 + 6 * max(len(label) for label in values))
    width = max(width, label_w + 260)
    height = row * len(values) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    for index, (label, value) in enumerate(values.items()):
        y = 5 + index * row
        bar = (width - label_w - 60) * value / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="11" text-anchor="end">'
            f"{html.escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{bar:.1f}" height="{row - 6}" '
            f'fill="{colors.get(label, PALETTE[index % len(PALETTE)])}"/>'
            f'<text x="{label_w + bar + 4:.1f}" y="{y + 13}" font-size="11">'
            f"{value:.3f}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


STATES = frozenset({"ALARM", "OK", "INSUFFICIENT_DATA"})
"""Cells styled by their alarm state (red, green)."""


def _table(table: Table, element_id: str = "") -> list[str]:
    title, header, rows = table
    ident = f' id="{element_id}"' if element_id else ""
    out = [f"<h3>{html.escape(title)}</h3><table{ident}><tr>"]
    out.extend(f"<th>{html.escape(h)}</th>" for h in header)
    out.append("</tr>")
    for row in rows:
        cells = "".join(
            f'<td class="{c}">{c}</td>' if c in STATES else f"<td>{html.escape(c)}</td>"
            for c in row
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return out


def render(report: Report, table_ids: Mapping[str, str] | None = None) -> str:
    """The page, in the order a person reads it: what happened (the headline), the run's facts,
    each investigated alarm's evidence, then the charts and the tables. ``table_ids``: an HTML
    id per table title (for the page's own tests)."""
    table_ids = table_ids or {}
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;"
        "padding:3px 8px;text-align:left}.ALARM{color:#b00;font-weight:bold}"
        ".OK{color:#070}h2{margin-top:1.6em}ul.legend{list-style:none;padding:0;"
        "columns:2;font-size:12px}ul.legend span{display:inline-block;width:12px;height:12px;"
        "margin-right:6px;vertical-align:middle}#headline{border-left:4px solid #b00;"
        "padding:0 1em;background:#fdf6f6}#headline li{margin:.4em 0}"
        ".verdict{font-weight:bold}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
    ]
    if report.headline:
        out.append('<section id="headline"><h2>What happened</h2><ul>')
        out.extend(f"<li>{html.escape(line)}</li>" for line in report.headline)
        out.append("</ul></section>")
    out.append(
        f"<p>Generated {report.generated:%Y-%m-%d %H:%M:%S %Z}. Scores and counts only: no "
        "prompt or response text.</p>"
    )
    if report.summary:
        out.append("<table>")
        out.extend(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in report.summary
        )
        out.append("</table>")
    for found in report.evidence:
        out.append(f'<section class="evidence"><h2>{html.escape(found.title)}</h2><ul>')
        out.extend(
            f'<li class="verdict">{html.escape(line)}</li>'
            if line.startswith("verdict:")
            else f"<li>{html.escape(line)}</li>"
            for line in found.lines
        )
        out.append("</ul>")
        for table in found.tables:
            out.extend(_table(table))
        out.append("</section>")
    for chart in report.charts:
        out.append(f"<h2>{html.escape(chart.title)}</h2><p>{html.escape(chart.description)}</p>")
        out.append(line_chart(chart, colors=report.colors))
    for bars in report.bars:
        out.append(f"<h2>{html.escape(bars.title)}</h2><p>{html.escape(bars.description)}</p>")
        out.append(bar_chart(bars.values, colors=bars.colors))
    for table in report.tables:
        out.extend(_table(table, table_ids.get(table[0], "")))
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
    covered: tuple[datetime, datetime] | None = None,
) -> list[Series]:
    """Per model, the statistic per period. ``covered``: the span the data covers; a period it
    covers only in part (the first and last of a run) is left out, as its few values would draw
    a drop or a jump that did not happen."""
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
        points = [
            (p["Timestamp"], float(p[statistic]))
            for p in response.get("Datapoints", [])
            if covered is None
            or covered[0]
            <= p["Timestamp"]
            <= p["Timestamp"] + timedelta(seconds=period)
            <= covered[1]
        ]
        if points:
            found.append(Series(model, sorted(points)))
    return found
