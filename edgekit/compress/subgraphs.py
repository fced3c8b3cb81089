"""Quantization inside control flow (If/Loop/Scan subgraphs), and what a quantized model covers.

onnxruntime's dynamic quantizer walks subgraphs itself (extra option `EnableSubgraph`), and its
MatMulNBits quantizer does too. Its static QDQ quantizer does not: its calibrator only sees
tensors of the main graph. `quantize_subgraphs` therefore extracts each subgraph as a model of
its own, calibrates and quantizes it with the same settings, and puts it back (nested control
flow is handled the same way, recursively):

- an If branch: inputs are the outer-scope tensors the branch reads, captured by running the
  float model on the calibration feeds; rows are only the feeds whose condition takes that branch;
- a Loop/Scan body: it runs once per iteration on values the outer graph never holds, so the
  float model is run with each body input's per-iteration value exposed as an extra scan output
  (an Identity in the body, stacked by the runtime along axis 0), and the body is calibrated on
  those values sliced per iteration (at most MAX_BODY_FEEDS of them). A body whose values cannot
  be stacked (a carried tensor whose shape changes between iterations) stays float with that
  reason.

`coverage` counts, in a quantized model, the quantizable nodes (Conv, ConvTranspose, MatMul, Gemm,
subgraphs included) that became integer kernels or read DequantizeLinear outputs, and lists those
still float with the reason.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgekit.compress.graph import (
    CONTROL_FLOW_OPS,
    INTEGER_KERNELS,
    QUANTIZABLE_OPS,
    ScopedNode,
    subgraphs,
    topological_sort,
    walk,
    walk_graphs,
)
from edgekit.core.onnx_model import save_onnx
from edgekit.core.quiet import library_output_hidden

Feed = dict[str, np.ndarray]
# (float model file, quantized model file to write, calibration feeds) -> None
QuantizeFn = Callable[[Path, Path, Sequence[Feed]], None]


def _defined(graph: onnx.GraphProto) -> set[str]:
    """Names a graph defines itself: its inputs, initializers and node outputs (nested included)."""
    names = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    for sub in walk_graphs(graph):
        names |= {i.name for i in sub.input} | {i.name for i in sub.initializer}
        names |= {out for node in sub.node for out in node.output}
    return names


def outer_reads(graph: onnx.GraphProto) -> list[str]:
    """Names a subgraph (and the graphs nested in it) reads from enclosing scopes, in first-read order."""
    own = _defined(graph)
    reads: list[str] = []
    for item in walk(graph):
        for name in item.node.input:
            if name and name not in own and name not in reads:
                reads.append(name)
    reads += [o.name for o in graph.output if o.name not in own and o.name not in reads]
    return reads


def _run_with_outputs(model: onnx.ModelProto, feeds: Sequence[Feed], names: list[str]) -> list[Feed]:
    """For each feed, the values of the named main-graph tensors (float model, CPU)."""
    from edgekit.compress.fidelity import session, with_outputs

    sess = session(with_outputs(model, names))
    declared = {i.name for i in sess.get_inputs()}
    return [
        dict(zip(names, sess.run(names, {k: v for k, v in feed.items() if k in declared}), strict=True))
        for feed in feeds
    ]


def _value_info(name: str, value: np.ndarray) -> onnx.ValueInfoProto:
    """A typed input whose dims are symbolic (captured feeds may differ in size)."""
    elem = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
    return onnx.helper.make_tensor_value_info(name, elem, [f"{name}_d{i}" for i in range(value.ndim)])


def _branch_model(
    branch: onnx.GraphProto, outer: onnx.ModelProto, sample: Feed, weights: dict[str, onnx.TensorProto]
) -> onnx.ModelProto:
    """The branch as a standalone model: outer activations become inputs, outer weights local."""
    graph = copy.deepcopy(branch)
    reads = outer_reads(branch)
    graph.input.extend(_value_info(name, sample[name]) for name in reads if name in sample)
    graph.initializer.extend(copy.deepcopy(weights[name]) for name in reads if name in weights)
    model = onnx.helper.make_model(graph, opset_imports=outer.opset_import, ir_version=outer.ir_version)
    return onnx.shape_inference.infer_shapes(model)


def _put_back(original: onnx.GraphProto, quantized: onnx.GraphProto, prefix: str) -> onnx.GraphProto:
    """The quantized branch as a subgraph again: no inputs (If branches have none), every name it
    defines that the float branch did not (quantized weights, scales, Q/DQ outputs, outer weights
    copied in) prefixed so it cannot clash with a name of an enclosing graph or the other branch;
    the nodes the float branch had keep their names."""
    before = _defined(original)
    keep = before | {o.name for o in original.output}
    new_names = {
        name
        for name in {i.name for i in quantized.initializer} | {o for n in quantized.node for o in n.output}
        if name not in keep
    }

    def rename(name: str) -> str:
        return f"{prefix}{name}" if name in new_names else name

    names = {node.name for node in original.node if node.name}  # kept: coverage reports them
    graph = onnx.GraphProto(name=original.name)
    for node in quantized.node:
        copy_node = copy.deepcopy(node)
        copy_node.input[:] = [rename(n) for n in node.input]
        copy_node.output[:] = [rename(n) for n in node.output]
        copy_node.name = node.name if node.name in names else f"{prefix}{node.name}"
        graph.node.append(copy_node)
    for init in quantized.initializer:
        copy_init = copy.deepcopy(init)
        copy_init.name = rename(init.name)
        graph.initializer.append(copy_init)
    graph.output.extend(copy.deepcopy(o) for o in original.output)
    return graph


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    """Remove main-graph initializers no node of any graph reads any more."""
    used = {name for item in walk(model.graph) for name in item.node.input} | {
        o.name for o in model.graph.output
    }
    kept = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


MAX_BODY_FEEDS = 512  # per-iteration feeds a Loop/Scan body is calibrated on (evenly spaced)
CAPTURE_PREFIX = "edgekit_iter__"  # names of the per-iteration captures added to a body


def _capture_model(model: onnx.ModelProto, index: int) -> tuple[onnx.ModelProto, list[str]]:
    """`model` with its main-graph Loop/Scan node at `index` emitting, as extra scan outputs, the
    value each body input takes in every iteration (an Identity per body input, stacked by the
    runtime along a new axis 0), and those outputs exposed as graph outputs. Returns the model
    and the new output names, one per body input, in body-input order."""
    captured = copy.deepcopy(model)
    node = captured.graph.node[index]
    body = next(a.g for a in node.attribute if a.name == "body")
    names: list[str] = []
    for k, body_input in enumerate(body.input):
        inner = f"{CAPTURE_PREFIX}{index}_{k}"
        body.node.append(onnx.helper.make_node("Identity", [body_input.name], [inner], name=inner))
        elem = body_input.type.tensor_type.elem_type
        body.output.append(onnx.helper.make_tensor_value_info(inner, elem, None))
        outer = f"{inner}_stacked"
        node.output.append(outer)
        names.append(outer)
    if node.op_type == "Scan":  # one more axis/direction per scan output, where they are listed
        for attr in node.attribute:
            if attr.name in ("scan_output_axes", "scan_output_directions"):
                attr.ints.extend([0] * len(names))
    captured.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    return captured, names


def _iteration_feeds(
    float_model: onnx.ModelProto, index: int, feeds: Sequence[Feed], outer: list[str]
) -> list[Feed]:
    """The feeds a Loop/Scan body (main-graph node at `index`) sees, one per iteration per outer
    feed: its inputs' per-iteration values (see `_capture_model`) plus the outer-scope
    activations it reads (`outer`, constant across iterations). More than MAX_BODY_FEEDS are
    thinned to that many, evenly spaced. Raises what onnxruntime raises when it cannot stack
    the values (e.g. a carried tensor whose shape changes between iterations)."""
    from edgekit.compress.fidelity import session

    node = float_model.graph.node[index]
    body = next(a.g for a in node.attribute if a.name == "body")
    captured, names = _capture_model(float_model, index)
    exposed = {o.name for o in captured.graph.output}
    captured.graph.output.extend(onnx.ValueInfoProto(name=name) for name in outer if name not in exposed)
    sess = session(captured.SerializeToString())
    declared = {i.name for i in sess.get_inputs()}
    wanted = names + outer
    result: list[Feed] = []
    for feed in feeds:
        run = sess.run(wanted, {k: v for k, v in feed.items() if k in declared})
        values = dict(zip(wanted, run, strict=True))
        steps = min((len(values[n]) for n in names), default=0)
        for t in range(steps):
            item = {b.name: np.asarray(values[n][t]) for b, n in zip(body.input, names, strict=True)}
            result.append({**item, **{r: values[r] for r in outer}})
    if len(result) > MAX_BODY_FEEDS:
        picks = np.linspace(0, len(result) - 1, MAX_BODY_FEEDS).round().astype(int)
        result = [result[i] for i in picks]
    return result


def _body_model(
    body: onnx.GraphProto, outer: onnx.ModelProto, sample: Feed, weights: dict[str, onnx.TensorProto]
) -> onnx.ModelProto:
    """A Loop/Scan body as a standalone model: its own inputs typed from a captured iteration,
    outer activations it reads as further inputs, outer weights as local initializers."""
    graph = copy.deepcopy(body)
    del graph.input[:]
    graph.input.extend(_value_info(i.name, sample[i.name]) for i in body.input)
    reads = outer_reads(body)
    graph.input.extend(_value_info(name, sample[name]) for name in reads if name in sample)
    graph.initializer.extend(copy.deepcopy(weights[name]) for name in reads if name in weights)
    model = onnx.helper.make_model(graph, opset_imports=outer.opset_import, ir_version=outer.ir_version)
    return onnx.shape_inference.infer_shapes(model)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _quantize_body(
    float_model: onnx.ModelProto,
    index: int,
    qnode: onnx.NodeProto,
    feeds: Sequence[Feed],
    weights: dict[str, onnx.TensorProto],
    quantize: QuantizeFn,
    workdir: Path,
    scope: str,
) -> list[dict[str, Any]]:
    """Quantize the body of the Loop/Scan `qnode` (in the quantized model, mutated in place) as
    its own model, calibrated on the values its inputs take in each iteration of the float
    model's node at `index` run on `feeds`. Records as `quantize_subgraphs`; a body whose
    iterations cannot be captured or quantized stays float with the reason (one line)."""
    fnode = float_model.graph.node[index]
    body = next(a.g for a in fnode.attribute if a.name == "body")
    outer = [r for r in outer_reads(body) if r not in weights]
    try:
        body_feeds = _iteration_feeds(float_model, index, feeds, outer)
    except Exception as exc:
        why = f"its per-iteration values could not be captured for calibration: {_one_line(exc)}"
        return [{"scope": scope, "feeds": 0, "quantized": False, "why": why}]
    if not body_feeds:
        why = "no calibration feed runs an iteration"
        return [{"scope": scope, "feeds": 0, "quantized": False, "why": why}]
    stem = scope.replace("/", "_")
    src, dst = workdir / f"{stem}.float.onnx", workdir / f"{stem}.int8.onnx"
    try:
        float_body = _body_model(body, float_model, body_feeds[0], weights)
        onnx.save(float_body, str(src))
        quantize(src, dst, body_feeds)
        quant_body = onnx.load(str(dst))
        records = quantize_subgraphs(float_body, quant_body, body_feeds, quantize, workdir, f"{scope}/")
    except Exception as exc:
        why = f"quantizing the body on its per-iteration values failed: {_one_line(exc)}"
        return [{"scope": scope, "feeds": len(body_feeds), "quantized": False, "why": why}]
    graph = _put_back(body, quant_body.graph, f"{stem}/")
    graph.input.extend(copy.deepcopy(i) for i in body.input)
    next(a for a in qnode.attribute if a.name == "body").g.CopyFrom(graph)
    return [*records, {"scope": scope, "feeds": len(body_feeds), "quantized": True}]


def quantize_subgraphs(
    float_model: onnx.ModelProto,
    quant_model: onnx.ModelProto,
    feeds: Sequence[Feed],
    quantize: QuantizeFn,
    workdir: Path,
    label: str = "",
) -> list[dict[str, Any]]:
    """Quantize, in `quant_model` (the main graph already quantized, mutated in place), the
    subgraphs of each main-graph control-flow node that hold a quantizable node: each If branch
    calibrated on the feeds whose condition takes it; each Loop/Scan body calibrated on the
    values its inputs take in every iteration (see `_quantize_body`). Nested control flow is
    handled the same way, recursively. `float_model` is the float model `quant_model` was
    quantized from (same control-flow nodes, in order); `feeds` its calibration feeds. Returns
    one record per subgraph: scope, feeds, quantized or the reason it stayed float. Raises
    whatever `quantize` raises for an If branch."""
    flow = ("If", "Loop", "Scan")
    float_nodes = [(i, n) for i, n in enumerate(float_model.graph.node) if n.op_type in flow]
    quant_nodes = [n for n in quant_model.graph.node if n.op_type in flow]
    if not float_nodes or [n.op_type for _, n in float_nodes] != [n.op_type for n in quant_nodes]:
        return []
    weights = {init.name: init for init in float_model.graph.initializer}
    wanted: list[str] = []
    for _, node in float_nodes:
        if node.op_type != "If":
            continue
        for name in [node.input[0]] + [r for _, g in subgraphs(node) for r in outer_reads(g)]:
            if name not in weights and name not in wanted:
                wanted.append(name)
    captured = _run_with_outputs(float_model, feeds, wanted) if wanted else []
    records: list[dict[str, Any]] = []
    positions = {id(node): index for index, node in enumerate(quant_model.graph.node)}
    for (index, fnode), qnode in zip(float_nodes, quant_nodes, strict=True):
        qnode.name = qnode.name or f"{qnode.op_type}_{positions[id(qnode)]}"  # the name coverage() reports
        if fnode.op_type != "If":
            body = next(a.g for a in fnode.attribute if a.name == "body")
            if any(item.node.op_type in QUANTIZABLE_OPS for item in walk(body)):
                records += _quantize_body(
                    float_model, index, qnode, feeds, weights, quantize, workdir, f"{label}{qnode.name}/body"
                )
            continue
        name = qnode.name
        for attr in qnode.attribute:
            if attr.type != onnx.AttributeProto.GRAPH:
                continue
            taken = attr.name == "then_branch"
            scope = f"{label}{name}/{attr.name}"
            chosen = [c for c in captured if bool(np.asarray(c[fnode.input[0]]).reshape(-1)[0]) == taken]
            branch = next(a.g for a in fnode.attribute if a.name == attr.name)
            if not any(item.node.op_type in QUANTIZABLE_OPS for item in walk(branch)):
                continue
            if not chosen:
                why = "no calibration feed takes this branch"
                records.append({"scope": scope, "feeds": 0, "quantized": False, "why": why})
                continue
            reads = outer_reads(branch)
            branch_feeds = [{r: c[r] for r in reads if r in c} for c in chosen]
            float_branch = _branch_model(branch, float_model, branch_feeds[0], weights)
            stem = scope.replace("/", "_")
            src, dst = workdir / f"{stem}.float.onnx", workdir / f"{stem}.int8.onnx"
            onnx.save(float_branch, str(src))
            # a branch that reads no outer activation runs once, with no inputs
            quantize(src, dst, branch_feeds if branch_feeds[0] else [{}])
            quant_branch = onnx.load(str(dst))
            records += quantize_subgraphs(
                float_branch, quant_branch, branch_feeds, quantize, workdir, f"{scope}/"
            )
            attr.g.CopyFrom(_put_back(branch, quant_branch.graph, f"{stem}/"))
            records.append({"scope": scope, "feeds": len(chosen), "quantized": True})
    _drop_unused_initializers(quant_model)
    return records


def _dequantized(item: ScopedNode, producers: list[dict[str, str]]) -> bool:
    """Whether one of the node's first two inputs comes from a DequantizeLinear (any scope)."""
    for name in list(item.node.input)[:2]:
        for scope in reversed(producers):
            if name in scope:
                if scope[name] == "DequantizeLinear":
                    return True
                break
    return False


def _scan(
    graph: onnx.GraphProto, scope: str, producers: list[dict[str, str]]
) -> Iterator[tuple[ScopedNode, bool]]:
    """Each quantizable node or integer kernel, depth first, and whether it is quantized."""
    producers = [*producers, {out: node.op_type for node in graph.node for out in node.output}]
    for index, node in enumerate(graph.node):
        item = ScopedNode(scope, node, index)
        if node.op_type in INTEGER_KERNELS:
            yield item, True
        elif node.op_type in QUANTIZABLE_OPS:
            yield item, _dequantized(item, producers)
        for attr_name, sub in subgraphs(node):
            yield from _scan(sub, f"{item.where}/{attr_name}", producers)


def _why_float(
    item: ScopedNode, recipe: str, kept: set[str], weights: set[str], skipped: dict[str, str]
) -> str:
    in_body = "/body" in f"/{item.scope}"  # Loop's and Scan's graph attribute
    if item.node.name in kept or item.where in kept:
        return "kept float by the accuracy guard"
    for scope, why in skipped.items():
        if item.scope == scope or item.scope.startswith(f"{scope}/"):
            return why
    if recipe == "int4-weight" and item.node.op_type != "MatMul":
        return "int4-weight packs MatMul weights only"
    if recipe == "int8-static" and in_body:
        return (
            "inside a Loop/Scan body that was not calibrated (int8-dynamic quantizes it without calibration)"
        )
    if recipe == "int4-weight" and not any(name in weights for name in item.node.input[1:2]):
        return "its weight is computed at run time, not a constant"
    return "left float by onnxruntime's quantizer (unsupported input type or shape for this recipe)"


def coverage(
    model: onnx.ModelProto,
    recipe: str,
    kept_float: Sequence[str] = (),
    subgraph_records: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """How many quantizable nodes (Conv/ConvTranspose/MatMul/Gemm, subgraphs included) of a
    quantized model are quantized: {"quantizable", "quantized", "float": [{"node", "op", "why"}]},
    `node` being `scope/name` (see graph.ScopedNode.where). `kept_float`: node names the accuracy
    guard excluded; `subgraph_records`: `quantize_subgraphs`' records (a subgraph left float
    gives its nodes its reason)."""
    skipped = {r["scope"]: r["why"] for r in subgraph_records if not r.get("quantized")}
    weights = {i.name for g in walk_graphs(model.graph) for i in g.initializer}
    items = list(_scan(model.graph, "", []))
    kept = set(kept_float)
    floats = [
        {"node": item.where, "op": item.node.op_type, "why": _why_float(item, recipe, kept, weights, skipped)}
        for item, done in items
        if not done
    ]
    return {"quantizable": len(items), "quantized": len(items) - len(floats), "float": floats}


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """onnxruntime's quantizer logs advice on the root logger (the branch is already preprocessed)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quiet_stdout() -> contextlib.AbstractContextManager[Any]:
    """onnxruntime's histogram calibrators print progress (stdout carries --json output): hidden,
    as all library output (edgekit.core.quiet)."""
    return library_output_hidden()


def static_quantizer(params: dict[str, Any], profile: Any, exclude: Sequence[str] = ()) -> QuantizeFn:
    """The QuantizeFn for If branches: onnxruntime's QDQ quantize_static with the same settings
    `quantize.int8_static` uses for the main graph (scheme, per-channel, reduce-range,
    calibration method, symmetric activations), `exclude` kept float."""
    from onnxruntime.quantization import QuantFormat, quantize_static

    from edgekit.compress.quantize import CALIBRATION_METHODS, SCHEMES, ShapeGroupedReader, scheme_for

    scheme, reduce_range = scheme_for(params, profile)
    activation_type, weight_type = SCHEMES[scheme]

    def run(source: Path, out: Path, feeds: Sequence[Feed]) -> None:
        reader = ShapeGroupedReader.of_feeds(feeds)  # captured feeds may differ in shape
        with quiet_stdout(), _quiet_logging():
            quantize_static(
                str(source),
                str(out),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=bool(params["per-channel"]),
                reduce_range=reduce_range,
                activation_type=activation_type,
                weight_type=weight_type,
                nodes_to_exclude=list(exclude),
                calibrate_method=CALIBRATION_METHODS[params["calib"]],
                extra_options={
                    "ActivationSymmetric": bool(params.get("symmetric-activations", False)),
                    **reader.options(),
                },
            )

    return run


def has_branch_work(model: onnx.ModelProto) -> bool:
    """Whether a main-graph If/Loop/Scan node holds a quantizable node (in any subgraph, at any depth)."""
    return any(
        item.node.op_type in QUANTIZABLE_OPS
        for node in model.graph.node
        if node.op_type in CONTROL_FLOW_OPS
        for _, sub in subgraphs(node)
        for item in walk(sub)
    )


def quantize_branches_static(
    prepared: Path,
    out: Path,
    params: dict[str, Any],
    profile: Any,
    feeds: Sequence[Feed],
    workdir: Path,
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """int8-static's second pass: the If branches and Loop/Scan bodies of `out` (already
    QDQ-quantized from `prepared` by onnxruntime, subgraphs still float) quantized in place.
    Returns {"subgraphs": records} for the step's report, or {} when no subgraph holds a
    quantizable node."""
    float_model = onnx.load(str(prepared))
    if not has_branch_work(float_model):
        return {}
    quant_model = onnx.load(str(out))
    scratch = workdir / f"branches-{out.stem}"
    scratch.mkdir(parents=True, exist_ok=True)
    records = quantize_subgraphs(
        float_model, quant_model, feeds, static_quantizer(params, profile, exclude), scratch
    )
    save_onnx(topological_sort(quant_model), out)
    return {"subgraphs": records}
