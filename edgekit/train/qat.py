"""Quantization-aware training (QAT) ending in an ONNX QDQ artifact that onnxruntime runs as int8.

Why this route. `torch.ao.quantization` eager/FX QAT (`prepare_qat`/`convert`) is deprecated in
recent torch and its converted modules do not export to ONNX QDQ; torchao's QAT is the maintained
successor, but (checked on torchao 0.18.0, which installs beside torch 2.13 without replacing
it) its `QATConfig` swaps only nn.Linear and nn.Embedding for fake-quantized versions, not
Conv2d, and converts to torchao's own tensor subclasses rather than an ONNX graph. So edgekit
does the fine-tuning with torch's maintained core fake-quantization ops
(`torch.fake_quantize_per_tensor_affine` / `..._per_channel_affine`, straight-through gradients)
and leaves the integer graph to the runtime's own quantizer:

1. BatchNorm is folded into the preceding Conv/Linear first (`torch.nn.utils.fusion`), because
   onnxruntime's pre-processing folds it too: QAT then trains exactly the weights that get
   quantized.
2. Every Conv2d/Linear is wrapped: its weight is fake-quantized with onnxruntime's symmetric
   signed scheme (scale = max|w| / (2^(bits-1) - 1), 64 levels with a reduce-range profile; per
   output channel or per tensor), its input
   activation with onnxruntime's asymmetric unsigned MinMax scheme (range observed on the
   training rows, including 0).
3. After fine-tuning the wrappers are removed, the float model is exported (legacy exporter,
   opset 17) and quantized by `edgekit.compress.quantize.int8_static` (onnxruntime's
   `quantize_static`, QDQ, the target profile's scheme, MinMax calibration on training rows):
   weights land on the same integer grid QAT trained against (same formula, same weights) and
   activation ranges are re-measured by the same MinMax rule the observers used.

The baseline it is judged against is the same: the same folded float model through the same
quantizer (post-training quantization, PTQ). The manifest records float, PTQ and QAT accuracy,
and the QAT accuracy inside torch (fake-quant) next to the artifact's onnxruntime accuracy.

Bit widths: 8 exports as int8 QDQ (QLinearConv after onnxruntime's graph optimisation). Lower
widths (2..7) train and export on the int8 grid restricted to 2^(bits-1)-1 levels per side: the
file is int8 (onnxruntime has no sub-byte Conv kernels), the accuracy is that of the low-bit
grid; the manifest says so.
"""

from __future__ import annotations

import copy
import itertools
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.compress.data import Dataset
from edgekit.compress.quantize import int8_static, preprocess, scheme_for
from edgekit.core.errors import UsageError
from edgekit.core.profiles import DeviceProfile, load_profile
from edgekit.train.artifact import (
    ArtifactPlan,
    check_out_dir,
    onnx_accuracy,
    training_section,
    write_artifact,
)
from edgekit.train.data import TrainData, check_against_model
from edgekit.train.export import export_onnx
from edgekit.train.extra import require_torch
from edgekit.train.loop import Checkpoints, FitOptions, accuracy, fit_evaluated

torch = require_torch("quantization-aware training")
nn = torch.nn
CALIB_ROWS = 256
OBSERVER_MOMENTUM = 0.1


def fold_batchnorm(model: Any) -> Any:
    """A copy of the model with every Conv2d -> BatchNorm2d and Linear -> BatchNorm1d pair inside
    an nn.Sequential folded into the first layer (the BatchNorm becomes Identity)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    folded = copy.deepcopy(model).eval()
    for container in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        names = list(container._modules)
        for first, second in itertools.pairwise(names):
            layer, norm = container._modules[first], container._modules[second]
            if isinstance(layer, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                container._modules[first] = fuse_conv_bn_eval(layer, norm)
            elif isinstance(layer, nn.Linear) and isinstance(norm, nn.BatchNorm1d):
                container._modules[first] = fuse_linear_bn_eval(layer, norm)
            else:
                continue
            container._modules[second] = nn.Identity()
    return folded


def weight_levels(bits: int, reduce_range: bool = False) -> int:
    """Integer levels per side of the symmetric weight grid: 2^(bits-1) - 1, capped at 64 when the
    profile asks for onnxruntime's reduced (7-bit) int8 range, so the grids agree."""
    return min(2 ** (bits - 1) - 1, 64 if reduce_range else 127)


def weight_scale(weight: Any, levels: int, per_channel: bool) -> Any:
    """Symmetric scales: max|w| / levels, per output channel (axis 0) or one."""
    absmax = weight.detach().abs().flatten(1).amax(1) if per_channel else weight.detach().abs().amax()
    return torch.clamp(absmax / levels, min=1e-8)


class FakeQuant(nn.Module):
    """A Conv2d or Linear whose weight and input are fake-quantized (straight-through)."""

    def __init__(self, layer: Any, levels: int, per_channel: bool) -> None:
        super().__init__()
        self.layer = layer
        self.levels = levels
        self.per_channel = per_channel
        self.register_buffer("input_min", torch.tensor(0.0))
        self.register_buffer("input_max", torch.tensor(0.0))
        self.register_buffer("observed", torch.tensor(False))

    def observe(self, x: Any) -> None:
        low, high = x.detach().min().clamp(max=0.0), x.detach().max().clamp(min=0.0)
        if not bool(self.observed):
            self.input_min.copy_(low)
            self.input_max.copy_(high)
            self.observed.fill_(True)
        else:
            self.input_min.lerp_(low, OBSERVER_MOMENTUM)
            self.input_max.lerp_(high, OBSERVER_MOMENTUM)

    def quantize_input(self, x: Any) -> Any:
        scale = float(max((self.input_max - self.input_min).item() / 255.0, 1e-8))
        zero_point = round(-self.input_min.item() / scale)
        return torch.fake_quantize_per_tensor_affine(x, scale, min(max(zero_point, 0), 255), 0, 255)

    def quantize_weight(self) -> Any:
        weight = self.layer.weight
        levels = self.levels
        scale = weight_scale(weight, levels, self.per_channel)
        if self.per_channel:
            zeros = torch.zeros(weight.shape[0], dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(weight, scale, zeros, 0, -levels, levels)
        return torch.fake_quantize_per_tensor_affine(weight, float(scale), 0, -levels, levels)

    def forward(self, x: Any) -> Any:
        if self.training:
            self.observe(x)
        x = self.quantize_input(x)
        weight = self.quantize_weight()
        if isinstance(self.layer, nn.Conv2d):
            return self.layer._conv_forward(x, weight, self.layer.bias)
        return nn.functional.linear(x, weight, self.layer.bias)


def wrap(model: Any, levels: int, per_channel: bool) -> Any:
    """Replace every Conv2d/Linear (at any depth) by a FakeQuant around it."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Conv2d | nn.Linear):
            setattr(model, name, FakeQuant(child, levels, per_channel))
        else:
            wrap(child, levels, per_channel)
    return model


def unwrap(model: Any) -> Any:
    """The float model with the trained weights snapped to their quantization grid (FakeQuant
    wrappers removed): for 8 bits onnxruntime's quantizer lands on exactly the same integers; for
    fewer bits the int8 file holds the low-bit grid (within half an int8 step)."""
    for name, child in list(model.named_children()):
        if isinstance(child, FakeQuant):
            with torch.no_grad():
                child.layer.weight.copy_(child.quantize_weight())
            setattr(model, name, child.layer)
        else:
            unwrap(child)
    return model


def calibrate_observers(model: Any, arrays: Sequence[np.ndarray], batch_size: int = 64) -> None:
    """Initial activation ranges from the float model's activations on real rows."""
    model.train()
    with torch.no_grad():
        for start in range(0, len(arrays[0]), batch_size):
            model(*(torch.from_numpy(a[start : start + batch_size]) for a in arrays))
    model.eval()


def quantize_onnx(
    float_onnx: Path, out: Path, calib: TrainData, per_channel: bool, profile: DeviceProfile, workdir: Path
) -> dict[str, Any]:
    """onnxruntime static QDQ quantization (the `int8-static` recipe) with MinMax calibration."""
    prepared = workdir / f"{out.stem}.prepared.onnx"
    report = preprocess(float_onnx, prepared)
    params = {"per-channel": per_channel, "calib": "minmax", "scheme": "target", "reduce-range": "target"}
    dataset = Dataset(Path(calib.source), calib.inputs, None)
    return {**report, **int8_static(prepared, out, params, dataset, profile)}


@dataclass
class QatResult:
    model: Any  # the fine-tuned float model (BatchNorm folded, wrappers removed)
    manifest: dict[str, Any] | None
    accuracy: dict[str, float]
    history: list[dict[str, Any]]


def _check_qat(
    model: Any,
    train_data: TrainData,
    eval_data: TrainData,
    bits: int,
    input_names: Sequence[str],
    out_dir: Path | None,
    force: bool,
) -> None:
    """Refuse a bit width outside 2..8, unlabelled data, a non-empty OUT_DIR and data that does not
    fit the model (UsageError / InputSpecError), before any training."""
    if not 2 <= bits <= 8:
        raise UsageError(f"qat: bits must be 2..8 (onnxruntime runs int8 QDQ), got {bits}")
    if eval_data.labels is None or train_data.labels is None:
        raise UsageError("qat: training and evaluation data need 'labels'")
    check_out_dir(out_dir, force)
    check_against_model(model, train_data, input_names, "train data")
    check_against_model(model, eval_data, input_names, "eval data")


@dataclass(frozen=True)
class _Grid:
    """The quantization grid QAT trains against and PTQ rounds to: the bit width, its weight levels
    per side of zero (see `weight_levels`), per output channel or per tensor, the calibration
    rows and the target profile (its int8 scheme)."""

    bits: int
    levels: int
    per_channel: bool
    calib: TrainData
    profile: DeviceProfile

    def wrapped(self, folded: Any) -> Any:
        """A copy of the BatchNorm-folded model with every Conv2d/Linear fake-quantized."""
        return wrap(copy.deepcopy(folded), self.levels, self.per_channel)

    def quantize(self, float_onnx: Path, out: Path, workdir: Path) -> dict[str, Any]:
        """`quantize_onnx` with this grid's calibration rows, scheme and profile; its report."""
        return quantize_onnx(float_onnx, out, self.calib, self.per_channel, self.profile, workdir)


def _grid(train_data: TrainData, bits: int, per_channel: bool, profile: DeviceProfile, seed: int) -> _Grid:
    """The grid for `bits` under the profile's int8 scheme (reduced range or not), calibrated on
    CALIB_ROWS training rows drawn with `seed`."""
    calib = train_data.subset(np.random.default_rng(seed).permutation(train_data.rows)[:CALIB_ROWS])
    _, reduce_range = scheme_for({"scheme": "target", "reduce-range": "target"}, profile)
    return _Grid(bits, weight_levels(bits, reduce_range), per_channel, calib, profile)


def _export_and_quantize(
    grid: _Grid, folded: Any, tuned: Any, examples: list[np.ndarray], input_names: Sequence[str], work: Path
) -> dict[str, Any]:
    """Write float.onnx (the folded model), ptq.onnx (the folded model on the grid, quantized
    without fine-tuning) and qat.onnx (the fine-tuned model, quantized) into `work`; returns the
    quantizer's report for qat.onnx."""
    names = list(input_names)
    export_onnx(folded, examples, work / "float.onnx", input_name=names)
    # PTQ at the same bit width: the same grid, rounding without fine-tuning.
    snapped = unwrap(grid.wrapped(folded))
    export_onnx(snapped, examples, work / "ptq-float.onnx", input_name=names)
    export_onnx(tuned, examples, work / "qat-float.onnx", input_name=names)
    grid.quantize(work / "ptq-float.onnx", work / "ptq.onnx", work)
    return grid.quantize(work / "qat-float.onnx", work / "qat.onnx", work)


def _measure(work: Path, eval_data: TrainData, fake_quant_accuracy: float) -> dict[str, float]:
    """Top-1 accuracies (fractions) on `eval_data` of float.onnx, ptq.onnx and qat.onnx under
    onnxruntime, next to the fake-quantized torch model's."""
    return {
        "float": onnx_accuracy(work / "float.onnx", eval_data),
        "ptq": onnx_accuracy(work / "ptq.onnx", eval_data),
        "qat": onnx_accuracy(work / "qat.onnx", eval_data),
        "qat_fake_quant_torch": fake_quant_accuracy,
    }


def _training(
    grid: _Grid,
    options: FitOptions,
    measured: dict[str, float],
    history: list[dict[str, Any]],
    ptq_onnx: Path,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    """The manifest's `training` section: the grid, the fine-tuning, the measured accuracies, the
    PTQ file's size in bytes and the share of the PTQ loss QAT recovered."""
    own = {
        "bits": grid.bits,
        "per_channel": grid.per_channel,
        "grid": f"int8 file, weights on {grid.levels} levels per side of zero",
        "epochs": options.epochs,
    }
    results = {
        "accuracy": measured,
        "ptq_size_bytes": ptq_onnx.stat().st_size,
        "recovered_share": _recovered(measured),
        "history": history,
    }
    return training_section("qat", own, options, results, extra)


def qat(
    model: Any,
    train_data: TrainData,
    eval_data: TrainData,
    example_inputs: Sequence[np.ndarray] | np.ndarray,
    epochs: int,
    bits: int = 8,
    per_channel: bool = True,
    *,
    input_names: Sequence[str] = ("input",),
    learning_rate: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
    augment: str | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    training_extra: dict[str, Any] | None = None,  # more for the manifest's `training` section
    profile: DeviceProfile | None = None,
    checkpoints: Checkpoints | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> QatResult:
    """Fake-quant fine-tuning of a trained float `model`; with `out_dir`, write the QDQ artifact.
    The result's accuracies are fractions on `eval_data` (float, PTQ and QAT under onnxruntime,
    QAT fake-quantized in torch). Raises UsageError for bad bits or unlabelled data."""
    _check_qat(model, train_data, eval_data, bits, input_names, out_dir, force)
    profile = profile or load_profile("local")
    torch.manual_seed(seed)
    grid = _grid(train_data, bits, per_channel, profile, seed)
    folded = fold_batchnorm(model)
    wrapped = grid.wrapped(folded)
    calibrate_observers(wrapped, grid.calib.arrays(input_names))
    options = FitOptions(epochs, learning_rate, batch_size, seed=seed, augment=augment)
    trained, history = fit_evaluated(
        wrapped, "qat", train_data, eval_data, input_names, options, checkpoints=checkpoints, emit=emit
    )
    fake_quant_accuracy = accuracy(trained, eval_data, input_names)
    tuned = unwrap(trained)
    examples = [example_inputs] if isinstance(example_inputs, np.ndarray) else list(example_inputs)
    with tempfile.TemporaryDirectory(prefix="edgekit-qat-") as scratch:
        work = Path(scratch)
        report = _export_and_quantize(grid, folded, tuned, examples, input_names, work)
        measured = _measure(work, eval_data, fake_quant_accuracy)
        if emit is not None:
            emit({"event": "result", "phase": "qat", "accuracy": measured})
        manifest = None
        if out_dir is not None:
            training = _training(grid, options, measured, history, work / "ptq.onnx", training_extra)
            recipe = [{"name": "qat", "params": {"bits": bits, "per_channel": per_channel}, "report": report}]
            plan = ArtifactPlan(work / "qat.onnx", work / "float.onnx", recipe, training)
            manifest = write_artifact(plan, out_dir, eval_data, force=force, target=profile.name, emit=emit)
    return QatResult(tuned, manifest, measured, history)


def _recovered(measured: dict[str, float]) -> float | None:
    """Share of the PTQ accuracy loss that QAT wins back (None when PTQ lost nothing)."""
    loss = measured["float"] - measured["ptq"]
    return None if loss <= 0 else (measured["qat"] - measured["ptq"]) / loss
