"""One training loop for every technique: seeded, per-epoch progress events, a checkpoint after
every epoch (written atomically) so an interrupted run resumes, and a typed error naming the
epoch when the loss stops being finite (the last good checkpoint is left in place).

A run is a sequence of named *phases* ("float", "qat", "prune-1", ...); each phase has its own
checkpoint file holding the whole module (pruning changes its shape), the optimizer, the
scheduler and the random-number states, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import TrainingDivergedError, UsageError
from edgekit.train.data import TrainData
from edgekit.train.extra import require_torch

torch = require_torch()

# Test-only hook: raise KeyboardInterrupt right after the checkpoint of this epoch (any phase),
# to simulate a run killed mid-way. Never set in normal use.
STOP_AFTER_EPOCH_ENV = "EDGEKIT_TEST_INTERRUPT_AFTER_EPOCH"

EventCallback = Callable[[dict[str, Any]], None]
LossFn = Callable[[Any, list[Any], Any, Any], Any]  # (model, inputs, labels, row index) -> loss


@dataclass(frozen=True)
class FitOptions:
    """How one phase trains: epochs, Adam's learning rate (cosine-annealed to 0 over the epochs)
    and weight decay, rows per batch, seed and augmentation. UsageError for values out of range."""

    epochs: int
    learning_rate: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    seed: int = 0
    # "shift": random +-1 pixel shifts of image inputs; or a callable (batch, generator) -> batch
    augment: str | Callable[[Any, Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.learning_rate > 0:
            raise UsageError(
                f"training: need epochs >= 0, batch_size >= 1, learning_rate > 0; got "
                f"{self.epochs}, {self.batch_size}, {self.learning_rate}"
            )
        if not (self.augment in (None, "shift") or callable(self.augment)):
            raise UsageError(f"training: augment {self.augment!r}: expected 'shift' or nothing")


class Checkpoints:
    """One file per phase in `directory`, replaced atomically after every epoch."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, phase: str) -> Path:
        return self.directory / f"{phase}.pt"

    def load(self, phase: str) -> dict[str, Any] | None:
        path = self.path(phase)
        if not path.is_file():
            return None
        return dict(torch.load(path, weights_only=False))  # our own file: whole modules inside

    def save(self, phase: str, state: dict[str, Any]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(phase)
        temporary = path.with_name(f".{path.name}.tmp")
        torch.save(state, temporary)
        os.replace(temporary, path)
        return path


def shift_augment(batch: Any, generator: Any) -> Any:
    """Random shifts of up to one pixel (zero fill) of an N x C x H x W batch."""
    height, width = batch.shape[-2:]
    padded = torch.nn.functional.pad(batch, (1, 1, 1, 1))
    dx, dy = torch.randint(0, 3, (2,), generator=generator).tolist()
    return padded[..., dy : dy + height, dx : dx + width]


def cross_entropy_loss(model: Any, inputs: list[Any], labels: Any, index: Any) -> Any:
    """The default loss: cross-entropy of the model's logits against int64 `labels` (batch mean)."""
    return torch.nn.functional.cross_entropy(model(*inputs), labels)


def predict(model: Any, arrays: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """Logits of a torch model over every row (eval mode, no gradients)."""
    model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(arrays[0]), batch_size):
            parts.append(model(*(torch.from_numpy(a[start : start + batch_size]) for a in arrays)).numpy())
    return np.concatenate(parts)


def accuracy(model: Any, data: TrainData, input_names: Sequence[str]) -> float:
    """Top-1 accuracy (a fraction in [0, 1]) of a torch classifier on labelled `data`."""
    if data.labels is None:
        raise UsageError(f"{data.source}: accuracy needs a 'labels' array")
    return float((predict(model, data.arrays(input_names)).argmax(1) == data.labels).mean())


def _last_good(phase: str, checkpoints: Checkpoints | None) -> tuple[Path, str, int] | None:
    """The newest checkpoint on disk: this phase's, else the previous phase's."""
    if checkpoints is None or not checkpoints.directory.is_dir():
        return None
    own = checkpoints.path(phase)
    files = (
        [own]
        if own.is_file()
        else sorted(checkpoints.directory.glob("*.pt"), key=lambda p: p.stat().st_mtime)
    )
    if not files:
        return None
    state = checkpoints.load(files[-1].stem) or {}
    return files[-1], str(state.get("phase", files[-1].stem)), int(state.get("epoch", 0))


def _diverged(phase: str, epoch: int, value: float, checkpoints: Checkpoints | None) -> TrainingDivergedError:
    """The error for a non-finite loss, naming the epoch and the last good checkpoint kept."""
    kept = _last_good(phase, checkpoints)
    where = f"; the last good checkpoint ({kept[1]}, epoch {kept[2]}) is kept in {kept[0]}" if kept else ""
    return TrainingDivergedError(
        f"{phase}: the training loss became {value} in epoch {epoch}{where}; lower the learning rate",
        phase=phase,
        epoch=epoch,
        checkpoint=str(kept[0]) if kept else None,
    )


@dataclass
class _Progress:
    """Everything a phase carries from epoch to epoch (and through a checkpoint)."""

    model: Any
    optimizer: Any
    scheduler: Any
    generator: Any
    history: list[dict[str, Any]]
    first_epoch: int = 1

    def state(self, phase: str, epoch: int) -> dict[str, Any]:
        """The checkpoint contents after `epoch`: whole module, optimizer, scheduler, RNG states."""
        return {
            "phase": phase,
            "epoch": epoch,
            "model": self.model,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
        }


def _start(
    model: Any, phase: str, options: FitOptions, checkpoints: Checkpoints | None, emit: EventCallback
) -> _Progress:
    """Seed torch, build Adam + cosine schedule, and restore the phase's checkpoint if there is one
    (emitting a `resume` event)."""
    torch.manual_seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    state = checkpoints.load(phase) if checkpoints is not None else None
    if state is not None:
        model = state["model"]
    optimizer = torch.optim.Adam(
        model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(options.epochs, 1))
    progress = _Progress(model, optimizer, scheduler, generator, [])
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        progress.history = list(state["history"])
        progress.first_epoch = int(state["epoch"]) + 1
        emit({"event": "resume", "phase": phase, "epoch": progress.first_epoch - 1, "epochs": options.epochs})
    return progress


def _augmented(batch: list[Any], options: FitOptions, generator: Any) -> list[Any]:
    """`options.augment` applied to the 4-D (image) inputs of a batch; other inputs unchanged."""
    if options.augment is None:
        return batch
    augment = shift_augment if options.augment == "shift" else options.augment
    return [augment(t, generator) if t.ndim == 4 else t for t in batch]


def _train_epoch(
    progress: _Progress,
    phase: str,
    epoch: int,
    rows: int,
    x: list[Any],
    y: Any | None,
    options: FitOptions,
    loss_fn: LossFn,
    checkpoints: Checkpoints | None,
) -> float:
    """One shuffled pass over the `rows` rows of `x` (tensors, one per input) and `y` (int64
    labels or None), one optimizer step per batch; returns the mean loss per row.
    Raises TrainingDivergedError when a batch loss is not finite."""
    model, generator, optimizer = progress.model, progress.generator, progress.optimizer
    model.train()
    order = torch.randperm(rows, generator=generator)
    loss_sum, seen = 0.0, 0
    for start in range(0, rows, options.batch_size):
        index = order[start : start + options.batch_size]
        batch = _augmented([t[index] for t in x], options, generator)
        labels = None if y is None else y[index]
        loss = loss_fn(model, batch, labels, index)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise _diverged(phase, epoch, value, checkpoints)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += value * len(index)
        seen += len(index)
    progress.scheduler.step()
    return loss_sum / seen


def _epoch_entry(
    model: Any,
    phase: str,
    epoch: int,
    loss: float,
    options: FitOptions,
    x: list[Any],
    data: TrainData,
    evaluate: Callable[[Any], float] | None,
    started: float,
) -> dict[str, Any]:
    """The history entry of an epoch: loss, train accuracy (with labels), eval accuracy (with
    `evaluate`) and the epoch's wall time in seconds (`time.perf_counter` since `started`)."""
    entry: dict[str, Any] = {"phase": phase, "epoch": epoch, "epochs": options.epochs, "loss": loss}
    if data.labels is not None:
        correct = int((predict(model, [t.numpy() for t in x]).argmax(1) == data.labels).sum())
        entry["train_accuracy"] = correct / data.rows
    if evaluate is not None:
        entry["eval_accuracy"] = evaluate(model)
    entry["seconds"] = round(time.perf_counter() - started, 3)
    return entry


def _stop_if_asked(epoch: int) -> None:
    """The test-only interruption (`STOP_AFTER_EPOCH_ENV`): KeyboardInterrupt after that epoch."""
    stop_after = int(os.environ.get(STOP_AFTER_EPOCH_ENV, "0") or 0)
    if stop_after and epoch == stop_after:
        raise KeyboardInterrupt(f"{STOP_AFTER_EPOCH_ENV}={stop_after}")


def fit(
    model: Any,
    phase: str,
    data: TrainData,
    input_names: Sequence[str],
    options: FitOptions,
    *,
    loss_fn: LossFn = cross_entropy_loss,
    evaluate: Callable[[Any], float] | None = None,
    checkpoints: Checkpoints | None = None,
    emit: EventCallback | None = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """Train `model` for `options.epochs`; returns the trained model (a resumed run returns the
    checkpointed module) and the per-epoch history. Emits `resume` and `epoch` events; raises
    TrainingDivergedError when the loss stops being finite."""
    emit = emit or (lambda event: None)
    progress = _start(model, phase, options, checkpoints, emit)
    x = [torch.from_numpy(a) for a in data.arrays(input_names)]
    y = torch.from_numpy(data.labels) if data.labels is not None else None
    for epoch in range(progress.first_epoch, options.epochs + 1):
        started = time.perf_counter()
        loss = _train_epoch(progress, phase, epoch, data.rows, x, y, options, loss_fn, checkpoints)
        entry = _epoch_entry(progress.model, phase, epoch, loss, options, x, data, evaluate, started)
        progress.history.append(entry)
        if checkpoints is not None:
            checkpoints.save(phase, progress.state(phase, epoch))
        emit({"event": "epoch", **entry})
        _stop_if_asked(epoch)
    progress.model.eval()
    return progress.model, progress.history


def fit_evaluated(
    model: Any,
    phase: str,
    data: TrainData,
    eval_data: TrainData,
    input_names: Sequence[str],
    options: FitOptions,
    *,
    checkpoints: Checkpoints | None = None,
    emit: EventCallback | None = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """`fit` with cross-entropy and the top-1 accuracy on labelled `eval_data` after every epoch
    (the history's `eval_accuracy`, a fraction in [0, 1])."""
    return fit(
        model,
        phase,
        data,
        input_names,
        options,
        evaluate=lambda m: accuracy(m, eval_data, input_names),
        checkpoints=checkpoints,
        emit=emit,
    )
