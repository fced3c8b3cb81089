"""Accuracy guard: keep the most quantization-sensitive nodes in float until the tolerance holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper

from edgekit.compress.data import Dataset
from edgekit.compress.fidelity import run_outputs, sqnr_db, with_outputs
from edgekit.compress.graph import QUANTIZABLE_OPS, consumers, initializers

CLEAN_SQNR_DB = 120.0  # a tensor with no quantization noise (float32 rounding is ~150 dB)


@dataclass(frozen=True)
class Sensitivity:
    node: str
    sqnr_drop_db: float  # SQNR lost across this node: damage it adds itself


def _after_qdq(tensor: str, readers: dict[str, list[onnx.NodeProto]]) -> str:
    """The tensor as the next layer sees it: the output of its QuantizeLinear -> DequantizeLinear."""
    for q in readers.get(tensor, []):
        if q.op_type == "QuantizeLinear":
            for dq in readers.get(q.output[0], []):
                if dq.op_type == "DequantizeLinear":
                    return str(dq.output[0])
    return tensor


def rank_by_sqnr(prepared: Path, quantized: Path, dataset: Dataset) -> list[Sensitivity]:
    """Nodes ordered most-damaging first, by SQNR at their input minus SQNR at their output.

    Each side compares the float tensor with what the quantized graph actually carries there:
    the dequantized input the node reads, and its output after its own QuantizeLinear ->
    DequantizeLinear (the quantizer may fuse a following Relu into that pair, or rename a graph
    output). The difference isolates the node's own damage from the error accumulated before it.
    """
    float_model, quant_model = onnx.load(str(prepared)), onnx.load(str(quantized))
    weights = initializers(float_model)
    float_tensors = {t for n in float_model.graph.node for t in n.output} | {
        i.name for i in float_model.graph.input
    }
    quant_nodes = {n.name: n for n in quant_model.graph.node}
    quant_readers = consumers(quant_model)
    pairs: list[tuple[str, tuple[str, str], tuple[str, str]]] = []
    for node in float_model.graph.node:
        quant = quant_nodes.get(node.name)
        if node.op_type not in QUANTIZABLE_OPS or quant is None:
            continue
        activation = next((name for name in node.input if name and name not in weights), None)
        if activation is None:
            continue
        quant_in = quant.input[list(node.input).index(activation)]
        quant_out = quant.output[0]
        float_out = quant_out if quant_out in float_tensors else node.output[0]
        pairs.append((node.name, (activation, quant_in), (float_out, _after_qdq(quant_out, quant_readers))))
    float_names = sorted({f for _, a, o in pairs for f, _ in (a, o)})
    quant_names = sorted({q for _, a, o in pairs for _, q in (a, o)})
    float_values = run_outputs(with_outputs(float_model, float_names), dataset, float_names)
    quant_values = run_outputs(with_outputs(quant_model, quant_names), dataset, quant_names)

    def sqnr(side: tuple[str, str]) -> float:
        return min(sqnr_db(float_values[side[0]], quant_values[side[1]]), CLEAN_SQNR_DB)

    ranked = [Sensitivity(name, sqnr(a) - sqnr(o)) for name, a, o in pairs]
    return sorted(ranked, key=lambda s: s.sqnr_drop_db, reverse=True)


def rank_one_at_a_time(nodes: list[str], loss_without: Callable[[list[str]], float]) -> list[Sensitivity]:
    """Fallback: quantize with each node kept float alone; the bigger the gain, the more sensitive."""
    baseline = loss_without([])
    gains = [Sensitivity(node, baseline - loss_without([node])) for node in nodes]
    return sorted(gains, key=lambda s: s.sqnr_drop_db, reverse=True)


def search_exclusions(
    ranked: list[Sensitivity],
    tolerance: float,
    attempt: Callable[[list[str]], float],
) -> dict[str, Any]:
    """Keep 1, 2, 4, ... most sensitive nodes float until the loss <= tolerance.

    `attempt(excluded)` builds the artifact with those nodes in float and returns its loss in
    points. Returns the best attempt (lowest loss, then fewest float nodes) and the trail.
    """
    trail: list[dict[str, Any]] = []
    count = 1
    best: dict[str, Any] | None = None
    while True:
        excluded = [s.node for s in ranked[:count]]
        loss = attempt(excluded)
        trail.append({"kept_float": len(excluded), "loss_points": loss})
        if best is None or loss < best["loss_points"]:
            best = {"excluded": excluded, "loss_points": loss}
        if loss <= tolerance or count >= len(ranked):
            break
        count = min(count * 2, len(ranked))
    assert best is not None
    return {"best": best, "met": best["loss_points"] <= tolerance, "trail": trail}


FP16_MAX = 65504.0  # the largest finite float16


def rank_by_range(reference: Path, dataset: Dataset) -> list[Sensitivity]:
    """Nodes ordered by the largest magnitude among their float inputs, outputs and weights on
    `dataset`, largest first: the nodes a float16 graph overflows in (|x| > 65504 is inf in
    float16, IEEE 754 binary16). `sqnr_drop_db` carries log10 of that magnitude. Nodes whose
    tensors cannot be read (a sequence, a subgraph's) rank last, in graph order."""
    model = onnx.load(str(reference))
    weights = initializers(model)
    tensors = sorted({t for node in model.graph.node for t in node.output if t})
    try:
        values = run_outputs(with_outputs(model, tensors), dataset, tensors)
    except Exception:  # some tensor is not a readable tensor: rank by graph order
        values = {}
    peak: dict[str, float] = {}
    for name, array in values.items():
        if array.dtype.kind == "f" and array.size:
            peak[name] = float(np.max(np.abs(np.where(np.isfinite(array), array, np.inf))))
    for name, proto in weights.items():
        array = onnx.numpy_helper.to_array(proto)
        if array.dtype.kind == "f" and array.size:
            peak[name] = float(np.max(np.abs(array)))
    ranked = []
    for index, node in enumerate(model.graph.node):
        magnitude = max((peak.get(t, 0.0) for t in [*node.input, *node.output] if t), default=0.0)
        score = float(np.log10(magnitude)) if 0 < magnitude < np.inf else (400.0 if magnitude else -400.0)
        ranked.append((score, -index, node.name))
    return [Sensitivity(name, score) for score, _, name in sorted(ranked, reverse=True) if name]


def out_of_fp16_range(ranked: list[Sensitivity]) -> list[str]:
    """The nodes of a `rank_by_range` ranking that touch a value float16 cannot hold."""
    return [s.node for s in ranked if s.sqnr_drop_db > np.log10(FP16_MAX)]
