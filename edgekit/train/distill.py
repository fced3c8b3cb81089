"""Knowledge distillation from one or many teachers into a small torch student.

Teachers are ONNX models (run with onnxruntime) or torch modules; each is run once over the
training rows. Their soft targets are combined per row into one distribution:

- `weighting="mean"`: the average of the teachers' softmax(logits / T);
- `weighting="confidence"`: a weighted average, each teacher weighted per row by its own
  top-1 probability (at T = 1), so a teacher that is unsure of a row counts less there.

The student is trained with the loss of Hinton et al. (2015) against that distribution:

    alpha * T^2 * KL(ensemble_T || softmax(student / T)) + (1 - alpha) * CE(student, labels)

One teacher is the special case of many (`edgekit.train.single_teacher` keeps the single-teacher
API on top of this module).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.compress.fidelity import session
from edgekit.core.errors import UsageError
from edgekit.train.artifact import ArtifactPlan, check_out_dir, write_artifact
from edgekit.train.data import TrainData, check_against_model
from edgekit.train.export import export_onnx, parameter_count
from edgekit.train.extra import require_torch
from edgekit.train.loop import Checkpoints, FitOptions, accuracy, fit, predict

torch = require_torch("distillation")
WEIGHTINGS = ("mean", "confidence")
Teacher = Path | Any  # an ONNX file or a torch module


def teacher_logits(teacher: Teacher, inputs: dict[str, np.ndarray], batch: int = 64) -> np.ndarray:
    """The teacher's first output over every row (onnxruntime for ONNX files, torch otherwise)."""
    if not isinstance(teacher, str | Path):
        return predict(teacher, list(inputs.values()), batch).astype(np.float32)
    sess = session(Path(teacher))
    output = sess.get_outputs()[0].name
    rows = len(next(iter(inputs.values())))
    parts = [
        sess.run([output], {name: array[start : start + batch] for name, array in inputs.items()})[0]
        for start in range(0, rows, batch)
    ]
    return np.concatenate(parts).astype(np.float32)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def ensemble_targets(logits: Sequence[np.ndarray], temperature: float, weighting: str = "mean") -> np.ndarray:
    """One soft-target distribution per row from every teacher's logits (pure)."""
    if weighting not in WEIGHTINGS:
        raise UsageError(f"distill: weighting {weighting!r}: expected one of {', '.join(WEIGHTINGS)}")
    soft = np.stack([softmax(item, temperature) for item in logits])  # teachers x rows x classes
    if weighting == "mean":
        weights = np.ones(soft.shape[:2])
    else:
        weights = np.stack([softmax(item).max(axis=1) for item in logits])
    weights = weights / weights.sum(axis=0, keepdims=True)
    return np.einsum("tr,trc->rc", weights, soft).astype(np.float32)


def distill_loss(
    student_logits: Any, teacher_probs: Any, labels: Any | None, temperature: float, alpha: float
) -> Any:
    functional = torch.nn.functional
    soft = functional.kl_div(
        functional.log_softmax(student_logits / temperature, dim=1), teacher_probs, reduction="batchmean"
    ) * (temperature**2)
    if labels is None or alpha >= 1.0:
        return soft
    return alpha * soft + (1.0 - alpha) * functional.cross_entropy(student_logits, labels)


@dataclass
class DistillResult:
    model: Any
    history: list[dict[str, Any]]
    accuracy: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None


def _check(teachers: Sequence[Teacher], temperature: float, alpha: float, weighting: str) -> None:
    if not teachers:
        raise UsageError("distill: give at least one teacher")
    if not 0.0 <= alpha <= 1.0 or temperature <= 0:
        raise UsageError(f"distill: need 0 <= alpha <= 1 and temperature > 0, got {alpha}, {temperature}")
    if weighting not in WEIGHTINGS:
        raise UsageError(f"distill: weighting {weighting!r}: expected one of {', '.join(WEIGHTINGS)}")


def distill(
    teachers: Sequence[Teacher] | Teacher,
    student: Any,
    train_data: TrainData,
    eval_data: TrainData | None = None,
    temperature: float = 4.0,
    alpha: float = 0.7,
    weighting: str = "mean",
    *,
    epochs: int = 30,
    learning_rate: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    augment: str | Callable[[Any, Any], Any] | None = None,
    input_names: Sequence[str] = ("input",),
    out_dir: Path | None = None,
    force: bool = False,
    training_extra: dict[str, Any] | None = None,  # more for the manifest's `training` section
    checkpoints: Checkpoints | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> DistillResult:
    """Train `student` on the teachers' combined soft targets (plus hard labels, weight 1 - alpha).
    With `out_dir` (needs labelled `eval_data`) the student is written as an artifact directory."""
    group = [teachers] if isinstance(teachers, str | Path) or not isinstance(teachers, Sequence) else teachers
    _check(group, temperature, alpha, weighting)
    check_out_dir(out_dir, force)
    if alpha < 1.0 and train_data.labels is None:
        raise UsageError("distill: alpha < 1 mixes in the hard labels; the training data has no 'labels'")
    check_against_model(student, train_data, input_names, "train data")
    inputs = {name: train_data.inputs[name] for name in input_names}
    logits = [teacher_logits(teacher, inputs) for teacher in group]
    targets = torch.from_numpy(ensemble_targets(logits, temperature, weighting))

    def loss_fn(model: Any, batch: list[Any], labels: Any, index: Any) -> Any:
        return distill_loss(model(*batch), targets[index], labels, temperature, alpha)

    evaluate = None
    if eval_data is not None and eval_data.labels is not None:
        check_against_model(student, eval_data, input_names, "eval data")
        evaluate = lambda m: accuracy(m, eval_data, input_names)  # noqa: E731
    options = FitOptions(epochs, learning_rate, batch_size, seed=seed, augment=augment)
    trained, history = fit(
        student,
        "distill",
        train_data,
        input_names,
        options,
        loss_fn=loss_fn,
        evaluate=evaluate,
        checkpoints=checkpoints,
        emit=emit,
    )
    result = DistillResult(trained, history)
    if eval_data is None or eval_data.labels is None:
        return result
    eval_inputs = {name: eval_data.inputs[name] for name in input_names}
    eval_logits = [teacher_logits(teacher, eval_inputs) for teacher in group]
    ensemble = ensemble_targets(eval_logits, 1.0, weighting)
    result.accuracy = {
        "teachers": [float((item.argmax(1) == eval_data.labels).mean()) for item in eval_logits],
        "ensemble": float((ensemble.argmax(1) == eval_data.labels).mean()),
        "student": accuracy(trained, eval_data, input_names),
    }
    if out_dir is None:
        return result
    with tempfile.TemporaryDirectory(prefix="edgekit-distill-") as scratch:
        work = Path(scratch)
        examples = eval_data.arrays(input_names)
        model_file = export_onnx(trained, examples, work / "student.onnx", input_name=list(input_names))
        reference = _reference_onnx(group[0], examples, work / "teacher.onnx", input_names)
        training = {
            "technique": "distill",
            "teachers": [_describe(teacher) for teacher in group],
            "weighting": weighting,
            "temperature": temperature,
            "alpha": alpha,
            "epochs": epochs,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "seed": seed,
            "student_parameters": parameter_count(trained),
            "accuracy": result.accuracy,
            "history": history,
        }
        training.update(training_extra or {})
        params = {"teachers": len(group), "weighting": weighting, "temperature": temperature, "alpha": alpha}
        plan = ArtifactPlan(
            model_file,
            reference,
            [
                {
                    "name": "distill",
                    "params": params,
                    "report": {"student_parameters": parameter_count(trained)},
                }
            ],
            training,
            reference_logits=np.log(np.maximum(ensemble, 1e-12)),
            reference_note=f"the ensemble of {len(group)} teacher(s) ({weighting}); float.onnx is the first",
        )
        result.manifest = write_artifact(plan, out_dir, eval_data, force=force, emit=emit)
    return result


def _reference_onnx(teacher: Teacher, examples: list[np.ndarray], out: Path, names: Sequence[str]) -> Path:
    if isinstance(teacher, str | Path):
        return Path(teacher)
    return export_onnx(teacher, examples, out, input_name=list(names))


def _describe(teacher: Teacher) -> dict[str, Any]:
    if isinstance(teacher, str | Path):
        return {"onnx": str(teacher)}
    return {"torch": teacher.__class__.__name__, "parameters": parameter_count(teacher)}
