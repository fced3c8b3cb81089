"""The SVG plot primitives: tick choice, scales, and well-formed, escaped SVG."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit.report.svg import (
    DistributionRow,
    HistoryPoint,
    HistorySeries,
    Point,
    Scale,
    distribution_plot,
    history_plot,
    log_ticks,
    nice_ticks,
    scatter_plot,
)

SVG = "{http://www.w3.org/2000/svg}"
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(finite, finite)
def test_nice_ticks_cover_the_range_in_equal_round_steps(a: float, b: float) -> None:
    ticks = nice_ticks(a, b)
    assert ticks[0] <= min(a, b) + 1e-9 * max(1, abs(a), abs(b))
    assert ticks[-1] >= max(a, b) - 1e-9 * max(1, abs(a), abs(b))
    steps = {round(y - x, 9) for x, y in itertools.pairwise(ticks)}
    assert len(ticks) >= 2 and len(steps) <= 2  # equal up to float rounding
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))


def test_nice_ticks_examples() -> None:
    assert nice_ticks(0, 0.04) == [0.0, 0.01, 0.02, 0.03, 0.04]
    single = nice_ticks(3, 3)  # a single value still gets an axis around it
    assert len(single) >= 2 and single[0] <= 3 < single[-1]


@given(st.floats(min_value=1e-4, max_value=1e4), st.floats(min_value=1.0, max_value=1e4))
def test_log_ticks_bracket_the_range(low: float, factor: float) -> None:
    high = low * factor
    ticks = log_ticks(low, high)
    assert ticks[0] <= low * (1 + 1e-9) and ticks[-1] >= high * (1 - 1e-9)
    assert ticks == sorted(ticks) and len(ticks) <= 12


def test_log_ticks_example_and_bad_input() -> None:
    assert log_ticks(0.021, 4.1) == [0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
    with pytest.raises(ValueError):
        log_ticks(0, 1)


def test_scales_map_ends_to_pixels() -> None:
    linear = Scale(0, 10, 100, 200)
    assert (linear(0), linear(5), linear(10)) == (100, 150, 200)
    log = Scale(0.1, 10, 0, 100, log=True)
    assert log(1) == pytest.approx(50)
    assert log(0.001) == pytest.approx(0)  # below the axis: clamped to its start, not NaN


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def test_distribution_plot_draws_every_row_and_escapes_labels() -> None:
    hostile = '<script>alert("x")</script> & co'
    rows = [
        DistributionRow(hostile, [1.0, 2.0, 4.0], [10, 5], {"p50": 1.5, "p99": 3.9}, 1.0, 4.0),
        DistributionRow("plain", [], [], {"p50": 2.0}, 1.2, 30.0),
    ]
    svg = distribution_plot(rows, "t", "ms")
    root = _parse(svg)
    assert "<script>" not in svg
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert hostile in texts and "plain" in texts and "ms (log scale)" in texts
    assert len([p for p in root.iter(f"{SVG}path") if p.get("class") == "density"]) == 1
    assert len([m for m in root.iter(f"{SVG}line") if m.get("class") == "marker"]) == 3


def test_scatter_and_history_are_well_formed() -> None:
    scatter = _parse(
        scatter_plot(
            [Point(0.2, 1.0, "as-is", "m"), Point(0.05, 0.8, "int8", "m", "(acc 99%)")], "s", "x", "y"
        )
    )
    assert len([c for c in scatter.iter(f"{SVG}circle") if c.get("class") == "point"]) == 2
    series = [
        HistorySeries(
            "m",
            (
                HistoryPoint(0, 1.0, 0.9, 1.1, "", "first"),
                HistoryPoint(60, 1.3, 1.2, 1.4, "regression", "slower"),
                HistoryPoint(120, 1.3, None, None, "not-comparable", "threads differ"),
            ),
        )
    ]
    history = _parse(history_plot(series, "h", "ms", {0.0: "a", 120.0: "b"}))
    classes = [c.get("class") for c in history.iter(f"{SVG}circle")]
    assert classes.count("regression") == 1 and classes.count("run") == 2


def test_empty_plots_are_refused() -> None:
    with pytest.raises(ValueError):
        scatter_plot([], "s", "x", "y")
    with pytest.raises(ValueError):
        distribution_plot([], "t", "ms")
