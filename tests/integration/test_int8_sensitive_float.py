"""int8-static keeps float, by default, the layers whose own quantization loses most SQNR
(keep-sensitive-float); on onnxruntime's real quantizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.core.profiles import load_profile

pytestmark = pytest.mark.integration


def chain_model(path: Path, channels: int, depth: int, fragile: int) -> None:
    """x [N, channels, 6, 6] (x >= 0) -> depth x (1x1 conv_i -> Relu) -> out [N, channels, 6, 6].
    conv_<fragile - 1>'s output channel 0 has negative weights on non-negative inputs, so after its
    Relu that channel is always 0; conv_<fragile> reads it with weight 100, 100x the rest, which
    costs the float model nothing but sets every per-channel int8 scale to 100/127, rounding the
    real weights to 0: that conv alone loses far more SQNR than any other."""
    rng = np.random.default_rng(channels * depth)
    inits, nodes = [], []
    for i in range(depth):
        noise = rng.standard_normal((channels, channels)) * 0.3 / np.sqrt(channels)
        weight = (np.eye(channels) + noise)[:, :, None, None]  # near identity: errors do not blow up
        if i == fragile - 1:
            weight[0] = -np.abs(weight[0]) - 0.1
        if i == fragile:
            weight[:, 0] = 100.0
        inits.append(numpy_helper.from_array(weight.astype(np.float32), f"w{i}"))
        source = "x" if i == 0 else f"r{i}"
        nodes.append(helper.make_node("Conv", [source, f"w{i}"], [f"c{i}"], name=f"conv_{i}"))
        nodes.append(helper.make_node("Relu", [f"c{i}"], ["out" if i == depth - 1 else f"r{i + 1}"]))
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, 6, 6])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", channels, 6, 6])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def quantized_convs(path: Path) -> set[str]:
    """Names of the Conv nodes whose weight comes out of a DequantizeLinear."""
    model = onnx.load(str(path))
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] in dequantized}


def output_sqnr_db(reference: Path, artifact: Path, x: np.ndarray) -> float:
    """Output SQNR (dB) of `artifact` against `reference`, both run by onnxruntime without graph
    optimisation: the QDQ graph's own arithmetic (float compute between exact Q/DQ). With its
    fusions on (int8 kernels), the same artifact measured 3.5 dB instead of 29 dB (channels=16,
    depth=16): the float weight 100 amplifies what the fused int8 neighbours deliver on the dead
    channel; that is onnxruntime's kernels, not the choice of layers kept float.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    runs = [
        ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
        for p in (reference, artifact)
    ]
    want, got = (run.run(None, {"x": x})[0] for run in runs)
    return float(10 * np.log10(np.sum(want**2) / max(np.sum((want - got) ** 2), 1e-30)))


@pytest.mark.parametrize(("channels", "depth", "rows"), [(16, 16, 33), (24, 24, 90), (33, 17, 100)])
def test_most_sensitive_layer_stays_float(tmp_path: Path, channels: int, depth: int, rows: int) -> None:
    """Default: conv_0 (input-fed) and the fragile conv float, the rest int8, and the output
    closer to float than with keep-sensitive-float=0, which quantizes the fragile conv."""
    fragile = depth // 2
    model = tmp_path / "m.onnx"
    chain_model(model, channels, depth, fragile)
    rng = np.random.default_rng(rows)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.abs(rng.standard_normal((rows, channels, 6, 6))).astype(np.float32))
    results = {}
    for recipe in ("int8-static", "int8-static:keep-sensitive-float=0"):
        out = tmp_path / recipe.replace(":", "_").replace("=", "-")
        options = CompressOptions(
            steps=parse_recipes([recipe]), profile=load_profile("local"), calib=calib, allow_degraded=True
        )
        results[recipe] = (compress(model, out, options)["recipe"][0], out / "model.onnx")
    every = {f"conv_{i}" for i in range(depth)}
    step, default_path = results["int8-static"]
    assert step["params"]["keep-sensitive-float"] == 2
    assert step["report"]["kept_float_first"] == ["conv_0"]
    sensitive = step["report"]["kept_float_sensitive"]
    assert sensitive[0] == f"conv_{fragile}"
    assert len(sensitive) == min(2, depth // 8 - 1)  # with the first layer, at most 1/8 of the layers
    assert quantized_convs(default_path) == every - {"conv_0", *sensitive}
    off, off_path = results["int8-static:keep-sensitive-float=0"]
    assert off["report"]["kept_float_sensitive"] == []
    assert quantized_convs(off_path) == every - {"conv_0"}
    x = np.abs(rng.standard_normal((8, channels, 6, 6))).astype(np.float32)
    assert output_sqnr_db(model, default_path, x) > output_sqnr_db(model, off_path, x) + 3


def test_unmeasurable_sensitivity_is_said_not_swallowed(tmp_path: Path) -> None:
    """When the layers' own SQNR loss cannot be read, nothing is kept float for it and the
    reason is raised for the report (here: an artifact that is not there to read)."""
    from edgekit.compress.data import Dataset
    from edgekit.compress.quantize import SensitivityUnmeasured, sensitive_layers

    chain_model(tmp_path / "m.onnx", 8, 16, 5)
    model = onnx.load(str(tmp_path / "m.onnx"))
    rows = Dataset(tmp_path, {"x": np.abs(np.random.default_rng(0).standard_normal((33, 8, 6, 6)))}, None)
    with pytest.raises(SensitivityUnmeasured):
        sensitive_layers(model, tmp_path / "m.onnx", tmp_path / "missing.onnx", rows, 2, [])
    assert sensitive_layers(model, tmp_path / "m.onnx", tmp_path / "missing.onnx", rows, 0, []) == []
