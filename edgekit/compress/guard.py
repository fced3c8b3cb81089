"""Accuracy guard: keep the most quantization-sensitive nodes in float until the tolerance holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from edgekit.compress.data import Dataset
from edgekit.compress.fidelity import per_layer_sqnr
from edgekit.compress.graph import QUANTIZABLE_OPS, initializers


@dataclass(frozen=True)
class Sensitivity:
    node: str
    sqnr_drop_db: float  # SQNR lost across this node: damage it adds itself


def rank_by_sqnr(prepared: Path, quantized: Path, dataset: Dataset) -> list[Sensitivity]:
    """Nodes ordered most-damaging first, by SQNR at their activation input minus at their output.

    The float tensors keep their names in a QDQ graph (Q/DQ pairs are inserted after them), so
    the same tensor can be read from both models; the difference isolates each node's own damage
    from the error accumulated before it.
    """
    float_model = onnx.load(str(prepared))
    weights = initializers(float_model)
    graph_inputs = {i.name for i in float_model.graph.input}
    nodes = [n for n in float_model.graph.node if n.op_type in QUANTIZABLE_OPS]
    pairs = []
    for node in nodes:
        activation = next((name for name in node.input if name and name not in weights), None)
        if activation is not None:
            pairs.append((node.name, activation, node.output[0]))
    tensors = sorted({t for _, a, o in pairs for t in (a, o) if t not in graph_inputs})
    sqnr = per_layer_sqnr(float_model, onnx.load(str(quantized)), dataset, tensors)
    ranked = [
        Sensitivity(
            name, (sqnr.get(activation, 200.0) if activation not in graph_inputs else 200.0) - sqnr[output]
        )
        for name, activation, output in pairs
    ]
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
