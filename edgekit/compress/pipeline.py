"""`compress`: run a chain of recipes, measure fidelity, write the artifact directory atomically."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from edgekit.compress import guard
from edgekit.compress.data import Dataset, load_dataset, random_dataset
from edgekit.compress.fidelity import fidelity, quality_loss
from edgekit.compress.graph import QUANTIZABLE_OPS
from edgekit.compress.images import load_image_folder
from edgekit.compress.quantize import (
    check_quantizable,
    fp16,
    int4_weight,
    int8_dynamic,
    int8_static,
    missing_calibration,
    preprocess,
)
from edgekit.compress.recipes import RECIPES, RecipeStep
from edgekit.compress.tflite import require_converter, tflite_int8
from edgekit.core.artifact_writer import ARTIFACT_STEM, artifact_manifest, prepare_out_dir, publish
from edgekit.core.artifacts import MANIFEST_NAME, load_artifact
from edgekit.core.errors import InputSpecError, UsageError
from edgekit.core.onnx_model import TensorInfo, graph_inputs, load_onnx
from edgekit.core.profiles import DeviceProfile

CALIB_RANDOM_ROWS = 64
EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class CompressOptions:
    steps: list[RecipeStep]
    profile: DeviceProfile
    calib: Path | None = None
    eval: Path | None = None
    max_accuracy_drop: float | None = None
    calib_random: bool = False
    force: bool = False
    seed: int = 0
    image_preprocess: str = "unit"  # for image-folder data: unit, imagenet, symmetric or raw
    per_layer: bool = False  # add each quantized node's SQNR loss to the fidelity report


@dataclass
class Context:
    options: CompressOptions
    source: Path  # the user's float model: every accuracy drop is measured against it
    calib: Dataset | None
    workdir: Path
    emit: EventCallback


def _dataset(path: Path, inputs: list[TensorInfo], option: str, options: CompressOptions) -> Dataset:
    """An .npz file, or a folder of images for a one-input image model."""
    if not path.is_dir():
        return load_dataset(path, inputs, option)
    if len(inputs) != 1:
        raise InputSpecError(
            f"{option} {path}: an image folder feeds one-input models; this one has {len(inputs)}"
        )
    return load_image_folder(path, inputs[0], options.image_preprocess, option)


def _load_data(model: onnx.ModelProto, options: CompressOptions) -> tuple[Dataset | None, Dataset | None]:
    inputs = graph_inputs(model)
    calib = _dataset(options.calib, inputs, "--calib", options) if options.calib else None
    if calib is None and options.calib_random:
        calib = random_dataset(inputs, CALIB_RANDOM_ROWS, options.seed)
    evaluation = _dataset(options.eval, inputs, "--eval", options) if options.eval else None
    if options.max_accuracy_drop is not None:
        if evaluation is None:
            raise UsageError("--max-accuracy-drop needs --eval EVAL.npz with a 'labels' array")
        if evaluation.labels is None:
            raise InputSpecError(
                f"--eval {options.eval}: no 'labels' array, but --max-accuracy-drop asks for accuracy"
            )
    return calib, evaluation


def _check_plan(model: onnx.ModelProto, options: CompressOptions, calib: Dataset | None) -> None:
    """Fail before any work: unquantizable model, missing calibration data."""
    for step in options.steps:
        if RECIPES[step.name].quantizes:
            check_quantizable(model, step.name)
        if step.name in ("int8-static", "tflite-int8") and calib is None:
            raise missing_calibration(step.name)
        if step.name == "tflite-int8":
            require_converter()
        if step.name == "prune-channels" and step.params["reconstruct"] and calib is None:
            raise UsageError(
                "prune-channels reconstructs the next layers from calibration data: give --calib, "
                "or prune-channels:RATIO,reconstruct=no"
            )


def _apply(step: RecipeStep, source: Path, out: Path, ctx: Context) -> dict[str, Any]:
    profile, params = ctx.options.profile, step.params
    if step.name == "int8-static":
        prepared = ctx.workdir / "prepared.onnx"
        report = preprocess(source, prepared)
        return {**report, **int8_static(prepared, out, params, ctx.calib, profile)}
    if step.name == "int8-dynamic":
        return int8_dynamic(source, out, params, profile)
    if step.name == "tflite-int8":
        assert ctx.calib is not None  # _check_plan refuses a plan without it
        return tflite_int8(source, out, ctx.calib, graph_inputs(load_onnx(source)), ctx.workdir)
    if step.name == "int4-weight":
        return int4_weight(source, out, params)
    if step.name == "fp16":
        return fp16(source, out, params)
    if step.name == "prune-magnitude":
        from edgekit.compress.prune import prune_magnitude

        return prune_magnitude(source, out, params)
    if step.name == "prune-channels":
        from edgekit.compress.prune import prune_channels

        return prune_channels(source, out, params, ctx.calib)
    if step.name == "lowrank":
        from edgekit.compress.lowrank import lowrank

        return lowrank(source, out, params)
    raise UsageError(f"recipe {step.name!r} is not implemented")


def _guard(ctx: Context, artifact: Path, evaluation: Dataset, report: dict[str, Any]) -> dict[str, Any]:
    """Keep sensitive nodes float until the accuracy drop <= --max-accuracy-drop."""
    tolerance = float(ctx.options.max_accuracy_drop or 0.0)
    loss = quality_loss(report)
    result: dict[str, Any] = {"tolerance_points": tolerance, "loss_points": loss}
    if loss is None:
        return {
            **result,
            "met": False,
            "reason": "no accuracy measurable: the first output is not [N, classes]",
        }
    if loss <= tolerance:
        return {**result, "met": True, "kept_float": []}
    last = ctx.options.steps[-1]
    if last.name != "int8-static":
        return {**result, "met": False, "reason": f"no float fallback for {last.name}"}
    prepared = ctx.workdir / "prepared.onnx"
    ctx.emit(
        {"phase": "guard", "message": f"accuracy drop {loss:.2f} > {tolerance:g} points: ranking layers"}
    )
    try:
        ranked = guard.rank_by_sqnr(prepared, artifact, evaluation)
        method = "per-layer SQNR"
    except Exception:  # intermediate tensors unreadable: measure instead
        nodes = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type in QUANTIZABLE_OPS]
        ranked = guard.rank_one_at_a_time(
            nodes, lambda keep: _attempt(ctx, prepared, last, keep, evaluation)[0]
        )
        method = "one-at-a-time"
    attempts: dict[tuple[str, ...], Path] = {}

    def attempt(excluded: list[str]) -> float:
        loss_points, path = _attempt(ctx, prepared, last, excluded, evaluation)
        attempts[tuple(excluded)] = path
        ctx.emit(
            {"phase": "guard", "message": f"{len(excluded)} node(s) float: drop {loss_points:.2f} points"}
        )
        return loss_points

    search = guard.search_exclusions(ranked, tolerance, attempt)
    best = search["best"]
    if best["loss_points"] >= loss:  # keeping nodes float did not help: the plain artifact stays
        return {**result, "met": False, "method": method, "kept_float": [], "trail": search["trail"]}
    shutil.copyfile(attempts[tuple(best["excluded"])], artifact)
    drops = {s.node: s.sqnr_drop_db for s in ranked}
    return {
        **result,
        "met": search["met"],
        "method": method,
        "loss_points": best["loss_points"],
        "kept_float": [
            {"node": node, "why": f"most sensitive by {method}", "score": round(drops[node], 3)}
            for node in best["excluded"]
        ],
        "trail": search["trail"],
    }


def _attempt(
    ctx: Context, prepared: Path, step: RecipeStep, excluded: list[str], evaluation: Dataset
) -> tuple[float, Path]:
    out = ctx.workdir / f"guard-{len(list(ctx.workdir.glob('guard-*')))}.onnx"
    int8_static(prepared, out, step.params, ctx.calib, ctx.options.profile, exclude=excluded)
    loss = quality_loss(fidelity(ctx.source, out, evaluation))
    return (loss if loss is not None else float("inf")), out


def compress(
    model_path: Path, out_dir: Path, options: CompressOptions, on_event: EventCallback | None = None
) -> dict[str, Any]:
    emit = on_event or (lambda event: None)
    source = load_artifact(model_path)
    if source.format != "onnx":
        raise UsageError(f"{source.path}: compress takes ONNX models, got {source.format}")
    model = load_onnx(source.path)
    calib, evaluation = _load_data(model, options)
    _check_plan(model, options, calib)
    staging = prepare_out_dir(out_dir, options.force)
    try:
        with tempfile.TemporaryDirectory(prefix="edgekit-compress-") as scratch:
            ctx = Context(options, source.path, calib, Path(scratch), emit)
            current = source.path
            reports = []
            for index, step in enumerate(options.steps):
                emit({"phase": "recipe", "message": f"{step.label()} ({index + 1}/{len(options.steps)})"})
                out = ctx.workdir / f"step{index}{'.tflite' if step.name == 'tflite-int8' else '.onnx'}"
                report = _apply(step, current, out, ctx)
                reports.append({"name": step.name, "params": step.params, "report": report})
                current = out
            artifact = staging / f"{ARTIFACT_STEM}{current.suffix}"
            shutil.copyfile(current, artifact)
            fidelity_data = evaluation or (calib if calib is not None and options.calib else None)
            fidelity_report: dict[str, Any] | None = None
            if fidelity_data is not None:
                emit({"phase": "fidelity", "message": f"comparing on {fidelity_data.rows} rows"})
                fidelity_report = fidelity(source.path, artifact, fidelity_data)
                if evaluation is None:
                    fidelity_report["note"] = "measured on the calibration data (no --eval given)"
            if options.per_layer and fidelity_report and options.steps[-1].name == "int8-static":
                ranked = guard.rank_by_sqnr(ctx.workdir / "prepared.onnx", artifact, fidelity_data)
                fidelity_report["per_layer_sqnr_drop_db"] = [
                    {"node": item.node, "sqnr_drop_db": round(float(item.sqnr_drop_db), 3)} for item in ranked
                ]
            guard_report = None
            if options.max_accuracy_drop is not None and evaluation is not None and fidelity_report:
                guard_report = _guard(ctx, artifact, evaluation, fidelity_report)
                if guard_report.get("kept_float"):
                    reports[-1]["report"]["kept_float"] = guard_report["kept_float"]
                    fidelity_report = fidelity(source.path, artifact, evaluation)
        manifest = artifact_manifest(
            artifact,
            {"path": str(source.path), "sha256": source.sha256, "size_bytes": source.size_bytes},
            target=options.profile.name,
            recipe=reports,
            fidelity=fidelity_report,
            accuracy_guard=guard_report,
        )
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        publish(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest["path"] = str(out_dir)
    return manifest
