"""int8-static keeps the layers fed the model input float by default (keep-first-float), and
takes scheme=u8u8; on onnxruntime's real quantizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.compress.quantize import first_layer_nodes
from edgekit.core.profiles import load_profile

pytestmark = pytest.mark.integration


def two_input_model(path: Path, channels: int, features: int, depth: int) -> None:
    """x [N, 3, 9, 9] -> conv_a -> Relu -> depth x (1x1 conv_i -> Relu) -> conv_b -> out_x [N, 4, 9, 9];
    y [N, features] -> mm_c -> out_y [N, 5]. Quantizable nodes: depth + 3, two of them first."""
    rng = np.random.default_rng(channels)
    inits = [
        numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "wa"),
        numpy_helper.from_array(rng.standard_normal((4, channels, 1, 1)).astype(np.float32), "wb"),
        numpy_helper.from_array(rng.standard_normal((features, 5)).astype(np.float32), "wc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r0"], name="relu"),
    ]
    for i in range(depth):
        weight = (rng.standard_normal((channels, channels, 1, 1)) / np.sqrt(channels)).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
        nodes.append(helper.make_node("Conv", [f"r{i}", f"w{i}"], [f"c{i}"], name=f"conv_{i}"))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i + 1}"], name=f"relu_{i}"))
    nodes += [
        helper.make_node("Conv", [f"r{depth}", "wb"], ["out_x"], name="conv_b"),
        helper.make_node("MatMul", ["y", "wc"], ["out_y"], name="mm_c"),
    ]
    graph = helper.make_graph(
        nodes,
        "two_inputs",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 9, 9]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", features]),
        ],
        [
            helper.make_tensor_value_info("out_x", TensorProto.FLOAT, ["N", 4, 9, 9]),
            helper.make_tensor_value_info("out_y", TensorProto.FLOAT, ["N", 5]),
        ],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def quantized_nodes(path: Path) -> set[str]:
    """Names of the Conv/MatMul nodes whose weight comes out of a DequantizeLinear."""
    model = onnx.load(str(path))
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul") and n.input[1] in dequantized}


@pytest.mark.parametrize(
    ("channels", "features", "rows", "depth"), [(8, 16, 33, 13), (13, 90, 100, 20), (8, 16, 90, 12)]
)
def test_first_layers_stay_float_by_default(
    tmp_path: Path, channels: int, features: int, rows: int, depth: int
) -> None:
    """Kept float when the 2 first layers are <= 1/8 of the depth + 3 quantizable nodes (16
    nodes: yes; 15: no, everything is quantized)."""
    model = tmp_path / "m.onnx"
    two_input_model(model, channels, features, depth)
    assert first_layer_nodes(onnx.load(str(model))) == ["conv_a", "mm_c"]
    applies = (depth + 3) / 8 >= 2
    middle = {"conv_b", *(f"conv_{i}" for i in range(depth))}
    rng = np.random.default_rng(rows)
    calib = tmp_path / "calib.npz"
    np.savez(
        calib,
        x=rng.standard_normal((rows, 3, 9, 9)).astype(np.float32),
        y=rng.standard_normal((rows, features)).astype(np.float32),
    )
    manifests = {}
    # keep-sensitive-float=0: only keep-first-float decides here (test_int8_sensitive_float.py)
    for recipe in (
        "int8-static:keep-sensitive-float=0",
        "int8-static:keep-first-float=no,keep-sensitive-float=0",
        "int8-static:scheme=u8u8",
    ):
        out = tmp_path / recipe.replace(":", "_").replace("=", "-")
        options = CompressOptions(
            steps=parse_recipes([recipe]), profile=load_profile("local"), calib=calib, allow_degraded=True
        )
        manifests[recipe] = (compress(model, out, options), out / "model.onnx")
    default, default_path = manifests["int8-static:keep-sensitive-float=0"]
    step = default["recipe"][0]
    assert step["params"]["keep-first-float"] is True
    assert step["report"]["kept_float_first"] == (["conv_a", "mm_c"] if applies else [])
    assert quantized_nodes(default_path) == (middle if applies else middle | {"conv_a", "mm_c"})
    off, off_path = manifests["int8-static:keep-first-float=no,keep-sensitive-float=0"]
    assert off["recipe"][0]["report"]["kept_float_first"] == []
    assert quantized_nodes(off_path) == middle | {"conv_a", "mm_c"}
    u8u8, u8u8_path = manifests["int8-static:scheme=u8u8"]
    report = u8u8["recipe"][0]["report"]
    assert (report["scheme"], report["weight_type"]) == ("u8u8", "QUInt8")
    weights = {i.name: i for i in onnx.load(str(u8u8_path)).graph.initializer}
    assert weights["wb_zero_point"].data_type == TensorProto.UINT8
