"""Reading an ONNX file's graph inputs without running it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from edgekit.core.errors import ModelError

Dim = int | str | None  # fixed size, symbolic name, or unknown


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # numpy dtype name
    dims: tuple[Dim, ...]


def load_onnx(path: Path) -> onnx.ModelProto:
    """Parse an ONNX file (external weights are not loaded); corrupt or non-ONNX files are a
    ModelError. The model is checked by path, so external data `location`s resolve against the
    model file's directory (wherever edgekit runs), and models whose weights exceed protobuf's
    2 GB limit in external data are checked too."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelError(
            f"{path}: not a readable ONNX model (truncated or not ONNX: {exc.__class__.__name__})",
            path=str(path),
        ) from None
    if model.ir_version <= 0 or not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model (no graph found)", path=str(path))
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise ModelError(f"{path}: invalid ONNX model: {first_line}", path=str(path)) from None
    return model


def _dims(value_info: onnx.ValueInfoProto) -> tuple[Dim, ...]:
    dims: list[Dim] = []
    for dim in value_info.type.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def graph_inputs(model: onnx.ModelProto) -> list[TensorInfo]:
    """Inputs the caller must feed (initializers listed as inputs by old exporters are skipped)."""
    initializers = {init.name for init in model.graph.initializer}
    inputs: list[TensorInfo] = []
    for value_info in model.graph.input:
        if value_info.name in initializers:
            continue
        tensor_type = value_info.type.tensor_type
        if not value_info.type.HasField("tensor_type"):
            raise ModelError(
                f"input {value_info.name!r} is not a tensor (sequences/maps are not supported)",
                input=value_info.name,
            )
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        inputs.append(TensorInfo(value_info.name, dtype, _dims(value_info)))
    return inputs
