"""Small facts about ONNX graphs that several compression steps need."""

from __future__ import annotations

import onnx

QUANTIZABLE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})
QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "MatMulNBits",
        "QGemm",
        "DynamicQuantizeMatMul",
    }
)


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def quantization_ops(model: onnx.ModelProto) -> list[str]:
    """The quantization operators in the main graph, sorted and unique: QuantizeLinear,
    DequantizeLinear, QLinear*, *Integer, MatMulNBits and the other QUANTIZED_OPS. A float16 or
    integer initializer alone (a weight stored in float16 and Cast at run time, an int64 shape)
    does not make a model quantized."""
    return sorted(
        {
            node.op_type
            for node in model.graph.node
            if node.op_type in QUANTIZED_OPS
            or node.op_type.startswith("QLinear")
            or node.op_type.endswith("Integer")
        }
    )


def is_quantized(model: onnx.ModelProto) -> bool:
    """Whether the graph already holds quantization operators (see `quantization_ops`)."""
    return bool(quantization_ops(model))


def quantizable_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of nodes a quantizer would turn into integer kernels."""
    return [node.name for node in model.graph.node if node.op_type in QUANTIZABLE_OPS]


def ensure_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every node a unique name (exporters sometimes leave them empty); mutates and returns."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)
    return model


def initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in model.graph.initializer}


def consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Tensor name -> nodes that read it."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return readers


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {name: node for node in model.graph.node for name in node.output}


def topological_sort(model: onnx.ModelProto) -> onnx.ModelProto:
    """Reorder nodes so every input is produced before it is read (Kahn); mutates and returns."""
    available = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    pending = list(model.graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:
            raise ValueError("graph has a cycle or reads a tensor nothing produces")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    copies = [onnx.NodeProto() for _ in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del model.graph.node[:]
    model.graph.node.extend(copies)
    return model
