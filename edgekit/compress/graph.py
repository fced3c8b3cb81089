"""Small facts about ONNX graphs that several compression steps need."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import onnx

QUANTIZABLE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})
CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})
# Integer kernels that each replace one quantizable node (QOperator and weight-only formats).
INTEGER_KERNELS = frozenset(
    {
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "MatMulNBits",
        "QGemm",
        "DynamicQuantizeMatMul",
    }
)
# Every quantization operator: the integer kernels plus the QDQ and dynamic-quantization ones.
QUANTIZED_OPS = INTEGER_KERNELS | {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}


@dataclass(frozen=True)
class ScopedNode:
    """A node and where it sits: `scope` is "" for the main graph, else the path of control-flow
    nodes and graph attributes above it, e.g. "vad_if/then_branch" or "loop/body/inner/else_branch"."""

    scope: str
    node: onnx.NodeProto
    index: int  # position in its graph's node list

    @property
    def name(self) -> str:
        """The node's name, or `OpType_index` for an unnamed node."""
        return self.node.name or f"{self.node.op_type}_{self.index}"

    @property
    def where(self) -> str:
        """`scope/name` (the name alone in the main graph)."""
        return f"{self.scope}/{self.name}" if self.scope else self.name


def subgraphs(node: onnx.NodeProto) -> list[tuple[str, onnx.GraphProto]]:
    """The graphs a node holds in its attributes ((attribute name, graph); `NAME[i]` for a list
    of graphs): If's then/else branches, Loop's and Scan's body."""
    found: list[tuple[str, onnx.GraphProto]] = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            found.append((attr.name, attr.g))
        elif attr.type == onnx.AttributeProto.GRAPHS:
            found.extend((f"{attr.name}[{i}]", g) for i, g in enumerate(attr.graphs))
    return found


def walk(graph: onnx.GraphProto, scope: str = "") -> Iterator[ScopedNode]:
    """Every node of `graph` and, depth first, of every subgraph its nodes hold (recursively)."""
    for index, node in enumerate(graph.node):
        item = ScopedNode(scope, node, index)
        yield item
        for attr_name, sub in subgraphs(node):
            yield from walk(sub, f"{item.where}/{attr_name}")


def walk_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """`graph` and every graph nested in it."""
    yield graph
    for node in graph.node:
        for _, sub in subgraphs(node):
            yield from walk_graphs(sub)


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """op type -> number of nodes, subgraphs included."""
    counts: dict[str, int] = {}
    for item in walk(model.graph):
        counts[item.node.op_type] = counts.get(item.node.op_type, 0) + 1
    return counts


def quantization_ops(model: onnx.ModelProto) -> list[str]:
    """The quantization operators in the model (subgraphs included), sorted and unique: QuantizeLinear,
    DequantizeLinear, QLinear*, *Integer, MatMulNBits and the other QUANTIZED_OPS. A float16 or
    integer initializer alone (a weight stored in float16 and Cast at run time, an int64 shape)
    does not make a model quantized."""
    return sorted(
        {
            item.node.op_type
            for item in walk(model.graph)
            if item.node.op_type in QUANTIZED_OPS
            or item.node.op_type.startswith("QLinear")
            or item.node.op_type.endswith("Integer")
        }
    )


def is_quantized(model: onnx.ModelProto) -> bool:
    """Whether the graph already holds quantization operators (see `quantization_ops`)."""
    return bool(quantization_ops(model))


def quantizable_nodes(model: onnx.ModelProto) -> list[str]:
    """Names (`scope/name` inside subgraphs, see ScopedNode.where) of the nodes a quantizer would
    turn into integer kernels, in every graph of the model."""
    return [item.where for item in walk(model.graph) if item.node.op_type in QUANTIZABLE_OPS]


def ensure_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every node a name unique across the model and its subgraphs (exporters sometimes leave
    them empty; onnxruntime's exclusion lists match by name); mutates and returns."""
    seen: set[str] = set()
    index = 0
    for graph in walk_graphs(model.graph):
        for node in graph.node:
            if not node.name or node.name in seen:
                node.name = f"{node.op_type}_{index}"
                while node.name in seen:
                    index += 1
                    node.name = f"{node.op_type}_{index}"
            seen.add(node.name)
            index += 1
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
    """Reorder nodes so every input is produced before it is read (Kahn), in the main graph and in
    every If/Loop/Scan body (whose nodes may also read the enclosing graphs' tensors); mutates and
    returns. Raises ValueError for a cycle or a tensor nothing produces."""
    _sort_graph(model.graph, set())
    return model


def _sort_graph(graph: onnx.GraphProto, outer: set[str]) -> None:
    available = outer | {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    visible = set(available) | {out for node in graph.node for out in node.output}
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _sort_graph(attribute.g, visible)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for body in attribute.graphs:
                    _sort_graph(body, visible)
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(name in available for name in _reads(n))]
        if not ready:
            raise ValueError(f"graph {graph.name!r} has a cycle or reads a tensor nothing produces")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    copies = [onnx.NodeProto() for _ in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def _reads(node: onnx.NodeProto) -> set[str]:
    """The tensors a node needs before it runs: its inputs and, for If/Loop/Scan, the enclosing
    graph's tensors its bodies read (names a body neither produces nor declares)."""
    needed = set(node.input)
    for attribute in node.attribute:
        bodies = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)
        for body in bodies:
            needed |= _outer_reads(body)
    return needed


def _outer_reads(graph: onnx.GraphProto) -> set[str]:
    local = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    local |= {out for node in graph.node for out in node.output}
    reads: set[str] = set()
    for node in graph.node:
        reads |= {name for name in _reads(node) if name not in local}
    return reads
