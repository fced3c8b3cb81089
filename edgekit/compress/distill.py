"""Knowledge distillation: train a small PyTorch student on a teacher's soft targets.

The teacher is any ONNX model, run with onnxruntime once over the training inputs; the student
is a torch module, trained with the classic loss of Hinton et al. (2015):

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

and exported to ONNX. Needs the `train` extra (CPU PyTorch); everything else in edgekit works
without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.compress.fidelity import session
from edgekit.errors import UsageError

if TYPE_CHECKING:
    import torch

TRAIN_EXTRA_HINT = "pip install torch==2.13.0 (CPU build), or pip install -e '.[train]'"


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise UsageError(f"distillation needs PyTorch, which is not installed: {TRAIN_EXTRA_HINT}") from None
    return torch


@dataclass
class DistillReport:
    temperature: float
    alpha: float
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "alpha": self.alpha,
            "epochs": self.epochs,
            "history": self.history,
        }


def teacher_logits(teacher: Path, inputs: dict[str, np.ndarray], batch: int = 64) -> np.ndarray:
    sess = session(teacher)
    output = sess.get_outputs()[0].name
    rows = len(next(iter(inputs.values())))
    parts = [
        sess.run([output], {name: array[start : start + batch] for name, array in inputs.items()})[0]
        for start in range(0, rows, batch)
    ]
    return np.concatenate(parts).astype(np.float32)


def distill_loss(
    student_logits: torch.Tensor,
    soft_targets: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    torch = require_torch()
    functional = torch.nn.functional
    soft = functional.kl_div(
        functional.log_softmax(student_logits / temperature, dim=1),
        functional.softmax(soft_targets / temperature, dim=1),
        reduction="batchmean",
    ) * (temperature**2)
    if labels is None or alpha >= 1.0:
        return soft
    return alpha * soft + (1.0 - alpha) * functional.cross_entropy(student_logits, labels)


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
    """Train `student` in place on the teacher's soft targets (plus hard labels, weighted 1 - alpha)."""
    torch = require_torch()
    if not 0.0 <= alpha <= 1.0 or temperature <= 0:
        raise UsageError(f"distill: need 0 <= alpha <= 1 and temperature > 0, got {alpha}, {temperature}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    targets = torch.from_numpy(teacher_logits(teacher, {input_name: inputs}))
    x = torch.from_numpy(inputs)
    y = torch.from_numpy(labels.astype(np.int64)) if labels is not None else None
    optimizer = torch.optim.Adam(student.parameters(), lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(epochs, 1))
    report = DistillReport(temperature, alpha, epochs)
    for epoch in range(epochs):
        student.train()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            batch = x[index] if augment is None else augment(x[index], generator)
            loss = distill_loss(
                student(batch), targets[index], None if y is None else y[index], temperature, alpha
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        scheduler.step()
        entry = {"epoch": epoch + 1, "loss": total / len(x)}
        report.history.append(entry)
        if on_epoch is not None:
            on_epoch(entry)
    student.eval()
    return report


def export_onnx(
    model: torch.nn.Module,
    example: np.ndarray,
    out: Path,
    *,
    input_name: str = "input",
    output_name: str = "logits",
) -> Path:
    """ONNX with a symbolic batch dimension, through the legacy exporter (reliable for small CNNs)."""
    torch = require_torch()
    model.eval()
    torch.onnx.export(
        model,
        (torch.from_numpy(example[:1]),),
        str(out),
        input_names=[input_name],
        output_names=[output_name],
        dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return out
