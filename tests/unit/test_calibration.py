"""Calibration feeds: every row used, every feed of one shape, for any row count, and
onnxruntime's calibrators (minmax, entropy, percentile) accept them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.compress.data import MAX_BATCH, Dataset, calibration_batch_size, calibration_batches
from edgekit.core.onnx_model import TensorInfo


def _info(first: int | str) -> list[TensorInfo]:
    return [TensorInfo("input", "float32", [first, 1, 8, 8])]


def _dataset(rows: int) -> Dataset:
    data = np.arange(rows * 64, dtype=np.float32).reshape(rows, 1, 8, 8)
    return Dataset(Path("<test>"), {"input": data}, None)


@pytest.mark.parametrize("rows", [1, 31, 33, 90, 96, 100, 256])
@pytest.mark.parametrize("first", ["batch", 1, 4, 7])
def test_feeds_are_equal_and_cover_every_row(rows: int, first: int | str) -> None:
    feeds = list(calibration_batches(_dataset(rows), _info(first)))
    shapes = {feed["input"].shape for feed in feeds}
    assert len(shapes) == 1
    size = next(iter(shapes))[0]
    assert size == (first if isinstance(first, int) else calibration_batch_size(rows, _info(first)))
    assert 1 <= size <= max(MAX_BATCH, size)
    seen = np.concatenate([feed["input"][:, 0, 0, 0] for feed in feeds]) / 64
    assert set(seen.astype(int)) == set(range(rows))
    assert len(seen) - rows < size  # at most one feed completed with repeated rows


def test_free_batch_splits_into_divisors() -> None:
    assert calibration_batch_size(256, _info("batch")) == 32
    assert calibration_batch_size(90, _info("batch")) == 30
    assert calibration_batch_size(33, _info("batch")) == 11
    assert calibration_batch_size(31, _info("batch")) == 31
    assert calibration_batch_size(37, _info("batch")) == 1
