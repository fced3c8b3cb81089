"""The scikit-learn digits data set, split the way the bundled demo model was trained.

Needs scikit-learn (the `train` extra); the data itself ships inside the scikit-learn package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.core.errors import UsageError

TEST_FRACTION = 0.2


def load_digits_split(seed: int = 0) -> dict[str, np.ndarray]:
    """Stratified train/test split; pixels 0..16 scaled to [0, 1], shape N x 1 x 8 x 8."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise UsageError("the digits data needs scikit-learn: pip install -e '.[train]'") from None
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=seed
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def digits_student() -> Any:
    """A 1,442-parameter CNN for the digits (39x smaller than the bundled teacher); needs torch."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
