"""data: the bundled demo model (a digits CNN) and its data splits; scripts/train_demo_model.py
made them.

May import: `edgekit.core`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_DIR = Path(__file__).resolve().parent


def demo_model_path() -> Path:
    return _DIR / "demo_digits.onnx"


def demo_test_set_path() -> Path:
    """Held-back labelled split: arrays `input` (N x 1 x 8 x 8 float32) and `labels` (int64)."""
    return _DIR / "demo_digits_test.npz"


def demo_calib_set_path() -> Path:
    """256 rows of the training split, array `input`, for post-training quantization."""
    return _DIR / "demo_digits_calib.npz"


def demo_metadata() -> dict[str, Any]:
    return dict(json.loads((_DIR / "demo_digits.json").read_text(encoding="utf-8")))
