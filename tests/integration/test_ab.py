"""`edgekit compare BASELINE CANDIDATE --device local`: a real interleaved A/B run through the real
agent (op `ab`) on real onnxruntime models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.data import demo_model_path
from edgekit.store.open import open_store
from edgekit.testing.models import make_mlp
from tests.cli_run import run_cli

pytestmark = pytest.mark.integration

FAST = ("--device", "local", "--round-seconds", "0.05", "--json")


def _latency(report: dict) -> dict:
    return next(m for m in report["comparison"]["metrics"] if m["metric"] == "latency_p50_ms")


def test_unchanged_model_against_itself_is_no_regression(tmp_path: Path) -> None:
    model = str(demo_model_path())
    proc = run_cli("compare", model, model, *FAST, "--rounds", "8", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    latency = _latency(report)
    assert latency["verdict"] in ("unchanged", "insufficient-data")
    # the same model on both sides: the interleaved estimate is near zero (margin for a busy machine)
    assert abs(latency["change"]) < 0.05
    ab = report["ab"]
    assert ab["rounds_planned"] == 8 and len(ab["log_ratios"]) == ab["rounds_timed"] == ab["rounds_used"]
    assert ab["stopped_early"] == (ab["rounds_timed"] < 8)
    # both sides stored, with the shared A/B id
    store = open_store(tmp_path / "results.sqlite")
    try:
        stored = [store.get(ab["baseline_run"]), store.get(ab["candidate_run"])]
    finally:
        store.close()
    runs = [s.result for s in stored if s is not None]
    assert [r.ab.role for r in runs if r.ab] == ["baseline", "candidate"]
    assert {r.ab.ab_id for r in runs if r.ab} == {ab["ab_id"]}
    assert all(r.memory is not None and r.memory.peak_rss_bytes for r in runs)


def test_a_clearly_heavier_model_is_a_regression(tmp_path: Path) -> None:
    light = make_mlp(tmp_path / "light.onnx", features=256, hidden=256, batch=32)
    heavy = make_mlp(tmp_path / "heavy.onnx", features=256, hidden=1024, batch=32)  # 4x the hidden work
    proc = run_cli("compare", str(light), str(heavy), *FAST, "--rounds", "16", home=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    # looks at 4, 8, 12, 16 pairs: 4 and 8 pairs cannot reach the early looks' levels (0.01%, 0.6%);
    # at 12 a slowdown this size is decided, and the run stops there
    assert report["ab"]["stopped_early"] and report["ab"]["rounds_timed"] == 12
    assert "ab: decided after 12 of at most 16 round pairs" in proc.stderr  # not a counter stuck at 12/16
    assert report["ab"]["child_processes"] == 3
    latency = _latency(report)
    assert report["comparison"]["verdict"] == "regression" and latency["verdict"] == "regression"
    # the report shows both runs as one A/B pair
    markdown = run_cli("report", home=tmp_path)
    assert markdown.returncode == 0, markdown.stderr
    ab_id = report["ab"]["ab_id"][:8]
    rows = [line for line in markdown.stdout.splitlines() if ab_id in line]
    assert len(rows) == 2, markdown.stdout
    assert sorted(f"{ab_id} baseline" in r for r in rows) == [False, True]  # one baseline row
    assert any("light" in r and "baseline" in r for r in rows), rows
    assert any("heavy" in r and "candidate" in r for r in rows), rows
    low, high = latency["ci95"]
    assert 0 < low <= latency["change"] <= high and latency["change"] > 0.25
    # the other way round it is an improvement, exit 0
    proc = run_cli("compare", str(heavy), str(light), *FAST, "--rounds", "8", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _latency(json.loads(proc.stdout))["verdict"] == "improvement"


def test_table_and_bad_input(tmp_path: Path) -> None:
    model = str(demo_model_path())
    proc = run_cli("compare", model, model, *FAST[:-1], "--rounds", "4", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "round pairs" in proc.stdout and "latency_p50_ms" in proc.stdout
    proc = run_cli("compare", model, str(tmp_path / "missing.onnx"), *FAST, home=tmp_path)
    assert proc.returncode == 2 and "missing.onnx" in proc.stderr
    proc = run_cli("compare", model, model, "--device", "local", "--rounds", "0", home=tmp_path)
    assert proc.returncode == 2 and "--rounds" in proc.stderr
    proc = run_cli("compare", model, model, "--rounds", "5", home=tmp_path)  # stored results: no rounds
    assert proc.returncode == 2 and "only apply with --device" in proc.stderr
