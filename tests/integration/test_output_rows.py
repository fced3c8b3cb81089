"""Fidelity on outputs whose row axis is not axis 0 or whose length differs from feed to feed:
a time-major [T, N, C] output (a CTC text recognizer's logits) over a row count that is not a
multiple of the batch, and a per-feed set of token sequences of different lengths (a tagger's
[1, seq, tags] emissions). Both used to end compress with exit 70 (numpy could not join the
per-batch outputs). Real onnx/onnxruntime; models built with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.compress.fidelity import compare_outputs, join_rows
from edgekit.core.profiles import load_profile
from tests.cli_run import run_cli

pytestmark = pytest.mark.integration
RECIPES = ("int8-static", "int8-dynamic", "fp16")


def _compress(model: Path, recipe: str, out: Path, **options: object) -> dict:
    steps = parse_recipes([recipe])
    return compress(model, out, CompressOptions(steps=steps, profile=load_profile("local"), **options))  # type: ignore[arg-type]


def time_major_model(path: Path, steps: int = 20, features: int = 24, classes: int = 37) -> Path:
    """x [N, T, F] float32 -> logits [T, N, C]: MatMul, Relu, MatMul, then Transpose(1, 0, 2)."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((features, 64)).astype(np.float32) * 0.3, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((64, classes)).astype(np.float32) * 0.3, "w2")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("MatMul", ["r", "w2"], ["s"], name="mm2"),
            helper.make_node("Transpose", ["s"], ["logits"], name="tmajor", perm=[1, 0, 2]),
        ],
        "ctc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", steps, features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [steps, "batch", classes])],
        [w1, w2],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def tagger_model(path: Path, vocab: int = 50, width: int = 32, tags: int = 3) -> Path:
    """ids [1, seq] int64 -> emissions [1, seq, tags]: Gather (embedding), MatMul, Tanh, MatMul."""
    rng = np.random.default_rng(1)
    table = numpy_helper.from_array(rng.standard_normal((vocab, width)).astype(np.float32), "table")
    w1 = numpy_helper.from_array(rng.standard_normal((width, width)).astype(np.float32) * 0.3, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((width, tags)).astype(np.float32) * 0.3, "w2")
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["e"], name="embed"),
            helper.make_node("MatMul", ["e", "w1"], ["h"], name="mm1"),
            helper.make_node("Tanh", ["h"], ["t"], name="tanh"),
            helper.make_node("MatMul", ["t", "w2"], ["emissions"], name="mm2"),
        ],
        "tagger",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "seq"])],
        [helper.make_tensor_value_info("emissions", TensorProto.FLOAT, [1, "seq", tags])],
        [table, w1, w2],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("rows", [33, 90, 100])
def test_time_major_output_is_compared_row_by_row(tmp_path: Path, rows: int) -> None:
    model = time_major_model(tmp_path / "ctc.onnx")
    rng = np.random.default_rng(rows)
    calib, data = tmp_path / "calib.npz", tmp_path / "eval.npz"
    np.savez(calib, x=rng.standard_normal((rows, 20, 24)).astype(np.float32))
    np.savez(data, x=rng.standard_normal((rows + 7, 20, 24)).astype(np.float32))
    for recipe in RECIPES:
        manifest = _compress(model, recipe, tmp_path / recipe, calib=calib, eval=data)
        fid = manifest["fidelity"]
        assert fid["rows"] == rows + 7 and fid["output"] == "logits"  # rows are the batch axis
        assert fid["cosine_mean"] > 0.95 and manifest["degraded"] is False
    proc = run_cli(
        "compress", str(model), "--recipe", "int8-dynamic", "--eval", str(data), "-o", str(tmp_path / "cli"),
        home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


@pytest.mark.parametrize("lengths", [(7, 19, 33, 5), (90, 12, 100, 1, 45, 64)])
def test_per_feed_sequences_of_different_lengths(tmp_path: Path, lengths: tuple[int, ...]) -> None:
    model = tagger_model(tmp_path / "tagger.onnx")
    rng = np.random.default_rng(len(lengths))
    folder = tmp_path / "feeds"
    folder.mkdir()
    for index, length in enumerate(lengths):
        np.savez(folder / f"feed_{index:03d}.npz", ids=rng.integers(0, 50, (1, length), dtype=np.int64))
    for recipe in RECIPES:
        manifest = _compress(model, recipe, tmp_path / recipe, calib=folder, eval=folder)
        fid = manifest["fidelity"]
        assert fid["rows"] == len(lengths) and fid["output"] == "emissions"
        emissions = fid["outputs"]["emissions"]
        # A tagger's emissions are a sequence of class scores: judged by whole rows, the verdict
        # follows the floor (top-1 agreement >= 80%) whatever the cosine.
        assert emissions["kind"] == "sequence" and fid["cosine_mean"] > 0.95
        assert emissions["position_agreement"] >= emissions["top1_agreement"]
        assert manifest["degraded"] is (emissions["top1_agreement"] < 0.8)


def test_join_rows_moves_the_row_axis_and_pads_ragged_parts() -> None:
    parts = [np.ones((20, 32, 5)), 2 * np.ones((20, 1, 5))]
    joined = join_rows("y", parts, [32, 1])
    assert joined.shape == (33, 20, 5) and joined[32].max() == 2
    ragged = join_rows("y", [np.ones((1, 7, 3)), np.ones((1, 19, 3))], [None, None])
    assert ragged.shape == (2, 19, 3) and ragged[0, 7:].max() == 0
    assert join_rows("y", [np.float32(1.0), np.float32(2.0)], [None, None]).shape == (2,)


def test_padding_rows_do_not_count_for_top1() -> None:
    reference = np.zeros((2, 10, 4))
    reference[:, :3] = [4.0, 3.0, 2.0, 1.0]  # 3 live rows each, 7 padding rows
    test = reference.copy()
    test[:, :3] = [1.0, 3.0, 2.0, 1.0]  # every live row disagrees
    result = compare_outputs(reference, test, None, "scores")
    assert result["top1_agreement"] == 0.0
