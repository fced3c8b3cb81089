"""Empirical bias correction of a QDQ int8 model: shift each quantized layer's bias by the mean
error its quantization adds, measured on the calibration set.

Source: Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction"
(ICCV 2019), section 4.2, the empirical variant (the expected output error E[W~x] - E[Wx] of a
layer, per output channel, estimated on data and subtracted from its bias); Banner et al.,
"Post training 4-bit quantization of convolutional networks for rapid-deployment" (NeurIPS
2019), section 4 (bias correction of the quantization's mean shift).

How, for the QDQ graph onnxruntime's quantize_static writes: a quantized Conv, ConvTranspose or
Gemm reads its weight through DequantizeLinear and its bias as an int32 initializer through
DequantizeLinear with scale = input scale * weight scale (per output channel) and zero point 0
(onnxruntime/quantization/qdq_quantizer.py, quantize_bias_static). Its output goes through
QuantizeLinear -> DequantizeLinear; an activation that follows (Relu, Clip) is folded into that
QuantizeLinear's range. The error of a layer is taken where the next layer reads it (the
DequantizeLinear output), against the float model's tensor of the same name (the layer's
output, after the folded activation), over the positions where the float value lies strictly
inside the quantized range (a clipped position's error is the activation's, which no bias
moves). Layers are corrected in graph order (each correction changes the errors downstream):
layer k's error is measured on the model with layers 1..k-1 already corrected, run by
onnxruntime as deployed (its QDQ fusion into integer kernels included, so the rounding of the
target CPU's kernels is part of the error). The int32 bias moves by round(delta / scale); a
float bias (a layer onnxruntime left its bias unquantized) by delta.

MatMul layers (whose bias is a separate Add) and layers kept float are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from edgekit.compress.data import Dataset, batch_size, feeds
from edgekit.compress.fidelity import session, with_outputs
from edgekit.compress.graph import consumers, initializers, producers
from edgekit.core.onnx_model import graph_inputs

CORRECTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm"})


@dataclass(frozen=True)
class Target:
    """One quantized layer: its node's name, the int32 (or float) bias initializer and its scale
    initializer (None for a float bias), where its error is read in the QDQ graph (`measured`)
    and in the float graph (`reference`), the output's channel axis, and the float range of the
    output's QuantizeLinear ((-inf, inf) when it has none)."""

    node: str
    bias: str
    scale: str | None
    measured: str
    reference: str
    axis: int
    low: float
    high: float


def targets(qdq: onnx.ModelProto) -> list[Target]:
    """The layers to correct, in graph order: Conv/ConvTranspose/Gemm nodes of the main graph
    whose weight is read through DequantizeLinear and whose bias is a constant (an initializer,
    or an initializer through DequantizeLinear)."""
    made = producers(qdq)
    readers = consumers(qdq)
    inits = initializers(qdq)
    found: list[Target] = []
    for node in qdq.graph.node:
        if node.op_type not in CORRECTED_OPS or len(node.input) < 3 or not node.input[2]:
            continue
        weight = made.get(node.input[1])
        if weight is None or weight.op_type != "DequantizeLinear":
            continue
        bias_name, scale = node.input[2], None
        bias_node = made.get(bias_name)
        if bias_node is not None:
            if bias_node.op_type != "DequantizeLinear" or bias_node.input[0] not in inits:
                continue
            bias_name, scale = bias_node.input[0], bias_node.input[1]
        elif bias_name not in inits:
            continue
        output = node.output[0]
        measured, low, high = output, -np.inf, np.inf
        after = readers.get(output, [])
        if len(after) == 1 and after[0].op_type == "QuantizeLinear":
            dequant = [n for n in readers.get(after[0].output[0], []) if n.op_type == "DequantizeLinear"]
            if dequant:
                measured = dequant[0].output[0]
                low, high = _quantized_range(after[0], inits)
        axis = -1 if node.op_type == "Gemm" else 1
        found.append(Target(node.name, bias_name, scale, measured, output, axis, low, high))
    return found


def _in_float(target: Target, produced: set[str]) -> Target:
    """`target` with the float tensor its error is compared with: the layer's output name, or,
    for a layer that writes a graph output (the quantizer renames the layer's output to
    `<name>_QuantizeLinear_Input` and gives the graph output name to the DequantizeLinear),
    the measured tensor's name."""
    if target.reference in produced or target.measured not in produced:
        return target
    return replace(target, reference=target.measured)


def _quantized_range(quant: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> tuple[float, float]:
    """The float range [scale * (qmin - zp), scale * (qmax - zp)] of a per-tensor QuantizeLinear."""
    scale = float(numpy_helper.to_array(inits[quant.input[1]]).ravel()[0])
    zero = inits.get(quant.input[2]) if len(quant.input) > 2 else None
    dtype = numpy_helper.to_array(zero).dtype if zero is not None else np.dtype(np.uint8)
    zp = float(numpy_helper.to_array(zero).ravel()[0]) if zero is not None else 0.0
    info = np.iinfo(dtype)
    return scale * (info.min - zp), scale * (info.max - zp)


def channel_error(
    float_run: ort.InferenceSession, quantized: bytes, target: Target, dataset: Dataset, size: int
) -> np.ndarray:
    """`float_run`: a session of the float model with target.reference among its outputs.
    [C] float64: per output channel, the mean of (quantized - float) over every feed's rows and
    positions where the float value lies strictly inside (target.low, target.high); 0 for a
    channel with no such position. Feeds of any shapes (a per-feed set) are reduced one by one."""
    quant_run = session(quantized)
    total: np.ndarray | None = None
    count: np.ndarray | None = None
    for feed in feeds(dataset, size):
        (f,) = float_run.run([target.reference], feed)
        (q,) = quant_run.run([target.measured], feed)
        f = np.moveaxis(np.asarray(f, np.float64), target.axis, 0)
        q = np.moveaxis(np.asarray(q, np.float64), target.axis, 0)
        inside = (f > target.low) & (f < target.high)
        f, q, inside = f.reshape(len(f), -1), q.reshape(len(q), -1), inside.reshape(len(inside), -1)
        sums, hits = np.where(inside, q - f, 0.0).sum(axis=1), inside.sum(axis=1)
        total = sums if total is None else total + sums
        count = hits if count is None else count + hits
    if total is None or count is None:
        return np.zeros(0)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def correct_biases(reference: Path, qdq_path: Path, dataset: Dataset) -> dict[str, Any]:
    """Correct the biases of the QDQ model at `qdq_path` in place (see the module docstring),
    from the float model `reference` it was quantized from (the same tensor names), over
    `dataset` (a row set or a per-feed set). Returns the manifest entry {"layers": corrected
    layer count, "mean_abs_delta": mean |delta| over their channels (float units),
    "skipped": layers whose error could not be measured}; {"layers": 0, ...} for a model
    without quantized biased layers, which is then left unchanged. Raises ModelError (from
    `with_outputs`) for a model over protobuf's 2 GB limit."""
    qdq = onnx.load(str(qdq_path))
    float_model = onnx.load(str(reference))
    produced = {o for n in float_model.graph.node for o in n.output}
    found = [_in_float(t, produced) for t in targets(qdq)]
    found = [t for t in found if t.reference in produced]
    if not found:
        return {"layers": 0, "mean_abs_delta": 0.0, "skipped": []}
    size = batch_size(graph_inputs(float_model))
    float_run = session(with_outputs(float_model, [t.reference for t in found]))
    inits = initializers(qdq)
    deltas: list[np.ndarray] = []
    skipped: list[str] = []
    for target in found:
        error = channel_error(float_run, with_outputs(qdq, [target.measured]), target, dataset, size)
        bias = inits[target.bias]
        values = numpy_helper.to_array(bias)
        if error.shape != values.shape:
            skipped.append(target.node)
            continue
        if target.scale is None:
            updated = (values - error).astype(values.dtype)
            applied = error
        else:
            scale = numpy_helper.to_array(inits[target.scale]).astype(np.float64)
            steps = np.round(error / scale)
            info = np.iinfo(values.dtype)
            updated = np.clip(values.astype(np.int64) - steps, info.min, info.max).astype(values.dtype)
            applied = (values.astype(np.int64) - updated.astype(np.int64)) * scale
        bias.CopyFrom(numpy_helper.from_array(updated, bias.name))
        deltas.append(np.abs(applied))
    onnx.save(qdq, str(qdq_path))
    corrected = len(deltas)
    return {
        "layers": corrected,
        "mean_abs_delta": float(np.mean(np.concatenate(deltas))) if deltas else 0.0,
        "skipped": skipped,
    }
