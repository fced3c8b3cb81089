"""The search's data: calibration rows kept apart from the rows that judge accuracy.

Without `--calib`, a seeded share of the `--eval` rows calibrates and the rest judge: a
quantizer calibrated on the very rows it is graded on would look better than it is. A per-feed
`--eval` folder (edgekit.compress.data: one complete feed per .npz file) is split the same way
by file, into two per-feed folders; an image folder needs `--calib`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.compress.data import LABELS
from edgekit.core.errors import InputSpecError
from edgekit.core.inputs import feed_files, is_feed_folder, read_npz

CALIB_SHARE = 0.25
CALIB_MAX_ROWS = 256
MIN_HELDOUT_ROWS = 20
MIN_HELDOUT_FEEDS = 3  # files of a per-feed --eval folder left to judge accuracy


@dataclass(frozen=True)
class SearchData:
    calib: Path
    heldout: Path
    note: str
    labelled: bool  # accuracy from labels; else top-1 agreement with the float model


def has_labels(path: Path) -> bool:
    """A per-feed folder has labels when every file has a 'labels' entry; an image folder's
    class folders are labels; an .npz has them in a 'labels' array."""
    if is_feed_folder(path):
        return all(_npz_has_labels(file) for file in feed_files(path))
    if path.is_dir():
        return True
    return _npz_has_labels(path)


def _npz_has_labels(path: Path) -> bool:
    try:
        return LABELS in read_npz(path, "--eval")
    except InputSpecError:
        return False  # unreadable: compress reports it with the path


def _rows(path: Path) -> dict[str, np.ndarray]:
    arrays = read_npz(path, "--eval")
    if not arrays:
        raise InputSpecError(f"--eval {path}: no arrays", path=str(path))
    return arrays


def split_rows(
    count: int, seed: int, minimum: int = MIN_HELDOUT_ROWS, unit: str = "rows"
) -> tuple[np.ndarray, np.ndarray]:
    """(calibration indices, held-out indices) of `count` rows (or feeds: `unit`): a seeded
    permutation, CALIB_SHARE of them (at least 1, at most CALIB_MAX_ROWS) calibrate. Raises
    InputSpecError when fewer than `minimum` would be left to judge."""
    calib_rows = min(CALIB_MAX_ROWS, max(1, int(count * CALIB_SHARE)))
    if count - calib_rows < minimum:
        raise InputSpecError(
            f"--eval has {count} {unit}: too few to split into calibration and held-out {unit} "
            f"(need >= {minimum + 1}); give --calib"
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
    if is_feed_folder(eval_path):
        return _split_feed_folder(eval_path, workdir, seed)
    if eval_path.is_dir():
        raise InputSpecError(f"--eval {eval_path}: an image folder needs --calib as well (a separate folder)")
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


def _split_feed_folder(eval_path: Path, workdir: Path, seed: int) -> SearchData:
    """A per-feed --eval folder split by file (split_rows over the files, sorted by name) into
    `workdir`/calib and `workdir`/heldout, each a per-feed folder of copies (rewritten on every
    run: a previous split never leaks into this one). Labelled when every file has 'labels'."""
    files = feed_files(eval_path)
    calib_index, heldout_index = split_rows(len(files), seed, MIN_HELDOUT_FEEDS, "feed files")
    calib, heldout = workdir / "calib", workdir / "heldout"
    for folder, chosen in ((calib, calib_index), (heldout, heldout_index)):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for index in chosen:
            shutil.copyfile(files[index], folder / files[index].name)
    return SearchData(
        calib,
        heldout,
        f"no --calib: {len(calib_index)} feed files of {eval_path.name} calibrate, the other "
        f"{len(heldout_index)} judge accuracy (seed {seed})",
        has_labels(eval_path),
    )
