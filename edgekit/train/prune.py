"""Iterative structured channel pruning of a torch model, fine-tuned between steps.

Each step removes the output channels of every prunable Conv2d (and hidden Linear) with the
smallest weight norm (`criterion`: "l1" or "l2", scaled by the following BatchNorm's
|gamma| / sqrt(var + eps), the norm the channel really contributes with), and shrinks what
reads those channels: the BatchNorm, depthwise convolutions in between (their channels are
tied to their input's), and the input channels of the next Conv2d or of the Linear after a
global pooling + Flatten. Kept counts are rounded up to a multiple of 8 (CPU kernels block by
8). The result is a smaller *dense* model: the ONNX export has fewer channels, which is what
makes onnxruntime faster (zeroed weights would not).

Supported models: nn.Sequential (nested Sequentials are walked in order); a layer whose
consumer cannot be followed (anything but BatchNorm, activations, pooling, dropout, Identity,
depthwise convs) is left whole and reported.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.core.errors import UsageError
from edgekit.train.artifact import ArtifactPlan, check_out_dir, training_section, write_artifact
from edgekit.train.data import TrainData, check_against_model
from edgekit.train.export import export_onnx, parameter_count
from edgekit.train.extra import require_torch
from edgekit.train.loop import Checkpoints, FitOptions, accuracy, fit_evaluated

torch = require_torch("pruning")
nn = torch.nn
CRITERIA = ("l1", "l2")
PASS_THROUGH = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Sigmoid, nn.Tanh,
    nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.Dropout2d, nn.Identity,
)  # fmt: skip


@dataclass
class Slot:
    """Where a module sits: its parent Sequential, its attribute name there and its dotted path."""

    parent: Any
    name: str
    qualname: str  # e.g. "3.0": where the module sits in the model

    @property
    def module(self) -> Any:  # looked up each time: pruning replaces modules in place
        return getattr(self.parent, self.name)


@dataclass
class Group:
    """A layer whose output channels can go, with everything that must shrink with it."""

    producer: Slot
    norms: list[Slot]  # BatchNorms of the channels (after the producer and after depthwise convs)
    depthwise: list[Slot]
    consumer: Slot

    @property
    def path(self) -> str:
        return self.producer.qualname


def _slots(model: Any, prefix: str = "") -> list[Slot]:
    if not isinstance(model, nn.Sequential):
        raise UsageError(f"prune: supports nn.Sequential models, got {model.__class__.__name__}")
    out: list[Slot] = []
    for name, child in model.named_children():
        qualname = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            out.extend(_slots(child, f"{qualname}."))
        else:
            out.append(Slot(model, name, qualname))
    return out


def _is_depthwise(module: Any) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups == module.in_channels == module.out_channels > 1


def find_groups(model: Any) -> list[Group]:
    """Every prunable Conv2d/Linear of an nn.Sequential with the layers that shrink with it, in
    model order; layers whose consumer cannot be followed are left out. UsageError for other
    model types."""
    slots = _slots(model)
    groups = []
    for index, slot in enumerate(slots):
        layer = slot.module
        conv = isinstance(layer, nn.Conv2d) and layer.groups == 1
        if not (conv or isinstance(layer, nn.Linear)):
            continue
        norms: list[Slot] = []
        depthwise: list[Slot] = []
        pooled = False
        for follower in slots[index + 1 :]:
            module = follower.module
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                norms.append(follower)
            elif _is_depthwise(module) and conv:
                depthwise.append(follower)
            elif isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) and module.output_size in (
                1,
                (1, 1),
            ):
                pooled = True
            elif (isinstance(module, nn.Flatten) and (pooled or not conv)) or isinstance(
                module, PASS_THROUGH
            ):
                continue
            elif (isinstance(module, nn.Conv2d) and module.groups == 1 and conv and not pooled) or (
                isinstance(module, nn.Linear) and (pooled or not conv)
            ):
                groups.append(Group(slot, norms, depthwise, follower))
                break
            else:
                break
    return groups


def channel_scores(group: Group, criterion: str) -> Any:
    """One float score per output channel of the group's producer: the L1 or L2 norm of its
    weights, times |gamma| / sqrt(var + eps) of the following BatchNorm when there is one."""
    weight = group.producer.module.weight.detach().flatten(1)
    scores = weight.abs().sum(1) if criterion == "l1" else weight.pow(2).sum(1).sqrt()
    if group.norms:
        norm = group.norms[0].module
        scores = scores * norm.weight.detach().abs() / torch.sqrt(norm.running_var + norm.eps)
    return scores


def _keep_count(original: int, ratio: float, multiple: int) -> int:
    wanted = original * (1.0 - ratio)
    return min(original, max(multiple, math.ceil(wanted / multiple) * multiple))


def _select_rows(module: Any, keep: Any) -> Any:
    """A copy of a Conv2d/Linear/BatchNorm with only the output channels `keep`."""
    clone = copy.deepcopy(module)
    if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        clone.num_features = len(keep)
        for name in ("weight", "bias"):
            setattr(clone, name, nn.Parameter(getattr(module, name).detach()[keep].clone()))
        for name in ("running_mean", "running_var"):
            setattr(clone, name, getattr(module, name)[keep].clone())
        return clone
    clone.weight = nn.Parameter(module.weight.detach()[keep].clone())
    if module.bias is not None:
        clone.bias = nn.Parameter(module.bias.detach()[keep].clone())
    if isinstance(module, nn.Conv2d):
        clone.out_channels = len(keep)
        if _is_depthwise(module):
            clone.in_channels = clone.groups = len(keep)
    else:
        clone.out_features = len(keep)
    return clone


def _select_inputs(module: Any, keep: Any) -> Any:
    clone = copy.deepcopy(module)
    clone.weight = nn.Parameter(module.weight.detach()[:, keep].clone())
    if isinstance(module, nn.Conv2d):
        clone.in_channels = len(keep)
    else:
        clone.in_features = len(keep)
    return clone


def prune_channels(
    model: Any, ratio: float, criterion: str = "l1", multiple: int = 8, original: dict[str, int] | None = None
) -> tuple[Any, list[dict[str, Any]]]:
    """A copy of `model` with `ratio` of each prunable layer's channels removed, counted against
    `original` (channel counts before the first step, by layer name) so steps do not compound."""
    if criterion not in CRITERIA:
        raise UsageError(f"prune: criterion {criterion!r}: expected one of {', '.join(CRITERIA)}")
    if not 0.0 <= ratio < 1.0:
        raise UsageError(f"prune: ratio must be in [0, 1), got {ratio}")
    pruned = copy.deepcopy(model).eval()
    report = []
    for group in find_groups(pruned):
        layer = group.producer.module
        channels = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
        name = group.path
        start = (original or {}).get(name, channels)
        keep_count = _keep_count(start, ratio, multiple)
        if keep_count >= channels:
            continue
        keep = torch.sort(
            torch.argsort(channel_scores(group, criterion), descending=True)[:keep_count]
        ).values
        for slot in [group.producer, *group.norms, *group.depthwise]:
            setattr(slot.parent, slot.name, _select_rows(slot.module, keep))
        setattr(group.consumer.parent, group.consumer.name, _select_inputs(group.consumer.module, keep))
        report.append({"layer": name, "channels_before": channels, "channels_after": keep_count})
    return pruned, report


def channel_counts(model: Any) -> dict[str, int]:
    """Output channels (or features) of every prunable layer, by its dotted path."""
    counts = {}
    for group in find_groups(model):
        layer = group.producer.module
        counts[group.path] = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
    return counts


@dataclass
class PruneResult:
    """The pruned, fine-tuned model, the artifact manifest (with `out_dir`) and the per-step history."""

    model: Any
    manifest: dict[str, Any] | None
    steps: list[dict[str, Any]]


def _check_prune(
    model: Any,
    train_data: TrainData,
    eval_data: TrainData,
    target_ratio: float,
    steps: int,
    input_names: Sequence[str],
    out_dir: Path | None,
    force: bool,
) -> None:
    """Refuse bad settings, data that does not fit the model, a non-empty OUT_DIR and a model with
    nothing to prune (UsageError / InputSpecError) before any training."""
    if steps < 1:
        raise UsageError(f"prune: steps must be >= 1, got {steps}")
    if not 0.0 < target_ratio < 1.0:
        raise UsageError(f"prune: target_ratio must be in (0, 1), got {target_ratio}")
    check_against_model(model, train_data, input_names, "train data")
    check_out_dir(out_dir, force)
    check_against_model(model, eval_data, input_names, "eval data")
    if not find_groups(model):
        raise UsageError("prune: no prunable Conv2d/Linear found (see edgekit.train.prune's docstring)")


def _step_record(
    step: int,
    ratio: float,
    model: Any,
    onnx_file: Path,
    accuracy_pruned: float,
    accuracy_finetuned: float | None,
    **more: Any,
) -> dict[str, Any]:
    """One row of the pruning history: the step (0 = the unpruned model), its ratio, the model's
    parameter count, its ONNX size in bytes, accuracies (fractions) before and after fine-tuning
    and its channel counts by layer; `more` adds the step's layer report and epochs."""
    return {
        "step": step,
        "ratio": ratio,
        "parameters": parameter_count(model),
        "onnx_size_bytes": onnx_file.stat().st_size,
        "accuracy_pruned": accuracy_pruned,
        "accuracy_finetuned": accuracy_finetuned,
        "channels": channel_counts(model),
        **more,
    }


@dataclass(frozen=True)
class _StepPlan:
    """What every pruning step shares: data, input names, fine-tuning and where ONNX files go."""

    train_data: TrainData
    eval_data: TrainData
    input_names: Sequence[str]
    examples: list[Any]  # one example array per input, for the ONNX export
    options: FitOptions
    criterion: str
    multiple: int
    original: dict[str, int]  # channel counts before the first step, by layer
    work: Path
    checkpoints: Checkpoints | None
    emit: Callable[[dict[str, Any]], None] | None


def _prune_step(plan: _StepPlan, current: Any, step: int, ratio: float) -> tuple[Any, dict[str, Any]]:
    """Prune `current` to `ratio` of the original channels, fine-tune it as phase `prune-STEP`,
    export it to `step<STEP>.onnx`; returns the fine-tuned model and its history row."""
    names = plan.input_names
    current, layers = prune_channels(current, ratio, plan.criterion, plan.multiple, plan.original)
    before = accuracy(current, plan.eval_data, names)
    if plan.emit is not None:
        plan.emit({"event": "prune", "phase": f"prune-{step}", "ratio": ratio, "accuracy_pruned": before})
    current, epochs = fit_evaluated(
        current,
        f"prune-{step}",
        plan.train_data,
        plan.eval_data,
        names,
        plan.options,
        checkpoints=plan.checkpoints,
        emit=plan.emit,
    )
    onnx_file = export_onnx(current, plan.examples, plan.work / f"step{step}.onnx", input_name=list(names))
    after = accuracy(current, plan.eval_data, names)
    return current, _step_record(step, ratio, current, onnx_file, before, after, layers=layers, epochs=epochs)


def _write_pruned(
    plan: _StepPlan,
    settings: dict[str, Any],
    history: list[dict[str, Any]],
    float_onnx: Path,
    training_extra: dict[str, Any] | None,
    out_dir: Path,
    force: bool,
) -> dict[str, Any]:
    """Publish the last step's ONNX as OUT_DIR against the unpruned `float_onnx`; the manifest."""
    steps = settings["steps"]
    results = {"history": history}
    training = training_section("prune_finetune", settings, plan.options, results, training_extra)
    params = {**{k: settings[k] for k in ("target_ratio", "steps", "criterion")}, "multiple": plan.multiple}
    recipe = [{"name": "prune-finetune", "params": params, "report": {"steps": len(history) - 1}}]
    artifact = ArtifactPlan(plan.work / f"step{steps}.onnx", float_onnx, recipe, training)
    return write_artifact(artifact, out_dir, plan.eval_data, force=force, emit=plan.emit)


def prune_finetune(
    model: Any,
    train_data: TrainData,
    eval_data: TrainData,
    target_ratio: float,
    steps: int,
    criterion: str = "l1",
    *,
    epochs_per_step: int = 3,
    input_names: Sequence[str] = ("input",),
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    augment: str | None = None,
    multiple: int = 8,
    out_dir: Path | None = None,
    force: bool = False,
    training_extra: dict[str, Any] | None = None,  # more for the manifest's `training` section
    checkpoints: Checkpoints | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> PruneResult:
    """Prune to `target_ratio` of the channels in `steps` equal steps, fine-tuning after each.
    With `out_dir`, the last step is written as an artifact directory against the unpruned model.
    Raises UsageError for bad settings or a model with nothing to prune."""
    _check_prune(model, train_data, eval_data, target_ratio, steps, input_names, out_dir, force)
    examples = train_data.arrays(input_names)
    options = FitOptions(epochs_per_step, learning_rate, batch_size, seed=seed, augment=augment)
    with tempfile.TemporaryDirectory(prefix="edgekit-prune-") as scratch:
        work = Path(scratch)
        plan = _StepPlan(
            train_data,
            eval_data,
            input_names,
            examples,
            options,
            criterion,
            multiple,
            original=channel_counts(model),
            work=work,
            checkpoints=checkpoints,
            emit=emit,
        )
        float_onnx = export_onnx(model, examples, work / "float.onnx", input_name=list(input_names))
        history = [_step_record(0, 0.0, model, float_onnx, accuracy(model, eval_data, input_names), None)]
        current = model
        for step in range(1, steps + 1):
            current, record = _prune_step(plan, current, step, target_ratio * step / steps)
            history.append(record)
        manifest = None
        if out_dir is not None:
            settings = {
                "target_ratio": target_ratio,
                "steps": steps,
                "criterion": criterion,
                "epochs_per_step": epochs_per_step,
            }
            manifest = _write_pruned(plan, settings, history, float_onnx, training_extra, out_dir, force)
    return PruneResult(current, manifest, history)


def accuracy_after_pruning(
    model: Any, data: TrainData, ratio: float, input_names: Sequence[str] = ("input",)
) -> float:
    """One-shot pruning without fine-tuning (the comparison the benchmark shows)."""
    pruned, _ = prune_channels(model, ratio)
    return accuracy(pruned, data, input_names)
