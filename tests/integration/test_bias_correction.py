"""int8-static's bias correction (compress/bias_correction.py) on onnxruntime's real quantizer:
it lowers the output error of a conv net, takes a per-feed set of several image sizes and a
two-input model, and leaves a model without biases unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.compress.data import load_dataset
from edgekit.compress.fidelity import run_outputs, sqnr_db
from edgekit.core.onnx_model import graph_inputs
from edgekit.core.profiles import load_profile

pytestmark = pytest.mark.integration


def conv_net(path: Path, channels: int, depth: int, bias: bool = True, side: int | str = "H") -> None:
    """x [N, 3, H, H] -> depth x (3x3 conv -> Relu) -> 1x1 conv -> y [N, 4, H, H], opset 17.
    Weights with output channels of very different sizes (x0.05 to x3) and biases offset from 0:
    per-tensor weight scales then round the small channels coarsely, which shifts their mean
    output (post-Relu inputs are positive), the error bias correction removes."""
    rng = np.random.default_rng(channels * 100 + depth)
    inits, nodes = [], []
    previous, width = "x", 3
    for i in range(depth + 1):
        out_channels, kernel = (channels, 3) if i < depth else (4, 1)
        gain = np.geomspace(0.05, 3.0, out_channels)[rng.permutation(out_channels)]
        weight = rng.standard_normal((out_channels, width, kernel, kernel)) / np.sqrt(width * kernel * kernel)
        inits.append(
            numpy_helper.from_array((weight * gain[:, None, None, None]).astype(np.float32), f"w{i}")
        )
        inputs = [previous, f"w{i}"]
        if bias:
            inits.append(
                numpy_helper.from_array((0.3 * rng.standard_normal(out_channels)).astype(np.float32), f"b{i}")
            )
            inputs.append(f"b{i}")
        pads = [kernel // 2] * 4
        nodes.append(helper.make_node("Conv", inputs, [f"c{i}"], name=f"conv_{i}", pads=pads))
        if i < depth:
            nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu_{i}"))
            previous, width = f"r{i}", out_channels
    nodes.append(helper.make_node("Identity", [f"c{depth}"], ["y"], name="out"))
    graph = helper.make_graph(
        nodes,
        "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, side, side])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def images(rows: int, side: int, seed: int) -> np.ndarray:
    """[rows, 3, side, side] float32, positive-mean smooth images (a shared offset + noise)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.0, 1.0, (rows, 3, 1, 1))
    return (base + 0.3 * rng.standard_normal((rows, 3, side, side))).astype(np.float32)


def quantize(model: Path, out: Path, recipe: str, calib: Path) -> dict:
    return compress(
        model,
        out,
        CompressOptions(
            steps=parse_recipes([recipe]),
            profile=load_profile("local"),
            calib=calib,
            force=True,
            allow_degraded=True,
        ),
    )


def output_sqnr(model: Path, artifact: Path, evaluation: Path) -> float:
    dataset = load_dataset(evaluation, graph_inputs(onnx.load(str(model))), "--eval")
    reference = run_outputs(model, dataset)["y"]
    return sqnr_db(reference, run_outputs(artifact / "model.onnx", dataset)["y"])


@pytest.mark.parametrize(("rows", "channels", "depth"), [(33, 16, 3), (90, 24, 4)])
def test_bias_correction_raises_output_sqnr(tmp_path: Path, rows: int, channels: int, depth: int) -> None:
    model = tmp_path / "m.onnx"
    conv_net(model, channels, depth, side=12)
    calib, evaluation = tmp_path / "calib.npz", tmp_path / "eval.npz"
    np.savez(calib, x=images(rows, 12, seed=rows))
    np.savez(evaluation, x=images(100, 12, seed=rows + 1))
    recipe = "int8-static:per-channel=no,keep-first-float=no"
    plain = quantize(model, tmp_path / "plain", recipe + ",bias-correction=no", calib)
    corrected = quantize(model, tmp_path / "bc", recipe + ",bias-correction=yes", calib)
    assert "bias_correction" not in plain["recipe"][0]["report"]
    report = corrected["recipe"][0]["report"]["bias_correction"]
    assert report["layers"] == depth + 1
    assert report["mean_abs_delta"] > 0
    before = output_sqnr(model, tmp_path / "plain", evaluation)
    after = output_sqnr(model, tmp_path / "bc", evaluation)
    assert after > before + 1.0, (before, after)


def test_bias_correction_is_the_default(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    conv_net(model, 8, 2, side=6)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=images(33, 6, seed=3))
    manifest = quantize(model, tmp_path / "q", "int8-static", calib)
    assert manifest["recipe"][0]["report"]["bias_correction"]["layers"] == 3


@pytest.mark.parametrize("sides", [(8, 12), (6, 10, 16)])
def test_bias_correction_on_a_per_feed_set_of_several_sizes(tmp_path: Path, sides: tuple[int, ...]) -> None:
    """A folder of feeds, one image size per file (a fully convolutional model with a symbolic
    side): the per-channel error is reduced feed by feed."""
    model = tmp_path / "m.onnx"
    conv_net(model, 16, 3)
    folder = tmp_path / "calib"
    folder.mkdir()
    for index, side in enumerate(sides * 5):
        np.savez(folder / f"feed{index:02d}.npz", x=images(2, side, seed=index))
    evaluation = tmp_path / "eval.npz"
    np.savez(evaluation, x=images(40, 10, seed=99))
    recipe = "int8-static:per-channel=no,keep-first-float=no"
    quantize(model, tmp_path / "plain", recipe + ",bias-correction=no", folder)
    corrected = quantize(model, tmp_path / "bc", recipe, folder)
    assert corrected["recipe"][0]["report"]["bias_correction"]["layers"] == 4
    assert output_sqnr(model, tmp_path / "bc", evaluation) > output_sqnr(
        model, tmp_path / "plain", evaluation
    )


def test_a_model_without_biases_is_left_as_quantized(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    conv_net(model, 8, 3, bias=False, side=8)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=images(90, 8, seed=5))
    plain = quantize(model, tmp_path / "plain", "int8-static:bias-correction=no", calib)
    corrected = quantize(model, tmp_path / "bc", "int8-static", calib)
    assert corrected["recipe"][0]["report"]["bias_correction"] == {
        "layers": 0,
        "mean_abs_delta": 0.0,
        "skipped": [],
    }
    a, b = onnx.load(str(tmp_path / "plain" / "model.onnx")), onnx.load(str(tmp_path / "bc" / "model.onnx"))
    assert [numpy_helper.to_array(i).tobytes() for i in a.graph.initializer] == [
        numpy_helper.to_array(i).tobytes() for i in b.graph.initializer
    ]
    assert plain["fidelity"]["outputs"]["y"]["sqnr_db"] == corrected["fidelity"]["outputs"]["y"]["sqnr_db"]


@pytest.mark.parametrize(("rows", "features"), [(33, 16), (90, 40)])
def test_bias_correction_on_a_two_input_model_with_a_gemm(tmp_path: Path, rows: int, features: int) -> None:
    """A conv branch on x and a Gemm (bias, output channels on the last axis) on a second input z;
    both are corrected from one calibration set that feeds both inputs."""
    model = tmp_path / "m.onnx"
    conv_net(model, 16, 2, side=8)
    proto = onnx.load(str(model))
    rng = np.random.default_rng(features)
    gain = np.geomspace(0.05, 3.0, 6)
    weight = (rng.standard_normal((features, 6)) * gain / np.sqrt(features)).astype(np.float32)
    proto.graph.initializer.extend(
        [
            numpy_helper.from_array(weight, "wz"),
            numpy_helper.from_array((0.3 * rng.standard_normal(6)).astype(np.float32), "bz"),
        ]
    )
    proto.graph.node.append(helper.make_node("Gemm", ["z", "wz", "bz"], ["out_z"], name="gemm_z"))
    proto.graph.input.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", features]))
    proto.graph.output.append(helper.make_tensor_value_info("out_z", TensorProto.FLOAT, ["N", 6]))
    onnx.save(proto, str(model))
    calib = tmp_path / "calib.npz"
    z = np.abs(rng.standard_normal((rows, features))).astype(np.float32)
    np.savez(calib, x=images(rows, 8, seed=rows), z=z)
    manifest = quantize(model, tmp_path / "bc", "int8-static:per-channel=no,keep-first-float=no", calib)
    assert manifest["recipe"][0]["report"]["bias_correction"]["layers"] == 4
    assert manifest["fidelity"]["outputs"]["out_z"]["sqnr_db"] > 20
