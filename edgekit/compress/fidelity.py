"""How much a compressed model differs from its float source, measured on real data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from edgekit.compress.data import Dataset, batch_size, feeds
from edgekit.core.onnx_model import graph_inputs, load_onnx


def session(model: Path | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_outputs(
    model: Path | bytes, dataset: Dataset, names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Outputs (all, or `names`) over every row of the dataset, concatenated along axis 0."""
    sess = session(model)
    proto = load_onnx(model) if isinstance(model, Path) else onnx.load_from_string(model)
    size = batch_size(graph_inputs(proto))
    wanted = list(names) if names is not None else [o.name for o in sess.get_outputs()]
    collected: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    for feed in feeds(dataset, size):
        for name, value in zip(wanted, sess.run(wanted, feed), strict=True):
            collected[name].append(np.asarray(value))
    return {
        name: np.concatenate(parts) if parts[0].ndim else np.stack(parts) for name, parts in collected.items()
    }


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    reference = reference.astype(np.float64).ravel()
    noise = float(np.sum((reference - test.astype(np.float64).ravel()) ** 2))
    signal = float(np.sum(reference**2))
    if noise == 0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-30) / noise)


def compare_outputs(reference: np.ndarray, test: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
    """Accuracy (with labels), top-1 agreement, cosine, max abs error and SQNR of one output."""
    rows = len(reference)
    flat_ref = reference.reshape(rows, -1).astype(np.float64)
    flat_test = test.reshape(rows, -1).astype(np.float64)
    norms = np.linalg.norm(flat_ref, axis=1) * np.linalg.norm(flat_test, axis=1)
    cosine = np.where(norms > 0, np.sum(flat_ref * flat_test, axis=1) / np.maximum(norms, 1e-30), 1.0)
    result: dict[str, Any] = {
        "rows": rows,
        "cosine_mean": float(np.mean(cosine)),
        "cosine_min": float(np.min(cosine)),
        "max_abs_error": float(np.max(np.abs(flat_ref - flat_test))) if flat_ref.size else 0.0,
        "sqnr_db": sqnr_db(flat_ref, flat_test),
        "top1_agreement": None,
        "accuracy": None,
    }
    if reference.ndim == 2 and reference.shape[1] > 1:
        top_ref, top_test = reference.argmax(1), test.argmax(1)
        result["top1_agreement"] = float(np.mean(top_ref == top_test))
        if labels is not None:
            before, after = float(np.mean(top_ref == labels)), float(np.mean(top_test == labels))
            result["accuracy"] = {"before": before, "after": after, "drop_points": (before - after) * 100.0}
    return result


def fidelity(source: Path, artifact: Path, dataset: Dataset) -> dict[str, Any]:
    """Compare the first output of both models on every row of the dataset."""
    output = session(source).get_outputs()[0].name
    reference = run_outputs(source, dataset, [output])[output]
    if artifact.suffix == ".tflite":
        from edgekit.core.tflite_model import run_first_output

        test = run_first_output(artifact, dataset.inputs)
    else:
        test = run_outputs(artifact, dataset, [output])[output]
    return {"data": str(dataset.path), "output": output, **compare_outputs(reference, test, dataset.labels)}


def quality_loss(result: dict[str, Any]) -> float | None:
    """Points lost: accuracy drop with labels, else top-1 disagreement; None when neither applies."""
    if result.get("accuracy") is not None:
        return float(result["accuracy"]["drop_points"])
    if result.get("top1_agreement") is not None:
        return (1.0 - float(result["top1_agreement"])) * 100.0
    return None


def with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> bytes:
    """The model serialised with extra graph outputs (intermediate tensors) for inspection."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    existing = {o.name for o in copy.graph.output}
    for name in names:
        if name not in existing:
            copy.graph.output.append(onnx.ValueInfoProto(name=name))
    return copy.SerializeToString()


def per_layer_sqnr(
    source: onnx.ModelProto, artifact: onnx.ModelProto, dataset: Dataset, tensors: Sequence[str]
) -> dict[str, float]:
    """SQNR (dB) of each named intermediate tensor, artifact vs source; lower = more damaged."""
    reference = run_outputs(with_outputs(source, tensors), dataset, tensors)
    test = run_outputs(with_outputs(artifact, tensors), dataset, tensors)
    return {name: sqnr_db(reference[name], test[name]) for name in tensors}
