"""int8 static (QDQ, calibrated), int8 dynamic and fp16, on onnxruntime's quantization tools."""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgekit.compress.data import Dataset, batch_size, batches
from edgekit.compress.graph import (
    QUANTIZABLE_OPS,
    is_quantized,
    op_counts,
    quantizable_nodes,
    topological_sort,
)
from edgekit.core.artifacts import external_data_locations
from edgekit.core.errors import ModelError, UsageError
from edgekit.core.onnx_model import graph_inputs
from edgekit.core.profiles import DeviceProfile

_CALIBRATION = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
_SCHEMES = {"u8s8": (QuantType.QUInt8, QuantType.QInt8), "s8s8": (QuantType.QInt8, QuantType.QInt8)}


class _Reader(CalibrationDataReader):
    def __init__(self, dataset: Dataset, size: int) -> None:
        self._feeds: Iterator[dict[str, Any]] = batches(dataset, size)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)


def check_quantizable(model: onnx.ModelProto, recipe: str) -> None:
    if is_quantized(model):
        raise ModelError(f"{recipe}: the model is already quantized (integer or float16 weights found)")
    if not quantizable_nodes(model):
        found = ", ".join(sorted(op_counts(model))) or "no nodes"
        raise ModelError(
            f"{recipe}: nothing to quantize: no {'/'.join(sorted(QUANTIZABLE_OPS))} nodes "
            f"(the model has {found})"
        )


def _external_data_options(source: Path, out: Path) -> dict[str, Any]:
    """quant_pre_process options for a source with external data: its output keeps the weights in
    one file `<out name>.data` next to `out` (a model over protobuf's 2 GB limit can be written no
    other way); {} for a one-file source."""
    if not external_data_locations(onnx.load(str(source), load_external_data=False)):
        return {}
    return {
        "save_as_external_data": True,
        "all_tensors_to_one_file": True,
        "external_data_location": f"{out.name}.data",
    }


def preprocess(source: Path, out: Path) -> dict[str, Any]:
    """Shape inference + graph optimisation before quantization (onnxruntime's recommendation)."""
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    external = _external_data_options(source, out)
    try:
        try:
            quant_pre_process(str(source), str(out), **external)
            return {"preprocess": "quant_pre_process"}
        except Exception:  # symbolic shape inference fails on some transformer exports
            quant_pre_process(str(source), str(out), skip_symbolic_shape=True, **external)
            return {"preprocess": "quant_pre_process(skip_symbolic_shape=True)"}
    finally:
        logging.getLogger().setLevel(quiet)


def scheme_for(params: dict[str, Any], profile: DeviceProfile) -> tuple[str, bool]:
    scheme = profile.facts.int8_scheme if params.get("scheme", "target") == "target" else params["scheme"]
    reduce = params.get("reduce-range", "target")
    reduce_range = profile.facts.reduce_range if reduce == "target" else reduce == "yes"
    return scheme, reduce_range


def missing_calibration(recipe: str = "int8-static") -> UsageError:
    return UsageError(
        f"{recipe} needs calibration data: --calib CALIB.npz (one array per model input, real "
        "samples). Random calibration silently ruins accuracy; --calib-random accepts that."
    )


def int8_static(
    prepared: Path,
    out: Path,
    params: dict[str, Any],
    calib: Dataset | None,
    profile: DeviceProfile,
    exclude: list[str] | None = None,
) -> dict[str, Any]:
    """Quantize a model already run through `preprocess`; `exclude` names nodes kept in float."""
    model = onnx.load(str(prepared))
    check_quantizable(model, "int8-static")
    if calib is None:
        raise missing_calibration()
    scheme, reduce_range = scheme_for(params, profile)
    activation_type, weight_type = _SCHEMES[scheme]
    # onnxruntime's histogram calibrators print progress to stdout, which carries --json output.
    with contextlib.redirect_stdout(sys.stderr):
        quantize_static(
            str(prepared),
            str(out),
            _Reader(calib, batch_size(graph_inputs(model))),
            quant_format=QuantFormat.QDQ,
            per_channel=bool(params["per-channel"]),
            reduce_range=reduce_range,
            activation_type=activation_type,
            weight_type=weight_type,
            nodes_to_exclude=list(exclude or []),
            calibrate_method=_CALIBRATION[params["calib"]],
            extra_options={"ActivationSymmetric": bool(params.get("symmetric-activations", False))},
        )
    return {
        "format": "QDQ",
        "scheme": scheme,
        "activation_type": activation_type.name,
        "weight_type": weight_type.name,
        "per_channel": bool(params["per-channel"]),
        "reduce_range": reduce_range,
        "calibration": {"method": params["calib"], "rows": calib.rows, "data": str(calib.path)},
        "kept_float": list(exclude or []),
    }


def int8_dynamic(source: Path, out: Path, params: dict[str, Any], profile: DeviceProfile) -> dict[str, Any]:
    model = onnx.load(str(source))
    check_quantizable(model, "int8-dynamic")
    with tempfile.TemporaryDirectory(prefix="edgekit-q-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        report = preprocess(source, prepared)
        quantize_dynamic(
            str(prepared),
            str(out),
            per_channel=bool(params["per-channel"]),
            reduce_range=profile.facts.reduce_range,
            weight_type=QuantType.QInt8,
        )
    return {
        **report,
        "weight_type": "QInt8",
        "per_channel": bool(params["per-channel"]),
        "reduce_range": profile.facts.reduce_range,
    }


def fp16(source: Path, out: Path, params: dict[str, Any]) -> dict[str, Any]:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    if is_quantized(model):
        raise ModelError("fp16: the model is already quantized (integer or float16 weights found)")
    converted = convert_float_to_float16(model, keep_io_types=bool(params["keep-io"]))
    # The converter appends its input/output Casts at the end of the node list.
    onnx.save(topological_sort(converted), str(out))
    return {"keep_io_types": bool(params["keep-io"])}


def int4_weight(source: Path, out: Path, params: dict[str, Any]) -> dict[str, Any]:
    """4-bit block-wise weights for MatMul (onnxruntime's MatMulNBits); activations stay float."""
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as exc:
        raise UsageError(f"int4-weight needs {exc.name}: pip install onnx-ir") from None
    model = onnx.load(str(source))
    if is_quantized(model):
        raise ModelError("int4-weight: the model is already quantized (integer or float16 weights found)")
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    if not matmuls:
        raise ModelError(
            "int4-weight: no MatMul nodes (4-bit weight-only quantization targets MatMul-heavy models)"
        )
    block = int(params["block-size"])
    quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=block, is_symmetric=bool(params["symmetric"]))
    quantizer.process()
    converted = quantizer.model.model
    onnx.save(converted, str(out))
    packed = sum(1 for n in converted.graph.node if n.op_type == "MatMulNBits")
    return {
        "bits": 4,
        "block_size": block,
        "symmetric": bool(params["symmetric"]),
        "matmuls": len(matmuls),
        "packed": packed,
    }
