"""Plots as inline SVG text: pure functions, no plotting library, readable offline.

Every chart is a self-contained `<svg>` element with a `<title>` on each mark, so a browser shows
the exact value on hover without any script. Colours come from one palette; text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
REGRESSION_COLOUR = "#d62728"
IMPROVEMENT_COLOUR = "#2ca02c"
MUTED_COLOUR = "#999999"
FONT_FAMILY = 'font-family="DejaVu Sans, Arial, sans-serif"'
FONT = f'{FONT_FAMILY} font-size="11"'
SMALL_FONT = f'{FONT_FAMILY} font-size="10"'
TITLE_FONT = f'{FONT_FAMILY} font-size="13" font-weight="bold"'

WIDTH = 760
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 30, 62


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("tick range must be finite")
    if high < low:
        low, high = high, low
    if high - low <= max(1e-9 * max(abs(low), abs(high)), 1e-12):  # one value: an axis around it
        high = low + (abs(low) if abs(low) > 1e-12 else 1.0)
    raw_step = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [float(f"{k * step:.12g}") for k in range(first, last + 1)]


def format_number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class Scale:
    """Maps data values to pixels along one axis."""

    low: float
    high: float
    start_px: float
    end_px: float
    log: bool = False

    def __call__(self, value: float) -> float:
        if self.log:
            low, high, value = math.log10(self.low), math.log10(self.high), math.log10(max(value, self.low))
        else:
            low, high = self.low, self.high
        span = high - low or 1.0
        return self.start_px + (value - low) / span * (self.end_px - self.start_px)


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks per decade covering [low, high] (both > 0), ends rounded outwards."""
    if not (0 < low <= high and math.isfinite(high)):
        raise ValueError("log ticks need 0 < low <= high")
    candidates = [
        m * 10.0**e
        for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        for m in (1, 2, 5)
    ]
    below = [c for c in candidates if c <= low]
    above = [c for c in candidates if c >= high]
    start, end = (below[-1] if below else candidates[0]), (above[0] if above else candidates[-1])
    ticks = [c for c in candidates if start <= c <= end]
    if len(ticks) > 9:  # wide ranges: keep the decades only
        ticks = [c for c in ticks if math.isclose(math.log10(c) % 1, 0, abs_tol=1e-9)] or ticks
        ticks = sorted({start, *ticks, end})
    return [round(t, 12) for t in ticks]


def _svg_open(height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}">'
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>'
        f'<text x="{MARGIN_LEFT}" y="18" {TITLE_FONT}>{escape(label)}</text>'
    )


def _x_axis(scale: Scale, ticks: Sequence[float], y_px: float, top_px: float, label: str) -> list[str]:
    parts = [f'<line x1="{scale.start_px}" y1="{y_px}" x2="{scale.end_px}" y2="{y_px}" stroke="#333"/>']
    for tick in ticks:
        x = scale(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top_px}" x2="{x:.1f}" y2="{y_px}" stroke="#eee"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{y_px + 14}" {FONT} text-anchor="middle">{format_number(tick)}</text>'
        )
    middle = (scale.start_px + scale.end_px) / 2
    parts.append(f'<text x="{middle:.1f}" y="{y_px + 32}" {FONT} text-anchor="middle">{escape(label)}</text>')
    return parts


def _y_axis(scale: Scale, ticks: Sequence[float], x_px: float, right_px: float, label: str) -> list[str]:
    parts = [f'<line x1="{x_px}" y1="{scale.start_px}" x2="{x_px}" y2="{scale.end_px}" stroke="#333"/>']
    for tick in ticks:
        y = scale(tick)
        parts.append(f'<line x1="{x_px}" y1="{y:.1f}" x2="{right_px}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{x_px - 6}" y="{y + 4:.1f}" {FONT} text-anchor="end">{format_number(tick)}</text>'
        )
    middle = (scale.start_px + scale.end_px) / 2
    parts.append(
        f'<text x="14" y="{middle:.1f}" {FONT} text-anchor="middle" '
        f'transform="rotate(-90 14 {middle:.1f})">{escape(label)}</text>'
    )
    return parts


# ---------------------------------------------------------------------------------------------
# Distributions: one row per series, the histogram as a filled density, percentiles as ticks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributionRow:
    label: str
    edges: Sequence[float]  # histogram bin edges (len(counts) + 1), may be empty
    counts: Sequence[int]
    markers: dict[str, float]  # e.g. {"p50": 1.2, "p99": 3.4}
    low: float  # min, for the whisker
    high: float  # max


ROW_HEIGHT = 44
MARKER_DASH = {"p50": "", "p90": 'stroke-dasharray="4 2"', "p99": 'stroke-dasharray="1 2"'}


def _marker_legend(x_px: float, y_px: float) -> str:
    parts = []
    for index, (name, dash) in enumerate(MARKER_DASH.items()):
        left = x_px + 70 * index
        parts.append(
            f'<line x1="{left}" y1="{y_px - 10}" x2="{left}" y2="{y_px + 1}" stroke="#222" '
            f'stroke-width="1.5" {dash}/><text x="{left + 5}" y="{y_px}" {SMALL_FONT}>{name}</text>'
        )
    return "".join(parts)


def distribution_plot(rows: Sequence[DistributionRow], title: str, unit: str) -> str:
    if not rows:
        raise ValueError("a distribution plot needs at least one row")
    label_px = 200
    height = MARGIN_TOP + ROW_HEIGHT * len(rows) + MARGIN_BOTTOM
    values = [v for row in rows for v in (row.low, row.high, *row.markers.values())]
    # Latency is right-skewed with rare far outliers: a log axis keeps body and tail both visible.
    use_log = min(values) > 0 and max(values) / min(values) > 4
    ticks = log_ticks(min(values), max(values)) if use_log else nice_ticks(min(values), max(values))
    x = Scale(ticks[0], ticks[-1], label_px, WIDTH - MARGIN_RIGHT, log=use_log)
    axis_y = MARGIN_TOP + ROW_HEIGHT * len(rows)
    axis_label = f"{unit} (log scale)" if use_log else unit
    parts = [_svg_open(height, title), *_x_axis(x, ticks, axis_y, MARGIN_TOP, axis_label)]
    parts.append(_marker_legend(label_px, height - 6))
    for index, row in enumerate(rows):
        colour = PALETTE[index % len(PALETTE)]
        base_y = MARGIN_TOP + ROW_HEIGHT * (index + 1) - 8
        parts.append(
            f'<text x="{label_px - 8}" y="{base_y - 10}" {FONT} text-anchor="end">{escape(row.label)}</text>'
        )
        parts.append(
            f'<line x1="{x(row.low):.1f}" y1="{base_y}" x2="{x(row.high):.1f}" y2="{base_y}" '
            f'stroke="{colour}" stroke-width="2"><title>{escape(row.label)}: min {format_number(row.low)}, '
            f"max {format_number(row.high)} {escape(unit)}</title></line>"
        )
        if row.counts and max(row.counts) > 0:
            parts.append(_density_path(row, x, base_y, colour))
        for name, value in row.markers.items():
            parts.append(
                f'<line x1="{x(value):.1f}" y1="{base_y - 30}" x2="{x(value):.1f}" y2="{base_y + 4}" '
                f'stroke="#222" stroke-width="1.5" {MARKER_DASH.get(name, "")} class="marker">'
                f"<title>{escape(row.label)} {escape(name)} = {format_number(value)} {escape(unit)}</title>"
                "</line>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _density_path(row: DistributionRow, x: Scale, base_y: float, colour: str) -> str:
    """Counts per unit width (bins may be log-spaced), scaled so the tallest bin is 28 px."""
    densities = [
        count / (right - left) if right > left else 0.0
        for count, left, right in zip(row.counts, row.edges[:-1], row.edges[1:], strict=True)
    ]
    peak = max(densities) or 1.0
    points = [f"M{x(row.edges[0]):.1f},{base_y}"]
    for density, left, right in zip(densities, row.edges[:-1], row.edges[1:], strict=True):
        top = base_y - 28 * density / peak
        points.append(f"L{x(left):.1f},{top:.1f}L{x(right):.1f},{top:.1f}")
    points.append(f"L{x(row.edges[-1]):.1f},{base_y}Z")
    return (
        f'<path d="{"".join(points)}" fill="{colour}" fill-opacity="0.45" stroke="{colour}" class="density">'
        f"<title>{escape(row.label)}: {sum(row.counts)} inferences</title></path>"
    )


# ---------------------------------------------------------------------------------------------
# Scatter: trade-offs (size vs latency, coloured by series, labelled per point)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    series: str
    detail: str = ""


def scatter_plot(
    points: Sequence[Point], title: str, x_label: str, y_label: str, y_from_zero: bool = True
) -> str:
    """Both axes start at 0 (sizes, latencies) unless `y_from_zero` is off (accuracy near 100%)."""
    if not points:
        raise ValueError("a scatter plot needs at least one point")
    height = 360
    x_ticks = nice_ticks(min(0.0, *(p.x for p in points)), max(p.x for p in points))
    y_values = [p.y for p in points]
    y_low = (
        min(0.0, *y_values) if y_from_zero else min(y_values) - 0.05 * (max(y_values) - min(y_values) or 1)
    )
    y_ticks = nice_ticks(y_low, max(y_values))
    x = Scale(x_ticks[0], x_ticks[-1], MARGIN_LEFT, WIDTH - MARGIN_RIGHT)
    y = Scale(y_ticks[0], y_ticks[-1], height - MARGIN_BOTTOM, MARGIN_TOP)
    parts = [
        _svg_open(height, title),
        *_x_axis(x, x_ticks, height - MARGIN_BOTTOM, MARGIN_TOP, x_label),
        *_y_axis(y, y_ticks, MARGIN_LEFT, WIDTH - MARGIN_RIGHT, y_label),
    ]
    colours = _series_colours(p.series for p in points)
    for point in points:
        cx, cy = x(point.x), y(point.y)
        tip = (
            f"{point.series} {point.label}: {format_number(point.x)}, {format_number(point.y)} {point.detail}"
        )
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{colours[point.series]}" class="point">'
            f"<title>{escape(tip.strip())}</title></circle>"
            f'<text x="{cx + 7:.1f}" y="{cy - 6:.1f}" {SMALL_FONT}>{escape(point.label)}</text>'
        )
    parts.extend(_legend(colours, height))
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# History: one line per series over time, points marked by their verdict
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryPoint:
    t: float  # unix seconds
    y: float
    low: float | None  # error bar (e.g. p50 CI), optional
    high: float | None
    mark: str  # "regression" | "improvement" | "not-comparable" | "" (nothing to say)
    detail: str


@dataclass(frozen=True)
class HistorySeries:
    label: str
    points: Sequence[HistoryPoint] = field(default_factory=tuple)


MARK_COLOURS = {"regression": REGRESSION_COLOUR, "improvement": IMPROVEMENT_COLOUR}


def history_plot(
    series: Sequence[HistorySeries], title: str, y_label: str, time_labels: dict[float, str]
) -> str:
    """`time_labels` maps a few unix times to axis labels (the caller formats dates)."""
    points = [p for s in series for p in s.points]
    if not points:
        raise ValueError("a history plot needs at least one point")
    height = 360
    t_low, t_high = min(p.t for p in points), max(p.t for p in points)
    if t_high == t_low:
        t_low, t_high = t_low - 1, t_high + 1
    values = [v for p in points for v in (p.y, p.low, p.high) if v is not None]
    y_ticks = nice_ticks(min(0.0, *values), max(values))
    x = Scale(t_low, t_high, MARGIN_LEFT + 10, WIDTH - MARGIN_RIGHT - 10)
    y = Scale(y_ticks[0], y_ticks[-1], height - MARGIN_BOTTOM, MARGIN_TOP)
    parts = [_svg_open(height, title), *_y_axis(y, y_ticks, MARGIN_LEFT, WIDTH - MARGIN_RIGHT, y_label)]
    axis_y = height - MARGIN_BOTTOM
    parts.append(
        f'<line x1="{MARGIN_LEFT}" y1="{axis_y}" x2="{WIDTH - MARGIN_RIGHT}" y2="{axis_y}" stroke="#333"/>'
    )
    for t, text in time_labels.items():
        parts.append(
            f'<text x="{x(t):.1f}" y="{axis_y + 14}" {FONT} text-anchor="middle">{escape(text)}</text>'
        )
    colours = _series_colours(s.label for s in series)
    for line in series:
        colour = colours[line.label]
        ordered = sorted(line.points, key=lambda p: p.t)
        path = "".join(f"{'M' if i == 0 else 'L'}{x(p.t):.1f},{y(p.y):.1f}" for i, p in enumerate(ordered))
        parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for point in ordered:
            parts.append(_history_mark(point, line.label, colour, x, y))
    parts.extend(_legend(colours, height))
    parts.append("</svg>")
    return "".join(parts)


def _history_mark(point: HistoryPoint, label: str, colour: str, x: Scale, y: Scale) -> str:
    cx, cy = x(point.t), y(point.y)
    bar = ""
    if point.low is not None and point.high is not None:
        bar = (
            f'<line x1="{cx:.1f}" y1="{y(point.low):.1f}" x2="{cx:.1f}" y2="{y(point.high):.1f}" '
            f'stroke="{colour}" stroke-opacity="0.6"/>'
        )
    tip = f"<title>{escape(label)}: {format_number(point.y)} {escape(point.detail)}</title>"
    if point.mark in MARK_COLOURS:
        mark_colour = MARK_COLOURS[point.mark]
        return (
            f'{bar}<circle cx="{cx:.1f}" cy="{cy:.1f}" r="8" fill="none" stroke="{mark_colour}" '
            f'stroke-width="2.5" class="{point.mark}">{tip}</circle>'
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour}">{tip}</circle>'
        )
    fill = "white" if point.mark == "not-comparable" else colour
    return (
        f'{bar}<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{fill}" stroke="{colour}" class="run">'
        f"{tip}</circle>"
    )


def _series_colours(labels: Iterable[str]) -> dict[str, str]:
    colours: dict[str, str] = {}
    for label in labels:
        if label not in colours:
            colours[label] = PALETTE[len(colours) % len(PALETTE)]
    return colours


def _legend(colours: dict[str, str], height: int) -> list[str]:
    """One row under the x axis label: the first series that fit."""
    parts = []
    x_px, y_px = float(MARGIN_LEFT), height - 6
    for label, colour in colours.items():
        text = label[:28]
        width = 22 + 6.2 * len(text)
        if x_px + width > WIDTH - MARGIN_RIGHT:
            parts.append(f'<text x="{x_px}" y="{y_px}" {SMALL_FONT}>…</text>')
            break
        parts.append(
            f'<rect x="{x_px}" y="{y_px - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x_px + 14}" y="{y_px}" {SMALL_FONT}>{escape(text)}</text>'
        )
        x_px += width
    return parts
