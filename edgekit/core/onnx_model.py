"""Reading an ONNX file's graph inputs without running it; writing a model of any size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import load_external_data_for_model

from edgekit.core.artifacts import external_data_locations, model_tensors
from edgekit.core.errors import ModelError

Dim = int | str | None  # fixed size, symbolic name, or unknown


def is_fixed(dim: Dim) -> bool:
    """A declared dimension the model fixes: a positive int. A symbolic name, an unknown (None)
    and a dim_value of 0 or less (-1: what some exporters, paddle2onnx among them, write for
    "any") are open."""
    return isinstance(dim, int) and dim > 0


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
        # onnx's checker takes a path only as UTF-8 text (a file name that is not UTF-8 is a
        # TypeError in its C++ binding): such a model is checked in memory (its external data
        # files are then not checked for existence; reading them later reports a missing one)
        onnx.checker.check_model(str(path) if _utf8(str(path)) else model)
    except (onnx.checker.ValidationError, ValueError) as exc:  # ValueError: a name not UTF-8
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise ModelError(f"{path}: invalid ONNX model: {first_line}", path=str(path)) from None
    return model


def _utf8(text: str) -> bool:
    """Whether `text` encodes as UTF-8 (a file name read with surrogateescape may not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# protobuf cannot serialise a message of 2 GiB or more; a model nearer than this margin to it is
# written with external data (graph, attributes and small tensors stay in the model file).
PROTOBUF_LIMIT_BYTES = 2**31
_SAFE_BYTES = PROTOBUF_LIMIT_BYTES - 64 * 2**20


def tensor_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the model's initializers held in memory (raw_data and typed fields), subgraphs
    included; what decides whether the model fits one protobuf message."""
    return sum(t.ByteSize() for t in model_tensors(model.graph))


def save_onnx(model: onnx.ModelProto, path: Path, *, external: bool = False) -> list[str]:
    """Write `model` to `path`, in one file when it fits protobuf's 2 GB limit and `external` is
    false, else with every tensor of 1 KiB or more in `<path name>.data` beside it (onnx's external
    data format; the only form a model over 2 GB can take). Returns the data file names written
    ([] for one file); `model` itself is left unchanged. A stale `<path name>.data` is removed
    first. Raises OSError when the files cannot be written."""
    data_name = f"{path.name}.data"
    (path.parent / data_name).unlink(missing_ok=True)
    if not external and tensor_bytes(model) < _SAFE_BYTES:
        onnx.save_model(model, str(path))
        return []
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data_name,
        size_threshold=1024,
        convert_attribute=False,
    )
    # onnx.save_model turned `model`'s tensors into references to the file: read them back, so
    # the caller's model is left as it was (holding its data).
    load_external_data_for_model(model, str(path.parent))
    return [data_name] if (path.parent / data_name).exists() else []


def has_external_data(path: Path) -> bool:
    """Whether the ONNX file at `path` keeps tensors in external data files."""
    return bool(external_data_locations(onnx.load(str(path), load_external_data=False)))


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
