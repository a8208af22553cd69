"""Server-drawn SVG charts for bulletins: the PDF renderer runs no JavaScript, so charts are plain SVG.

Pure module: every label is escaped; sizes are in user units and the SVG scales to its container.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

PALETTE = ("#1565c0", "#c62828", "#2e7d32", "#f9a825", "#6a1b9a", "#00838f")
FONT = "WenQuanYi Micro Hei, Noto Sans CJK SC, sans-serif"


def text_width(text: str, size: float) -> float:
    """About how wide `text` runs at font `size`: a Chinese character takes a full em, a Latin one about
    0.6 — enough to leave room for a label instead of clipping it."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else size * 0.6 for c in text)


def _num(value: Decimal | float | int) -> str:
    return f"{float(value):.1f}".rstrip("0").rstrip(".")


def bar_chart(bars: Sequence[tuple[str, Decimal | float, str | None]], *, top: float = 100.0,
              title: str = "", width: int = 640, bar_height: int = 22) -> Markup:
    """Horizontal bars, one per (label, value, colour or None), largest first as given; value printed.

    The labels' column is as wide as the longest label, and the chart widens to keep the bars' span: a long
    unit name is never cut."""
    right, head = 60, 28 if title else 8
    left = max(60, int(max((text_width(label, 13) for label, _v, _c in bars), default=0)) + 12)
    span = max(width - 150 - right, 200)
    width = max(width, left + span + right)
    height = head + len(bars) * (bar_height + 6) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'font-family="{FONT}" font-size="13" class="chart bar-chart">']
    if title:
        parts.append(f'<text x="0" y="18" font-size="15" font-weight="bold">{escape(title)}</text>')
    for i, (label, value, colour) in enumerate(bars):
        y = head + i * (bar_height + 6)
        length = max(0.0, min(float(value) / top, 1.0)) * span if top else 0
        parts.append(f'<text x="{left - 6}" y="{y + bar_height * 0.72:.1f}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_height}" '
                     f'fill="{escape(colour or PALETTE[0])}"/>')
        parts.append(f'<text x="{left + length + 4:.1f}" y="{y + bar_height * 0.72:.1f}">{_num(value)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text and colour above is escaped


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[Decimal | float | None]]], *,
               low: float = 0.0, high: float = 100.0, title: str = "", width: int = 640,
               height: int = 260) -> Markup:
    """Lines over periods: `labels` along the bottom, each series (name, values; None for a gap).

    The legend's column is as wide as the longest series name; the chart widens for it."""
    left, top, bottom = 40, 30 if title else 10, 30
    right = max(120, int(max((text_width(name, 12) for name, _v in series), default=0)) + 16)
    width = max(width, left + max(len(labels), 2) * int(max((text_width(x, 12) for x in labels), default=0) + 8)
                + right)
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(labels) - 1, 1)

    def y_of(value: float) -> float:
        share = (value - low) / (high - low) if high > low else 0
        return top + plot_h * (1 - max(0.0, min(share, 1.0)))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'font-family="{FONT}" font-size="12" class="chart line-chart">']
    if title:
        parts.append(f'<text x="0" y="18" font-size="15" font-weight="bold">{escape(title)}</text>')
    for tick in range(5):
        value = low + (high - low) * tick / 4
        y = y_of(value)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_num(value)}</text>')
    for i, label in enumerate(labels):
        parts.append(f'<text x="{left + i * step:.1f}" y="{height - 8}" text-anchor="middle">{escape(label)}</text>')
    for n, (name, values) in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        points = [(left + i * step, y_of(float(v))) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{left + plot_w + 8}" y="{top + 14 + n * 16}" fill="{colour}">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text and colour above is escaped


def bar_data(bars: Sequence[tuple[str, Decimal | float, str | None]], *, top: float = 100.0,
             title: str = "") -> dict:
    """The same bar chart as data for ECharts on pages (see static/js/charts.js)."""
    return {"kind": "bar", "title": title, "top": top,
            "bars": [{"label": label, "value": float(value), "colour": colour} for label, value, colour in bars]}


def line_data(labels: Sequence[str], series: Sequence[tuple[str, Sequence[Decimal | float | None]]], *,
              low: float = 0.0, high: float = 100.0, title: str = "") -> dict:
    """The same line chart as data for ECharts on pages."""
    return {"kind": "line", "title": title, "labels": list(labels), "low": low, "high": high,
            "series": [{"name": name, "values": [None if v is None else round(float(v), 2) for v in values]}
                       for name, values in series]}


def bar(bars: Sequence[tuple[str, Decimal | float, str | None]], *, top: float = 100.0,
        title: str = "") -> tuple[Markup, dict]:
    """A bar chart both ways: the SVG (for paper and pages without JavaScript) and its ECharts data."""
    return bar_chart(bars, top=top, title=title), bar_data(bars, top=top, title=title)


def line(labels: Sequence[str], series: Sequence[tuple[str, Sequence[Decimal | float | None]]], *,
         low: float = 0.0, high: float = 100.0, title: str = "") -> tuple[Markup, dict]:
    """A line chart both ways: the SVG and its ECharts data."""
    return (line_chart(labels, series, low=low, high=high, title=title),
            line_data(labels, series, low=low, high=high, title=title))
