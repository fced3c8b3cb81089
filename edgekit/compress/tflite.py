"""TFLite full-integer int8: ONNX -> TensorFlow -> TFLite through onnx2tf, calibrated on the user's data.

onnx2tf runs in a child process (it prints a great deal and loads all of TensorFlow); it turns
NCHW image inputs into NHWC, so calibration arrays are transposed for it, and the artifact's
inputs and outputs are int8 with the scale / zero point stored in the model. The calibration
data is always given explicitly: onnx2tf would otherwise try to download a sample set. It
also rewrites its input file in place, so it gets a copy.

onnx2tf takes one array per input and feeds its rows `batch` at a time (onnx2tf.convert's
representative_dataset_gen slices axis 0), so every calibration row of an input has one shape. A
per-feed sample set is joined along axis 0 when its feeds agree on every other axis; feeds of
different shapes (images of several sizes), scalar inputs, or inputs whose row counts then
differ cannot be given to it, and `calibration_arrays` says which in one line (exit 2).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.compress.data import Dataset
from edgekit.core.errors import InputSpecError, ModelError, UsageError
from edgekit.core.inputs import feed_files
from edgekit.core.onnx_model import TensorInfo

TFLITE_EXTRA_HINT = "pip install -e '.[tflite]' (TensorFlow + onnx2tf, about 2.4 GB)"
CONVERT_TIMEOUT_S = 1800


def require_converter() -> None:
    missing = [
        name for name in ("onnx2tf", "tensorflow", "tf_keras") if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise UsageError(f"tflite-int8 needs {', '.join(missing)}: {TFLITE_EXTRA_HINT}")


def is_nchw_image(info: TensorInfo) -> bool:
    return len(info.dims) == 4 and isinstance(info.dims[1], int) and info.dims[1] in (1, 3)


def _show(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def calibration_arrays(calib: Dataset, inputs: Sequence[TensorInfo]) -> dict[str, np.ndarray]:
    """Each input's calibration rows as one array [rows, ...] (dtype kept): a row set's arrays as
    they are; a per-feed set's feeds concatenated along axis 0. Raises InputSpecError (one line,
    exit 2) when a per-feed set cannot be written so: an input is a scalar, its feeds differ in
    shape beyond axis 0 (naming two files and their shapes), or the joined inputs have different
    row counts."""
    if calib.per_feed is None:
        return {info.name: calib.inputs[info.name] for info in inputs}
    where = f"tflite-int8: --calib {calib.path}"
    names = [file.name for file in feed_files(calib.path)] or [str(i) for i in range(len(calib.per_feed))]
    arrays: dict[str, np.ndarray] = {}
    for info in inputs:
        parts = [np.asarray(feed[info.name]) for feed in calib.per_feed]
        if parts[0].ndim == 0:
            raise InputSpecError(
                f"{where}: input {info.name!r} is a scalar; onnx2tf calibrates each input from an "
                "array of rows, so a model with scalar inputs cannot be calibrated for TFLite",
                input=info.name,
            )
        odd = next((i for i, part in enumerate(parts) if part.shape[1:] != parts[0].shape[1:]), None)
        if odd is not None:
            raise InputSpecError(
                f"{where}: feeds differ in shape on input {info.name!r} ({names[0]} {_show(parts[0].shape)}, "
                f"{names[odd]} {_show(parts[odd].shape)}); onnx2tf calibrates every row of an input at "
                "one shape: give feeds of the one size the TFLite model is to run at",
                input=info.name,
            )
        arrays[info.name] = np.concatenate(parts)
    rows = {name: len(array) for name, array in arrays.items()}
    if len(set(rows.values())) > 1:
        raise InputSpecError(
            f"{where}: joined along axis 0 the inputs have different row counts {rows}; onnx2tf "
            "feeds every input the same rows"
        )
    return arrays


def check_calibration(calib: Dataset, inputs: Sequence[TensorInfo]) -> None:
    """Raise InputSpecError, before any work, when onnx2tf cannot take `calib` (calibration_arrays)."""
    calibration_arrays(calib, inputs)


def _calibration_files(
    arrays: dict[str, np.ndarray], inputs: Sequence[TensorInfo], workdir: Path
) -> list[list[Any]]:
    """onnx2tf's custom_input_op_name_np_data_path: [name, .npy path, mean 0, std 1] per input."""
    entries = []
    for info in inputs:
        array = arrays[info.name]
        if is_nchw_image(info):
            array = array.transpose(0, 2, 3, 1)  # onnx2tf converts NCHW inputs to NHWC
        path = workdir / f"calib-{len(entries)}.npy"
        np.save(path, np.ascontiguousarray(array.astype(np.float32)))
        entries.append([info.name, str(path), 0.0, 1.0])  # data is already normalised: identity
    return entries


def tflite_int8(
    source: Path, out: Path, calib: Dataset, inputs: Sequence[TensorInfo], workdir: Path
) -> dict[str, Any]:
    require_converter()
    arrays = calibration_arrays(calib, inputs)
    convert_dir = workdir / "onnx2tf"
    # onnx2tf rewrites its input file in place (simplified by onnxsim): never hand it the user's.
    copy = workdir / f"{source.stem}.onnx"
    shutil.copyfile(source, copy)
    arguments = {
        "input_onnx_file_path": str(copy),
        "output_folder_path": str(convert_dir),
        "output_integer_quantized_tflite": True,
        "custom_input_op_name_np_data_path": _calibration_files(arrays, inputs, workdir),
        "non_verbose": True,
        "batch_size": 1,
    }
    script = f"import json, onnx2tf; onnx2tf.convert(**json.loads({json.dumps(json.dumps(arguments))}))"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=CONVERT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ModelError(f"tflite-int8: onnx2tf did not finish within {CONVERT_TIMEOUT_S} s") from None
    produced = convert_dir / f"{copy.stem}_full_integer_quant.tflite"
    if proc.returncode != 0 or not produced.is_file():
        tail = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()][-1:]
        raise ModelError(f"tflite-int8: onnx2tf could not convert the model: {' '.join(tail) or 'no output'}")
    shutil.copyfile(produced, out)
    return {
        "converter": "onnx2tf",
        "versions": {name: _version(name) for name in ("onnx2tf", "tensorflow")},
        "quantization": "full integer (int8 weights, activations, inputs and outputs)",
        "layout": "NHWC" if any(is_nchw_image(i) for i in inputs) else "as the ONNX model",
        "calibration": {
            "rows": len(next(iter(arrays.values()))),
            "data": str(calib.path),
            **({"feeds": len(calib.per_feed)} if calib.per_feed is not None else {}),
        },
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
