"""The recipes edgekit knows: each spec with its parameters, how it is applied, and what it
needs (calibration rows, a converter). `RECIPES` maps each name to its spec, in the order the
help text lists them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgekit.compress.data import calibration_batches
from edgekit.compress.params import Param
from edgekit.compress.quantize import (
    fp16,
    int4_weight,
    int8_dynamic,
    int8_static,
    missing_calibration,
    preprocess,
    to_qdq_opset,
)
from edgekit.compress.recipe import FloatFallback, RecipeSpec, StepContext
from edgekit.compress.subgraphs import quantize_branches_static
from edgekit.compress.tflite import require_converter, tflite_int8
from edgekit.core.onnx_model import graph_inputs, load_onnx

PREPARED_NAME = "prepared.onnx"  # int8-static's preprocessed float graph, in the run's workdir


def _prepared(ctx: StepContext) -> Path:
    return ctx.workdir / PREPARED_NAME


def _branches(params: Mapping[str, Any], ctx: StepContext, out: Path, excluded: list[str]) -> dict[str, Any]:
    """int8-static inside If branches (onnxruntime's static quantizer leaves subgraphs float)."""
    assert ctx.calib is not None  # the pipeline refuses a plan without it (needs_calibration)
    prepared = _prepared(ctx)
    feeds = list(calibration_batches(ctx.calib, graph_inputs(load_onnx(prepared))))
    return quantize_branches_static(
        prepared, out, dict(params), ctx.profile, feeds, ctx.workdir, exclude=excluded
    )


def _int8_static(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    """A model below opset 13 is first converted (to_qdq_opset); when that fails, int8_static
    quantizes per tensor and says so in the report. Weights inside If branches are quantized
    after the main graph (`_branches`)."""
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


def _fp16(params: Mapping[str, Any], source: Path, out: Path, ctx: StepContext) -> dict[str, Any]:
    return fp16(source, out, dict(params))


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
        "scheme": Param(str, "target", "activation/weight types", ("target", "u8s8", "s8s8")),
        "reduce-range": Param(str, "target", "7-bit weights", ("target", "yes", "no")),
        "symmetric-activations": Param(bool, False, "zero-point 0 for activations"),
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
    suffix=".tflite",
)
FP16 = RecipeSpec(
    "fp16",
    "float16 weights and compute (keeps float32 inputs and outputs)",
    _fp16,
    {"keep-io": Param(bool, True, "keep float32 model inputs and outputs")},
    terminal=True,
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
