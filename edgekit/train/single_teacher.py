"""Single-teacher distillation: one ONNX teacher, numpy inputs, the student trained in place.

A thin wrapper kept for its callers (scripts/distill_demo.py, tests/integration/test_distill.py);
the implementation is `edgekit.train.distill` (one or many teachers, ONNX or torch) with its
training loop `edgekit.train.loop.fit`. Needs the `train` extra."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.train.extra import TRAIN_EXTRA_HINT, require_torch

if TYPE_CHECKING:
    import torch

__all__ = [
    "TRAIN_EXTRA_HINT",
    "DistillReport",
    "distill",
    "distill_loss",
    "export_onnx",
    "require_torch",
    "teacher_logits",
]


@dataclass
class DistillReport:
    """What a single-teacher run did: its temperature, alpha, epochs and per-epoch mean loss."""

    temperature: float
    alpha: float
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready plain types."""
        return {
            "temperature": self.temperature,
            "alpha": self.alpha,
            "epochs": self.epochs,
            "history": self.history,
        }


def teacher_logits(teacher: Path, inputs: dict[str, np.ndarray], batch: int = 64) -> np.ndarray:
    """The ONNX teacher's first output over every row (float32, rows x classes), run by
    onnxruntime `batch` rows at a time (`edgekit.train.distill.teacher_logits`)."""
    from edgekit.train import distill as multi

    return multi.teacher_logits(teacher, inputs, batch)


def distill_loss(
    student_logits: torch.Tensor,
    soft_targets: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """The Hinton et al. (2015) loss against one teacher's logits (`soft_targets`, batch x
    classes): alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE
    with `labels` (int64, batch), the KL term alone when `labels` is None or alpha >= 1; a scalar
    tensor (`edgekit.train.distill.distill_loss`)."""
    from edgekit.train import distill as multi

    probs = multi.torch.softmax(soft_targets / temperature, dim=1)
    return multi.distill_loss(student_logits, probs, labels, temperature, alpha)


def distill(
    teacher: Path,
    student: torch.nn.Module,
    inputs: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    input_name: str = "input",
    temperature: float = 4.0,
    alpha: float = 0.7,
    epochs: int = 30,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    seed: int = 0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> DistillReport:
    """Train `student` in place on the teacher's soft targets (plus hard labels, weighted 1 - alpha).

    `inputs` is float32 (rows x the student's input shape), `labels` int (rows) or None (then
    alpha must be 1); `on_epoch` gets {"epoch", "loss"} after each epoch. Raises UsageError for
    bad settings or a missing torch."""
    require_torch("distillation")
    from edgekit.train import distill as multi
    from edgekit.train.data import TrainData

    data = TrainData({input_name: inputs}, None if labels is None else labels.astype(np.int64), "<inputs>")

    def forward(event: dict[str, Any]) -> None:
        if on_epoch is not None and event.get("event") == "epoch":
            on_epoch({"epoch": event["epoch"], "loss": event["loss"]})

    result = multi.distill(
        [teacher],
        student,
        data,
        None,
        temperature,
        alpha,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        seed=seed,
        augment=augment,
        input_names=[input_name],
        emit=forward,
    )
    if result.model is not student:  # fit trains in place; a resumed checkpoint would differ
        student.load_state_dict(result.model.state_dict())
    student.eval()
    history = [{"epoch": e["epoch"], "loss": e["loss"]} for e in result.history]
    return DistillReport(temperature, alpha, epochs, history)


def export_onnx(
    model: torch.nn.Module,
    example: np.ndarray,
    out: Path,
    *,
    input_name: str = "input",
    output_name: str = "logits",
) -> Path:
    """ONNX with a symbolic batch dimension, through the legacy exporter (reliable for small CNNs);
    `edgekit.train.export.export_onnx` for one input. Returns `out`."""
    from edgekit.train.export import export_onnx as export

    return export(model, example, out, input_name=input_name, output_name=output_name)
