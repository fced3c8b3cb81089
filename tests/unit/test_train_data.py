"""Training data: .npz and image folders become float tensors checked against the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.core.errors import InputSpecError
from edgekit.train.data import TrainData, load_train_data


def test_npz_rows_and_labels(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", input=np.ones((5, 1, 8, 8), np.float32), labels=np.arange(5))
    data = load_train_data(tmp_path / "d.npz", {"input": [1, 8, 8]}, "data.train")
    assert data.rows == 5 and data.labels is not None and data.labels.dtype == np.int64
    assert data.subset(np.array([0, 2])).rows == 2


def test_npz_errors_name_the_config_key(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", input=np.ones((5, 1, 8, 8), np.float32))
    with pytest.raises(InputSpecError, match=r"data\.eval .*no 'labels' array"):
        load_train_data(tmp_path / "d.npz", {"input": [1, 8, 8]}, "data.eval")
    with pytest.raises(InputSpecError, match=r"data\.train .*d\.npz") as info:
        load_train_data(tmp_path / "d.npz", {"input": [3, 8, 8]}, "data.train")
    assert "--inputs" not in info.value.message


def test_image_folder_with_class_subfolders(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    for label, value in (("cat", 0), ("dog", 255)):
        (tmp_path / label).mkdir()
        for index in range(3):
            image.fromarray(np.full((12, 12), value, np.uint8)).save(tmp_path / label / f"{index}.png")
    data = load_train_data(tmp_path, {"input": [1, 8, 8]}, "data.train")
    assert data.inputs["input"].shape == (6, 1, 8, 8) and data.inputs["input"].dtype == np.float32
    assert data.labels is not None and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.inputs["input"][3].min() == pytest.approx(1.0)


def test_labels_outside_the_model_classes_are_refused() -> None:
    torch = pytest.importorskip("torch", reason="the train extra (CPU PyTorch) is not installed")
    from edgekit.train.data import check_against_model

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    data = TrainData({"input": np.zeros((4, 1, 2, 2), np.float32)}, np.array([0, 1, 2, 7]), "d.npz")
    with pytest.raises(InputSpecError, match=r"labels span 0\.\.7 but the model has 3 outputs"):
        check_against_model(model, data, ["input"], "data.train")
    wrong = TrainData({"input": np.zeros((4, 1, 3, 3), np.float32)}, None, "d.npz")
    with pytest.raises(InputSpecError, match="the model rejects rows of shape"):
        check_against_model(model, wrong, ["input"], "data.train")
