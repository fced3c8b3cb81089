"""Example model factories for the digits data (8x8 grey images, 10 classes), for docs and tests.

Use them as `model.factory = "edgekit.train.examples:ds_cnn"` in a training config.
"""

from __future__ import annotations

from typing import Any

from edgekit.train.extra import require_torch

torch = require_torch("edgekit.train.examples")
nn = torch.nn


def _block(cin: int, cout: int, kernel: int = 3, groups: int = 1) -> list[Any]:
    """Conv2d (same padding, no bias) -> BatchNorm2d -> ReLU, from `cin` to `cout` channels."""
    return [
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


def _classifier(channels: int) -> list[Any]:
    """Global average pooling -> Flatten -> Linear to the 10 digit classes (logits)."""
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]


def digits_cnn(width: int = 32) -> Any:
    """The bundled demo model's architecture (width 32 -> 56,554 parameters)."""
    return nn.Sequential(
        *_block(1, width),
        *_block(width, 2 * width),
        nn.MaxPool2d(2),
        *_block(2 * width, 2 * width),
        *_classifier(2 * width),
    )


def wide_cnn(width: int = 96) -> Any:
    """A wider plain CNN: enough arithmetic per image that removing channels shows in latency."""
    return nn.Sequential(
        *_block(1, width),
        *_block(width, 2 * width),
        nn.MaxPool2d(2),
        *_block(2 * width, 2 * width),
        *_block(2 * width, 2 * width),
        *_classifier(2 * width),
    )


def ds_cnn(width: int = 32) -> Any:
    """A small depthwise-separable CNN (MobileNet-style blocks): depthwise 3x3 + pointwise 1x1."""
    return nn.Sequential(
        *_block(1, width),
        *_block(width, width, groups=width),
        *_block(width, 2 * width, kernel=1),
        nn.MaxPool2d(2),
        *_block(2 * width, 2 * width, groups=2 * width),
        *_block(2 * width, 2 * width, kernel=1),
        *_classifier(2 * width),
    )


def mlp(hidden: int = 128) -> Any:
    """A two-layer perceptron on the flattened 8x8 image (a different kind of teacher)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def tiny_cnn() -> Any:
    """The 1,442-parameter digits student."""
    from edgekit.data.digits import digits_student

    return digits_student()
