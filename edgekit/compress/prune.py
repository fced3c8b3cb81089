"""Pruning: unstructured magnitude (sparsity) and structured L1 channel removal (real speed).

Channel removal follows a Conv's output through per-channel and channel-preserving nodes
(BatchNormalization, activations, pooling) to the layers that read it: another Conv, or
GlobalAveragePool -> Flatten -> Gemm/MatMul. Only such linear chains are pruned; a tensor that
also feeds an Add, a Concat, a graph output or several readers is left alone, so the graph
stays valid. The readers' weights are then refit by least squares on calibration activations
(He et al. 2017, "Channel Pruning for Accelerating Very Deep Neural Networks"; ThiNet) so that
accuracy recovers without a training framework.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgekit.compress.data import Dataset, shape_groups
from edgekit.compress.fidelity import run_outputs, with_outputs
from edgekit.compress.graph import consumers, ensure_node_names, initializers
from edgekit.core.errors import ModelError
from edgekit.core.onnx_model import save_onnx

CHANNEL_WISE = frozenset(
    {
        "Relu",
        "LeakyRelu",
        "Clip",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Elu",
        "Selu",
        "Softplus",
        "MaxPool",
        "AveragePool",
        "Identity",
        "Dropout",
    }
)
MAX_PATCH_ROWS = 60_000  # rows of the least-squares problem; a seeded subsample beyond this
RIDGE = 1e-4  # relative Tikhonov term: keeps the refit stable when channels are correlated


def _weight_names(model: onnx.ModelProto) -> list[str]:
    weights = initializers(model)
    names = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(node.input) > 1:
            name = node.input[1]
            if name in weights and len(weights[name].dims) >= 2:
                names.append(name)
    return list(dict.fromkeys(names))


def _gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6))


def prune_magnitude(source: Path, out: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Zero the smallest-magnitude fraction of each weight tensor (layer-wise)."""
    model = onnx.load(str(source))
    sparsity = float(params["sparsity"])
    weights = initializers(model)
    names = _weight_names(model)
    if not names:
        raise ModelError("prune-magnitude: no Conv/Gemm/MatMul weights to prune")
    zeroed = total = 0
    for name in names:
        array = numpy_helper.to_array(weights[name]).astype(np.float32)
        count = int(array.size * sparsity)
        if count:
            threshold_index = np.argsort(np.abs(array), axis=None)[:count]
            flat = array.reshape(-1).copy()
            flat[threshold_index] = 0.0
            array = flat.reshape(array.shape)
        zeroed += int(np.sum(array == 0))
        total += array.size
        weights[name].CopyFrom(numpy_helper.from_array(array, name))
    save_onnx(model, out)
    return {
        "layers": len(names),
        "sparsity_achieved": zeroed / total,
        "size_bytes_before": source.stat().st_size,
        "size_bytes_after": out.stat().st_size,
        "gzip_bytes_before": _gzip_size(source),
        "gzip_bytes_after": _gzip_size(out),
        "note": "zeros are stored densely: the file is as large, it only compresses better, and "
        "dense runtimes such as onnxruntime do the same work on zeros (no speed-up)",
    }


@dataclass
class Chain:
    """A prunable Conv and everything its output channels flow into."""

    conv: onnx.NodeProto
    per_channel: list[onnx.NodeProto] = field(default_factory=list)  # BN nodes on the path
    readers: list[tuple[onnx.NodeProto, str]] = field(default_factory=list)  # (node, "conv"|"fc-transB"|...)


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _find_chains(model: onnx.ModelProto) -> list[Chain]:
    weights = initializers(model)
    readers_of = consumers(model)
    outputs = {o.name for o in model.graph.output}

    def sole_reader(tensor: str) -> onnx.NodeProto | None:
        readers = readers_of.get(tensor, [])
        return readers[0] if len(readers) == 1 and tensor not in outputs else None

    chains = []
    for node in model.graph.node:
        if node.op_type != "Conv" or _attr(node, "group", 1) != 1 or node.input[1] not in weights:
            continue
        chain = Chain(node)
        tensor = node.output[0]
        reader = sole_reader(tensor)
        while reader is not None and (
            reader.op_type in CHANNEL_WISE or reader.op_type == "BatchNormalization"
        ):
            if reader.op_type == "BatchNormalization":
                if not all(name in weights for name in reader.input[1:5]):
                    reader = None
                    break
                chain.per_channel.append(reader)
            tensor = reader.output[0]
            reader = sole_reader(tensor)
        if reader is None:
            continue
        if reader.op_type == "Conv" and _attr(reader, "group", 1) == 1 and reader.input[0] == tensor:
            if reader.input[1] in weights:
                chain.readers.append((reader, "conv"))
        elif reader.op_type == "GlobalAveragePool":
            flatten = sole_reader(reader.output[0])
            fc = (
                sole_reader(flatten.output[0])
                if flatten is not None and flatten.op_type == "Flatten"
                else None
            )
            if (
                fc is not None
                and fc.op_type == "Gemm"
                and fc.input[1] in weights
                and _attr(fc, "transA", 0) == 0
            ):
                chain.readers.append((fc, "gemm-transB" if _attr(fc, "transB", 0) else "gemm"))
            elif fc is not None and fc.op_type == "MatMul" and fc.input[1] in weights:
                chain.readers.append((fc, "gemm"))
        if chain.readers:
            chains.append(chain)
    return chains


def _set(weights: dict[str, onnx.TensorProto], name: str, array: np.ndarray) -> None:
    weights[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array.astype(np.float32)), name))


def _get(weights: dict[str, onnx.TensorProto], name: str) -> np.ndarray:
    return numpy_helper.to_array(weights[name]).astype(np.float32)


def _apply_keep(model: onnx.ModelProto, chain: Chain, keep: np.ndarray) -> None:
    weights = initializers(model)
    conv = chain.conv
    _set(weights, conv.input[1], _get(weights, conv.input[1])[keep])
    if len(conv.input) > 2 and conv.input[2]:
        _set(weights, conv.input[2], _get(weights, conv.input[2])[keep])
    for bn in chain.per_channel:
        for name in bn.input[1:5]:
            _set(weights, name, _get(weights, name)[keep])
    for reader, kind in chain.readers:
        weight = _get(weights, reader.input[1])
        if kind in ("conv", "gemm-transB"):
            _set(weights, reader.input[1], weight[:, keep])
        else:
            _set(weights, reader.input[1], weight[keep, :])


def _keep_count(channels: int, ratio: float, multiple: int) -> int:
    """Channels kept, rounded up to a multiple the CPU kernels block by (8 floats per AVX2 register,
    4 per NEON register): 22 channels run no faster than 24, so rounding keeps accuracy for free."""
    keep = max(1, round(channels * (1.0 - ratio)))
    if multiple > 1 and channels >= 2 * multiple:
        keep = min(channels, -(-keep // multiple) * multiple)
    return keep


def _bn_scale(chain: Chain, weights: dict[str, onnx.TensorProto]) -> np.ndarray | float:
    """|gamma| / sqrt(var + eps) of the BatchNorms after the Conv: what each filter's output is scaled
    by, so the L1 norm ranks the filters' effective (BN-folded) weights, not their raw ones."""
    scale: np.ndarray | float = 1.0
    for bn in chain.per_channel:
        gamma, var = _get(weights, bn.input[1]), _get(weights, bn.input[4])
        scale = scale * np.abs(gamma) / np.sqrt(var + _attr(bn, "epsilon", 1e-5))
    return scale


def _clear_shapes(model: onnx.ModelProto) -> None:
    """Intermediate shapes changed; let runtimes infer them again."""
    del model.graph.value_info[:]


def _im2col(x: np.ndarray, node: onnx.NodeProto, kernel: tuple[int, int]) -> np.ndarray:
    """(N, C, H, W) -> (N * Ho * Wo, C * kh * kw), matching Conv's weight layout."""
    kh, kw = kernel
    sh, sw = _attr(node, "strides", [1, 1])
    dh, dw = _attr(node, "dilations", [1, 1])
    pads = _attr(node, "pads", [0, 0, 0, 0])
    if _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError("auto_pad convolutions are not refit")
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, c, h, w = x.shape
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x[:, :, i * dh : i * dh + sh * ho : sh, j * dw : j * dw + sw * wo : sw]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * ho * wo, c * kh * kw)


def _solve(a: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ridge least squares with a bias column: returns (features + 1, outputs)."""
    if len(a) > MAX_PATCH_ROWS:
        rows = rng.choice(len(a), MAX_PATCH_ROWS, replace=False)
        a, y = a[rows], y[rows]
    a = np.hstack([a, np.ones((len(a), 1), np.float32)]).astype(np.float64)
    gram = a.T @ a
    gram += np.eye(len(gram)) * RIDGE * np.trace(gram) / len(gram)
    return np.linalg.solve(gram, a.T @ y.astype(np.float64))


def _refit_samples(
    original: onnx.ModelProto,
    pruned: onnx.ModelProto,
    reader: onnx.NodeProto,
    kind: str,
    calib: Dataset,
    kept: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """(a, y) for one reader's least-squares refit: its input on the pruned model as rows (conv:
    im2col patches [pixels, cin*kh*kw]; gemm: [rows, features]) and the original model's output
    as rows ([pixels or rows, cout]; a pruned reader: its kept channels). Computed per group of
    equal-shaped feeds (data.shape_groups: a per-feed set of images of several sizes) and the
    rows joined, so every sample is real (no padding)."""
    target_name, input_name = reader.output[0], reader.input[0]
    a_parts, y_parts = [], []
    for group in shape_groups(calib):
        target = run_outputs(with_outputs(original, [target_name]), group, [target_name], pad=False)[
            target_name
        ]
        if reader.name in kept:
            target = target[:, kept[reader.name]]
        x = run_outputs(with_outputs(pruned, [input_name]), group, [input_name], pad=False)[input_name]
        if kind == "conv":
            kh, kw = _get(initializers(pruned), reader.input[1]).shape[2:]
            a_parts.append(_im2col(x, reader, (kh, kw)))
            y_parts.append(target.transpose(0, 2, 3, 1).reshape(-1, target.shape[1]))
        else:
            a_parts.append(x.reshape(len(x), -1))
            y_parts.append(target.reshape(len(target), -1))
    return np.concatenate(a_parts), np.concatenate(y_parts)


def _refit(
    original: onnx.ModelProto,
    pruned: onnx.ModelProto,
    chain: Chain,
    calib: Dataset,
    kept: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> dict[str, float]:
    """Refit each reader so its output on the pruned input matches the original model's.

    `kept` maps a pruned Conv to the output channels it kept: a reader that was itself pruned
    must match only those channels of the original output.
    """
    errors = {}
    for reader, kind in chain.readers:
        a, y = _refit_samples(original, pruned, reader, kind, calib, kept)
        weights = initializers(pruned)
        weight = _get(weights, reader.input[1])
        has_bias = len(reader.input) > 2 and bool(reader.input[2])
        before = float(np.mean((_predict(a, weight, kind, has_bias, weights, reader) - y) ** 2))
        solution = _solve(a, y, rng)
        new_weight, new_bias = solution[:-1].T.astype(np.float32), solution[-1].astype(np.float32)
        if kind == "conv":
            new_weight = new_weight.reshape(weight.shape)
        elif kind == "gemm":
            new_weight = new_weight.T
        after = float(np.mean((a @ solution[:-1] + solution[-1] - y) ** 2))
        if after >= before:
            errors[reader.name] = before
            continue  # the refit did not help (rare): keep the sliced weights
        _set(weights, reader.input[1], new_weight)
        if has_bias:
            _set(weights, reader.input[2], new_bias)
        else:
            bias_name = f"{reader.name}_refit_bias"
            pruned.graph.initializer.append(numpy_helper.from_array(new_bias, bias_name))
            if len(reader.input) == 2:
                reader.input.append(bias_name)
            else:
                reader.input[2] = bias_name
        errors[reader.name] = after
    return errors


def _predict(
    a: np.ndarray,
    weight: np.ndarray,
    kind: str,
    has_bias: bool,
    weights: dict[str, onnx.TensorProto],
    reader: onnx.NodeProto,
) -> np.ndarray:
    if kind == "conv":
        matrix = weight.reshape(len(weight), -1).T
    elif kind == "gemm-transB":
        matrix = weight.T
    else:
        matrix = weight
    out = a @ matrix
    return out + _get(weights, reader.input[2]) if has_bias else out


def prune_channels(source: Path, out: Path, params: dict[str, Any], calib: Dataset | None) -> dict[str, Any]:
    original = ensure_node_names(onnx.load(str(source)))
    pruned = onnx.ModelProto()
    pruned.CopyFrom(original)
    chains = _find_chains(pruned)
    if not chains:
        raise ModelError(
            "prune-channels: no prunable Conv chain (a Conv whose output feeds only another Conv or "
            "GlobalAveragePool -> Flatten -> Gemm, through BatchNormalization / activations / pooling)"
        )
    ratio = float(params["ratio"])
    weights = initializers(pruned)
    rng = np.random.default_rng(0)
    layers = []
    kept: dict[str, np.ndarray] = {}
    params_before = sum(int(np.prod(t.dims)) for t in pruned.graph.initializer)
    for chain in chains:
        weight = _get(weights, chain.conv.input[1])
        cout = weight.shape[0]
        keep_count = _keep_count(cout, ratio, int(params["multiple"]))
        l1 = np.abs(weight).reshape(cout, -1).sum(axis=1) * _bn_scale(chain, weights)
        keep = np.sort(np.argsort(-l1, kind="stable")[:keep_count])
        kept[chain.conv.name] = keep
        _apply_keep(pruned, chain, keep)
        layers.append({"node": chain.conv.name, "channels_before": cout, "channels_after": int(keep_count)})
    _clear_shapes(pruned)
    refit: dict[str, float] = {}
    if params["reconstruct"] and calib is not None:
        for chain in chains:
            refit.update(_refit(original, pruned, chain, calib, kept, rng))
    onnx.checker.check_model(pruned)
    save_onnx(pruned, out)
    params_after = sum(int(np.prod(t.dims)) for t in pruned.graph.initializer)
    return {
        "ratio": ratio,
        "criterion": "l1-norm of output filters (BatchNorm-folded)",
        "layers": layers,
        "parameters_before": params_before,
        "parameters_after": params_after,
        "reconstruction": "least squares on calibration activations" if refit else "none",
        "reconstruction_mse": refit,
    }
