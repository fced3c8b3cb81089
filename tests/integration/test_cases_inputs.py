"""The failing-input cases in tests/data/cases about inputs and outputs, run as a user would:
a real `edgekit` subprocess on the local device, in a temporary copy of the cases folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "data" / "cases"
QUICK = ("--runs", "20", "--min-seconds", "0.2", "--json", "--no-store")


def edgekit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`edgekit ARGS` from `cwd`, importing this checkout, with its own EDGEKIT_HOME."""
    env = {
        **os.environ,
        "EDGEKIT_HOME": str(cwd / ".home"),
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli.main", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    shutil.copytree(CASES, folder)
    return folder


def test_sequence_output_is_benchmarked_and_described(cases: Path) -> None:
    proc = edgekit("bench", "seq_out.onnx", *QUICK, cwd=cases)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["latency_ms"]["n"] >= 20
    (output,) = result["outputs"]  # the result says what the model returned
    assert output["name"] == "seq" and output["kind"] == "sequence"
    assert output["length"] == len(output["elements"]) >= 1
    assert all(element["kind"] == "tensor" for element in output["elements"])


def _map_and_optional_model(path: Path) -> None:
    """x [1, 3] -> a sequence of 3 tensors [1, 1] and an optional tensor that holds x."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    seq = helper.make_tensor_sequence_value_info("parts", TensorProto.FLOAT, None)
    opt = helper.make_value_info(
        "maybe", helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [1, 3]))
    )
    split = helper.make_tensor("split", TensorProto.INT64, [3], [1, 1, 1])
    nodes = [
        helper.make_node("SplitToSequence", ["x", "split"], ["parts"], axis=1),
        helper.make_node("Optional", ["x"], ["maybe"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [seq, opt], initializer=[split])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


def test_optional_outputs_are_benchmarked(tmp_path: Path) -> None:
    _map_and_optional_model(tmp_path / "opt.onnx")
    proc = edgekit("bench", "opt.onnx", *QUICK, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    outputs = json.loads(proc.stdout)["outputs"]
    assert [(o["name"], o["kind"]) for o in outputs] == [("parts", "sequence"), ("maybe", "optional")]
    assert outputs[0]["length"] == 3 and outputs[1]["present"] is True
    assert outputs[1]["value"] == {"kind": "tensor", "shape": [1, 3], "dtype": "float32"}


def test_describe_every_output_kind() -> None:
    sys.path.insert(0, str(REPO / "agents"))
    from edgekit_agent.runtimes.describe import describe_outputs

    parts = [np.zeros((1, k), np.float32) for k in (1, 2, 3)]
    described = describe_outputs(
        ["t", "s", "m", "o"], [np.ones((2, 5), np.int64), parts, {3: 0.5, 4: 0.25}, None]
    )
    assert described[0] == {"name": "t", "kind": "tensor", "shape": [2, 5], "dtype": "int64"}
    assert described[1]["kind"] == "sequence" and described[1]["length"] == 3
    assert [e["shape"] for e in described[1]["elements"]] == [[1, 1], [1, 2], [1, 3]]
    assert described[2] == {
        "name": "m",
        "kind": "map",
        "length": 2,
        "key_dtype": "int",
        "value_dtype": "float",
    }
    assert described[3] == {"name": "o", "kind": "optional", "present": False}


def test_an_input_the_model_rejects_is_exit_2_naming_it(cases: Path) -> None:
    proc = edgekit("bench", "dyn_k.onnx", "--inputs", "k_mismatch.npz", *QUICK, cwd=cases)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "input 'x'" in line and "[1, 6]" in line and "[N, K]" in line and "MatMul" in line


@pytest.mark.parametrize("k", [8, 5, 33])
def test_only_the_right_k_runs(cases: Path, k: int) -> None:
    np.savez(cases / "k.npz", x=np.ones((3, k), np.float32))
    proc = edgekit("bench", "dyn_k.onnx", "--inputs", "k.npz", *QUICK, cwd=cases)
    assert proc.returncode == (0 if k == 8 else 2), proc.stderr
    if k != 8:
        assert f"[1, {k}]" in proc.stderr


def test_an_agent_bug_is_not_a_device_failure() -> None:
    from edgekit.core.errors import DeviceError
    from edgekit.transport.agent_client import AgentClient

    client = AgentClient(channel=None, device_name="board")  # type: ignore[arg-type]
    error = client._error("bench", {"type": "Internal", "message": "KeyError: 'x'"})
    assert not isinstance(error, DeviceError) and error.exit_code == 70  # type: ignore[attr-defined]
    error = client._error("bench", {"type": "InputError", "message": "input 'x' fed as [1, 6]"})
    assert getattr(error, "exit_code", None) == 2


def test_bench_feeds_the_first_file_of_a_feed_folder(tmp_path: Path) -> None:
    from tests.unit.test_sample_sets import vad_model, write_feeds

    vad_model(tmp_path / "vad.onnx")
    write_feeds(tmp_path / "feeds", 3, batch=2)
    proc = edgekit("bench", "vad.onnx", "--inputs", "feeds", *QUICK, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["inputs"]["sr"] == {"shape": [], "dtype": "int64"}
    write_feeds(tmp_path / "bad", 2, sr=np.array(1, np.int32))
    proc = edgekit("bench", "vad.onnx", "--inputs", "bad", *QUICK, cwd=tmp_path)
    assert proc.returncode == 2 and "feed_000.npz" in proc.stderr and "'sr'" in proc.stderr


def test_non_finite_data_is_a_warning_for_bench_and_an_error_for_calibration(tmp_path: Path) -> None:
    """NaN or inf inputs: bench warns once naming the array and the count (a model may branch or
    time differently on them); calibration refuses them before onnxruntime's calibrator fails
    with "scale issue"."""
    from edgekit.data import demo_model_path
    from tests.cli_run import run_cli

    data = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    data[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "bad.npz"
    np.savez(path, input=data)
    bench = run_cli("bench", str(demo_model_path()), "--inputs", str(path), "--runs", "5",
                    "--min-seconds", "0", "--processes", "1", "--no-store", home=tmp_path)  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    warnings = [line for line in bench.stderr.splitlines() if line.startswith("edgekit: warning: ")]
    assert warnings == [
        f"edgekit: warning: --inputs {path}: array 'input' holds 3 NaN or inf value(s) of 256: timings "
        "and outputs on them may not be those of real inputs"
    ]
    out = tmp_path / "out"
    calib = run_cli("compress", str(demo_model_path()), "-o", str(out), "--recipe", "int8-static",
                    "--calib", str(path), home=tmp_path)  # fmt: skip
    assert calib.returncode == 2, calib.stderr
    assert calib.stderr.strip().splitlines() == [
        f"edgekit: error: --calib {path}: array 'input' holds 3 NaN or inf value(s) of 256; calibration "
        "needs finite values"
    ]
    assert not out.exists()
