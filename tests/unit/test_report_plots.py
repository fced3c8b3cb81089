"""The report's plots (matplotlib as inline SVG): every mark drawn and identifiable, the verdict
marks' colours, escaped text, nothing fetched, same data -> same bytes, matplotlib left alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from edgekit.optimize.search import DeviceReport
from edgekit.optimize.state import ACCEPTED, BASELINE, FAILED, REJECTED, Outcome
from edgekit.report.optimize_page import front_page
from edgekit.report.plots import (
    PALETTE,
    REGRESSION_COLOUR,
    DistributionRow,
    HistoryPoint,
    HistorySeries,
    Point,
    distribution_plot,
    history_plot,
    scatter_plot,
)
from edgekit.report.style import STYLE

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
HOSTILE = '<script>alert("x")</script> & $co$'
MARK_ID = re.compile(r"^p[0-9a-f]{10}-([a-z-]+)-(\d+)$")


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("class") == "plot" and root.get("role") == "img"
    return root


def _marks(root: ET.Element) -> dict[str, list[ET.Element]]:
    """Elements by mark kind, from their ids `<plot id>-<kind>-<n>`."""
    found: dict[str, list[ET.Element]] = {}
    for element in root.iter():
        match = MARK_ID.match(element.get("id", ""))
        if match:
            found.setdefault(match.group(1), []).append(element)
    return found


def _style(element: ET.Element) -> dict[str, str]:
    """The style of the shape a mark draws: its marker's `<use>`, else its `<path>`."""
    shape = element.find(f".//{SVG}use")
    if shape is None:
        shape = element.find(f".//{SVG}path")
    assert shape is not None and shape.get("style")
    pairs = (part.split(":", 1) for part in str(shape.get("style")).split(";") if ":" in part)
    return {key.strip(): value.strip() for key, value in pairs}


def _tooltip(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None and title.text
    return title.text


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


ROWS = [
    DistributionRow(HOSTILE, [1.0, 2.0, 4.0], [10, 5], {"p50": 1.5, "p99": 3.9}, 1.0, 4.0),
    DistributionRow("plain", [], [], {"p50": 2.0}, 1.2, 30.0),
]
HISTORY = [
    HistorySeries(
        "m",
        (
            HistoryPoint(0, 1.0, 0.9, 1.1, "", "first"),
            HistoryPoint(60, 1.3, 1.2, 1.4, "regression", "slower"),
            HistoryPoint(120, 1.3, None, None, "not-comparable", "threads differ"),
        ),
    ),
    HistorySeries("n", (HistoryPoint(30, 2.0, 1.9, 2.1, "improvement", "faster"),)),
]


def test_distribution_plot_draws_every_row_and_escapes_labels() -> None:
    svg = distribution_plot(ROWS, "t", "ms")
    root = _parse(svg)
    assert "<script>" not in svg and root.get("aria-label") == "t"
    texts = _texts(root)
    assert HOSTILE in texts and "plain" in texts and "ms (log scale)" in texts  # $..$ is not mathtext
    marks = _marks(root)
    assert len(marks["density"]) == 1  # only the first row has a histogram
    assert len(marks["whisker"]) == 2 and len(marks["marker"]) == 3
    assert _style(marks["density"][0])["stroke"] == PALETTE[0]
    assert _style(marks["whisker"][1])["stroke"] == PALETTE[1]
    assert _tooltip(marks["marker"][1]) == f"{HOSTILE} p99 = 3.9 ms"
    assert _tooltip(marks["density"][0]) == f"{HOSTILE}: 15 inferences"


def test_distribution_axis_is_linear_for_a_narrow_range() -> None:
    root = _parse(distribution_plot([DistributionRow("a", [], [], {"p50": 2.0}, 1.5, 3.0)], "t", "ms"))
    assert "ms" in _texts(root) and "ms (log scale)" not in _texts(root)


def test_scatter_points_are_coloured_by_series_and_labelled() -> None:
    points = [
        Point(0.2, 1.0, "as-is", "m"),
        Point(0.05, 0.8, "int8", "m", "(acc 99%)"),
        Point(1, 2, "x", "k"),
    ]
    root = _parse(scatter_plot(points, "s", "size", "latency"))
    marks = _marks(root)
    assert len(marks["point"]) == 3 and len(marks["legend"]) == 1
    assert [_style(p)["fill"] for p in marks["point"]] == [PALETTE[0], PALETTE[0], PALETTE[1]]
    assert _tooltip(marks["point"][1]) == "m int8: 0.05, 0.8 (acc 99%)"
    assert {"as-is", "int8", "x", "size", "latency", "m", "k"} <= set(_texts(root))


def test_history_rings_the_regression_red_and_leaves_not_comparable_hollow() -> None:
    root = _parse(history_plot(HISTORY, "h", "ms", {0.0: "a", 120.0: "b"}))
    marks = _marks(root)
    assert Counter({k: len(v) for k, v in marks.items()}) == Counter(
        {"line": 2, "ci": 2, "run": 3, "not-comparable": 1, "regression": 1, "improvement": 1, "legend": 1}
    )
    ring = _style(marks["regression"][0])
    assert ring["stroke"] == REGRESSION_COLOUR and (ring.get("fill") == "none" or ring["fill-opacity"] == "0")
    assert _tooltip(marks["regression"][0]) == "m: 1.3 slower; interval 1.2..1.4"
    hollow = _style(marks["not-comparable"][0])
    assert hollow["fill"] == "#ffffff" and hollow["stroke"] == PALETTE[0]
    assert {_style(r)["fill"] for r in marks["run"]} == {PALETTE[0], PALETTE[1]}  # filled, by series
    assert _style(marks["improvement"][0])["stroke"] != REGRESSION_COLOUR
    assert {"a", "b"} <= set(_texts(root))


def test_same_data_same_bytes_and_no_shared_ids_between_plots() -> None:
    first = history_plot(HISTORY, "h", "ms", {0.0: "a"})
    assert first == history_plot(HISTORY, "h", "ms", {0.0: "a"})
    assert distribution_plot(ROWS, "t", "ms") == distribution_plot(ROWS, "t", "ms")
    other = history_plot(HISTORY, "h2", "ms", {0.0: "a"})
    ids = [re.findall(r'\bid="([^"]+)"', svg) for svg in (first, other)]
    assert len(set(ids[0])) == len(ids[0])  # unique inside a plot
    assert not set(ids[0]) & set(ids[1])  # and across plots of one page


@pytest.mark.parametrize("kind", ["distribution", "scatter", "history"])
def test_inline_and_self_contained(kind: str) -> None:
    svg = {
        "distribution": lambda: distribution_plot(ROWS, "t", "ms"),
        "scatter": lambda: scatter_plot([Point(1, 1, "a", "b")], "s", "x", "y"),
        "history": lambda: history_plot(HISTORY, "h", "ms", {}),
    }[kind]()
    assert svg.startswith("<svg ") and "<?xml" not in svg and "DOCTYPE" not in svg
    root = _parse(svg)
    assert root.get("width") == "760" and root.get("viewBox", "").startswith("0 0 760 ")
    ids = {e.get("id") for e in root.iter()}
    references = [e.get(XLINK_HREF) for e in root.iter() if e.get(XLINK_HREF)]
    references += re.findall(r"url\(([^)]*)\)", svg)
    assert references and all(r.startswith("#") and r[1:] in ids for r in references)
    assert not re.search(r"<script|<image|<foreignObject|@import|\bsrc=", svg)
    assert "metadata" not in svg  # no date, no creator


def test_empty_plots_are_refused() -> None:
    with pytest.raises(ValueError):
        scatter_plot([], "s", "x", "y")
    with pytest.raises(ValueError):
        distribution_plot([], "t", "ms")
    with pytest.raises(ValueError):
        history_plot([HistorySeries("m")], "h", "ms", {})


USER_FIRST = """
import matplotlib
matplotlib.rcParams["lines.linewidth"] = 7.0
matplotlib.rcParams["svg.fonttype"] = "path"
"""
RENDER = """
import hashlib, os, sys
import edgekit.report
assert "matplotlib" not in sys.modules or {user_first}, "imported before a page is rendered"
from edgekit.report.plots import HistoryPoint, HistorySeries, history_plot
svg = history_plot([HistorySeries("m", (HistoryPoint(0, 1, 0.9, 1.1, "regression", ""),))], "h", "ms", {{}})
import matplotlib
assert "matplotlib.pyplot" not in sys.modules
assert matplotlib.rcParams["backend"] == "pdf" and os.environ["MPLBACKEND"] == "pdf"
assert "MPLCONFIGDIR" not in os.environ
if {user_first}:
    assert matplotlib.rcParams["lines.linewidth"] == 7.0 and matplotlib.rcParams["svg.fonttype"] == "path"
print(hashlib.sha256(svg.encode()).hexdigest())
"""


def _render_in_a_fresh_process(tmp_path: Path, user_first: bool) -> tuple[str, Path, Path]:
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir(parents=True)
    tmp.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPL", "XDG_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), MPLBACKEND="pdf", PYTHONPATH=os.getcwd())
    code = (USER_FIRST if user_first else "") + RENDER.format(user_first=user_first)
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=os.getcwd()
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), home, tmp


def test_matplotlib_is_lazy_and_leaves_home_env_and_settings_alone(tmp_path: Path) -> None:
    """In a fresh process with an empty HOME and TMPDIR: matplotlib is imported only by the first
    plot, nothing is written to either directory, the environment is as before, pyplot and the
    backend are left alone; a user's own matplotlib settings are kept and change no byte."""
    alone, home, tmp = _render_in_a_fresh_process(tmp_path / "alone", user_first=False)
    assert not list(home.rglob("*")) and not list(tmp.iterdir())
    after_user, _, _ = _render_in_a_fresh_process(tmp_path / "user", user_first=True)
    assert after_user == alone


def test_optimize_page_plots_every_measured_candidate_by_its_role() -> None:
    mib = 1 << 20
    outcomes = [
        Outcome("float", BASELINE, size_bytes=4 * mib, latency_p50_ms=2.0),
        Outcome("int8-static", ACCEPTED, size_bytes=mib, latency_p50_ms=1.0, accuracy_drop_points=0.3),
        Outcome("fp16", ACCEPTED, size_bytes=2 * mib, latency_p50_ms=0.9),
        Outcome("prune-channels:0.5", REJECTED, "drop 2.2 points", size_bytes=mib, latency_p50_ms=1.5),
        Outcome("int4", FAILED, "not supported"),
    ]
    report = DeviceReport("local", "host", outcomes, ["int8-static", "fp16"], "int8-static", "fastest", None)
    page = front_page([report], "latency")
    assert STYLE in page
    (svg,) = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    root = _parse(svg)
    tips = sorted(_tooltip(p) for p in _marks(root)["point"])
    assert tips == [
        "Pareto front fp16: 2, 0.9",
        "chosen int8-static: 1, 1 (drop 0.30 points)",
        "float float: 4, 2",
        "rejected prune-channels:0.5: 1, 1.5",
    ]
    assert {"chosen", "Pareto front", "float", "rejected"} <= set(_texts(root))
