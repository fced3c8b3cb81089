"""Sample sets as real models take them: a folder of .npz files, one complete feed each (an
audio chunk, a recurrent state whose batch axis is not first, a scalar sample rate), checked on
the host and run through onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.compress.data import feeds, load_dataset
from edgekit.core.errors import InputSpecError
from edgekit.core.inputs import check_inputs_file
from edgekit.core.onnx_model import graph_inputs, load_onnx


def vad_model(path: Path) -> Path:
    """audio [N, 512] f32, state [2, N, 64] f32, sr [] int64 -> y [N, 64], state_out [2, N, 64]."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((512, 64)).astype(np.float32), "W")
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    nodes = [
        helper.make_node("MatMul", ["audio", "W"], ["h"]),
        helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["h", "srf"], ["y"]),
        helper.make_node("Unsqueeze", ["y", "axes"], ["y3"]),
        helper.make_node("Add", ["state", "y3"], ["state_out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "vad",
        [
            helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["N", 512]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "N", 64]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64]),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [2, "N", 64]),
        ],
        initializer=[w, axes],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def write_feeds(
    folder: Path, count: int, *, batch: int = 1, with_labels: bool = False, **override: object
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    for index in range(count):
        arrays = {
            "audio": rng.standard_normal((batch, 512)).astype(np.float32),
            "state": np.zeros((2, batch, 64), np.float32),
            "sr": np.array(16000 if index % 2 else 8000, np.int64),
        }
        if with_labels:
            arrays["labels"] = np.array(index % 3, np.int64)
        for key, value in override.items():
            if value is None:
                arrays.pop(key)
            else:
                arrays[key] = value  # type: ignore[assignment]
        np.savez(folder / f"feed_{index:03d}.npz", **arrays)
    return folder


@pytest.mark.parametrize("count", [1, 33, 90])
def test_a_feed_folder_runs_every_feed(tmp_path: Path, count: int) -> None:
    model = vad_model(tmp_path / "vad.onnx")
    inputs = graph_inputs(load_onnx(model))
    data = load_dataset(write_feeds(tmp_path / "calib", count, with_labels=True), inputs, "--calib")
    assert data.rows == count and data.labels is not None and len(data.labels) == count
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    ran = [session.run(None, feed) for feed in feeds(data, 32)]
    assert len(ran) == count and ran[0][1].shape == (2, 1, 64)


def test_feeds_may_differ_in_shape(tmp_path: Path) -> None:
    model = vad_model(tmp_path / "vad.onnx")
    folder = write_feeds(tmp_path / "a", 2, batch=1)
    write_feeds(tmp_path / "b", 1, batch=5)
    (tmp_path / "b" / "feed_000.npz").rename(folder / "feed_zzz.npz")
    data = load_dataset(folder, graph_inputs(load_onnx(model)), "--eval")
    assert [feed["audio"].shape[0] for feed in feeds(data, 32)] == [1, 1, 5]


def test_bench_spec_is_the_first_feed(tmp_path: Path) -> None:
    inputs = graph_inputs(load_onnx(vad_model(tmp_path / "vad.onnx")))
    spec = check_inputs_file(write_feeds(tmp_path / "in", 3, batch=2), inputs)
    assert spec == {
        "audio": {"shape": [2, 512], "dtype": "float32"},
        "state": {"shape": [2, 2, 64], "dtype": "float32"},
        "sr": {"shape": [], "dtype": "int64"},
    }


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"sr": None}, ["feed_000.npz", "no array named 'sr'"]),
        ({"sr": np.array(16000, np.int32)}, ["feed_000.npz", "'sr' is int32", "expects int64"]),
        ({"audio": np.zeros((1, 256), np.float32)}, ["'audio'", "dimension 1 is 256", "512"]),
        ({"state": np.zeros((3, 1, 64), np.float32)}, ["'state'", "dimension 0 is 3"]),
        ({"extra": np.zeros(3, np.float32)}, ["'extra' is no model input"]),
        ({"labels": np.zeros(2, np.float32)}, ["'labels' must be an integer"]),
    ],
)
def test_each_feed_is_checked_on_the_host(tmp_path: Path, override: dict, words: list[str]) -> None:
    inputs = graph_inputs(load_onnx(vad_model(tmp_path / "vad.onnx")))
    folder = write_feeds(tmp_path / "bad", 2, **override)
    with pytest.raises(InputSpecError) as caught:
        load_dataset(folder, inputs, "--calib")
    message = str(caught.value)
    assert "\n" not in message and "--calib" in message
    for word in words:
        assert word in message


def test_labels_in_all_files_or_none(tmp_path: Path) -> None:
    inputs = graph_inputs(load_onnx(vad_model(tmp_path / "vad.onnx")))
    folder = write_feeds(tmp_path / "f", 3, with_labels=True)
    with np.load(folder / "feed_001.npz") as data:
        kept = {k: data[k] for k in data.files if k != "labels"}
    np.savez(folder / "feed_001.npz", **kept)
    with pytest.raises(InputSpecError, match="2 of 3 files have 'labels'"):
        load_dataset(folder, inputs, "--eval")


def test_a_scalar_in_a_row_file_points_to_the_folder_form(tmp_path: Path) -> None:
    inputs = graph_inputs(load_onnx(vad_model(tmp_path / "vad.onnx")))
    np.savez(
        tmp_path / "rows.npz",
        audio=np.zeros((4, 512), np.float32),
        state=np.zeros((2, 4, 64), np.float32),
        sr=np.array(16000, np.int64),
    )
    with pytest.raises(InputSpecError, match=r"folder of \.npz files"):
        load_dataset(tmp_path / "rows.npz", inputs, "--calib")


def test_optimize_takes_open_shapes_from_the_eval_data(tmp_path: Path) -> None:
    from edgekit.core.inputs import shapes_from_samples
    from edgekit.measure.bench import BenchOptions
    from edgekit.optimize.search import OptimizeOptions, with_data_shapes

    model = vad_model(tmp_path / "vad.onnx")
    inputs = graph_inputs(load_onnx(model))
    folder = write_feeds(tmp_path / "eval", 2, batch=3)
    assert shapes_from_samples(folder, inputs) == ("state=2x3x64",)  # audio: only its batch is open
    np.savez(
        tmp_path / "rows.npz", audio=np.zeros((90, 512), np.float32), state=np.zeros((2, 7, 64), np.float32)
    )
    assert shapes_from_samples(tmp_path / "rows.npz", inputs) == (
        "state=2x7x64",
    )  # its first axis is fixed at 2
    options = with_data_shapes(OptimizeOptions(model=model, eval=folder, out_dir=tmp_path / "o"))
    assert options.bench.shapes == ("state=2x3x64",)
    given = OptimizeOptions(
        model=model, eval=folder, out_dir=tmp_path / "o", bench=BenchOptions(shapes=("state=2x1x64",))
    )
    assert with_data_shapes(given).bench.shapes == ("state=2x1x64",)
