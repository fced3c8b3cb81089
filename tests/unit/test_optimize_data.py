"""optimize's data without --calib: a per-feed --eval folder is split by file (seeded), its
labels are the files' `labels` entries; an image folder still needs --calib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.core.errors import InputSpecError
from edgekit.optimize.data import MIN_HELDOUT_FEEDS, has_labels, prepare_data


def _feeds(folder: Path, count: int, labelled: int | None = None) -> Path:
    """`count` feeds of different shapes; the first `labelled` files (all: None) have labels."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(count)
    for index in range(count):
        batch, size = 1 + index % 3, 8 + 5 * index
        arrays = {"image": rng.standard_normal((batch, 3, size, size + index)).astype(np.float32)}
        if labelled is None or index < labelled:
            arrays["labels"] = rng.integers(0, 10, batch)
        np.savez(folder / f"f{index:03d}.npz", **arrays)
    return folder


@pytest.mark.parametrize("count", [MIN_HELDOUT_FEEDS + 1, 9, 33])
def test_a_per_feed_eval_folder_is_split_by_file(tmp_path: Path, count: int) -> None:
    evaluation = _feeds(tmp_path / "eval", count)
    data = prepare_data(evaluation, None, tmp_path / "work", seed=3)
    calib = sorted(p.name for p in data.calib.glob("*.npz"))
    heldout = sorted(p.name for p in data.heldout.glob("*.npz"))
    assert data.labelled and calib and len(heldout) >= MIN_HELDOUT_FEEDS
    assert not set(calib) & set(heldout) and sorted(calib + heldout) == sorted(
        p.name for p in evaluation.iterdir()
    )
    assert len(calib) == max(1, count // 4)
    again = prepare_data(evaluation, None, tmp_path / "work", seed=3)  # rewritten, same split
    assert sorted(p.name for p in again.calib.glob("*.npz")) == calib
    if count > 9:  # another seed, another split
        other = prepare_data(evaluation, None, tmp_path / "work", seed=4)
        assert sorted(p.name for p in other.calib.glob("*.npz")) != calib


def test_labels_only_when_every_file_has_them(tmp_path: Path) -> None:
    assert not has_labels(_feeds(tmp_path / "some", 6, labelled=5))
    assert not has_labels(_feeds(tmp_path / "none", 6, labelled=0))
    assert has_labels(_feeds(tmp_path / "all", 6))
    assert not prepare_data(tmp_path / "some", None, tmp_path / "work", seed=0).labelled


def test_too_few_feed_files_and_image_folders_need_calib(tmp_path: Path) -> None:
    with pytest.raises(InputSpecError, match="feed files"):
        prepare_data(_feeds(tmp_path / "few", MIN_HELDOUT_FEEDS), None, tmp_path / "work", seed=0)
    images = tmp_path / "images" / "cat"
    images.mkdir(parents=True)
    (images / "a.png").write_bytes(b"")
    with pytest.raises(InputSpecError, match="image folder"):
        prepare_data(tmp_path / "images", None, tmp_path / "work", seed=0)
