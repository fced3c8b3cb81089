"""Quantization on the failing-input cases in tests/data/cases and on calibration sets of row
counts that are not a multiple of any batch: exit 0 with the right manifest, typed one-line
errors (exit 2) for library failures, nothing left in the working directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from tests.cli_run import run_cli

pytestmark = pytest.mark.integration
CASES = Path(__file__).resolve().parents[1] / "data" / "cases"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    shutil.copytree(CASES, folder)
    return folder


def _rows(tmp_path: Path, rows: int) -> Path:
    with np.load(demo_calib_set_path()) as data:
        arrays = {k: data[k] for k in data.files}
    repeats = -(-rows // len(arrays["input"]))
    path = tmp_path / f"calib{rows}.npz"
    np.savez(path, **{k: np.concatenate([v] * repeats)[:rows] for k, v in arrays.items()})
    return path


@pytest.mark.parametrize("rows", [33, 90, 100, 256])
@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_calibration_takes_any_row_count(tmp_path: Path, rows: int, method: str) -> None:
    out = tmp_path / "out"
    proc = run_cli(
        "compress",
        str(demo_model_path()),
        "-o",
        str(out),
        "--recipe",
        f"int8-static:calib={method}",
        "--calib",
        str(_rows(tmp_path, rows)),
        "--json",
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["recipe"][0]["report"]
    assert report["calibration"]["rows"] == rows
    assert (out / "model.onnx").is_file()


@pytest.mark.parametrize("model", ["opset9_conv.onnx", "opset9_upsample.onnx"])
def test_opset9_models_are_converted_first(cases: Path, model: str) -> None:
    out = cases / "out"
    proc = run_cli(
        "compress",
        str(cases / model),
        "--recipe",
        "int8-static",
        "--calib",
        str(cases / "opset9_calib.npz"),
        "-o",
        str(out),
        "--json",
        home=cases,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["recipe"][0]["report"]
    assert report["opset_converted"] == {"from": 9, "to": 13}
    assert report["per_channel"] is True
    artifact = onnx.load(str(out / "model.onnx"))
    assert max(o.version for o in artifact.opset_import if o.domain in ("", "ai.onnx")) >= 13
    assert "DequantizeLinear" in {n.op_type for n in artifact.graph.node}


_NO_CONVERTER = """
import sys
import onnx.version_converter as vc
real = vc.convert_version
def convert(model, target):
    if target >= 13:
        raise RuntimeError("No Adapter From Version $11 for SomeOp")
    return real(model, target)
vc.convert_version = convert
from edgekit.cli.main import run
sys.argv = ["edgekit", *sys.argv[1:]]
run()
"""


def test_per_tensor_fallback_when_the_converter_fails(cases: Path) -> None:
    """An opset-11 model the converter cannot bring to 13 is quantized per tensor, with a note."""
    model = onnx.version_converter.convert_version(onnx.load(str(cases / "opset9_conv.onnx")), 11)
    onnx.save(model, str(cases / "opset11.onnx"))
    out = cases / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _NO_CONVERTER,
            "compress",
            str(cases / "opset11.onnx"),
            "--recipe",
            "int8-static",
            "--calib",
            str(cases / "opset9_calib.npz"),
            "-o",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**__import__("os").environ, "EDGEKIT_HOME": str(cases)},
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["recipe"][0]["report"]
    assert report["per_channel"] is False
    assert "opset 11" in report["per_channel_fallback"]["reason"]
    assert "opset_converted" not in report


def test_float16_weight_is_not_already_quantized(cases: Path) -> None:
    proc = run_cli(
        "compress",
        str(cases / "cast_weight.onnx"),
        "--recipe",
        "int8-dynamic",
        "--calib",
        str(cases / "castw_calib.npz"),
        "-o",
        str(cases / "out" / "cw"),
        home=cases,
    )
    assert proc.returncode == 0, proc.stderr


def test_an_already_quantized_model_is_named_by_its_operators(tmp_path: Path) -> None:
    first = tmp_path / "q"
    assert (
        run_cli(
            "compress", str(demo_model_path()), "--recipe", "int8-dynamic", "-o", str(first), home=tmp_path
        ).returncode
        == 0
    )
    proc = run_cli(
        "compress",
        str(first / "model.onnx"),
        "--recipe",
        "int8-dynamic",
        "-o",
        str(tmp_path / "q2"),
        home=tmp_path,
    )
    assert proc.returncode == 2
    assert "already quantized" in proc.stderr and "Integer" in proc.stderr


def test_a_library_failure_is_exit_2_naming_recipe_step_and_library(tmp_path: Path) -> None:
    """A model onnxruntime's quantizer cannot load: a Conv whose weight rank is wrong."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W"], ["y"], name="conv")],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, 4, 4])],
        [weight],
    )
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    np.savez(tmp_path / "c.npz", x=np.ones((4, 3, 4, 4), np.float32))
    proc = run_cli(
        "compress",
        str(path),
        "--recipe",
        "int8-static",
        "--calib",
        str(tmp_path / "c.npz"),
        "-o",
        str(tmp_path / "out"),
        home=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "int8-static" in line and "step 1/1" in line and "onnxruntime" in line
    assert "Traceback" not in proc.stderr


def test_compress_leaves_the_working_directory_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekit.compress.pipeline import CompressOptions, compress
    from edgekit.compress.recipes import parse_recipes
    from edgekit.core.profiles import load_profile

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    profile = load_profile("local")
    for recipe in ("int8-static:calib=percentile", "int8-dynamic", "fp16"):
        options = CompressOptions(
            parse_recipes([recipe]), profile, calib=_rows(tmp_path, 90), eval=demo_test_set_path()
        )
        compress(demo_model_path(), tmp_path / recipe.split(":")[0], options)
    assert list(cwd.iterdir()) == []


def test_readme_optimize_example_runs_to_a_pick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's optimize command with the bundled data (a shorter time budget): exit 0, a
    pick with its artifact and manifest, and nothing written to the working directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = tmp_path / "opt"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgekit.cli.main",
            "optimize",
            str(demo_model_path()),
            "--eval",
            str(demo_test_set_path()),
            "-o",
            str(out),
            "--time-budget",
            "40s",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        stdin=subprocess.DEVNULL,
        env={**__import__("os").environ, "EDGEKIT_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    local = json.loads(proc.stdout)["devices"]["local"]
    assert local["chosen"]
    assert (out / "local" / "best" / "manifest.json").is_file()
    assert list(cwd.iterdir()) == []
