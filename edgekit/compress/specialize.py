"""Specialise a model for fixed input values (`compress --fix-input NAME=VALUE`).

A fixed input becomes a constant initializer with the given value, and the graph is folded with
onnxruntime's BASIC graph optimisation level only (constant folding, redundant-node
elimination, ONNX-standard fusions). onnxruntime's constant folding replaces an If node whose
condition is constant by the nodes of the branch it takes (checked with onnxruntime 1.32;
`inline_constant_ifs` does the same for an If it leaves), so
control flow that depends only on fixed inputs (e.g. a voice-activity detector's
`If(Equal(sr, 16000))`) disappears and its weights reach the main graph, where every recipe
quantizes them. The EXTENDED and ALL levels are never used: they write x86-specific layouts and
com.microsoft contrib operators into a model meant to run on ARM boards too.

The specialised model no longer has the fixed inputs; sample sets may still hold arrays for them
(they are dropped, see `edgekit.compress.data.load_dataset`'s `ignore`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgekit.compress.graph import op_counts, topological_sort, walk_graphs
from edgekit.core.errors import ModelError, UsageError
from edgekit.core.onnx_model import TensorInfo, graph_inputs, is_fixed

OPTION = "--fix-input"


def parse_fix_inputs(texts: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` texts -> {name: value text}, in order. Raises UsageError (one line) for a
    text without `=`, an empty name or value, or a name given twice."""
    fixed: dict[str, str] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise UsageError(f"{OPTION} {text!r}: expected NAME=VALUE, e.g. {OPTION} sr=16000")
        if name in fixed:
            raise UsageError(f"{OPTION} {name}: given twice")
        fixed[name] = value
    return fixed


def _fixed_dims(info: TensorInfo) -> list[int] | None:
    """The input's shape when every dimension is a fixed positive number, else None."""
    dims = [d if is_fixed(d) else None for d in info.dims]
    return None if None in dims else [int(d) for d in dims if d is not None]


def parse_value(name: str, text: str, info: TensorInfo) -> np.ndarray:
    """The value of one fixed input, with the input's dtype (`info.dtype`, a numpy dtype name).

    `text` is a JSON number, boolean, or (nested) list, e.g. `16000`, `0.5`, `true`, `[1, 2, 3]`.
    Shape: a scalar for a rank-0 input; a scalar for an input of fixed shape fills that shape; a
    list must have the input's rank and agree with its fixed dimensions, or have as many elements
    as a fully fixed shape (then it is reshaped). Raises UsageError (one line) for a value that
    does not parse, does not fit the dtype (e.g. 0.5 for an integer input, 300 for uint8) or the
    shape."""
    where = f"{OPTION} {name}={text}"
    try:
        literal = json.loads(text)
    except ValueError:
        raise UsageError(f"{where}: not a number, true/false or a [list] of them") from None
    try:
        raw = np.asarray(literal)
        if raw.dtype == object or raw.dtype.kind not in "biuf":
            raise ValueError("not numeric")
        value = raw.astype(info.dtype)
        if not np.array_equal(value.astype(np.float64), raw.astype(np.float64)):
            raise ValueError("changes when cast")
    except (ValueError, TypeError, OverflowError):
        raise UsageError(f"{where}: not a value of input {name!r}'s dtype {info.dtype}") from None
    fixed = _fixed_dims(info)
    if value.ndim == 0 and len(info.dims) > 0:
        if fixed is None:
            raise UsageError(
                f"{where}: input {name!r} has shape {_shape_text(info)} with open dimensions; give a list"
            )
        return np.full(fixed, value, dtype=value.dtype)
    if fixed is not None and value.size == int(np.prod(fixed, dtype=np.int64)):
        return value.reshape(fixed)
    agrees = value.ndim == len(info.dims) and all(
        not is_fixed(d) or d == size for d, size in zip(info.dims, value.shape, strict=True)
    )
    if not agrees:
        expected = _shape_text(info)
        raise UsageError(f"{where}: shape {list(value.shape)} does not fit input {name!r} {expected}")
    return value


def _shape_text(info: TensorInfo) -> str:
    return "[" + ", ".join(str(d) if is_fixed(d) else str(d or "?") for d in info.dims) + "]"


def fixed_values(model: onnx.ModelProto, texts: Mapping[str, str]) -> dict[str, np.ndarray]:
    """{name: value} for `parse_fix_inputs`' result against the model's inputs. Raises
    UsageError naming the model's inputs for a name the model lacks or when every input would be
    fixed, and `parse_value`'s errors."""
    inputs = {info.name: info for info in graph_inputs(model)}
    values: dict[str, np.ndarray] = {}
    for name, text in texts.items():
        if name not in inputs:
            raise UsageError(f"{OPTION} {name}: the model has no such input; inputs: {', '.join(inputs)}")
        values[name] = parse_value(name, text, inputs[name])
    if values and set(values) == set(inputs):
        raise UsageError(
            f"{OPTION}: every input of the model ({', '.join(inputs)}) is fixed; nothing would be "
            "left to feed (the whole model folds to constants)"
        )
    return values


def fix_inputs(model: onnx.ModelProto, values: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` where each named graph input is removed and a constant initializer of
    the same name holds its value (an initializer of that name, if the input had a default, is
    replaced). Nothing is folded yet (see `fold_basic`)."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    kept_inputs = [i for i in fixed.graph.input if i.name not in values]
    del fixed.graph.input[:]
    fixed.graph.input.extend(kept_inputs)
    kept_inits = [i for i in fixed.graph.initializer if i.name not in values]
    del fixed.graph.initializer[:]
    fixed.graph.initializer.extend(kept_inits)
    fixed.graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in values.items())
    return fixed


def fold_basic(source: Path, out: Path) -> None:
    """Fold the model at `source` with onnxruntime's BASIC graph optimisation level on the CPU
    provider and write the result to `out` (onnxruntime's `optimized_model_filepath`). Weights of
    a source with external data go to one file `<out name>.data` next to `out`. Opset imports
    the folded model does not use (onnxruntime adds its own domains) are dropped, and the nodes
    are put in topological order. Raises
    ModelError (one line, onnxruntime's message) for a model onnxruntime cannot load."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(out)
    header = onnx.load(str(source), load_external_data=False)
    external = any(init.data_location == onnx.TensorProto.EXTERNAL for init in header.graph.initializer)
    if external:
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", f"{out.name}.data"
        )
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... classes
        text = " ".join(str(exc).split())[:300]
        raise ModelError(f"{OPTION}: onnxruntime could not fold the specialised model: {text}") from None
    folded = onnx.load(str(out), load_external_data=False)
    used = {n.domain for g in walk_graphs(folded.graph) for n in g.node} | {"", "ai.onnx"}
    original = {o.domain for o in header.opset_import}
    kept = [o for o in folded.opset_import if o.domain in used or o.domain in original]
    del folded.opset_import[:]
    folded.opset_import.extend(kept)
    # onnxruntime writes the nodes of an inlined If branch where the If was, which can precede
    # the producers of what they read from the enclosing graph
    onnx.save(topological_sort(folded), str(out))


def _constant_condition(graph: onnx.GraphProto, name: str) -> bool | None:
    """The value of a main-graph If condition that is an initializer or a Constant node's output
    (one element), else None."""
    for init in graph.initializer:
        if init.name == name:
            value = numpy_helper.to_array(init)
            return bool(value.reshape(-1)[0]) if value.size == 1 else None
    for node in graph.node:
        if node.op_type == "Constant" and list(node.output) == [name]:
            attr = next((a for a in node.attribute if a.name == "value"), None)
            if attr is not None:
                value = numpy_helper.to_array(attr.t)
                return bool(value.reshape(-1)[0]) if value.size == 1 else None
    return None


def _rename_reads(graph: onnx.GraphProto, names: Mapping[str, str]) -> None:
    """Rename, in `graph` and the graphs nested in it, every node input found in `names` (a
    nested graph that defines a name of its own shadows it: not renamed there)."""
    own = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    own |= {out for node in graph.node for out in node.output}
    visible = {k: v for k, v in names.items() if k not in own}
    for node in graph.node:
        node.input[:] = [visible.get(n, n) for n in node.input]
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _rename_reads(attr.g, visible)
            for sub in attr.graphs:
                _rename_reads(sub, visible)
    for out in graph.output:
        out.name = visible.get(out.name, out.name)


def inline_constant_ifs(model: onnx.ModelProto) -> int:
    """Replace each main-graph If whose condition is constant (an initializer or Constant node)
    by the nodes of the branch it takes, in place; returns how many were replaced. The branch's
    own tensors and node names get the prefix `<If name>/` (unique in the model), its outputs
    are wired to the If's outputs by Identity nodes, and what it reads from enclosing scopes is
    kept. onnxruntime's BASIC constant folding does this itself (`fold_basic`); this is the
    fallback for an If it left in place. Nodes are left in topological order."""
    graph = model.graph
    replaced = 0
    nodes: list[onnx.NodeProto] = []
    for index, node in enumerate(graph.node):
        taken = _constant_condition(graph, node.input[0]) if node.op_type == "If" else None
        if taken is None:
            nodes.append(node)
            continue
        branch = onnx.GraphProto()
        branch.CopyFrom(
            next(a.g for a in node.attribute if a.name == ("then_branch" if taken else "else_branch"))
        )
        prefix = f"{node.name or f'If_{index}'}/"
        local = {i.name for i in branch.initializer} | {o for n in branch.node for o in n.output}
        names = {name: f"{prefix}{name}" for name in local}
        for init in branch.initializer:
            init.name = names[init.name]
        for inner in branch.node:
            inner.output[:] = [names.get(o, o) for o in inner.output]
            inner.name = f"{prefix}{inner.name}" if inner.name else ""
        _rename_reads(branch, names)
        graph.initializer.extend(branch.initializer)
        nodes.extend(branch.node)
        for source, target in zip(branch.output, node.output, strict=True):
            nodes.append(onnx.helper.make_node("Identity", [source.name], [target], name=f"{prefix}{target}"))
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(nodes)
        topological_sort(model)
    return replaced


def specialize(source: Path, out: Path, values: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Fix `values` (see `fixed_values`) in the model at `source` and fold it (`fold_basic`) into
    `out`. Returns the manifest record: {"fixed_inputs": {name: value as a list or number},
    "folded_with": "onnxruntime ORT_ENABLE_BASIC", "if_nodes": {"before", "after"}} (If nodes
    in the whole model, subgraphs included), plus "inlined_by_edgekit": N when `inline_constant_ifs`
    had to resolve Ifs onnxruntime left. Raises ModelError when onnxruntime cannot fold it."""
    model = onnx.load(str(source))
    fixed = fix_inputs(model, values)
    staged = out.with_name(f"{out.stem}.fixed.onnx")
    onnx.save(fixed, str(staged))
    try:
        fold_basic(staged, out)
    finally:
        staged.unlink(missing_ok=True)
    folded = onnx.load(str(out), load_external_data=False)
    inlined = 0  # Ifs onnxruntime left although their condition is constant (nested ones next pass)
    while count := inline_constant_ifs(folded):
        inlined += count
    if inlined:
        onnx.save(folded, str(out))
    return {
        "fixed_inputs": {name: value.tolist() for name, value in values.items()},
        "folded_with": "onnxruntime ORT_ENABLE_BASIC",
        "if_nodes": {"before": op_counts(model).get("If", 0), "after": op_counts(folded).get("If", 0)},
        **({"inlined_by_edgekit": inlined} if inlined else {}),
    }
