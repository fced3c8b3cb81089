"""Calibration and evaluation data (sample sets), in one of two forms:

- rows: one .npz with one array per model input sharing a leading row axis (+ 1-D `labels`);
- per-feed: a folder of .npz files, each one complete feed for the model (any shapes, scalars
  included: an audio chunk [1, 512], a recurrent state [2, 1, 64], a sample rate int64 []),
  with an optional `labels` entry per file (an integer, or one per row of the feed's outputs).

Consumers iterate `feeds(dataset, size)`: per-feed sets yield their feeds as they are, row sets
yield batches of `size` rows (`batches`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import InputSpecError
from edgekit.core.inputs import check_npz_arrays, feed_files, read_feed, read_npz
from edgekit.core.onnx_model import TensorInfo, is_fixed

LABELS = "labels"  # the same name as edgekit.core.inputs.LABELS
MAX_BATCH = 32


@dataclass(frozen=True)
class Dataset:
    """`inputs` holds the row form ({name: array with rows on axis 0}); a per-feed set has
    `per_feed` (one complete feed per file, in file-name order) and `inputs` = {}. `labels`:
    1-D integers, one per row (per-feed: the files' `labels` concatenated)."""

    path: Path
    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    per_feed: tuple[dict[str, np.ndarray], ...] | None = None

    @property
    def rows(self) -> int:
        """Rows of the row form; the number of feeds of a per-feed set."""
        if self.per_feed is not None:
            return len(self.per_feed)
        return len(next(iter(self.inputs.values())))


def load_dataset(
    path: Path, model_inputs: Sequence[TensorInfo], option: str, ignore: Collection[str] = ()
) -> Dataset:
    """Load and check an .npz, or a folder of per-feed .npz files (load_feed_folder), against
    the model's inputs (names, dtypes, ranks, fixed dims), on the host. Arrays named in `ignore`
    (inputs fixed by --fix-input) are dropped where present. Raises InputSpecError."""
    if path.is_dir():
        return load_feed_folder(path, model_inputs, option, ignore)
    if not path.is_file():
        raise InputSpecError(f"{option} {path}: no such file", path=str(path))
    data = read_npz(path, option)
    check_npz_arrays(data, path, model_inputs, {}, option)  # the checks of `bench --inputs`
    inputs = {info.name: np.array(data[info.name], order="C") for info in model_inputs}  # keeps 0-d
    labels = data.get(LABELS)
    scalars = [name for name, array in inputs.items() if array.ndim == 0]
    if scalars:
        raise InputSpecError(
            f"{option} {path}: array {scalars[0]!r} is a scalar, it has no row axis; write the set as "
            "a folder of .npz files, one complete feed each",
            path=str(path),
            input=scalars[0],
        )
    rows = {name: len(array) for name, array in inputs.items()}
    if len(set(rows.values())) != 1:
        raise InputSpecError(
            f"{option} {path}: arrays have different row counts {rows}; inputs without a common "
            "row axis go in a folder of .npz files, one complete feed each",
            path=str(path),
        )
    count = next(iter(rows.values()))
    if count == 0:
        raise InputSpecError(f"{option} {path}: no rows", path=str(path))
    if labels is not None and (labels.ndim != 1 or len(labels) != count or labels.dtype.kind not in "iu"):
        raise InputSpecError(
            f"{option} {path}: 'labels' must be 1-D integers with one label per row ({count})",
            path=str(path),
        )
    return Dataset(path, inputs, labels)


def load_feed_folder(
    path: Path, model_inputs: Sequence[TensorInfo], option: str, ignore: Collection[str] = ()
) -> Dataset:
    """A folder of .npz files, each one complete feed (edgekit.core.inputs.read_feed checks each
    on the host: names, dtypes, ranks, fixed dims on every axis). Labels: all files or none."""
    files = feed_files(path)
    if not files:
        raise InputSpecError(f"{option} {path}: no .npz files in this folder", path=str(path))
    per_feed: list[dict[str, np.ndarray]] = []
    labels: list[np.ndarray] = []
    for file in files:
        arrays = read_feed(file, model_inputs, option, ignore)
        if LABELS in arrays:
            labels.append(np.atleast_1d(arrays.pop(LABELS)))
        per_feed.append(arrays)
    if labels and len(labels) != len(files):
        raise InputSpecError(
            f"{option} {path}: {len(labels)} of {len(files)} files have 'labels'; give them in all or none",
            path=str(path),
        )
    return Dataset(path, {}, np.concatenate(labels) if labels else None, tuple(per_feed))


def feeds(dataset: Dataset, size: int) -> Iterator[dict[str, np.ndarray]]:
    """Every feed of the set: a per-feed set's feeds as they are (`size` is not used), a row
    set's batches of `size` rows (`batches`)."""
    if dataset.per_feed is not None:
        yield from dataset.per_feed
    else:
        yield from batches(dataset, size)


def shape_key(feed: dict[str, np.ndarray]) -> tuple[tuple[str, tuple[int, ...], str], ...]:
    """What makes two feeds stackable: each input's name, shape and dtype."""
    return tuple(
        (name, tuple(np.shape(value)), np.asarray(value).dtype.str) for name, value in sorted(feed.items())
    )


def shape_groups(dataset: Dataset) -> list[Dataset]:
    """The set as subsets whose feeds all have one shape (`shape_key`), in the order each shape
    first appears: a row set as it is, a per-feed set by shape (labels not carried)."""
    if dataset.per_feed is None:
        return [dataset]
    groups: dict[tuple[Any, ...], list[dict[str, np.ndarray]]] = {}
    for feed in dataset.per_feed:
        groups.setdefault(shape_key(feed), []).append(feed)
    return [Dataset(dataset.path, {}, None, tuple(group)) for group in groups.values()]


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
    no feed is short. Arrays keep their dtype; each feed maps input name -> array [B, ...]. A
    per-feed set's feeds are given as they are, of any shapes (the quantizer groups them by
    shape: edgekit.compress.quantize.calibration_reader)."""
    if dataset.per_feed is not None:
        yield from dataset.per_feed
        return
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
        shape = [rows] + [d if is_fixed(d) else 1 for d in info.dims[1:]]
        dtype = np.dtype(info.dtype)
        inputs[info.name] = (
            rng.standard_normal(shape).astype(dtype) if dtype.kind == "f" else np.ones(shape, dtype)
        )
    return Dataset(Path("<random>"), inputs, None)
