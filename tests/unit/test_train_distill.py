"""Combining teachers' soft targets: pure arithmetic on logits."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the train extra (CPU PyTorch) is not installed")

from edgekit.core.errors import UsageError
from edgekit.train.distill import ensemble_targets, softmax


def test_mean_of_one_teacher_is_its_softened_distribution() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], np.float32)
    assert np.allclose(ensemble_targets([logits], 4.0, "mean"), softmax(logits, 4.0), atol=1e-6)


def test_mean_averages_probabilities_not_logits() -> None:
    a = np.array([[10.0, 0.0]], np.float32)
    b = np.array([[0.0, 10.0]], np.float32)
    assert np.allclose(ensemble_targets([a, b], 1.0, "mean"), [[0.5, 0.5]], atol=1e-6)


def test_confidence_weighting_favours_the_sure_teacher_per_row() -> None:
    sure = np.array([[8.0, 0.0], [0.0, 0.1]], np.float32)  # sure of row 0, unsure of row 1
    unsure = np.array([[0.0, 0.1], [0.0, 8.0]], np.float32)  # the other way round
    combined = ensemble_targets([sure, unsure], 1.0, "confidence")
    mean = ensemble_targets([sure, unsure], 1.0, "mean")
    assert combined[0, 0] > mean[0, 0] and combined[1, 1] > mean[1, 1]
    assert np.allclose(combined.sum(1), 1.0, atol=1e-6)


def test_unknown_weighting_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="weighting 'median'"):
        ensemble_targets([np.zeros((1, 2), np.float32)], 1.0, "median")
