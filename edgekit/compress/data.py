"""Calibration and evaluation data: .npz files with one array per model input (+ `labels`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.core.errors import InputSpecError
from edgekit.core.inputs import check_inputs_file
from edgekit.core.onnx_model import TensorInfo

LABELS = "labels"
MAX_BATCH = 32


@dataclass(frozen=True)
class Dataset:
    path: Path
    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None

    @property
    def rows(self) -> int:
        return len(next(iter(self.inputs.values())))


def load_dataset(path: Path, model_inputs: Sequence[TensorInfo], option: str) -> Dataset:
    """Load and check an .npz against the model's inputs (names, dtypes, ranks, fixed dims)."""
    check_inputs_file(path, model_inputs)  # same checks and messages as `bench --inputs`
    with np.load(path, allow_pickle=False) as data:
        inputs = {info.name: np.ascontiguousarray(data[info.name]) for info in model_inputs}
        labels = data[LABELS] if LABELS in data.files else None
    rows = {name: len(array) for name, array in inputs.items()}
    if len(set(rows.values())) != 1:
        raise InputSpecError(f"{option} {path}: arrays have different row counts {rows}", path=str(path))
    count = next(iter(rows.values()))
    if count == 0:
        raise InputSpecError(f"{option} {path}: no rows", path=str(path))
    if labels is not None and (labels.ndim != 1 or len(labels) != count or labels.dtype.kind not in "iu"):
        raise InputSpecError(
            f"{option} {path}: 'labels' must be 1-D integers with one label per row ({count})",
            path=str(path),
        )
    return Dataset(path, inputs, labels)


def batch_size(model_inputs: Sequence[TensorInfo]) -> int:
    """The model's fixed batch if it has one, else MAX_BATCH rows per run."""
    fixed = {i.dims[0] for i in model_inputs if i.dims and isinstance(i.dims[0], int) and i.dims[0] > 0}
    return fixed.pop() if len(fixed) == 1 else MAX_BATCH


def batches(dataset: Dataset, size: int) -> Iterator[dict[str, np.ndarray]]:
    """Feeds of `size` rows (a trailing partial batch is dropped when the batch is fixed)."""
    for start in range(0, dataset.rows, size):
        feed = {name: array[start : start + size] for name, array in dataset.inputs.items()}
        if len(next(iter(feed.values()))) == size or size == MAX_BATCH:
            yield feed


def calibration_batch_size(rows: int, model_inputs: Sequence[TensorInfo]) -> int:
    """Rows per calibration feed: the model's fixed batch if it has one, else the largest divisor
    of `rows` that is <= MAX_BATCH, so that every feed has the same shape (onnxruntime's
    histogram calibrators, entropy and percentile, stack every feed's intermediate tensors into
    one array and fail on feeds of unequal row counts). `rows` >= 1."""
    fixed = {i.dims[0] for i in model_inputs if i.dims and isinstance(i.dims[0], int) and i.dims[0] > 0}
    if len(fixed) == 1:
        return fixed.pop()
    return max(d for d in range(1, min(rows, MAX_BATCH) + 1) if rows % d == 0)


def calibration_batches(
    dataset: Dataset, model_inputs: Sequence[TensorInfo]
) -> Iterator[dict[str, np.ndarray]]:
    """Feeds for a calibrator, all of one shape, covering every row at least once.

    With a free batch axis, `dataset.rows` is split into equal feeds of `calibration_batch_size`
    rows. With a fixed batch B, rows are fed B at a time and a trailing partial feed (or a set
    smaller than B) is completed with rows from the start of the set, so no row is dropped and
    no feed is short. Arrays keep their dtype; each feed maps input name -> array [B, ...]."""
    rows = dataset.rows
    size = calibration_batch_size(rows, model_inputs)
    for start in range(0, rows, size):
        index = np.arange(start, start + size) % rows
        yield {name: np.ascontiguousarray(array[index]) for name, array in dataset.inputs.items()}


def random_dataset(model_inputs: Sequence[TensorInfo], rows: int, seed: int) -> Dataset:
    """Explicitly requested random calibration (--calib-random): N(0, 1) floats, ones otherwise."""
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {}
    for info in model_inputs:
        shape = [rows] + [d if isinstance(d, int) and d > 0 else 1 for d in info.dims[1:]]
        dtype = np.dtype(info.dtype)
        inputs[info.name] = (
            rng.standard_normal(shape).astype(dtype) if dtype.kind == "f" else np.ones(shape, dtype)
        )
    return Dataset(Path("<random>"), inputs, None)
