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
from edgekit.train.artifact import ArtifactPlan, check_out_dir, training_section, write_artifact
from edgekit.train.data import TrainData, check_against_model
from edgekit.train.export import export_onnx, parameter_count
from edgekit.train.extra import require_torch
from edgekit.train.loop import Checkpoints, FitOptions, LossFn, accuracy, fit, predict

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
    """Row-wise softmax(logits / temperature) of a rows x classes array, in float64."""
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
    """alpha * T^2 * KL(teacher_probs || softmax(student_logits / T)) + (1 - alpha) * CE(student,
    labels), batch-mean (Hinton et al., 2015); the KL term alone when `labels` is None or alpha >=
    1. `student_logits` and `teacher_probs` are float32 batch x classes, `labels` int64 batch."""
    functional = torch.nn.functional
    soft = functional.kl_div(
        functional.log_softmax(student_logits / temperature, dim=1), teacher_probs, reduction="batchmean"
    ) * (temperature**2)
    if labels is None or alpha >= 1.0:
        return soft
    return alpha * soft + (1.0 - alpha) * functional.cross_entropy(student_logits, labels)


@dataclass
class DistillResult:
    """The trained student, its per-epoch history, accuracies (fractions; with labelled eval data)
    and the artifact manifest (with `out_dir`)."""

    model: Any
    history: list[dict[str, Any]]
    accuracy: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None


def _teacher_list(teachers: Sequence[Teacher] | Teacher) -> list[Teacher]:
    """One teacher (an ONNX path or a torch module) or a sequence of them, as a list."""
    if isinstance(teachers, str | Path) or not isinstance(teachers, Sequence):
        return [teachers]
    return list(teachers)


def _check(teachers: Sequence[Teacher], temperature: float, alpha: float, weighting: str) -> None:
    """UsageError for no teacher, alpha outside [0, 1], temperature <= 0 or an unknown weighting."""
    if not teachers:
        raise UsageError("distill: give at least one teacher")
    if not 0.0 <= alpha <= 1.0 or temperature <= 0:
        raise UsageError(f"distill: need 0 <= alpha <= 1 and temperature > 0, got {alpha}, {temperature}")
    if weighting not in WEIGHTINGS:
        raise UsageError(f"distill: weighting {weighting!r}: expected one of {', '.join(WEIGHTINGS)}")


def _check_data(
    student: Any,
    train_data: TrainData,
    alpha: float,
    input_names: Sequence[str],
    out_dir: Path | None,
    force: bool,
) -> None:
    """Refuse a non-empty OUT_DIR, hard-label mixing without labels, and training rows that do
    not fit the student (UsageError / InputSpecError)."""
    check_out_dir(out_dir, force)
    if alpha < 1.0 and train_data.labels is None:
        raise UsageError("distill: alpha < 1 mixes in the hard labels; the training data has no 'labels'")
    check_against_model(student, train_data, input_names, "train data")


@dataclass(frozen=True)
class _Distillation:
    """One distillation: its teachers, the loss's temperature and alpha, the teachers' weighting
    and the student's input names."""

    teachers: list[Teacher]
    temperature: float
    alpha: float
    weighting: str
    input_names: Sequence[str]

    def logits(self, data: TrainData) -> list[np.ndarray]:
        """Every teacher's logits over `data` (float32, rows x classes each)."""
        inputs = {name: data.inputs[name] for name in self.input_names}
        return [teacher_logits(teacher, inputs) for teacher in self.teachers]

    def loss(self, train_data: TrainData) -> LossFn:
        """The training loss: `distill_loss` against the teachers' combined soft targets of each
        batch's rows (computed once here, over every training row)."""
        soft = ensemble_targets(self.logits(train_data), self.temperature, self.weighting)
        targets = torch.from_numpy(soft)

        def loss_fn(model: Any, batch: list[Any], labels: Any, index: Any) -> Any:
            return distill_loss(model(*batch), targets[index], labels, self.temperature, self.alpha)

        return loss_fn


def _evaluator(
    student: Any, eval_data: TrainData | None, input_names: Sequence[str]
) -> Callable[[Any], float] | None:
    """Per-epoch accuracy on labelled `eval_data` (checked against the student), else None."""
    if eval_data is None or eval_data.labels is None:
        return None
    check_against_model(student, eval_data, input_names, "eval data")
    return lambda m: accuracy(m, eval_data, input_names)


def _accuracies(job: _Distillation, student: Any, eval_data: TrainData) -> tuple[dict[str, Any], np.ndarray]:
    """Top-1 accuracies (fractions) on labelled `eval_data` of each teacher, their ensemble (at
    T = 1) and the student; and the ensemble's probabilities (float32, rows x classes)."""
    eval_logits = job.logits(eval_data)
    ensemble = ensemble_targets(eval_logits, 1.0, job.weighting)
    measured = {
        "teachers": [float((item.argmax(1) == eval_data.labels).mean()) for item in eval_logits],
        "ensemble": float((ensemble.argmax(1) == eval_data.labels).mean()),
        "student": accuracy(student, eval_data, job.input_names),
    }
    return measured, ensemble


def _write_student(
    job: _Distillation,
    options: FitOptions,
    result: DistillResult,
    ensemble: np.ndarray,
    eval_data: TrainData,
    out_dir: Path,
    *,
    force: bool,
    training_extra: dict[str, Any] | None,
    emit: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """Publish the student as OUT_DIR: fidelity against the teachers' `ensemble` probabilities,
    float.onnx the first teacher (exported when it is a torch module); returns the manifest."""
    with tempfile.TemporaryDirectory(prefix="edgekit-distill-") as scratch:
        work = Path(scratch)
        names = job.input_names
        examples = eval_data.arrays(names)
        model_file = export_onnx(result.model, examples, work / "student.onnx", input_name=list(names))
        reference = _reference_onnx(job.teachers[0], examples, work / "teacher.onnx", names)
        loss = {"weighting": job.weighting, "temperature": job.temperature, "alpha": job.alpha}
        teachers = [_describe(teacher) for teacher in job.teachers]
        size = parameter_count(result.model)
        training = training_section(
            "distill",
            {"teachers": teachers, **loss, "epochs": options.epochs},
            options,
            {"student_parameters": size, "accuracy": result.accuracy, "history": result.history},
            training_extra,
        )
        params = {"teachers": len(job.teachers), **loss}
        recipe = [{"name": "distill", "params": params, "report": {"student_parameters": size}}]
        plan = ArtifactPlan(
            model_file,
            reference,
            recipe,
            training,
            reference_logits=np.log(np.maximum(ensemble, 1e-12)),
            reference_note=f"the ensemble of {len(job.teachers)} teacher(s) ({job.weighting}); "
            "float.onnx is the first",
        )
        return write_artifact(plan, out_dir, eval_data, force=force, emit=emit)


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
    With labelled `eval_data` the result carries teacher, ensemble and student accuracies; with
    `out_dir` too, the student is written as an artifact directory. Raises UsageError for bad
    settings."""
    group = _teacher_list(teachers)
    _check(group, temperature, alpha, weighting)
    _check_data(student, train_data, alpha, input_names, out_dir, force)
    job = _Distillation(group, temperature, alpha, weighting, input_names)
    loss_fn = job.loss(train_data)
    evaluate = _evaluator(student, eval_data, input_names)
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
    result.accuracy, ensemble = _accuracies(job, trained, eval_data)
    if out_dir is not None:
        result.manifest = _write_student(
            job,
            options,
            result,
            ensemble,
            eval_data,
            out_dir,
            force=force,
            training_extra=training_extra,
            emit=emit,
        )
    return result


def _reference_onnx(teacher: Teacher, examples: list[np.ndarray], out: Path, names: Sequence[str]) -> Path:
    """The float reference file: an ONNX teacher as is, a torch teacher exported to `out`."""
    if isinstance(teacher, str | Path):
        return Path(teacher)
    return export_onnx(teacher, examples, out, input_name=list(names))


def _describe(teacher: Teacher) -> dict[str, Any]:
    """A teacher as the manifest names it: its ONNX path, or its torch class and parameter count."""
    if isinstance(teacher, str | Path):
        return {"onnx": str(teacher)}
    return {"torch": teacher.__class__.__name__, "parameters": parameter_count(teacher)}
