"""`edgekit report` on real runs of the bundled model on `local`, plus one run slowed by a known
factor (the ground truth regression); the HTML page is looked at in a real headless Chromium."""

from __future__ import annotations

import copy
import json
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from edgekit.core.result import load_result
from edgekit.data import demo_model_path
from edgekit.report.plots import PALETTE, REGRESSION_COLOUR
from edgekit.store.open import open_store
from tests.cli_run import run_cli
from tests.integration.browser import chromium_missing_reason, screenshot

pytestmark = pytest.mark.integration
FAST = ("--runs", "200", "--min-seconds", "0.3")
DATA = demo_model_path().parent
COPIES, STEP_AT, STEP = 30, 20, 1.10


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of the demo model, an int8 artifact with its accuracy and its run, then 30 copies
    of the plain run stored after it with known p50s: within +-1% of the real p50 (a quiet series),
    and 10% higher from the 21st copy on: the known step. (A real sub-0.1 ms run on a busy 2-core
    machine can drift by more than any fixed step; whether the gate flags real noise is the job of
    tests/integration/test_stored_gate.py and the simulations in tests/unit.)"""
    home = tmp_path_factory.mktemp("home")
    assert run_cli("bench", str(demo_model_path()), *FAST, home=home).returncode == 0
    int8 = home / "demo_digits-int8"
    proc = run_cli(
        "compress", str(demo_model_path()), "--recipe", "int8-static", "-o", str(int8),
        "--calib", str(DATA / "demo_digits_calib.npz"), "--eval", str(DATA / "demo_digits_test.npz"),
        home=home,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert run_cli("bench", str(int8), *FAST, home=home).returncode == 0
    store = open_store(home / "results.sqlite")
    try:
        real = store.runs(model="demo_digits", limit=1)[0].result.to_dict()
        copies = []
        for index in range(COPIES):
            factor = (1 + 0.005 * ((index * 7) % 5 - 2)) * (STEP if index >= STEP_AT else 1.0)
            copies.append(copied(real, factor, seconds_later=1 + index))
            store.add_run(load_result(copies[-1], f"copy {index}"))
    finally:
        store.close()
    (home / "steady_run_id").write_text(copies[STEP_AT - 1]["run_id"])
    (home / "regressed_run_id").write_text(copies[STEP_AT]["run_id"])
    return home


def copied(result: dict[str, Any], factor: float, seconds_later: float) -> dict[str, Any]:
    """The run stored again later with every latency multiplied by factor (a new run id)."""
    changed = copy.deepcopy(result)
    changed["run_id"] = uuid.uuid4().hex
    later = datetime.fromisoformat(result["created_at"]) + timedelta(seconds=seconds_later)
    changed["created_at"] = later.isoformat()
    latency = changed["latency_ms"]
    latency["block_medians"] = [m * factor for m in latency["block_medians"]]
    for key in ("p50", "p90", "p99", "mean", "min", "max"):
        latency[key] *= factor
    latency["histogram"]["edges_ms"] = [e * factor for e in latency["histogram"]["edges_ms"]]
    return changed


def test_html_markdown_and_openmetrics_agree_on_the_regression(home: Path, tmp_path: Path) -> None:
    regressed = (home / "regressed_run_id").read_text()
    proc = run_cli("report", "-o", str(tmp_path / "r.html"), "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["format"] == "html" and summary["runs"] == 2 + COPIES and summary["devices"] == ["local"]
    flagged = {r["run_id"]: r["reason"] for r in summary["regressions"]}
    # Exactly one regression, at the step: not the run before it, not the nine after it.
    assert list(flagged) == [regressed] and "% slower vs the median of 20 runs" in flagged[regressed]
    assert f"since run {regressed[:12]}" in flagged[regressed]
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") >= 4 and regressed[:12] in page
    # Readable offline: nothing is fetched. References are to ids inside the page only, and the
    # only URLs are XML namespace names (never dereferenced).
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)|url\(([^)]*)\)""", page)
    assert references and not re.search(r"@import|<script|<link|<img", page)
    page_ids = set(re.findall(r'\bid="([^"]+)"', page))
    assert all(ref.startswith("#") and ref[1:] in page_ids for pair in references for ref in pair if ref)
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }

    proc = run_cli("report", "-o", str(tmp_path / "r.md"), "--strict", home=home)
    assert proc.returncode == 1, proc.stderr  # --strict: a regression in scope fails the job
    markdown = (tmp_path / "r.md").read_text()
    assert f"**{len(flagged)}** regressions" in markdown and regressed[:12] in markdown
    assert "| local | demo_digits | int8-static |" in markdown

    assert run_cli("report", "-o", str(tmp_path / "edgekit.prom"), home=home).returncode == 0
    families = {f.name: f for f in text_string_to_metric_families((tmp_path / "edgekit.prom").read_text())}
    p50 = {
        s.labels["recipe"]: s.value
        for s in families["edgekit_latency_seconds"].samples
        if s.labels["quantile"] == "0.5"
    }
    assert set(p50) == {"as-is", "int8-static"} and all(0 < v < 0.1 for v in p50.values())
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left behind


def test_check_judges_a_stored_run_against_its_series_history(home: Path) -> None:
    """`check RUN` without --baseline: the report's history gate for that run."""
    regressed, steady = (home / "regressed_run_id").read_text(), (home / "steady_run_id").read_text()
    proc = run_cli("check", regressed[:8], "--json", home=home)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (judged,) = json.loads(proc.stdout)["history"]
    assert judged["verdict"] == "regression" and judged["change"] == pytest.approx(0.10, abs=0.02)
    proc = run_cli("check", steady[:8], "--json", home=home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["history"][0]["verdict"] == "unchanged"


def test_filters_and_empty_scope(home: Path, tmp_path: Path) -> None:
    proc = run_cli("report", "--device", "nowhere", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    empty = json.loads(proc.stdout)
    assert empty["runs"] == 0 and "No stored runs match." in empty["text"]
    proc = run_cli("report", "--model", "demo_digits-int8", "--since", "1h", "--json", home=home)
    assert json.loads(proc.stdout)["runs"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday': expected a duration"),
        (["-o", "report.pdf"], "cannot tell the format from '.pdf'"),
        (["-o", "r.txt"], "cannot tell the format from '.txt'"),  # not silently OpenMetrics
        (["--format", "pdf"], "--format pdf: one of html, markdown, openmetrics"),
        (["--threshold", "x=5"], "unknown metric 'x'"),
    ],
)
def test_bad_input_is_one_line_exit_2(home: Path, tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli("report", *args, home=home)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr


def _coloured_pixels(png: Path) -> int:
    """Pixels that are neither white, grey nor black: drawn marks (axes, grid and text are grey)."""
    image = Image.open(png).convert("RGB")
    return sum(count for count, rgb in image.getcolors(maxcolors=1 << 24) or [] if max(rgb) - min(rgb) > 50)


def _pixels_of(png: Path, hex_colour: str, tolerance: int = 8) -> int:
    want = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    image = Image.open(png).convert("RGB")
    return sum(
        count
        for count, rgb in image.getcolors(maxcolors=1 << 24) or []
        if all(abs(c - w) <= tolerance for c, w in zip(rgb, want, strict=True))
    )


@pytest.mark.skipif(chromium_missing_reason() is not None, reason=str(chromium_missing_reason()))
def test_the_page_in_a_real_browser_has_non_empty_plots(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    assert run_cli("report", "-o", str(page), home=home).returncode == 0
    whole = screenshot(page, tmp_path / "page.png", tmp_path / "chromium-profile")
    image = Image.open(whole)
    assert image.size == (1100, 2400)
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 24) or []) > 50  # text and plots, not blank
    # Each plot alone, as the browser draws it: every one shows marks in the series colours.
    plots = re.findall(r"<svg .*?</svg>", page.read_text(), flags=re.S)
    titles = [re.search(r'aria-label="([^"]*)"', svg).group(1) for svg in plots]  # type: ignore[union-attr]
    assert titles == [
        "local: latency per inference",
        "local: size vs latency",
        "local: accuracy vs latency",
        "local: p50 latency over time",
    ]
    expected_marks = [{"density", "whisker", "marker"}, {"point"}, {"point"}, {"run", "ci", "regression"}]
    for index, svg in enumerate(plots):
        marks = _marks(svg)
        assert expected_marks[index] <= set(marks), f"{titles[index]}: marks {sorted(marks)}"
        alone = tmp_path / f"plot{index}.html"
        alone.write_text(f"<!DOCTYPE html><html><body style='margin:0'>{_without_legend(svg)}</body></html>")
        png = screenshot(alone, tmp_path / f"plot{index}.png", tmp_path / "chromium-profile", 800, 500)
        assert _coloured_pixels(png) > 40, f"{titles[index]}: no marks drawn"
        assert _pixels_of(png, PALETTE[0]) > 10, f"{titles[index]}: the first series is missing"
    # The known regression is ringed in red on the history plot, and nothing is red elsewhere.
    regressed = (home / "regressed_run_id").read_text()
    rings = [r for r in _marks(plots[3])["regression"] if regressed[:12] in (r.findtext(f"{SVG}title") or "")]
    assert len(rings) == 1 and f"stroke: {REGRESSION_COLOUR}" in ET.tostring(rings[0], encoding="unicode")
    assert _pixels_of(tmp_path / "plot3.png", REGRESSION_COLOUR) > 60
    assert _pixels_of(tmp_path / "plot1.png", REGRESSION_COLOUR) == 0


SVG = "{http://www.w3.org/2000/svg}"


def _marks(svg: str) -> dict[str, list[ET.Element]]:
    """The plot's marks by kind, from their ids `<plot id>-<kind>-<n>` (edgekit.report.plots)."""
    found: dict[str, list[ET.Element]] = {}
    for element in ET.fromstring(svg).iter():
        match = re.fullmatch(r"p[0-9a-f]{10}-([a-z-]+)-\d+", element.get("id", ""))
        if match:
            found.setdefault(match.group(1), []).append(element)
    return found


def _without_legend(svg: str) -> str:
    """The plot with its legend removed, so what the browser shows in colour is the marks alone."""
    ET.register_namespace("", SVG[1:-1])
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.fromstring(svg)
    removed = 0
    for parent in root.iter():
        for child in list(parent):
            if re.fullmatch(r"p[0-9a-f]{10}-legend-\d+", child.get("id", "")):
                parent.remove(child)
                removed += 1
    assert removed == 1
    return ET.tostring(root, encoding="unicode")
