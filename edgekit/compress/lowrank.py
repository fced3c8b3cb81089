"""Low-rank factorisation: a Gemm/MatMul weight W (K x N) becomes A (K x r) @ B (r x N) by SVD.

The rank of each layer is the smallest that keeps `energy` of the squared singular values, or
`ratio` of the full rank. A layer is left alone when the factorised form would not be clearly
smaller (r * (K + N) > 0.8 * K * N): two smaller matrix products are then slower, not faster.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgekit.compress.graph import ensure_node_names, initializers
from edgekit.core.errors import ModelError
from edgekit.core.onnx_model import save_onnx

MAX_FACTORED_FRACTION = 0.8


def choose_rank(singular: np.ndarray, energy: float, ratio: float) -> int:
    """Pure: the rank kept for these singular values (descending)."""
    if ratio > 0:
        return max(1, math.ceil(ratio * len(singular)))
    cumulative = np.cumsum(singular.astype(np.float64) ** 2)
    return int(np.searchsorted(cumulative, energy * cumulative[-1]) + 1)


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return int(helper.get_attribute_value(attribute))
    return default


def _weight_matrix(node: onnx.NodeProto, weights: dict[str, onnx.TensorProto]) -> np.ndarray | None:
    """W as K x N (input features x output features), or None when the node cannot be factorised."""
    if len(node.input) < 2 or node.input[1] not in weights:
        return None
    array = numpy_helper.to_array(weights[node.input[1]])
    if array.ndim != 2 or array.dtype != np.float32:
        return None
    if node.op_type == "Gemm":
        if _attr(node, "transA", 0) or any(
            a.name in ("alpha", "beta") and a.f != 1.0 for a in node.attribute
        ):
            return None
        return array.T if _attr(node, "transB", 0) else array
    return array if node.op_type == "MatMul" else None


def lowrank(source: Path, out: Path, params: dict[str, Any]) -> dict[str, Any]:
    model = ensure_node_names(onnx.load(str(source)))
    weights = initializers(model)
    energy, ratio = float(params["energy"]), float(params["ratio"])
    new_nodes: list[onnx.NodeProto] = []
    layers = []
    for node in model.graph.node:
        matrix = _weight_matrix(node, weights) if node.op_type in ("Gemm", "MatMul") else None
        if matrix is None:
            new_nodes.append(node)
            continue
        k, n = matrix.shape
        u, s, vt = np.linalg.svd(matrix.astype(np.float64), full_matrices=False)
        rank = choose_rank(s, energy, ratio)
        kept_energy = float(np.sum(s[:rank] ** 2) / np.sum(s**2)) if np.sum(s**2) > 0 else 1.0
        layer = {
            "node": node.name,
            "shape": [k, n],
            "rank": rank,
            "full_rank": len(s),
            "energy_kept": kept_energy,
        }
        if rank * (k + n) > MAX_FACTORED_FRACTION * k * n:
            layers.append({**layer, "skipped": "factorised form would not be smaller"})
            new_nodes.append(node)
            continue
        root = np.sqrt(s[:rank])
        a_name, b_name, mid = f"{node.name}_lr_a", f"{node.name}_lr_b", f"{node.name}_lr_mid"
        model.graph.initializer.append(
            numpy_helper.from_array((u[:, :rank] * root).astype(np.float32), a_name)
        )
        model.graph.initializer.append(
            numpy_helper.from_array((root[:, None] * vt[:rank]).astype(np.float32), b_name)
        )
        new_nodes.append(helper.make_node("MatMul", [node.input[0], a_name], [mid], name=f"{node.name}_lr1"))
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
            new_nodes.append(
                helper.make_node("Gemm", [mid, b_name, node.input[2]], list(node.output), name=node.name)
            )
        else:
            new_nodes.append(helper.make_node("MatMul", [mid, b_name], list(node.output), name=node.name))
        layers.append({**layer, "parameters_before": k * n, "parameters_after": rank * (k + n)})
    factored = [layer for layer in layers if "skipped" not in layer]
    if not factored:
        raise ModelError(
            "lowrank: no Gemm/MatMul layer gets smaller at this rank "
            f"({len(layers)} candidate(s); lower energy= or ratio=)"
        )
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    used = {name for node in model.graph.node for name in node.input}
    kept = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    save_onnx(model, out)
    return {"energy": energy or None, "ratio": ratio or None, "layers": layers}
