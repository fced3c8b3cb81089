"""The recipes edgekit knows: each spec with its parameters, how it is applied, and what it
needs (calibration rows, a converter). `RECIPES` maps each name to its spec, in the order the
help text lists them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx

from edgekit.compress import guard
from edgekit.compress.data import calibration_batches
from edgekit.compress.graph import ensure_node_names, topological_sort
from edgekit.compress.params import Param
from edgekit.compress.quantize import (
    int4_weight,
    int8_dynamic,
    int8_static,
    missing_calibration,
    preprocess,
    refuse_quantized,
    to_qdq_opset,
)
from edgekit.compress.recipe import FloatFallback, RecipeSpec, StepContext
from edgekit.compress.subgraphs import quantize_branches_static
from edgekit.compress.tflite import check_calibration, require_converter, tflite_int8
from edgekit.core.onnx_model import graph_inputs, load_onnx, save_onnx

PREPARED_NAME = "prepared.onnx"  # int8-static's preprocessed float graph, in the run's workdir
FP16_SOURCE_NAME = "fp16-source.onnx"  # fp16's float input with every node named, in the workdir


def _prepared(ctx: StepContext) -> Path:
    return ctx.workdir / PREPARED_NAME


def _branches(params: Mapping[str, Any], ctx: StepContext, out: Path, excluded: list[str]) -> dict[str, Any]:
    """int8-static inside If branches and Loop/Scan bodies (onnxruntime's static quantizer leaves
    subgraphs float)."""
    assert ctx.calib is not None  # the pipeline refuses a plan without it (needs_calibration)
    prepared = _prepared(ctx)
    feeds = list(calibration_batches(ctx.calib, graph_inputs(load_onnx(prepared))))
    return quantize_branches_static(
        prepared, out, dict(params), ctx.profile, feeds, ctx.workdir, exclude=excluded
    )


def _int8_static(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    """A model below opset 13 is first converted (to_qdq_opset); when that fails, int8_static
    quantizes per tensor and says so in the report. Weights inside If branches and Loop/Scan
    bodies are quantized after the main graph (`_branches`)."""
    converted = ctx.workdir / "opset-converted.onnx"
    conversion = to_qdq_opset(source, converted)
    report = preprocess(converted if "opset_converted" in conversion else source, _prepared(ctx))
    report = {
        **conversion,
        **report,
        **int8_static(_prepared(ctx), out, dict(params), ctx.calib, ctx.profile),
    }
    return {**report, **_branches(params, ctx, out, [])}


def _int8_static_again(
    params: Mapping[str, Any], ctx: StepContext, excluded: list[str], out: Path
) -> dict[str, Any]:
    report = int8_static(_prepared(ctx), out, dict(params), ctx.calib, ctx.profile, exclude=excluded)
    return {**report, **_branches(params, ctx, out, excluded)}


def _int8_dynamic(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    return int8_dynamic(source, out, dict(params), ctx.profile)


def _int4_weight(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    return int4_weight(source, out, dict(params))


def _tflite_int8(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    assert ctx.calib is not None  # the pipeline refuses a plan without it (needs_calibration)
    return tflite_int8(source, out, ctx.calib, graph_inputs(load_onnx(source)), ctx.workdir)


def _fp16_source(ctx: StepContext) -> Path:
    return ctx.workdir / FP16_SOURCE_NAME


def _fp16_convert(source: Path, out: Path, params: Mapping[str, Any], blocked: list[str]) -> dict[str, Any]:
    """float16 weights and compute (onnxruntime.transformers.float16), the `blocked` nodes kept
    float32 with Casts around them."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # By path: the converter then infers shapes with onnx's infer_shapes_path, which takes models
    # over protobuf's 2 GB limit (its scratch file goes beside `source`, in the step's workdir).
    converted = convert_float_to_float16(
        str(source), keep_io_types=bool(params["keep-io"]), node_block_list=blocked or None
    )
    # The converter appends its input/output Casts at the end of the node list.
    save_onnx(topological_sort(_drop_cast_round_trips(converted)), out)
    return {"keep_io_types": bool(params["keep-io"]), "kept_float32": list(blocked)}


def _float32_tensors(model: onnx.ModelProto) -> set[str]:
    """Names of the main graph's tensors known to be float32 (inputs, initializers, and what
    onnx's shape inference can type; an empty inference is no error, just fewer names)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # a model shape inference cannot take keeps only the declared types
        inferred = model
    graph = inferred.graph
    typed = [*graph.input, *graph.value_info, *graph.output]
    names = {v.name for v in typed if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    names |= {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    names |= {
        n.output[0]
        for n in graph.node
        if n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT for a in n.attribute)
    }
    return names


def _drop_cast_round_trips(model: onnx.ModelProto) -> onnx.ModelProto:
    """Readers of Cast(float32 -> float16 -> float32) read the float32 tensor itself.

    onnxruntime's converter casts every blocked node's output to float16 and back for the next
    blocked node, so a value beyond 65504 between two float32 nodes still became inf. Mutates
    and returns `model`; float16 readers of the float16 tensor are left as they are."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    made_by = {n.output[0]: n for n in graph.node if n.op_type == "Cast" and n.output}
    float32 = _float32_tensors(model)

    def cast_to(node: onnx.NodeProto) -> int | None:
        return next((int(a.i) for a in node.attribute if a.name == "to"), None)

    rename: dict[str, str] = {}
    dropped: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "Cast" or cast_to(node) != onnx.TensorProto.FLOAT or node.output[0] in outputs:
            continue
        first = made_by.get(node.input[0])
        if (
            first is not None
            and cast_to(first) == onnx.TensorProto.FLOAT16
            and first.input[0] not in outputs
            and first.input[0] in float32  # Cast(int64 -> float16 -> float32) is no round trip
        ):
            rename[node.output[0]] = first.input[0]
            dropped.append(node)
    if not rename:
        return model
    for node in dropped:
        graph.node.remove(node)
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in rename:
                node.input[index] = rename[name]
    read = {name for node in graph.node for name in node.input} | outputs
    for node in [n for n in graph.node if n.op_type == "Cast" and n.output[0] not in read]:
        if cast_to(node) == onnx.TensorProto.FLOAT16:
            graph.node.remove(node)
    return model


def _fp16(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    """fp16, with the nodes whose float activations or weights exceed the float16 range on the
    calibration rows (when given) kept float32 from the start. Raises ModelError when the model
    is already quantized."""
    model = onnx.load(str(source))
    refuse_quantized(model, "fp16")
    save_onnx(ensure_node_names(model), _fp16_source(ctx))  # a block list names nodes
    blocked: list[str] = []
    if ctx.calib is not None:
        blocked = guard.out_of_fp16_range(guard.rank_by_range(_fp16_source(ctx), ctx.calib))
    report = _fp16_convert(_fp16_source(ctx), out, params, blocked)
    if blocked:
        report["kept_float32_why"] = "values beyond the float16 range (|x| > 65504) on the calibration rows"
    return report


def _fp16_again(
    params: Mapping[str, Any], ctx: StepContext, excluded: list[str], out: Path
) -> dict[str, Any]:
    return _fp16_convert(_fp16_source(ctx), out, params, excluded)


def _prune_magnitude(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    from edgekit.compress.prune import prune_magnitude

    return prune_magnitude(source, out, dict(params))


def _prune_channels(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    from edgekit.compress.prune import prune_channels

    return prune_channels(source, out, dict(params), ctx.calib)


def _lowrank(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    from edgekit.compress.lowrank import lowrank

    return lowrank(source, out, dict(params))


def _lowrank_default(params: dict[str, Any]) -> None:
    """Neither energy nor ratio given: keep 90% of the singular value energy."""
    if not params["energy"] and not params["ratio"]:
        params["energy"] = 0.9


def _always(params: Mapping[str, Any]) -> bool:
    return True


def _reconstructs(params: Mapping[str, Any]) -> bool:
    return bool(params["reconstruct"])


INT8_STATIC = RecipeSpec(
    "int8-static",
    "QDQ int8 with calibrated activations (weights per channel by default)",
    _int8_static,
    {
        "calib": Param(str, "minmax", "calibration method", ("minmax", "entropy", "percentile")),
        "per-channel": Param(bool, True, "per-channel weight scales"),
        "scheme": Param(str, "target", "activation/weight types", ("target", "u8s8", "s8s8", "u8u8")),
        "keep-first-float": Param(bool, True, "keep input-fed layers float (if <= 1/8 of layers)"),
        "keep-sensitive-float": Param(
            int, 2, "keep the N layers losing most SQNR float (0 = none)", minimum=0, maximum=64
        ),
        "reduce-range": Param(str, "target", "7-bit weights", ("target", "yes", "no")),
        "symmetric-activations": Param(bool, False, "zero-point 0 for activations"),
        "bias-correction": Param(bool, True, "shift biases by the mean quantization error on calib"),
    },
    quantizes=True,
    terminal=True,
    needs_calibration=_always,
    no_calibration_message=missing_calibration("int8-static").message,
    float_fallback=FloatFallback(_prepared, _int8_static_again),
)
INT8_DYNAMIC = RecipeSpec(
    "int8-dynamic",
    "int8 weights, activations quantized at run time (for MatMul-heavy models)",
    _int8_dynamic,
    {"per-channel": Param(bool, True, "per-channel weight scales")},
    quantizes=True,
    terminal=True,
)
INT4_WEIGHT = RecipeSpec(
    "int4-weight",
    "4-bit block-wise MatMul weights, float activations (MatMulNBits; for transformer-style models)",
    _int4_weight,
    {
        "block-size": Param(int, 32, "weights per scale", minimum=16, maximum=256),
        "symmetric": Param(bool, True, "zero-point-free 4-bit weights"),
    },
    quantizes=True,
    terminal=True,
)
TFLITE_INT8 = RecipeSpec(
    "tflite-int8",
    "full-integer int8 TFLite through onnx2tf + TensorFlow, calibrated on --calib (tflite extra)",
    _tflite_int8,
    quantizes=True,
    terminal=True,
    needs_calibration=_always,
    no_calibration_message=missing_calibration("tflite-int8").message,
    preflight=require_converter,
    check_calibration=check_calibration,
    suffix=".tflite",
)
FP16 = RecipeSpec(
    "fp16",
    "float16 weights and compute (keeps float32 inputs and outputs)",
    _fp16,
    {"keep-io": Param(bool, True, "keep float32 model inputs and outputs")},
    terminal=True,
    float_fallback=FloatFallback(_fp16_source, _fp16_again, rank=guard.rank_by_range, repair_floor=True),
)
PRUNE_MAGNITUDE = RecipeSpec(
    "prune-magnitude",
    "zero the smallest weights (unstructured; smaller compressed, not faster on dense runtimes)",
    _prune_magnitude,
    {"sparsity": Param(float, 0.5, "fraction of weights set to zero", minimum=0.0, maximum=0.99)},
    positional="sparsity",
)
PRUNE_CHANNELS = RecipeSpec(
    "prune-channels",
    "remove the lowest-L1 output channels of Conv/Gemm layers (structured; faster)",
    _prune_channels,
    {
        "ratio": Param(float, 0.5, "fraction of channels removed per layer", minimum=0.0, maximum=0.95),
        "reconstruct": Param(bool, True, "least-squares refit of the next layer on calibration data"),
        "multiple": Param(int, 8, "round kept channels up to a multiple of this", minimum=1, maximum=64),
    },
    positional="ratio",
    needs_calibration=_reconstructs,
    no_calibration_message=(
        "prune-channels reconstructs the next layers from calibration data: give --calib, "
        "or prune-channels:RATIO,reconstruct=no"
    ),
)
LOWRANK = RecipeSpec(
    "lowrank",
    "SVD factorisation of Gemm/MatMul weights (rank by retained energy or ratio)",
    _lowrank,
    {
        "energy": Param(float, 0.0, "retained squared singular value energy", minimum=0.0, maximum=1.0),
        "ratio": Param(float, 0.0, "rank as a fraction of full rank", minimum=0.0, maximum=1.0),
    },
    positional="ratio",
    complete=_lowrank_default,
)

RECIPES: dict[str, RecipeSpec] = {
    spec.name: spec
    for spec in (
        INT8_STATIC,
        INT8_DYNAMIC,
        INT4_WEIGHT,
        TFLITE_INT8,
        FP16,
        PRUNE_MAGNITUDE,
        PRUNE_CHANNELS,
        LOWRANK,
    )
}
