"""`compress`: run a chain of recipes, measure fidelity, write the artifact directory atomically."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from edgekit.compress import guard
from edgekit.compress.data import Dataset, load_dataset, random_dataset
from edgekit.compress.fidelity import QualityFloor, degraded_reasons, fidelity, floor_shortfall, quality_loss
from edgekit.compress.graph import QUANTIZABLE_OPS
from edgekit.compress.images import load_image_folder
from edgekit.compress.quantize import check_quantizable
from edgekit.compress.recipe import FloatFallback, RecipeStep, StepContext
from edgekit.compress.specialize import fixed_values, specialize
from edgekit.compress.subgraphs import coverage
from edgekit.core.artifact_writer import (
    ARTIFACT_STEM,
    artifact_manifest,
    copy_model,
    staged_artifact_dir,
    write_manifest,
)
from edgekit.core.artifacts import Artifact, load_artifact
from edgekit.core.errors import EdgekitError, InputSpecError, ModelError, UsageError
from edgekit.core.inputs import is_feed_folder
from edgekit.core.onnx_model import TensorInfo, graph_inputs, load_onnx
from edgekit.core.profiles import DeviceProfile
from edgekit.core.quiet import library_output_hidden

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
    output_kinds: dict[str, str] = field(default_factory=dict)  # --output-kind NAME=KIND overrides
    min_cosine: float = QualityFloor.min_cosine  # the quality floor (see fidelity.QualityFloor)
    min_top1: float = QualityFloor.min_top1
    allow_degraded: bool = False  # recorded in the manifest; the CLI then exits 0 for a degraded artifact
    fix_inputs: dict[str, str] = field(default_factory=dict)  # --fix-input NAME=VALUE (see specialize)

    @property
    def floor(self) -> QualityFloor:
        return QualityFloor(self.min_cosine, self.min_top1, self.max_accuracy_drop)


@dataclass
class Context(StepContext):
    """A step's context plus what the pipeline itself needs around the steps."""

    options: CompressOptions
    source: Path  # the user's float model: every accuracy drop is measured against it
    emit: EventCallback
    external_data: bool = False  # the source keeps weights in external data: so does the artifact


def _dataset(path: Path, inputs: list[TensorInfo], option: str, options: CompressOptions) -> Dataset:
    """An .npz file, a folder of per-feed .npz files, or a folder of images for a one-input image
    model; arrays of inputs fixed by --fix-input are dropped. Raises InputSpecError / UsageError."""
    if not path.is_dir() or is_feed_folder(path):
        return load_dataset(path, inputs, option, ignore=set(options.fix_inputs))
    if len(inputs) != 1:
        raise InputSpecError(
            f"{option} {path}: an image folder feeds one-input models; this one has {len(inputs)}"
        )
    return load_image_folder(path, inputs[0], options.image_preprocess, option)


def _load_data(model: onnx.ModelProto, options: CompressOptions) -> tuple[Dataset | None, Dataset | None]:
    inputs = [i for i in graph_inputs(model) if i.name not in options.fix_inputs]
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
    """Fail before any work: unquantizable model, missing calibration data, missing converter,
    an --output-kind naming no output."""
    outputs = [o.name for o in model.graph.output]
    for name in options.output_kinds:
        if name not in outputs:
            raise UsageError(
                f"--output-kind {name}: the model has no such output; outputs: {', '.join(outputs)}"
            )
    for step in options.steps:
        spec = step.spec
        if spec.quantizes:
            check_quantizable(model, step.name)
        if calib is None and spec.needs_calibration(step.params):
            raise UsageError(spec.no_calibration_message)
        if spec.preflight is not None:
            spec.preflight()
        if calib is not None and spec.check_calibration is not None:
            spec.check_calibration(calib, graph_inputs(model))


def _guard(ctx: Context, artifact: Path, evaluation: Dataset, report: dict[str, Any]) -> dict[str, Any]:
    """Keep sensitive nodes float until the accuracy drop <= --max-accuracy-drop."""
    tolerance = float(ctx.options.max_accuracy_drop or 0.0)
    loss = quality_loss(report)
    result: dict[str, Any] = {"tolerance_points": tolerance, "loss_points": loss}
    if loss is None:
        return {
            **result,
            "met": False,
            "reason": "no accuracy measurable: no output is class scores [N, classes]",
        }
    if loss <= tolerance:
        return {**result, "met": True, "kept_float": []}
    last = ctx.options.steps[-1]
    fallback = last.spec.float_fallback
    if fallback is None:
        return {**result, "met": False, "reason": f"no float fallback for {last.name}"}
    ctx.emit(
        {"phase": "guard", "message": f"accuracy drop {loss:.2f} > {tolerance:g} points: ranking layers"}
    )
    ranked, method = _rank_nodes(ctx, last, fallback, artifact, evaluation)
    attempts: dict[tuple[str, ...], Path] = {}

    def attempt(excluded: list[str]) -> float:
        loss_points, path = _attempt(ctx, last, fallback, excluded, evaluation)
        attempts[tuple(excluded)] = path
        ctx.emit(
            {"phase": "guard", "message": f"{len(excluded)} node(s) float: drop {loss_points:.2f} points"}
        )
        return loss_points

    search = guard.search_exclusions(ranked, tolerance, attempt)
    best = search["best"]
    if best["loss_points"] >= loss:  # keeping nodes float did not help: the plain artifact stays
        return {**result, "met": False, "method": method, "kept_float": [], "trail": search["trail"]}
    copy_model(attempts[tuple(best["excluded"])], artifact, external_data=ctx.external_data)
    return _kept_float_report(result, method, ranked, search)


def _kept_float_report(
    result: dict[str, Any], method: str, ranked: list[guard.Sensitivity], search: dict[str, Any]
) -> dict[str, Any]:
    """The guard's report when its best exclusion set replaced the artifact."""
    best = search["best"]
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


def _rank_nodes(
    ctx: Context, step: RecipeStep, fallback: FloatFallback, artifact: Path, evaluation: Dataset
) -> tuple[list[guard.Sensitivity], str]:
    """The quantized nodes, most sensitive first, and how they were ranked."""
    reference = fallback.reference(ctx)
    if fallback.rank is not None:
        return fallback.rank(reference, evaluation), "activation range"
    try:
        return guard.rank_by_sqnr(reference, artifact, evaluation), "per-layer SQNR"
    except Exception:  # intermediate tensors unreadable: measure instead
        nodes = [n.name for n in onnx.load(str(reference)).graph.node if n.op_type in QUANTIZABLE_OPS]
        ranked = guard.rank_one_at_a_time(
            nodes, lambda keep: _attempt(ctx, step, fallback, keep, evaluation)[0]
        )
        return ranked, "one-at-a-time"


def _attempt(
    ctx: Context, step: RecipeStep, fallback: FloatFallback, excluded: list[str], evaluation: Dataset
) -> tuple[float, Path]:
    out = ctx.workdir / f"guard-{len(list(ctx.workdir.glob('guard-*')))}.onnx"
    try:
        fallback.requantize(step.params, ctx, excluded, out)
    except EdgekitError:
        raise
    except Exception as exc:
        if _library_of(exc) == "edgekit":
            raise  # a bug in edgekit itself: exit 70, never passed off as the model's fault
        raise library_failure(step, f"accuracy guard, {len(excluded)} node(s) float", exc) from exc
    loss = quality_loss(_fidelity(ctx, out, evaluation))
    return (loss if loss is not None else float("inf")), out


_LIBRARIES = ("onnxruntime", "onnx2tf", "tensorflow", "onnx")


def _library_of(exc: BaseException) -> str:
    """The library whose code raised `exc` (the innermost frame in one of _LIBRARIES), or
    "edgekit" when none did."""
    found = "edgekit"
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        for library in _LIBRARIES:
            if module == library or module.startswith(library + "."):
                found = library
                break
        tb = tb.tb_next
    return found


def _hint(step: RecipeStep, message: str) -> str:
    """A parameter change that avoids a known library failure, or ""."""
    params = step.params
    histogram = "inhomogeneous" in message or "histogram" in message.lower()
    if step.name == "int8-static" and params.get("calib") in ("entropy", "percentile") and histogram:
        return f"try {step.name}:calib=minmax"
    if params.get("per-channel") and any(w in message for w in ("axis", "per_channel", "channel")):
        return f"try {step.name}:per-channel=no"
    if step.name == "int8-static":
        return "try int8-dynamic, or int8-static:per-channel=no"
    return ""


def library_failure(step: RecipeStep, where: str, exc: Exception) -> ModelError:
    """A typed, one-line error for a library failure inside a step: the recipe, the step
    (`where`, e.g. "step 1/2"), the library and its own message, and a hint where one exists."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text if len(text) <= 400 else text[:397] + "..."
    hint = _hint(step, text)
    return ModelError(
        f"{step.text()} ({where}): {_library_of(exc)} failed: {type(exc).__name__}: {text}"
        + (f"; {hint}" if hint else ""),
        recipe=step.name,
        step=where,
        library=_library_of(exc),
    )


def _fidelity(ctx: Context, artifact: Path, data: Dataset) -> dict[str, Any]:
    """Fidelity of `artifact` against the source on `data` (compress.fidelity). Raises ModelError
    (exit 2) when onnx or onnxruntime cannot load or run what the recipes produced: the chain
    made a broken model, which is said, never passed off as a bug in edgekit."""
    try:
        return fidelity(ctx.source, artifact, data, ctx.options.output_kinds)
    except EdgekitError:
        raise
    except Exception as exc:
        if _library_of(exc) == "edgekit":
            raise
        chain = "+".join(step.text() for step in ctx.options.steps)
        text = " ".join(str(exc).split())[:400]
        raise ModelError(
            f"{chain}: the artifact does not run in {_library_of(exc)}: {type(exc).__name__}: {text}",
            recipe=chain,
        ) from exc


def _run_steps(ctx: Context) -> tuple[Path, list[dict[str, Any]]]:
    """Apply each step to the previous one's output, in the scratch directory: (the last output,
    each step's manifest entry)."""
    current, records = ctx.source, []
    steps = ctx.options.steps
    for index, step in enumerate(steps):
        ctx.emit({"phase": "recipe", "message": f"{step.label()} ({index + 1}/{len(steps)})"})
        out = ctx.workdir / f"step{index}{step.spec.suffix}"
        try:
            report = step.spec.apply(step.params, current, out, ctx)
        except EdgekitError:
            raise
        except Exception as exc:
            if _library_of(exc) == "edgekit":
                raise  # a bug in edgekit itself: exit 70, never passed off as the model's fault
            raise library_failure(step, f"step {index + 1}/{len(steps)}", exc) from exc
        records.append(step.spec.record(step, report))
        current = out
    return current, records


def _measure_fidelity(ctx: Context, artifact: Path, evaluation: Dataset | None) -> dict[str, Any] | None:
    """The artifact's fidelity to the source on --eval, else on --calib (not on random
    calibration rows), else None. With `per_layer`, the SQNR each float-fallback node
    loses is added."""
    options = ctx.options
    data = evaluation or (ctx.calib if ctx.calib is not None and options.calib else None)
    if data is None:
        return None
    unit = "feeds" if data.per_feed is not None else "rows"  # Dataset.rows counts a per-feed set's feeds
    ctx.emit({"phase": "fidelity", "message": f"comparing on {data.rows} {unit}"})
    report = _fidelity(ctx, artifact, data)
    if evaluation is None:
        report["note"] = "measured on the calibration data (no --eval given)"
    fallback = options.steps[-1].spec.float_fallback
    if options.per_layer and fallback is not None:
        try:
            ranked = guard.rank_by_sqnr(fallback.reference(ctx), artifact, data)
        except Exception as exc:  # an intermediate tensor onnxruntime cannot expose: say so, go on
            report["per_layer_sqnr_drop_db"] = None
            report["per_layer_null_reason"] = f"intermediate tensors unreadable: {str(exc).splitlines()[0]}"
            return report
        report["per_layer_sqnr_drop_db"] = [
            {"node": item.node, "sqnr_drop_db": round(float(item.sqnr_drop_db), 3)} for item in ranked
        ]
    return report


def _apply_guard(
    ctx: Context,
    artifact: Path,
    evaluation: Dataset | None,
    fidelity_report: dict[str, Any] | None,
    records: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the guard's report or None, the fidelity report after it): with --max-accuracy-drop and
    labelled --eval rows, sensitive nodes are kept float and the last step's record names them."""
    if ctx.options.max_accuracy_drop is None or evaluation is None or not fidelity_report:
        return None, fidelity_report
    report = _guard(ctx, artifact, evaluation, fidelity_report)
    if report.get("kept_float"):
        records[-1]["report"]["kept_float"] = report["kept_float"]
        fidelity_report = _fidelity(ctx, artifact, evaluation)
    return report, fidelity_report


def _record_coverage(ctx: Context, artifact: Path, records: list[dict[str, Any]]) -> None:
    """Into a quantizing last step's record: `quantized_nodes` ("Q of N": quantizable nodes of the
    artifact, subgraphs included, that are quantized) and `stayed_float` (each float one, why)."""
    last = ctx.options.steps[-1]
    if not last.spec.quantizes or artifact.suffix != ".onnx":
        return
    report = records[-1]["report"]
    kept = [item["node"] if isinstance(item, dict) else str(item) for item in report.get("kept_float", [])]
    counted = coverage(onnx.load(str(artifact)), last.name, kept, report.get("subgraphs", []))
    report["quantized_nodes"] = f"{counted['quantized']} of {counted['quantizable']}"
    report["stayed_float"] = counted["float"]
    if counted["float"]:
        ctx.emit(
            {
                "phase": "coverage",
                "message": f"{len(counted['float'])} quantizable node(s) stayed float: "
                + "; ".join(f"{item['node']} ({item['why']})" for item in counted["float"][:5]),
            }
        )


def _floor_data(ctx: Context, evaluation: Dataset | None) -> Dataset | None:
    """The rows fidelity was measured on (see `_measure_fidelity`)."""
    return evaluation or (ctx.calib if ctx.calib is not None and ctx.options.calib else None)


def _repair_floor(
    ctx: Context,
    artifact: Path,
    evaluation: Dataset | None,
    fidelity_report: dict[str, Any] | None,
    records: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the repair's report or None, the fidelity report after it): when the artifact is below
    the quality floor and its last step repairs the floor (fp16), keep 1, 2, 4, ... nodes float,
    most likely to break first, until the floor holds; the best attempt replaces the artifact."""
    last = ctx.options.steps[-1]
    fallback = last.spec.float_fallback
    data = _floor_data(ctx, evaluation)
    floor = ctx.options.floor
    if fallback is None or not fallback.repair_floor or data is None or not fidelity_report:
        return None, fidelity_report
    start = floor_shortfall(fidelity_report, floor)
    if not degraded_reasons(fidelity_report, floor):
        return None, fidelity_report
    ctx.emit({"phase": "floor", "message": f"{last.name} is below the quality floor: keeping nodes float"})
    ranked, method = _rank_nodes(ctx, last, fallback, artifact, data)
    attempts: dict[tuple[str, ...], tuple[Path, dict[str, Any]]] = {}

    def attempt(excluded: list[str]) -> float:
        out = ctx.workdir / f"floor-{len(attempts)}{artifact.suffix}"
        report = fallback.requantize(last.params, ctx, excluded, out)
        attempts[tuple(excluded)] = (out, report)
        shortfall = floor_shortfall(_fidelity(ctx, out, data), floor)
        ctx.emit({"phase": "floor", "message": f"{len(excluded)} node(s) float: shortfall {shortfall:.2f}"})
        return shortfall

    search = guard.search_exclusions(ranked, 0.0, attempt)
    best = search["best"]
    result = {"method": method, "shortfall_before": start, "trail": search["trail"], "kept_float": []}
    if best["loss_points"] >= start:
        return {**result, "met": False}, fidelity_report
    path, step_report = attempts[tuple(best["excluded"])]
    copy_model(path, artifact, external_data=ctx.external_data)
    records[-1]["report"] = {**records[-1]["report"], **step_report}
    kept = [
        {"node": node, "why": f"kept float to hold the quality floor ({method})"} for node in best["excluded"]
    ]
    records[-1]["report"]["kept_float"] = kept
    after = _fidelity(ctx, artifact, data)
    if "note" in fidelity_report:
        after["note"] = fidelity_report["note"]
    return {**result, "met": search["met"], "kept_float": kept}, after


def _write_manifest(
    staging: Path,
    artifact: Path,
    source: Artifact,
    options: CompressOptions,
    records: list[dict[str, Any]],
    fidelity_report: dict[str, Any] | None,
    guard_report: dict[str, Any] | None,
    floor_report: dict[str, Any] | None = None,
    specialization: dict[str, Any] | None = None,
) -> dict[str, Any]:
    manifest = artifact_manifest(
        artifact,
        {"path": str(source.path), "sha256": source.sha256, "size_bytes": source.size_bytes},
        target=options.profile.name,
        recipe=records,
        fidelity=fidelity_report,
        accuracy_guard=guard_report,
    )
    manifest.update(_floor_verdict(options, fidelity_report, floor_report))
    if specialization is not None:
        manifest["specialized"] = specialization  # --fix-input: the inputs fixed, If nodes resolved
    write_manifest(staging, manifest)
    return manifest


def _floor_verdict(
    options: CompressOptions, fidelity_report: dict[str, Any] | None, repair: dict[str, Any] | None
) -> dict[str, Any]:
    """The manifest's `degraded` (bool), `degraded_reasons` (one line each) and `quality_floor`
    (the thresholds, whether fidelity could be measured at all, whether the user accepted a
    degraded artifact, and the fp16 repair's trail)."""
    floor = options.floor
    reasons = degraded_reasons(fidelity_report, floor)
    return {
        "degraded": bool(reasons),
        "degraded_reasons": reasons,
        "quality_floor": {
            "min_cosine": floor.min_cosine,
            "min_top1": floor.min_top1,
            "max_accuracy_drop": floor.max_accuracy_drop,
            "measured": bool(fidelity_report),
            "allow_degraded": options.allow_degraded,
            "repair": repair,
        },
    }


def _specialized_line(record: dict[str, Any]) -> str:
    """One line for the summary: the inputs fixed and the If nodes folding resolved."""
    fixed = ", ".join(f"{name}={value}" for name, value in record["fixed_inputs"].items())
    ifs = record["if_nodes"]
    return f"fixed {fixed}; If nodes {ifs['before']} -> {ifs['after']} after onnxruntime BASIC folding"


def compress(
    model_path: Path, out_dir: Path, options: CompressOptions, on_event: EventCallback | None = None
) -> dict[str, Any]:
    """Apply `options.steps` to the ONNX model at `model_path` and publish the artifact directory
    `out_dir` (model file + manifest.json) atomically; returns the manifest plus its `path`.
    An artifact below the quality floor is still written, with `degraded: true` and the reasons
    in the manifest (the CLI exits 1 for it unless --allow-degraded).
    Raises UsageError / ModelError / InputSpecError before any work for a bad plan or data.
    onnxruntime's, TensorFlow's and onnx2tf's own output is hidden meanwhile (unless
    EDGEKIT_DEBUG is set: edgekit.core.quiet); `on_event` and warnings still reach stderr."""
    with library_output_hidden():
        return _compress(model_path, out_dir, options, on_event)


def _compress(
    model_path: Path, out_dir: Path, options: CompressOptions, on_event: EventCallback | None
) -> dict[str, Any]:
    emit = on_event or (lambda event: None)
    source = load_artifact(model_path)
    if source.format != "onnx":
        raise UsageError(f"{source.path}: compress takes ONNX models, got {source.format}")
    model = load_onnx(source.path)
    values = fixed_values(model, options.fix_inputs)
    calib, evaluation = _load_data(model, options)
    if not values:
        _check_plan(model, options, calib)
    with (
        staged_artifact_dir(out_dir, options.force) as staging,
        tempfile.TemporaryDirectory(prefix="edgekit-compress-") as scratch,
    ):
        float_model, specialization = source.path, None
        if values:  # the recipes, fidelity and the guard all start from the specialised float model
            float_model = Path(scratch) / "specialized.onnx"
            specialization = specialize(source.path, float_model, values)
            emit({"phase": "specialize", "message": _specialized_line(specialization)})
            _check_plan(load_onnx(float_model), options, calib)
        external = source.has_external_data
        ctx = Context(options.profile, calib, Path(scratch), options, float_model, emit, external)
        current, records = _run_steps(ctx)
        artifact = staging / f"{ARTIFACT_STEM}{current.suffix}"
        copy_model(current, artifact, external_data=ctx.external_data)
        fidelity_report = _measure_fidelity(ctx, artifact, evaluation)
        guard_report, fidelity_report = _apply_guard(ctx, artifact, evaluation, fidelity_report, records)
        floor_report, fidelity_report = _repair_floor(ctx, artifact, evaluation, fidelity_report, records)
        _record_coverage(ctx, artifact, records)
        manifest = _write_manifest(
            staging,
            artifact,
            source,
            options,
            records,
            fidelity_report,
            guard_report,
            floor_report,
            specialization,
        )
    manifest["path"] = str(out_dir)
    return manifest
