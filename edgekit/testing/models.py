"""Small real ONNX models for edgekit's tests and users' own (onnxruntime executes them).

Every builder writes a checked model (`onnx.checker.check_model`) at opset 17 and returns its path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_mlp(
    path: Path,
    *,
    features: int = 64,
    hidden: int = 128,
    classes: int = 10,
    batch: int | str = "batch",
    seed: int = 0,
) -> Path:
    """input[batch, features] -> Gemm -> Relu -> Gemm -> logits[batch, classes]."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((features, hidden)).astype(np.float32) * 0.1, "w1")
    b1 = numpy_helper.from_array(np.zeros(hidden, np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, classes)).astype(np.float32) * 0.1, "w2")
    b2 = numpy_helper.from_array(np.zeros(classes, np.float32), "b2")
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["hr"]),
            helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        initializer=[w1, b1, w2, b2],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), path)


def make_multi_input(path: Path) -> Path:
    """Three inputs of different dtypes, a symbolic sequence dim, two outputs.

    tokens int64[batch, seq], mask bool[batch, seq], scale float32[1] ->
    summed float32[batch] (tokens where mask, cast, summed, scaled) and count int64[batch].
    """
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["mask"], ["mask_i"], to=TensorProto.INT64),
            helper.make_node("Mul", ["tokens", "mask_i"], ["masked"]),
            helper.make_node("Cast", ["masked"], ["masked_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["masked_f", "axes"], ["sum"], keepdims=0),
            helper.make_node("Mul", ["sum", "scale"], ["summed"]),
            helper.make_node("ReduceSum", ["mask_i", "axes"], ["count"], keepdims=0),
        ],
        "multi_input",
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", "seq"]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("summed", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("count", TensorProto.INT64, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), path)


def make_open_conv(
    path: Path, *, channels: int = 3, classes: int = 10, seed: int = 0, feature_map: bool = False
) -> Path:
    """A classifier that takes images of any size: image float32[N, channels, H, W] (N, H, W
    open) -> Conv 3x3 (8) -> Relu -> Conv 3x3 stride 2 (16) -> Relu -> GlobalAveragePool ->
    Flatten -> Gemm -> logits float32[N, classes]. With `feature_map`, a second output
    features float32[N, 16, ceil(H/2), ceil(W/2)] (the second Relu's): its shape follows the
    input's, like a detector's map. Weights: seeded He-normal."""
    rng = np.random.default_rng(seed)

    def he(*shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    weights = [
        numpy_helper.from_array(he(8, channels, 3, 3), "w1"),
        numpy_helper.from_array((rng.standard_normal(8) * 0.1).astype(np.float32), "b1"),
        numpy_helper.from_array(he(16, 8, 3, 3), "w2"),
        numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "b2"),
        numpy_helper.from_array(he(classes, 16).T.copy(), "w3"),
        numpy_helper.from_array(np.zeros(classes, np.float32), "b3"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("Relu", ["c2"], ["r2"]),
            helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w3", "b3"], ["logits"]),
        ],
        "open_conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        initializer=weights,
    )
    if feature_map:
        graph.node.append(helper.make_node("Identity", ["r2"], ["features"]))
        graph.output.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 16, "h", "w"]))
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), path)
