"""int8 static (QDQ, calibrated), int8 dynamic and fp16, on onnxruntime's quantization tools."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import platform
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence, Sized
from pathlib import Path
from typing import Any

import onnx
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgekit.compress.bias_correction import correct_biases
from edgekit.compress.data import Dataset, calibration_batches, shape_key
from edgekit.compress.graph import (
    QUANTIZABLE_OPS,
    is_quantized,
    op_counts,
    quantizable_nodes,
    quantization_ops,
    topological_sort,
    walk,
)
from edgekit.compress.guard import rank_by_sqnr
from edgekit.core.errors import ModelError, UsageError
from edgekit.core.onnx_model import TensorInfo, graph_inputs, has_external_data, save_onnx
from edgekit.core.profiles import DeviceProfile
from edgekit.core.quiet import library_output_hidden

# int8-static's `calib=` values -> onnxruntime's calibrators (shared with compress/subgraphs.py).
CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
MIN_QDQ_OPSET = 13  # DequantizeLinear's `axis` (per-channel scales) exists from opset 13
# `scheme=` values -> (activation type, weight type) for onnxruntime's quantizer.
SCHEMES = {
    "u8s8": (QuantType.QUInt8, QuantType.QInt8),
    "s8s8": (QuantType.QInt8, QuantType.QInt8),
    "u8u8": (QuantType.QUInt8, QuantType.QUInt8),
}
# CPU flags (Linux /proc/cpuinfo) of x86 int8 dot-product instructions that multiply u8 by s8
# into int32 without a saturating int16 intermediate (VNNI, AMX); see `scheme_for`.
_X86_INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


Feed = dict[str, Any]


class ShapeGroupedReader(CalibrationDataReader):
    """onnxruntime's calibration reader over feeds grouped by shape (`shape_key`), one group per
    `collect_data` call, so that calibration works for feeds of any shapes.

    Why: onnxruntime's histogram calibrators (entropy, percentile; HistogramCalibrater.collect_data
    in onnxruntime/quantization/calibrate.py) keep every feed's intermediate tensors of one
    collect_data call and hand them to HistogramCollector.collect_value, which calls np.asarray
    on the list -- "inhomogeneous shape" when two feeds differ in any dimension. Across calls the
    collector merges its histograms (merge_histogram) and MinMaxCalibrater merges its ranges
    (merge_range), so one call per group of equal-shaped feeds calibrates on every feed.

    How: quantize_static calls collect_data once per `stride` items when given the extra option
    CalibStridedMinMax (despite its name, for every calibration method), after
    `set_range(start, start + stride)` over `range(0, len(reader), stride)`. This reader is
    `len(groups) * stride` long with `stride` = the largest group, so range k selects group k.
    `options()` gives that option when there is more than one group ({} otherwise: one call, as
    onnxruntime does by default). `groups`: lists (or one-shot iterables) of feeds {input name:
    array}; a reader is consumed once."""

    def __init__(self, groups: Sequence[Iterable[Feed]]) -> None:
        self._groups = list(groups)
        sizes = [len(g) for g in self._groups if isinstance(g, Sized)]
        self.stride = max(sizes) if len(sizes) == len(self._groups) and sizes else 1
        self._feeds: Iterator[Feed] = iter(self._groups[0]) if self._groups else iter(())

    @classmethod
    def of_feeds(cls, feeds: Iterable[Feed]) -> ShapeGroupedReader:
        """Group `feeds` by `shape_key`, in the order each shape first appears."""
        groups: dict[tuple[Any, ...], list[Feed]] = {}
        for feed in feeds:
            groups.setdefault(shape_key(feed), []).append(feed)
        return cls(list(groups.values()))

    @property
    def group_count(self) -> int:
        return len(self._groups)

    def options(self) -> dict[str, Any]:
        return {"CalibStridedMinMax": self.stride} if len(self._groups) > 1 else {}

    def __len__(self) -> int:
        return len(self._groups) * self.stride

    def set_range(self, start_index: int, end_index: int) -> None:
        self._feeds = iter(self._groups[start_index // self.stride])

    def get_next(self) -> Feed | None:
        return next(self._feeds, None)


def calibration_reader(dataset: Dataset, model_inputs: Sequence[TensorInfo]) -> ShapeGroupedReader:
    """The reader for a sample set: a row set's equal-shaped batches (data.calibration_batches)
    as one group, read lazily; a per-feed set's feeds grouped by shape."""
    if dataset.per_feed is None:
        return ShapeGroupedReader([calibration_batches(dataset, model_inputs)])
    return ShapeGroupedReader.of_feeds(dataset.per_feed)


def refuse_quantized(model: onnx.ModelProto, recipe: str) -> None:
    """Raise ModelError when the graph already holds quantization operators."""
    if is_quantized(model):
        raise ModelError(
            f"{recipe}: the model is already quantized ({', '.join(quantization_ops(model))} found)"
        )


_CWD_LOCK = threading.Lock()


@contextlib.contextmanager
def scratch_cwd(parent: Path) -> Iterator[None]:
    """Run the body with a fresh temporary directory under `parent` as the working directory,
    removed afterwards. onnxruntime's symbolic shape inference writes `sym_shape_infer_temp.onnx`
    and `<uuid>` weight files into the working directory when it cannot infer every shape; this
    keeps them out of the user's. The working directory is process-wide, hence the lock; paths
    given to the body must be absolute."""
    with _CWD_LOCK, tempfile.TemporaryDirectory(prefix="edgekit-cwd-", dir=parent) as scratch:
        previous = os.getcwd()
        os.chdir(scratch)
        try:
            yield
        finally:
            os.chdir(previous)


def main_opset(model: onnx.ModelProto) -> int:
    """The model's opset for the default ONNX domain ("" or "ai.onnx"); 1 when it names none."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions) if versions else 1


def to_qdq_opset(source: Path, out: Path) -> dict[str, Any]:
    """Bring a model below MIN_QDQ_OPSET (13, the first with per-channel DequantizeLinear `axis`)
    to that opset with onnx.version_converter, written to `out`.

    Returns {} when the model is already at >= 13 (nothing written), {"opset_converted":
    {"from", "to"}} when `out` holds the converted model, or {"opset_conversion_failed":
    {"from", "to", "error"}} when the converter (or the checker on its result) failed; then
    nothing is written and the caller quantizes per tensor (`int8_static` does it)."""
    model = onnx.load(str(source))
    version = main_opset(model)
    if version >= MIN_QDQ_OPSET:
        return {}
    try:
        converted = version_converter.convert_version(model, MIN_QDQ_OPSET)
        onnx.checker.check_model(converted)
    except Exception as exc:  # the converter lacks adapters for some (deprecated) operators
        return {"opset_conversion_failed": {"from": version, "to": MIN_QDQ_OPSET, "error": _one_line(exc)}}
    save_onnx(converted, out)
    return {"opset_converted": {"from": version, "to": MIN_QDQ_OPSET}}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def check_quantizable(model: onnx.ModelProto, recipe: str) -> None:
    refuse_quantized(model, recipe)
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
    if not has_external_data(source):
        return {}
    return {
        "save_as_external_data": True,
        "all_tensors_to_one_file": True,
        "external_data_location": f"{out.name}.data",
    }


def preprocess(source: Path, out: Path) -> dict[str, Any]:
    """Shape inference + graph optimisation before quantization (onnxruntime's recommendation),
    from `source` to `out`. Symbolic shape inference fails on some transformer exports: then
    without it; when quant_pre_process fails altogether, the model is quantized as it is (copied
    to `out`) and the report says why. Scratch files stay in a temporary directory under
    `out`'s folder (see `scratch_cwd`)."""
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.CRITICAL)  # its tracebacks are not ours to print
    source, out = source.resolve(), out.resolve()
    external = _external_data_options(source, out)
    try:
        with scratch_cwd(out.parent):
            try:
                quant_pre_process(str(source), str(out), **external)
                return {"preprocess": "quant_pre_process"}
            except Exception:
                pass
            try:
                quant_pre_process(str(source), str(out), skip_symbolic_shape=True, **external)
                return {"preprocess": "quant_pre_process(skip_symbolic_shape=True)"}
            except Exception as exc:
                shutil.copyfile(source, out)
                return {"preprocess": f"skipped: quant_pre_process failed: {_one_line(exc)}"}
    finally:
        logging.getLogger().setLevel(quiet)


def host_cpu_flags() -> set[str] | None:
    """The flags of this machine's first CPU in /proc/cpuinfo, or None where there is none
    (not Linux, or unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), None)
    return set(line.split(":", 1)[1].split()) if line else None


def scheme_for(params: dict[str, Any], profile: DeviceProfile) -> tuple[str, bool]:
    """(scheme, reduce_range) from the recipe's `scheme` and `reduce-range` ("target": the
    profile's `int8_scheme` and `reduce_range`).

    Schemes (activations/weights): u8s8 (x86 default), s8s8 (Arm default) and u8u8. On an x86
    CPU without VNNI/AMX (`host_cpu_flags`), onnxruntime's u8s8 kernels use AVX2's VPMADDUBSW,
    which sums two u8*s8 products into a saturating int16 (255*127*2 > 32767; onnxruntime's
    quantization guide); u8u8 avoids that and is more accurate there (EfficientNet-Lite0, top-1
    agreement with float on held-out photo crops: 86% u8u8 vs 66% u8s8), but onnxruntime 1.32
    runs per-channel u8 weights far slower than float on that CPU, so it is a choice, not the
    default (benchmarks/int8_quality.py prints both)."""
    scheme = profile.facts.int8_scheme if params.get("scheme", "target") == "target" else params["scheme"]
    reduce = params.get("reduce-range", "target")
    reduce_range = target_reduce_range(profile) if reduce == "target" else reduce == "yes"
    return scheme, reduce_range


def target_reduce_range(profile: DeviceProfile) -> bool:
    """The profile's `reduce_range` (7-bit weights); "host" (profile local) means: true when this
    machine is an x86 CPU whose int8 dot products saturate (no VNNI/AMX flag in /proc/cpuinfo).

    Why: onnxruntime's quantization guide recommends reduce_range "for some models running on
    non-VNNI machines": with 7-bit weights the pairwise u8*s8 sums of AVX2's VPMADDUBSW fit int16
    (255*63*2 < 32767). Measured on EfficientNet-Lite0 (benchmarks/int8_quality.py), top-1
    agreement with float rose from 84% to 91% on held-out tuning crops of an AVX2-only EPYC."""
    if profile.facts.reduce_range != "host":
        return bool(profile.facts.reduce_range)
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "i386"):
        return False
    flags = host_cpu_flags()
    return flags is not None and not flags & set(_X86_INT8_DOT_FLAGS)


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
    """Quantize a model already run through `preprocess`; `exclude` names nodes kept in float.

    With `keep-first-float` (the int8-static default; absent = no, as QAT calls it), the
    quantizable nodes that read a graph input directly (the stem) are kept float as well, when
    they are at most 1/8 of the quantizable nodes (`first_layers_to_keep_float`): a
    first conv on normalised pixels with BN-folded weights produces pre-activations far wider
    than the ReLU6 that follows (EfficientNet-Lite0: [-180, 112] clipped to [0, 6]), so its weight
    rounding alone costs 25 dB of SQNR; keeping it float raised top-1 agreement with float from
    66% to 80% (u8s8) and 86% to 87% (u8u8) on held-out photo crops, for ~3% of the compute
    (benchmarks/int8_quality.py).

    With `keep-sensitive-float=N` (default 2), the model is quantized, its N nodes that lose most
    SQNR themselves are found (`sensitive_layers`), and it is quantized again with them float:
    EfficientNet-Lite0 (u8s8, AVX2 without VNNI), top-1 agreement with float on held-out photo
    crops 80% -> 87% (N=2, the first MBConv block's depthwise and project convs; N=4: 86%, N=8,
    capped to 5 with the stem: 85.5%) at an unchanged speed-up (1.51x), for a second
    quantization at compress time. More float layers are not always better: onnxruntime's
    optimised run of a float conv between Q/DQ pairs can lose what the QDQ graph gains
    (benchmarks/int8_quality.py).

    With `bias-correction` (the int8-static default; absent = no, as QAT calls it), each
    quantized Conv/Gemm's bias is then shifted by the mean error its quantization adds on the
    calibration set, layer by layer, as onnxruntime runs the model (compress/bias_correction.py);
    the report's `bias_correction` gives the layers corrected and the mean |shift|. On
    EfficientNet-Lite0 it raised top-1 agreement with float from 80.0% to 82.9% (u8s8,
    keep-first-float, held-out photo crops) at the same speed (only bias values change), for
    about 5 minutes more of compression on a shared 2-core CPU (benchmarks/int8_quality.py)."""
    model = onnx.load(str(prepared))
    check_quantizable(model, "int8-static")
    if calib is None:
        raise missing_calibration()
    scheme, reduce_range = scheme_for(params, profile)
    given = params.get("scheme", "target") != "target"
    first = first_layers_to_keep_float(model) if params.get("keep-first-float", False) else []
    exclude = [*(exclude or []), *(n for n in first if n not in (exclude or []))]
    activation_type, weight_type = SCHEMES[scheme]
    per_channel = bool(params["per-channel"])
    notes: dict[str, Any] = {}
    if per_channel and main_opset(model) < MIN_QDQ_OPSET:
        per_channel = False
        notes["per_channel_fallback"] = {
            "reason": f"the model is at opset {main_opset(model)} and could not be converted to "
            f"{MIN_QDQ_OPSET}, the first opset with per-channel DequantizeLinear; weights are "
            "quantized per tensor"
        }
    extra = {"ActivationSymmetric": bool(params.get("symmetric-activations", False))}

    groups = calibration_reader(calib, graph_inputs(model)).group_count
    # A model with external data (over 2 GB it has no other form): onnxruntime's calibration
    # model and its output must be written the same way.
    large = has_external_data(prepared)

    def run(options: dict[str, Any], excluded: list[str]) -> None:
        reader = calibration_reader(calib, graph_inputs(model))  # one-shot: a new one per attempt
        # onnxruntime's histogram calibrators print progress (stdout carries --json output)
        with library_output_hidden(), scratch_cwd(out.resolve().parent):
            quantize_static(
                str(prepared.resolve()),
                str(out.resolve()),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=activation_type,
                weight_type=weight_type,
                nodes_to_exclude=list(excluded),
                calibrate_method=CALIBRATION_METHODS[params["calib"]],
                use_external_data_format=large,
                extra_options={**options, **reader.options()},
            )

    def quantize_once(excluded: list[str]) -> None:
        try:
            run(extra, excluded)
        except ValueError as exc:
            # onnxruntime (1.2x-1.3x) widens per-channel weight scales so that int32 biases stay
            # representable, and fails doing so on a bias that is not 1-D ("truth value of an array
            # ... is ambiguous", qdq_quantizer._adjust_weight_scale_for_int32_bias). That widening is
            # optional (QDQDisableWeightAdjustForInt32Bias): quantize without it and say so.
            if "truth value of an array" not in str(exc):
                raise
            run({**extra, "QDQDisableWeightAdjustForInt32Bias": True}, excluded)
            notes["int32_bias_weight_adjust"] = {
                "disabled": True,
                "reason": f"onnxruntime's weight-scale adjustment for int32 biases failed: {exc}",
            }

    quantize_once(exclude)
    count = int(params.get("keep-sensitive-float", 0))
    try:
        sensitive = sensitive_layers(model, prepared, out, calib, count, exclude)
    except SensitivityUnmeasured as exc:
        sensitive = []
        notes["kept_float_sensitive_skipped"] = f"the layers' SQNR loss could not be measured: {exc}"
    if sensitive:
        exclude = [*exclude, *sensitive]
        quantize_once(exclude)
    _sort_nodes(out)
    if params.get("bias-correction", False):
        notes["bias_correction"] = _bias_correction(prepared, out, calib)
    return {
        "format": "QDQ",
        "scheme": scheme,
        "scheme_from": "the recipe's scheme=" if given else f"profile {profile.name}'s int8_scheme",
        "kept_float_first": first,
        "kept_float_sensitive": sensitive,
        "activation_type": activation_type.name,
        "weight_type": weight_type.name,
        "per_channel": per_channel,
        **notes,
        "reduce_range": reduce_range,
        "calibration": {
            "method": params["calib"],
            "rows": calib.rows,
            "data": str(calib.path),
            "shape_groups": groups,
        },
        "kept_float": list(exclude or []),
    }


def _bias_correction(prepared: Path, out: Path, calib: Dataset) -> dict[str, Any]:
    """Correct the biases of the quantized model at `out` (compress/bias_correction.py) on the
    calibration set; a model with external data (over protobuf's 2 GB limit) is left as it is,
    and the report says so."""
    if has_external_data(out):
        return {"layers": 0, "skipped_model": "the model has external data (over 2 GB)"}
    return correct_biases(prepared, out, calib)


def _sort_nodes(path: Path) -> None:
    """Put the nodes of a quantizer's output in topological order, subgraphs included, in place.
    onnxruntime's quantizers can write an If branch's nodes out of order (seen on a Silero VAD
    whose If branches onnxruntime had inlined, see compress/specialize.py), which onnx's checker
    and loaders refuse. External data stays where it is: the tensors are not loaded, their
    references to the data file beside `path` are written back as they were."""
    model = onnx.load(str(path), load_external_data=False)
    onnx.save(topological_sort(model), str(path))


FIRST_LAYERS_MAX_SHARE = 1 / 8  # keep-first-float applies when the first layers are at most this share


def first_layer_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the main graph's quantizable nodes (graph.QUANTIZABLE_OPS) that read a graph
    input that is not an initializer: the layers fed the raw model input."""
    weights = {i.name for i in model.graph.initializer}
    feeds = {i.name for i in model.graph.input} - weights
    return [
        n.name for n in model.graph.node if n.op_type in QUANTIZABLE_OPS and any(x in feeds for x in n.input)
    ]


def first_layers_to_keep_float(model: onnx.ModelProto) -> list[str]:
    """`first_layer_nodes` when they are at most FIRST_LAYERS_MAX_SHARE of the main graph's
    quantizable nodes, else []: in a small model (a 1-conv or 3-layer net) the first layers are
    much of the compute, and keeping them float would leave little or nothing quantized."""
    first = first_layer_nodes(model)
    total = sum(1 for n in model.graph.node if n.op_type in QUANTIZABLE_OPS)
    return first if first and len(first) <= FIRST_LAYERS_MAX_SHARE * total else []


SENSITIVE_ROWS = 32  # calibration rows the sensitivity ranking runs (it holds every layer's output)


def sensitive_layers(
    model: onnx.ModelProto, prepared: Path, quantized: Path, calib: Dataset, count: int, kept: list[str]
) -> list[str]:
    """The `count` nodes of `quantized` (the int8 QDQ artifact of `prepared`) whose own
    quantization costs most SQNR (guard.rank_by_sqnr, on the first SENSITIVE_ROWS calibration
    rows), not already in `kept`, with a positive drop, and at most FIRST_LAYERS_MAX_SHARE of the
    quantizable nodes all told; [] when count is 0. Raises SensitivityUnmeasured when the
    intermediate tensors cannot be read."""
    total = sum(1 for n in model.graph.node if n.op_type in QUANTIZABLE_OPS)
    count = min(count, int(FIRST_LAYERS_MAX_SHARE * total) - len(kept))
    if count <= 0:
        return []
    rows = dataclasses.replace(
        calib,
        inputs={name: array[:SENSITIVE_ROWS] for name, array in calib.inputs.items()},
        per_feed=None if calib.per_feed is None else calib.per_feed[:SENSITIVE_ROWS],
    )
    try:
        ranked = rank_by_sqnr(prepared, quantized, rows)
    except Exception as exc:  # an intermediate tensor onnxruntime cannot expose, a model over 2 GB
        raise SensitivityUnmeasured(_one_line(exc)) from None
    return [s.node for s in ranked if s.node not in kept and s.sqnr_drop_db > 0][:count]


class SensitivityUnmeasured(Exception):
    """The layers' own SQNR loss could not be measured (the reason is the message): none is kept
    float for it, and the report says why."""


def int8_dynamic(source: Path, out: Path, params: dict[str, Any], profile: DeviceProfile) -> dict[str, Any]:
    model = onnx.load(str(source))
    check_quantizable(model, "int8-dynamic")
    with tempfile.TemporaryDirectory(prefix="edgekit-q-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        report = preprocess(source, prepared)
        with scratch_cwd(Path(scratch)):
            quantize_dynamic(
                str(prepared.resolve()),
                str(out.resolve()),
                per_channel=bool(params["per-channel"]),
                reduce_range=target_reduce_range(profile),
                weight_type=QuantType.QInt8,
                extra_options={"EnableSubgraph": True},  # quantize inside If/Loop/Scan bodies too
                use_external_data_format=has_external_data(prepared),  # over 2 GB: the only way
            )
    _sort_nodes(out)
    return {
        **report,
        "weight_type": "QInt8",
        "per_channel": bool(params["per-channel"]),
        "reduce_range": target_reduce_range(profile),
    }


def int4_weight(source: Path, out: Path, params: dict[str, Any]) -> dict[str, Any]:
    """4-bit block-wise weights for MatMul (onnxruntime's MatMulNBits); activations stay float."""
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as exc:
        raise UsageError(f"int4-weight needs {exc.name}: pip install onnx-ir") from None
    model = onnx.load(str(source))
    refuse_quantized(model, "int4-weight")
    matmuls = [item.node for item in walk(model.graph) if item.node.op_type == "MatMul"]
    if not matmuls:
        raise ModelError(
            "int4-weight: no MatMul nodes (4-bit weight-only quantization targets MatMul-heavy models)"
        )
    block = int(params["block-size"])
    quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=block, is_symmetric=bool(params["symmetric"]))
    quantizer.process()
    converted = quantizer.model.model
    save_onnx(converted, out)
    packed = sum(1 for item in walk(converted.graph) if item.node.op_type == "MatMulNBits")
    return {
        "bits": 4,
        "block_size": block,
        "symmetric": bool(params["symmetric"]),
        "matmuls": len(matmuls),
        "packed": packed,
    }
