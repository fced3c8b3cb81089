"""Training and evaluation data for a torch model: .npz (one array per input + `labels`) or an image
folder, checked against the model's declared inputs before any training starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.compress.data import load_dataset
from edgekit.compress.images import load_image_folder
from edgekit.core.errors import InputSpecError
from edgekit.core.onnx_model import TensorInfo


@dataclass(frozen=True)
class TrainData:
    """Rows along axis 0 of every input array; `labels` 1-D integers (or None: soft targets only)."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: str = "<memory>"

    @property
    def rows(self) -> int:
        return len(next(iter(self.inputs.values())))

    def arrays(self, names: Sequence[str]) -> list[np.ndarray]:
        return [self.inputs[name] for name in names]

    def subset(self, index: np.ndarray) -> TrainData:
        labels = None if self.labels is None else self.labels[index]
        return TrainData({k: v[index] for k, v in self.inputs.items()}, labels, self.source)


def model_inputs(input_shapes: dict[str, Sequence[int]]) -> list[TensorInfo]:
    """TensorInfo for each named input with a symbolic batch and fixed other dimensions."""
    return [
        TensorInfo(name, "float32", ("batch", *(int(d) for d in shape)))
        for name, shape in input_shapes.items()
    ]


def load_train_data(
    path: Path,
    input_shapes: dict[str, Sequence[int]],
    option: str,
    *,
    image_preprocess: str = "unit",
    need_labels: bool = True,
) -> TrainData:
    """Load and check a data set against the model's inputs (names, dtypes, shapes) and labels."""
    infos = model_inputs(input_shapes)
    if path.is_dir():
        if len(infos) != 1:
            raise InputSpecError(
                f"{option} {path}: an image folder feeds one-input models; this one has {len(infos)}"
            )
        dataset = load_image_folder(path, infos[0], image_preprocess, option)
    else:
        try:
            dataset = load_dataset(path, infos, option)
        except InputSpecError as exc:  # the shared checks word their messages for `bench --inputs`
            raise InputSpecError(
                exc.message.replace(f"--inputs {path}", f"{option} {path}"), **exc.data
            ) from None
    if need_labels and dataset.labels is None:
        raise InputSpecError(
            f"{option} {path}: no 'labels' array (one integer class per row)", path=str(path)
        )
    inputs = {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in dataset.inputs.items()}
    labels = None if dataset.labels is None else dataset.labels.astype(np.int64)
    return TrainData(inputs, labels, str(path))


def check_against_model(model: Any, data: TrainData, input_names: Sequence[str], option: str) -> int:
    """Run two rows through the model: the data must fit it and the labels its class count.
    Returns the number of classes (the model's output width)."""
    from edgekit.train.extra import require_torch

    torch = require_torch()
    rows = [torch.from_numpy(a[:2]) for a in data.arrays(input_names)]
    model.eval()
    try:
        with torch.no_grad():
            out = model(*rows)
    except (RuntimeError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        shapes = {n: list(data.inputs[n].shape[1:]) for n in input_names}
        raise InputSpecError(
            f"{option} {data.source}: the model rejects rows of shape {shapes}: {first}"
        ) from None
    if out.ndim != 2:
        raise InputSpecError(
            f"the model's output is {list(out.shape)}; training needs [batch, classes] logits"
        )
    classes = int(out.shape[1])
    if data.labels is not None and (data.labels.min() < 0 or data.labels.max() >= classes):
        raise InputSpecError(
            f"{option} {data.source}: labels span {int(data.labels.min())}..{int(data.labels.max())} "
            f"but the model has {classes} outputs"
        )
    return classes
