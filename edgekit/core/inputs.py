"""Turning a model's declared inputs plus user options into concrete input specs for the agent.

Rules (documented in the README):
- a symbolic or unknown *first* dimension is the batch and defaults to 1;
- any other symbolic dimension must be given with ``--shape NAME=AxBxC``;
- ``--shape`` must name a real input, have the model's rank and agree with fixed dimensions;
- with ``--inputs data.npz`` every input must be present, with a matching dtype and rank;
- a sample set may also be a folder of ``.npz`` files, each one complete feed (any shapes,
  scalars included; an optional ``labels`` entry per file): every file must name every model
  input (and nothing else), with the model's dtype, rank and fixed dimensions on every axis.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import InputSpecError, UsageError, warn
from edgekit.core.onnx_model import TensorInfo, is_fixed

InputSpec = dict[str, dict[str, Any]]  # name -> {"shape": [...], "dtype": "float32"}


# What numpy raises on a damaged .npz: a bad zip or member (BadZipFile, zlib.error, EOFError), a
# bad .npy header or a pickled (object) array with allow_pickle=False (ValueError), I/O (OSError).
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def read_npz(path: Path, option: str) -> dict[str, np.ndarray]:
    """Every array of the .npz at `path`, {name: array} in the file's order, nothing unpickled.
    Raises InputSpecError (one line: `option`, the path and why) for a file numpy cannot read,
    a truncated or corrupted member, an object array, or a member that is not an .npy array."""
    arrays: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as head:
            magic = head.read(6)
        if not magic:
            raise ValueError("the file is empty")
        if not magic.startswith(b"PK") and magic != b"\x93NUMPY":  # numpy guesses "pickle" for the rest
            raise ValueError("not a zip of .npy arrays, as numpy.savez writes")
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # np.load reads an .npy file too
            raise ValueError("a single .npy array, not an .npz archive")
        with loaded as data:
            for name in data.files:
                value = data[name]
                if not isinstance(value, np.ndarray):
                    raise ValueError(f"member {name!r} is not an .npy array")
                arrays[name] = value
    except _NPZ_ERRORS as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise InputSpecError(f"{option} {path}: not a readable .npz file ({why})", path=str(path)) from None
    return arrays


def _check_finite(arrays: dict[str, np.ndarray], names: Sequence[str], where: str) -> None:
    """Calibration data (`--calib`) must be finite: InputSpecError (exit 2) naming the array, else
    onnxruntime's calibrator fails with "scale issue". Other data (`--inputs`, `--eval`) with NaN
    or inf values gets a warning: a model fed them may take other paths (and time) than on real
    inputs."""
    for name in names:
        array = arrays.get(name)
        if array is None or array.dtype.kind not in "fc" or bool(np.isfinite(array).all()):
            continue
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        message = f"{where}: array {name!r} holds {bad} NaN or inf value(s) of {array.size}"
        if where.startswith("--calib"):
            raise InputSpecError(f"{message}; calibration needs finite values", input=name)
        warn(f"{message}: timings and outputs on them may not be those of real inputs")


def _parse_dims(text: str, option: str) -> list[int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a shape like 1x3x224x224") from None
    if not dims or any(d <= 0 for d in dims):
        raise UsageError(f"{option}: every dimension must be a positive integer, got {text!r}")
    return dims


def parse_shape_options(items: Sequence[str], input_names: Sequence[str]) -> dict[str, list[int]]:
    """`["input=1x3x224x224"]` -> {"input": [1, 3, 224, 224]}; a bare shape is allowed for 1 input."""
    shapes: dict[str, list[int]] = {}
    for item in items:
        option = f"--shape {item!r}"
        name, sep, dims_text = item.rpartition("=")
        if not sep:
            if len(input_names) != 1:
                raise UsageError(
                    f"{option}: the model has {len(input_names)} inputs "
                    f"({', '.join(input_names)}); write NAME=SHAPE"
                )
            name, dims_text = input_names[0], item
        if name not in input_names:
            raise UsageError(f"{option}: the model has no input {name!r}; inputs: {', '.join(input_names)}")
        shapes[name] = _parse_dims(dims_text, option)
    return shapes


def _check_against_model(info: TensorInfo, shape: Sequence[int], what: str, *, first_axis: int) -> None:
    """A user-given shape must have the model's rank and its fixed dimensions (from first_axis on).
    Only `is_fixed` dimensions are checked (-1, 0, names and unknowns are open)."""
    if len(shape) != len(info.dims):
        raise InputSpecError(
            f"{what} has rank {len(shape)}, the model expects rank {len(info.dims)} {_show(info.dims)}",
            input=info.name,
        )
    for axis, (declared, size) in enumerate(zip(info.dims, shape, strict=True)):
        if axis >= first_axis and is_fixed(declared) and declared != size:
            raise InputSpecError(
                f"{what}: dimension {axis} is {size}, the model fixes it at {declared}", input=info.name
            )


def _resolve_one(info: TensorInfo, given: list[int] | None) -> list[int]:
    if given is not None:
        _check_against_model(info, given, f"--shape for input {info.name!r}", first_axis=0)
        return list(given)
    shape: list[int] = []
    open_axes: list[str] = []
    for axis, declared in enumerate(info.dims):
        if is_fixed(declared):
            shape.append(declared)
        elif axis == 0:
            shape.append(1)  # batch
        else:
            open_axes.append(f"{axis}:{declared or '?'}")
            shape.append(-1)
    if open_axes:
        example = "x".join("N" if s < 0 else str(s) for s in shape)
        raise InputSpecError(
            f"input {info.name!r} {_show(info.dims)} has dimensions the model leaves open "
            f"({', '.join(open_axes)}); give them with --shape {info.name}={example}",
            input=info.name,
        )
    return shape


def _show(dims: Sequence[Any]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def resolve_input_spec(inputs: Sequence[TensorInfo], shapes: dict[str, list[int]]) -> InputSpec:
    """Concrete shapes and dtypes for generated inputs."""
    return {
        info.name: {"shape": _resolve_one(info, shapes.get(info.name)), "dtype": info.dtype}
        for info in inputs
    }


LABELS = "labels"


def feed_files(path: Path) -> list[Path]:
    """The ``.npz`` files of a per-feed folder, sorted by name ([] when `path` is no such folder)."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.suffix.lower() == ".npz" and p.is_file())


def is_feed_folder(path: Path) -> bool:
    """A folder holding at least one .npz file: a per-feed sample set (else maybe an image folder)."""
    return bool(feed_files(path))


def read_feed(
    path: Path, inputs: Sequence[TensorInfo], option: str, ignore: Collection[str] = ()
) -> dict[str, np.ndarray]:
    """One complete feed from one .npz file, checked on the host: every model input present
    and nothing else but ``labels``, each with the model's dtype, rank and fixed dimensions
    (every axis: the file is fed as it is). Returns {name: array} (``labels`` included when
    present; arrays named in `ignore` dropped). Raises InputSpecError (one line naming the file and
    the input)."""
    arrays = {
        name: np.array(a, order="C") for name, a in read_npz(path, option).items() if name not in ignore
    }
    names = [i.name for i in inputs]
    extra = [name for name in arrays if name not in names and name != LABELS]
    if extra:
        raise InputSpecError(
            f"{option} {path}: array {extra[0]!r} is no model input (inputs: {', '.join(names)})",
            path=str(path),
            input=extra[0],
        )
    for info in inputs:
        if info.name not in arrays:
            raise InputSpecError(
                f"{option} {path}: no array named {info.name!r} (model inputs: {', '.join(names)}; "
                f"file has: {', '.join(arrays) or 'nothing'})",
                path=str(path),
                input=info.name,
            )
        array = arrays[info.name]
        if array.dtype.name != info.dtype:
            raise InputSpecError(
                f"{option} {path}: array {info.name!r} is {array.dtype.name}, the model expects {info.dtype}",
                path=str(path),
                input=info.name,
            )
        _check_against_model(info, array.shape, f"{option} {path}: array {info.name!r}", first_axis=0)
    labels = arrays.get(LABELS)
    if labels is not None and (labels.ndim > 1 or labels.dtype.kind not in "iu"):
        raise InputSpecError(
            f"{option} {path}: 'labels' must be an integer or a 1-D integer array, "
            f"got {labels.dtype.name} {list(labels.shape)}",
            path=str(path),
        )
    return arrays


def check_feed_folder(
    path: Path,
    inputs: Sequence[TensorInfo],
    shapes: dict[str, list[int]],
    option: str = "--inputs",
    ignore: Collection[str] = (),
) -> InputSpec:
    """Check every feed of a per-feed folder (read_feed, arrays named in `ignore` dropped); the
    spec of the first feed, which is what `bench` feeds. A --shape must agree with that feed."""
    files = feed_files(path)
    if not files:
        raise InputSpecError(f"{option} {path}: no .npz files in this folder", path=str(path))
    first = {
        name: value for name, value in read_feed(files[0], inputs, option, ignore).items() if name != LABELS
    }
    for other in files[1:]:
        read_feed(other, inputs, option, ignore)
    for name, given in shapes.items():
        if list(first[name].shape) != list(given):
            raise InputSpecError(
                f"{option} {files[0]}: array {name!r} is {list(first[name].shape)}, --shape says {given}",
                input=name,
            )
    return {info.name: {"shape": list(first[info.name].shape), "dtype": info.dtype} for info in inputs}


def check_inputs_file(
    path: Path,
    inputs: Sequence[TensorInfo],
    shapes: dict[str, list[int]] | None = None,
    ignore: Collection[str] = (),
    option: str = "--inputs",
) -> InputSpec:
    """Validate an .npz (or a per-feed folder, check_feed_folder) against the model inputs;
    returns the spec of what will be fed. Arrays named in `ignore` (inputs an artifact's
    manifest lists as fixed by `compress --fix-input`) are not checked (an .npz's arrays that
    are no model input never are: only the model's inputs are fed).

    `option` is the command-line option the file came from (`--inputs`, `--calib`, `--eval`),
    named in every error message. Raises InputSpecError.

    The file may hold more rows than one batch: the agent feeds the first `batch` rows, where
    batch is the model's fixed first dimension, the one given with --shape, or 1.
    """
    shapes = shapes or {}
    if path.is_dir():
        return check_feed_folder(path, inputs, shapes, option, ignore)
    if not path.is_file():
        raise InputSpecError(f"{option} {path}: no such file", path=str(path))
    return check_npz_arrays(read_npz(path, option), path, inputs, shapes, option)


def check_npz_arrays(
    loaded: dict[str, np.ndarray],
    path: Path,
    inputs: Sequence[TensorInfo],
    shapes: dict[str, list[int]],
    option: str,
) -> InputSpec:
    """check_inputs_file's checks on the arrays of the .npz at `path`, already read (read_npz):
    for a caller that keeps the arrays (compress's calibration and evaluation sets), so that the
    file is read once. Returns the spec of what will be fed; raises InputSpecError."""
    arrays = {name: (a.shape, a.dtype) for name, a in loaded.items()}
    _check_finite(loaded, [i.name for i in inputs], f"{option} {path}")
    spec: InputSpec = {}
    for info in inputs:
        if info.name not in arrays:
            raise InputSpecError(
                f"{option} {path}: no array named {info.name!r} (model inputs: "
                f"{', '.join(i.name for i in inputs)}; file has: {', '.join(arrays) or 'nothing'})",
                input=info.name,
            )
        shape, dtype = arrays[info.name]
        if dtype.name != info.dtype:
            raise InputSpecError(
                f"{option} {path}: array {info.name!r} is {dtype.name}, the model expects {info.dtype}",
                input=info.name,
            )
        # Rows beyond one batch are allowed: the batch axis is not checked here.
        if len(shape) != len(info.dims):
            raise InputSpecError(
                f"{option} {path}: array {info.name!r} is {list(shape)}, the model expects rank "
                f"{len(info.dims)} {_show(info.dims)} with rows on its first axis; inputs without a "
                "common row axis (scalars, states whose batch axis is not first) go in a folder of "
                ".npz files, one complete feed each",
                input=info.name,
            )
        _check_against_model(info, shape, f"{option} {path}: array {info.name!r}", first_axis=1)
        fed = list(shape)
        if fed:
            first = info.dims[0] if info.dims else None
            batch = shapes[info.name][0] if info.name in shapes else (first if is_fixed(first) else 1)
            if shape[0] < batch:
                raise InputSpecError(
                    f"{option} {path}: array {info.name!r} has {shape[0]} rows, a batch needs {batch}",
                    input=info.name,
                )
            fed[0] = batch
        spec[info.name] = {"shape": fed, "dtype": info.dtype}
    return spec


def shapes_from_samples(path: Path, inputs: Sequence[TensorInfo]) -> tuple[str, ...]:
    """``--shape`` options (NAME=AxB) taken from a sample set for the inputs whose non-batch
    dimensions the model leaves open: a per-feed folder's first feed as it is; an .npz with rows:
    the batch (the model's fixed first dimension, else 1) then the array's other dimensions.
    Inputs the model fixes, scalars, image folders and unreadable files give nothing (the
    sample set's own checks report those)."""
    open_inputs = [i for i in inputs if any(not is_fixed(d) for d in i.dims[1:])]
    if not open_inputs:
        return ()
    files = feed_files(path)
    source = files[0] if files else path
    if not source.is_file():
        return ()
    try:
        found = {name: list(a.shape) for name, a in read_npz(source, "").items()}
    except InputSpecError:
        return ()
    shapes: list[str] = []
    for info in open_inputs:
        shape = found.get(info.name)
        if not shape or len(shape) != len(info.dims):
            continue
        if not files:
            first = info.dims[0]
            shape = [first if is_fixed(first) else 1, *shape[1:]]
        shapes.append(f"{info.name}=" + "x".join(str(d) for d in shape))
    return tuple(shapes)
