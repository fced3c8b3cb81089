"""`compress --fix-input NAME=VALUE`: the input becomes a constant, onnxruntime's BASIC folding
resolves the If its value decides, the recipe quantizes the weights that were inside it, and the
artifact no longer takes the input (sample sets may still hold it: the array is dropped)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.cli_run import run_cli
from tests.unit.test_specialize import _vad_like

pytestmark = pytest.mark.integration

CASES = Path(__file__).resolve().parents[1] / "data" / "cases"


def _run(model: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, feed)[0]


@pytest.mark.parametrize(
    ("opset", "dim", "rows", "rate", "recipe"),
    [
        (13, 33, 33, "16000", "int8-static"),
        (15, 90, 90, "8000", "int8-static"),
        (17, 100, 100, "16000", "int8-dynamic"),
    ],
)
def test_fixed_sample_rate_resolves_the_if_and_quantizes_its_weights(
    tmp_path: Path, opset: int, dim: int, rows: int, rate: str, recipe: str
) -> None:
    model = tmp_path / "vad.onnx"
    onnx.save(_vad_like(opset, dim), str(model))
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=x)  # no sr: a common row axis is possible once sr is fixed
    evaluation = tmp_path / "eval"  # per-feed files still holding sr: the array is dropped
    evaluation.mkdir()
    for k in range(4):
        np.savez(evaluation / f"f{k}.npz", x=x[k * 5 : k * 5 + 3 + k], sr=np.array(int(rate), np.int64))
    out = tmp_path / "out"
    args = ["compress", str(model), "--recipe", recipe, "--fix-input", f"sr={rate}", "-o", str(out)]
    args += ["--calib", str(calib), "--eval", str(evaluation)]
    result = run_cli(*args, home=tmp_path)
    assert result.returncode in (0, 1), result.stderr  # 1 only if the random model's top-1 is below the floor
    assert "Traceback" not in result.stderr
    stdout = result.stdout.replace("\n", "")
    assert f"fixed inputs: sr={rate}" in stdout and "If nodes 1 -> 0" in stdout
    assert "quantized_nodes=2 of 2" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["specialized"]["fixed_inputs"] == {"sr": int(rate)}
    assert manifest["specialized"]["folded_with"] == "onnxruntime ORT_ENABLE_BASIC"
    assert manifest["recipe"][-1]["report"]["stayed_float"] == []
    assert manifest["fidelity"]["rows"] == 3 + 4 + 5 + 6  # the eval feeds, without sr
    artifact = onnx.load(str(out / "model.onnx"))
    assert [i.name for i in artifact.graph.input] == ["x"]
    assert not any(n.op_type == "If" for n in artifact.graph.node)
    # the other branch is gone and the taken one is int8
    assert out.joinpath("model.onnx").stat().st_size < model.stat().st_size / 1.5
    want = _run(model, {"x": x, "sr": np.array(int(rate), np.int64)})
    other = _run(model, {"x": x, "sr": np.array(24000 - int(rate), np.int64)})
    got = _run(out / "model.onnx", {"x": x})
    assert np.abs(got - want).mean() < 0.25 * np.abs(other - want).mean()  # the fixed branch, not the other
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.npz", "eval", "out", "vad.onnx"]
    if recipe == "int8-dynamic":  # bench feeds the artifact the same files, their sr array left out
        bench = run_cli(
            *["bench", str(out), "--inputs", str(evaluation), "--runs", "20", "--min-seconds", "0.2"],
            *["--json", "--no-store"],
            home=tmp_path,
        )
        assert bench.returncode == 0, bench.stderr


def test_if_case_fix_input_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    """The failing-input case if_model.onnx: a name the model lacks, a value that does not parse
    or fit, and fixing its only input are each a one-line usage error, exit 2, nothing written."""
    for name in ("if_model.onnx", "if_calib.npz"):
        shutil.copy(CASES / name, tmp_path / name)
    base = ["compress", str(tmp_path / "if_model.onnx"), "--recipe", "int8-static"]
    base += ["--calib", str(tmp_path / "if_calib.npz"), "-o", str(tmp_path / "out")]
    for fix, message in [
        ("sr=16000", "--fix-input sr: the model has no such input; inputs: x"),
        ("x=abc", "--fix-input x=abc: not a number"),
        ("x=[1,2]", "--fix-input x=[1,2]: shape [2] does not fit input 'x' [1, 3, 8, 8]"),
        ("x=0.5", "--fix-input: every input of the model (x) is fixed"),
        ("x", "--fix-input 'x': expected NAME=VALUE"),
    ]:
        result = run_cli(*base, "--fix-input", fix, home=tmp_path)
        assert result.returncode == 2, (fix, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (fix, result.stderr)
        assert not (tmp_path / "out").exists()


def test_without_fix_input_nothing_is_specialized(tmp_path: Path) -> None:
    """The failing-input case if_model.onnx without --fix-input: compressed as before, its If kept."""
    for name in ("if_model.onnx", "if_calib.npz"):
        shutil.copy(CASES / name, tmp_path / name)
    out = tmp_path / "out"
    result = run_cli(
        "compress",
        str(tmp_path / "if_model.onnx"),
        "--recipe",
        "int8-dynamic",
        "--calib",
        str(tmp_path / "if_calib.npz"),
        "-o",
        str(out),
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "specialized" not in json.loads((out / "manifest.json").read_text())
