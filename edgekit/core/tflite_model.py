"""Running and inspecting .tflite artifacts on the host with whichever TFLite interpreter is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import ModelError, UsageError
from edgekit.core.onnx_model import TensorInfo
from edgekit.core.quiet import library_output_hidden


def interpreter(path: Path) -> Any:
    """ai-edge-litert (the successor), else tflite-runtime, else TensorFlow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            try:
                from tensorflow.lite import Interpreter
            except ImportError:
                raise UsageError(
                    "reading a .tflite model here needs a TFLite interpreter: pip install ai-edge-litert"
                ) from None
    try:
        with library_output_hidden():  # the interpreter logs "INFO: Created ... delegate" on fd 2
            loaded = Interpreter(model_path=str(path))
            loaded.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a loadable TFLite model ({exc})", path=str(path)) from None
    return loaded


def declared_inputs(path: Path) -> list[TensorInfo]:
    """The model's inputs as the ONNX side describes them, so that `bench` checks TFLite inputs
    (--inputs, --shape) with the same rules: names as TFLite reports them, numpy dtype names,
    dims from the shape signature with None where the model leaves a dimension open (-1: the
    interpreter can resize it with resize_tensor_input)."""
    infos = []
    for detail in interpreter(path).get_input_details():
        signature = detail.get("shape_signature")
        dims = (
            signature if signature is not None and len(signature) == len(detail["shape"]) else detail["shape"]
        )
        infos.append(
            TensorInfo(
                str(detail["name"]),
                np.dtype(detail["dtype"]).name,
                tuple(int(d) if d >= 0 else None for d in dims),
            )
        )
    return infos


def input_spec(path: Path) -> dict[str, dict[str, Any]]:
    """Concrete input shapes and dtypes, as the agent's spec wants them."""
    return {
        d["name"]: {"shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
        for d in interpreter(path).get_input_details()
    }


def _to_model(array: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Lay out one row like the TFLite input (NCHW -> NHWC when needed) and quantize it."""
    shape = tuple(int(v) for v in detail["shape"])
    if array.shape != shape and array.ndim == 4 and array.transpose(0, 2, 3, 1).shape == shape:
        array = array.transpose(0, 2, 3, 1)
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype.kind in "iu" and scale:
        info = np.iinfo(dtype)
        array = np.clip(np.round(array / scale + zero_point), info.min, info.max)
    return np.ascontiguousarray(array.astype(dtype))


def _from_model(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]).kind in "iu" and scale:
        return (value.astype(np.float32) - zero_point) * scale
    return value.astype(np.float32)


def run_first_output(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The first output, dequantized, for every row (the converted model has batch 1)."""
    loaded = interpreter(path)
    details = loaded.get_input_details()
    output = loaded.get_output_details()[0]
    names = list(inputs)
    rows = len(inputs[names[0]])
    results = []
    for row in range(rows):
        for index, detail in enumerate(details):
            name = _match(detail["name"], names, index)
            loaded.set_tensor(detail["index"], _to_model(inputs[name][row : row + 1], detail))
        loaded.invoke()
        results.append(_from_model(loaded.get_tensor(output["index"]), output))
    return np.concatenate(results)


def _match(tflite_name: str, onnx_names: list[str], index: int) -> str:
    """TFLite names inputs `serving_default_<name>:0`; fall back to position."""
    bare = tflite_name.removeprefix("serving_default_").split(":")[0]
    return bare if bare in onnx_names else onnx_names[min(index, len(onnx_names) - 1)]
