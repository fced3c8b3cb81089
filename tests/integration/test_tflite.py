"""ONNX -> full-integer TFLite through the real onnx2tf + TensorFlow, run by a real TFLite interpreter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.core.artifacts import load_artifact, sha256_file
from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from tests.cli_run import run_cli

pytest.importorskip("onnx2tf", reason="the tflite extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tflite_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tflite") / "demo-tflite"
    before = sha256_file(demo_model_path())
    proc = run_cli(
        "compress",
        str(demo_model_path()),
        "-o",
        str(out),
        "--recipe",
        "tflite-int8",
        "--calib",
        str(demo_calib_set_path()),
        "--eval",
        str(demo_test_set_path()),
        "--json",
        home=out.parent,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sha256_file(demo_model_path()) == before  # onnx2tf rewrites its input: it got a copy
    return out


def test_full_integer_artifact_keeps_accuracy(tflite_demo: Path) -> None:
    manifest = json.loads((tflite_demo / "manifest.json").read_text())
    assert manifest["artifact"]["file"] == "model.tflite" and manifest["artifact"]["format"] == "tflite"
    assert load_artifact(tflite_demo).format == "tflite"
    assert manifest["size_ratio"] > 3.0
    report = manifest["recipe"][0]["report"]
    assert report["converter"] == "onnx2tf" and report["layout"] == "NHWC"
    assert manifest["fidelity"]["rows"] == 360
    assert manifest["fidelity"]["accuracy"]["drop_points"] <= 1.0


def test_the_agent_runs_it_with_a_tflite_interpreter(tflite_demo: Path, tmp_path: Path) -> None:
    proc = run_cli("bench", str(tflite_demo), "--json", "--runs", "50", "--min-seconds", "0", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["runtime"]["name"] == "tflite"
    assert result["latency_ms"]["n"] == 50
    assert list(result["inputs"].values()) == [{"shape": [1, 8, 8, 1], "dtype": "int8"}]


def test_tflite_needs_calibration(tmp_path: Path) -> None:
    proc = run_cli(
        "compress",
        str(demo_model_path()),
        "-o",
        str(tmp_path / "x"),
        "--recipe",
        "tflite-int8",
        home=tmp_path,
    )
    assert proc.returncode == 2 and "tflite-int8 needs calibration data" in proc.stderr
