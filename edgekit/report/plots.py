"""The report's plots, drawn by matplotlib as inline SVG text: readable offline, deterministic.

Each function returns one self-contained `<svg>` element (no XML prolog, nothing fetched: the
only references are `#id`s inside the element) sized in CSS pixels, with `class="plot"`,
`role="img"` and `aria-label` = the title. Marks carry ids `<plot id>-<kind>-<n>` (matplotlib
writes `Artist.set_gid` as the element id; every id in the element starts with the plot id, a
hash of the title, so plots with different titles share a page without clashes) and a
`<title>` child, so a browser shows the exact value on hover without any script. Kinds:
`density`, `whisker`, `marker` (distribution), `point` (scatter), `line`, `ci`, `run`,
`not-comparable`, `regression`, `improvement` (history), and `legend`.

matplotlib is imported only when a plot is drawn. If edgekit imports it first, `MPLCONFIGDIR`
points at a temporary directory for the import and is removed right after: the font cache is
rebuilt per process (about 1 s) instead of being written to the user's home, and a matplotlibrc
in the user's config directory is not read by this process. Drawing uses
`matplotlib.figure.Figure` with the SVG canvas, never pyplot or the global backend; the style
(matplotlib's defaults plus ours) applies inside `rc_context` only, so the user's rcParams are
as before afterwards (not thread-safe, as rcParams are not). Same data, same bytes:
`svg.hashsalt` is fixed and no date or creator is written.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
REGRESSION_COLOUR = "#d62728"
IMPROVEMENT_COLOUR = "#2ca02c"
MARKER_COLOUR = "#222222"
WIDTH_PX = 760
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_RC = {
    "svg.hashsalt": "edgekit-report",  # ids from content hashes, not random: same data, same bytes
    "svg.fonttype": "none",  # text stays text (searchable, small); the browser picks the font
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Liberation Sans"],
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#eeeeee",
    "axes.axisbelow": True,
    "axes.titlelocation": "left",
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "legend.fontsize": 9,
    "legend.frameon": False,
}
_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}  # no <metadata> at all


def format_number(value: float) -> str:
    """A value for a tooltip: 4 significant digits, 3 below 0.01 or from 1000 on."""
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:.4g}"


def _literal(text: str) -> str:
    """`text` as matplotlib should print it: `$` escaped, so no label is read as mathtext."""
    return text.replace("$", r"\$")


@contextmanager
def _matplotlib() -> Iterator[Any]:
    """matplotlib imported (the first time with MPLCONFIGDIR in a removed temporary directory),
    with the report's style in effect; yields the `matplotlib` module."""
    if "matplotlib" not in sys.modules:  # once imported, matplotlib has read its directories
        previous = os.environ.get("MPLCONFIGDIR")
        with tempfile.TemporaryDirectory(prefix="edgekit-mpl-") as config_dir:
            os.environ["MPLCONFIGDIR"] = config_dir
            try:
                import matplotlib
                import matplotlib.backends.backend_svg
                import matplotlib.figure  # the font cache is built here
            finally:
                if previous is None:
                    os.environ.pop("MPLCONFIGDIR", None)
                else:
                    os.environ["MPLCONFIGDIR"] = previous
    import matplotlib
    import matplotlib.style

    with matplotlib.style.context("default"), matplotlib.rc_context(_RC):
        yield matplotlib


class _Plot:
    """One figure being drawn: its axes, the marks' ids and their tooltips."""

    def __init__(self, title: str, height_px: int) -> None:
        from matplotlib.backends.backend_svg import FigureCanvasSVG
        from matplotlib.figure import Figure

        self.title = title
        self.key = "p" + hashlib.sha256(title.encode()).hexdigest()[:10]
        self.figure: Figure = Figure(figsize=(WIDTH_PX / 72, height_px / 72), dpi=72, layout="constrained")
        FigureCanvasSVG(self.figure)
        self.ax: Axes = self.figure.add_subplot()
        self.ax.set_title(_literal(title))
        self.tooltips: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    def mark(self, artist: Any, kind: str, tooltip: str = "") -> None:
        """Give `artist` the id `<kind>-<n>` (prefixed by the plot id when written) and a tooltip."""
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        gid = f"{kind}-{n}"
        artist.set_gid(gid)
        if tooltip:
            self.tooltips[gid] = tooltip

    def svg(self) -> str:
        buffer = io.StringIO()
        self.figure.savefig(buffer, format="svg", metadata=_METADATA)
        return _inline(buffer.getvalue(), self.key, self.title, self.tooltips)


def _inline(document: str, key: str, label: str, tooltips: dict[str, str]) -> str:
    """matplotlib's SVG document as an element for an HTML page: ids prefixed by `key`, sizes in
    px (matplotlib writes pt at 72 per inch, so the numbers are the pixels we asked for),
    tooltips as `<title>` children, the accessible label on the root."""
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.fromstring(document)
    href = f"{{{XLINK_NS}}}href"
    for element in root.iter():
        attributes = element.attrib
        for name, value in attributes.items():
            if name == "id":
                attributes[name] = f"{key}-{value}"
            elif name == href and value.startswith("#"):
                attributes[name] = f"#{key}-{value[1:]}"
            elif "url(#" in value:
                attributes[name] = value.replace("url(#", f"url(#{key}-")
        tip = tooltips.get(attributes.get("id", "")[len(key) + 1 :])
        if tip is not None:
            title = ET.Element(f"{{{SVG_NS}}}title")
            title.text = tip
            element.insert(0, title)
    for side in ("width", "height"):
        root.set(side, root.get(side, "").removesuffix("pt"))
    root.set("class", "plot")
    root.set("role", "img")
    root.set("aria-label", label)
    return ET.tostring(root, encoding="unicode")


def _series_colours(labels: Iterable[str]) -> dict[str, str]:
    colours: dict[str, str] = {}
    for label in labels:
        if label not in colours:
            colours[label] = PALETTE[len(colours) % len(PALETTE)]
    return colours


def _legend(plot: _Plot, colours: dict[str, str], marker: str = "o") -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker=marker, linestyle="none") for c in colours.values()]
    legend = plot.ax.legend(
        handles,
        [_literal(label[:28]) for label in colours],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncols=min(len(colours), 6),
    )
    plot.mark(legend, "legend")


# ---------------------------------------------------------------------------------------------
# Distributions: one row per series, the histogram as a filled density, percentiles as ticks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributionRow:
    """One series: histogram bin `edges` (len(counts) + 1, may be empty), `counts`, percentile
    `markers` (e.g. {"p50": 1.2}), and `low`/`high` = min/max, all in the plot's unit."""

    label: str
    edges: Sequence[float]
    counts: Sequence[int]
    markers: dict[str, float]
    low: float
    high: float


ROW_HEIGHT_PX = 44
MARKER_STYLE = {"p50": "solid", "p90": (0, (4, 2)), "p99": (0, (1, 2))}


def distribution_plot(rows: Sequence[DistributionRow], title: str, unit: str) -> str:
    """Rows top to bottom; the x axis is logarithmic when every value is > 0 and they span more
    than 4x (latency is right-skewed with rare far outliers: body and tail both stay visible).
    Densities are counts per unit width (bins may be log-spaced), the tallest bin 0.7 rows high.
    Raises ValueError without rows."""
    if not rows:
        raise ValueError("a distribution plot needs at least one row")
    values = [v for row in rows for v in (row.low, row.high, *row.markers.values())]
    use_log = min(values) > 0 and max(values) / min(values) > 4
    with _matplotlib():
        plot = _Plot(title, 50 + ROW_HEIGHT_PX * len(rows) + 80)
        ax = plot.ax
        if use_log:
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1-2-5 per decade
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_number(value)))
            ax.xaxis.set_minor_formatter(NullFormatter())
        for index, row in enumerate(rows):
            colour = PALETTE[index % len(PALETTE)]
            _density(plot, row, index, colour)
            (whisker,) = ax.plot([row.low, row.high], [index, index], color=colour, linewidth=2)
            plot.mark(
                whisker,
                "whisker",
                f"{row.label}: min {format_number(row.low)}, max {format_number(row.high)} {unit}",
            )
            for name, value in row.markers.items():
                (line,) = ax.plot(
                    [value, value], [index - 0.8, index + 0.12], color=MARKER_COLOUR, linewidth=1.5,
                    linestyle=MARKER_STYLE.get(name, "solid"),
                )  # fmt: skip
                plot.mark(line, "marker", f"{row.label} {name} = {format_number(value)} {unit}")
        ax.set_yticks(range(len(rows)), [_literal(row.label) for row in rows])
        ax.set_ylim(len(rows) - 0.6, -0.95)  # row 0 on top, room above each row for its density
        ax.grid(False, axis="y")
        ax.set_xlabel(_literal(f"{unit} (log scale)" if use_log else unit))
        _marker_legend(plot)
        return plot.svg()


def _density(plot: _Plot, row: DistributionRow, index: int, colour: str) -> None:
    from matplotlib.colors import to_rgba

    if not row.counts or max(row.counts) <= 0:
        return
    densities = [
        count / (right - left) if right > left else 0.0
        for count, left, right in zip(row.counts, row.edges[:-1], row.edges[1:], strict=True)
    ]
    peak = max(densities) or 1.0
    stairs = plot.ax.stairs(
        [index - 0.7 * d / peak for d in densities], list(row.edges), baseline=index, fill=True,
        facecolor=to_rgba(colour, 0.45), edgecolor=colour, linewidth=1,
    )  # fmt: skip
    plot.mark(stairs, "density", f"{row.label}: {sum(row.counts)} inferences")


def _marker_legend(plot: _Plot) -> None:
    from matplotlib.lines import Line2D

    names = list(MARKER_STYLE)
    handles = [
        Line2D([], [], color=MARKER_COLOUR, linewidth=1.5, linestyle=MARKER_STYLE[name]) for name in names
    ]
    legend = plot.ax.legend(
        handles, names, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncols=len(names), handlelength=2.5
    )
    plot.mark(legend, "legend")


# ---------------------------------------------------------------------------------------------
# Scatter: trade-offs (size vs latency, coloured by series, labelled per point)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One labelled point of a series; `detail` is appended to its tooltip."""

    x: float
    y: float
    label: str
    series: str
    detail: str = ""


def scatter_plot(
    points: Sequence[Point], title: str, x_label: str, y_label: str, y_from_zero: bool = True
) -> str:
    """Both axes include 0 (sizes, latencies) unless `y_from_zero` is off (accuracy near 100%).
    Raises ValueError without points."""
    if not points:
        raise ValueError("a scatter plot needs at least one point")
    colours = _series_colours(p.series for p in points)
    with _matplotlib():
        plot = _Plot(title, 360)
        ax = plot.ax
        for point in points:
            (mark,) = ax.plot(
                [point.x], [point.y], marker="o", markersize=10, linestyle="none",
                color=colours[point.series], clip_on=False,  # a point on the axes' edge is drawn whole
            )  # fmt: skip
            values = f"{format_number(point.x)}, {format_number(point.y)}"
            tip = f"{point.series} {point.label}: {values} {point.detail}"
            plot.mark(mark, "point", tip.strip())
            ax.annotate(
                _literal(point.label), (point.x, point.y), xytext=(6, 5), textcoords="offset points",
                fontsize=9,
            )  # fmt: skip
        _include_zero(ax, y=y_from_zero)
        ax.set_xlabel(_literal(x_label))
        ax.set_ylabel(_literal(y_label))
        _legend(plot, colours)
        return plot.svg()


def _include_zero(ax: Axes, y: bool) -> None:
    low, high = ax.get_xlim()
    ax.set_xlim(min(0.0, low), high)
    if y:
        low, high = ax.get_ylim()
        ax.set_ylim(min(0.0, low), high)


# ---------------------------------------------------------------------------------------------
# History: one line per series over time, points marked by their verdict
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryPoint:
    """One run: `t` in unix seconds, `y` with its interval `low`..`high` (e.g. the p50's CI, both
    None when unknown), `mark` = "regression" | "improvement" | "not-comparable" | "" (nothing to
    say), `detail` appended to the tooltip."""

    t: float
    y: float
    low: float | None
    high: float | None
    mark: str
    detail: str


@dataclass(frozen=True)
class HistorySeries:
    label: str
    points: Sequence[HistoryPoint] = field(default_factory=tuple)


RING_COLOURS = {"regression": REGRESSION_COLOUR, "improvement": IMPROVEMENT_COLOUR}


def history_plot(
    series: Sequence[HistorySeries], title: str, y_label: str, time_labels: dict[float, str]
) -> str:
    """`time_labels` maps a few unix times to x axis labels (the caller formats dates). Each run is
    a dot in its series' colour (white inside when not comparable) with its interval as a bar; a
    regression is ringed red, an improvement green. The y axis includes 0. Raises ValueError
    without points."""
    points = [p for s in series for p in s.points]
    if not points:
        raise ValueError("a history plot needs at least one point")
    colours = _series_colours(s.label for s in series)
    with _matplotlib():
        plot = _Plot(title, 360)
        ax = plot.ax
        for line in series:
            colour = colours[line.label]
            ordered = sorted(line.points, key=lambda p: p.t)
            (path,) = ax.plot([p.t for p in ordered], [p.y for p in ordered], color=colour, linewidth=1.5)
            plot.mark(path, "line")
            _intervals(plot, ordered, colour)
            for point in ordered:
                _history_mark(plot, point, line.label, colour)
        t_low, t_high = min(p.t for p in points), max(p.t for p in points)
        pad = (t_high - t_low) * 0.03 or 1.0
        ax.set_xlim(t_low - pad, t_high + pad)
        ax.set_xticks(list(time_labels), [_literal(text) for text in time_labels.values()])
        low, high = ax.get_ylim()
        bottom = min(0.0, low)
        ax.set_ylim(bottom, high + 0.05 * (high - bottom))  # room above the top run for its ring
        ax.set_ylabel(_literal(y_label))
        _legend(plot, colours, marker="o")
        return plot.svg()


def _intervals(plot: _Plot, points: Sequence[HistoryPoint], colour: str) -> None:
    """Every point's interval as a vertical bar: one line with gaps (NaN) between the bars."""
    known = [p for p in points if p.low is not None and p.high is not None]
    if not known:
        return
    nan = float("nan")
    xs = [v for p in known for v in (p.t, p.t, nan)]
    ys = [v for p in known for v in (p.low, p.high, nan)]
    (bars,) = plot.ax.plot(xs, ys, color=colour, alpha=0.6, linewidth=1.5)
    plot.mark(bars, "ci")


def _history_mark(plot: _Plot, point: HistoryPoint, label: str, colour: str) -> None:
    ax = plot.ax
    tip = f"{label}: {format_number(point.y)} {point.detail}"
    if point.low is not None and point.high is not None:
        tip += f"; interval {format_number(point.low)}..{format_number(point.high)}"
    hollow = point.mark == "not-comparable"
    (dot,) = ax.plot(
        [point.t], [point.y], marker="o", markersize=7, linestyle="none", color=colour,
        markerfacecolor="white" if hollow else colour, markeredgewidth=1.5, clip_on=False,
    )  # fmt: skip
    plot.mark(dot, "not-comparable" if hollow else "run", tip)
    if point.mark in RING_COLOURS:
        (ring,) = ax.plot(
            [point.t], [point.y], marker="o", markersize=17, linestyle="none", markerfacecolor="none",
            markeredgecolor=RING_COLOURS[point.mark], markeredgewidth=2.5, clip_on=False,
        )  # fmt: skip
        plot.mark(ring, point.mark, tip)
