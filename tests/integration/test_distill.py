"""Distillation of the bundled teacher into a small student, with real training on CPU PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.compress.fidelity import session
from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from edgekit.data.digits import digits_student
from edgekit.train.single_teacher import distill, export_onnx, teacher_logits

torch = pytest.importorskip("torch", reason="the train extra (CPU PyTorch) is not installed")
pytestmark = pytest.mark.integration


def accuracy(model: Path, x: np.ndarray, labels: np.ndarray) -> float:
    return float((session(model).run(None, {"input": x})[0].argmax(1) == labels).mean())


def test_student_learns_from_soft_targets_alone(tmp_path: Path) -> None:
    """256 unlabelled rows and the teacher's soft targets are enough for a 7x smaller student."""
    torch.set_num_threads(1)
    train = np.load(demo_calib_set_path())["input"]
    with np.load(demo_test_set_path()) as test:
        x_test, y_test = test["input"], test["labels"]
    student = digits_student()
    report = distill(
        demo_model_path(),
        student,
        train,
        None,
        alpha=1.0,
        temperature=4.0,
        epochs=80,
        learning_rate=1e-2,
        seed=0,
    )
    assert report.history[-1]["loss"] < report.history[0]["loss"] / 3
    out = export_onnx(student, train, tmp_path / "student.onnx")
    student_accuracy = accuracy(out, x_test, y_test)
    teacher_accuracy = accuracy(demo_model_path(), x_test, y_test)
    params = sum(p.numel() for p in student.parameters())
    assert params * 7 < 56_554  # the teacher's parameter count
    assert student_accuracy >= 0.80, student_accuracy
    assert student_accuracy <= teacher_accuracy + 0.01
    assert session(out).get_inputs()[0].shape[0] == "batch"


def test_teacher_logits_match_onnxruntime() -> None:
    x = np.load(demo_calib_set_path())["input"][:70]
    logits = teacher_logits(demo_model_path(), {"input": x}, batch=32)
    assert logits.shape == (70, 10)
    direct = session(demo_model_path()).run(None, {"input": x})[0]
    assert np.allclose(logits, direct, atol=1e-5)
