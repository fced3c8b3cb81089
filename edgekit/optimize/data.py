"""The search's data: calibration rows kept apart from the rows that judge accuracy.

Without `--calib`, a seeded share of the `--eval` rows (of a folder of per-feed .npz files: its
files) calibrates and the rest judge: a quantizer calibrated on the very rows it is graded on
would look better than it is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.compress.data import LABELS
from edgekit.core.errors import InputSpecError
from edgekit.core.inputs import feed_files

CALIB_SHARE = 0.25
CALIB_MAX_ROWS = 256
MIN_HELDOUT_ROWS = 20


@dataclass(frozen=True)
class SearchData:
    calib: Path
    heldout: Path
    note: str
    labelled: bool  # accuracy from labels; else top-1 agreement with the float model


def has_labels(path: Path) -> bool:
    """An image folder's class folders are labels; an .npz has them in a 'labels' array, a
    folder of per-feed .npz files in a 'labels' entry of its files (all or none)."""
    files = feed_files(path)
    if path.is_dir() and not files:
        return True
    return any(_npz_has_labels(file) for file in files) if files else _npz_has_labels(path)


def _npz_has_labels(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as data:
            return LABELS in data.files
    except (OSError, ValueError):
        return False  # unreadable: compress reports it with the path


def _rows(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name]) for name in data.files}
    except (OSError, ValueError) as exc:
        raise InputSpecError(f"--eval {path}: cannot read as .npz: {exc}", path=str(path)) from None
    if not arrays:
        raise InputSpecError(f"--eval {path}: no arrays", path=str(path))
    return arrays


def split_rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(calibration rows, held-out rows): a seeded permutation, calibration capped."""
    calib_rows = min(CALIB_MAX_ROWS, max(1, int(count * CALIB_SHARE)))
    if count - calib_rows < MIN_HELDOUT_ROWS:
        raise InputSpecError(
            f"--eval has {count} rows: too few to split into calibration and held-out rows "
            f"(need >= {MIN_HELDOUT_ROWS + 1}); give --calib"
        )
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[:calib_rows]), np.sort(order[calib_rows:])


def prepare_data(eval_path: Path, calib_path: Path | None, workdir: Path, seed: int) -> SearchData:
    """The files the candidates are calibrated and judged on."""
    if calib_path is not None:
        return SearchData(
            calib_path,
            eval_path,
            f"calibration on {calib_path}, accuracy on {eval_path}",
            has_labels(eval_path),
        )
    if eval_path.is_dir():
        files = feed_files(eval_path)
        if not files:
            raise InputSpecError(
                f"--eval {eval_path}: an image folder needs --calib as well (a separate folder)"
            )
        calib_files, heldout_files = split_rows(len(files), seed)
        calib, heldout = workdir / "calib", workdir / "heldout"
        for folder, chosen in ((calib, calib_files), (heldout, heldout_files)):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for index in chosen:
                shutil.copy2(files[index], folder / files[index].name)
        return SearchData(
            calib,
            heldout,
            f"no --calib: {len(calib_files)} feed files of {eval_path.name} calibrate, the other "
            f"{len(heldout_files)} judge accuracy (seed {seed})",
            has_labels(eval_path),
        )
    arrays = _rows(eval_path)
    counts = {name: len(array) for name, array in arrays.items()}
    if len(set(counts.values())) != 1:
        raise InputSpecError(f"--eval {eval_path}: arrays have different row counts {counts}")
    calib_rows, heldout_rows = split_rows(next(iter(counts.values())), seed)
    workdir.mkdir(parents=True, exist_ok=True)
    calib, heldout = workdir / "calib.npz", workdir / "heldout.npz"
    np.savez(calib, **{n: a[calib_rows] for n, a in arrays.items() if n != LABELS})
    np.savez(heldout, **{n: a[heldout_rows] for n, a in arrays.items()})
    return SearchData(
        calib,
        heldout,
        f"no --calib: {len(calib_rows)} rows of {eval_path.name} calibrate, the other "
        f"{len(heldout_rows)} judge accuracy (seed {seed})",
        LABELS in arrays,
    )
