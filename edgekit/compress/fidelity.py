"""How much a compressed model differs from its float source, measured on real data, output by
output, and the quality floor below which an artifact is called degraded.

Per tensor output (arrays of shape [rows, ...], compared row by row):
  - cosine: per row, <r, t> / (|r| |t|); two zero rows agree (1.0), a zero row against a
    non-zero one is 0.0 (no direction in common), a row holding NaN/inf in the artifact is 0.0.
  - SQNR (dB): 10 log10(sum r^2 / sum (r - t)^2) over the whole output (inf when identical;
    None when the artifact output holds NaN/inf).
  - max abs error: max |r - t| over finite positions.
  - top-1 agreement (fraction of rows whose argmax over the last axis agrees) for class-score
    outputs only, and accuracy before/after when the data carries `labels`.
  - flags: `non-finite` (NaN/inf where float is finite), `constant` (the artifact output does
    not vary across rows or elements while the float one does: a collapsed model).

How an output is recognised as class scores (`kind` "scores"), unless `--output-kind
NAME=KIND` says otherwise: a float output of shape [N, C] with C >= 2 that is produced by
Softmax/LogSoftmax (through Identity/Reshape/Flatten/Squeeze) or read by ArgMax/TopK inside the
graph, or, failing that, whose float rows are not unit-L2-normalised and not produced by a
pooling or normalisation op (LpNormalization, ReduceMean/ReduceSum/ReduceL2, GlobalAveragePool,
or a Div such as mean pooling's sum / count: such rows are embeddings, e.g. a sentence
encoder's). When another output of the model is marked as class scores that way (a detector's
score head), an unmarked [N, C] output is a regression head, "values" (boxes, landmarks), judged
by cosine. A float output [N, T, C] (after its row axis is moved first) with C >= 2 that is
marked the same way or made by a linear layer (Gemm, or MatMul with a constant weight, plus a
constant bias) is a "sequence" of class scores (a CTC recognizer's frames, a tagger's tokens):
its top-1 agreement is the share of rows whose argmax agrees at every position that is not
padding (`position_agreement` gives the per-position share), so a recogniser that misreads one
character in every string does not pass at 95% of frames. Other float outputs are "embedding"
(2-D), "boxes" (3-D with a last axis of 4 to 7), "map" (any other rank >= 3) or "values"
(rank < 2);
integer and bool outputs are "labels" (compared by exact agreement). Sequence and map outputs
are skipped with a reason. Kinds an override may set: scores, sequence, embedding, values, map,
boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from edgekit.compress.data import Dataset, batch_size, feeds
from edgekit.core.errors import InputSpecError, ModelError, UsageError
from edgekit.core.onnx_model import PROTOBUF_LIMIT_BYTES, graph_inputs, load_onnx, tensor_bytes

OUTPUT_KINDS = ("scores", "sequence", "embedding", "values", "map", "boxes")
_PASS_THROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast"}
_SCORE_PRODUCERS = {"Softmax", "LogSoftmax"}
_SCORE_READERS = {"ArgMax", "TopK"}
_EMBEDDING_PRODUCERS = {"LpNormalization", "ReduceMean", "ReduceSum", "ReduceL2", "GlobalAveragePool", "Div"}


def session(model: Path | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def is_tensor_type(type_text: str) -> bool:
    """onnxruntime's type string reads `tensor(float)`; sequences `seq(...)`, maps `map(...)`."""
    return type_text.startswith("tensor(")


def run_outputs(
    model: Path | bytes, dataset: Dataset, names: Sequence[str] | None = None, *, pad: bool = True
) -> dict[str, np.ndarray]:
    """Outputs (every tensor output, or `names`) over every row of the dataset, joined along
    their row axis, which becomes axis 0 (`join_rows`). Sequence and map outputs are left out
    when `names` is None: they have no row axis to compare along. `pad`: see `join_rows`."""
    sess = session(model)
    proto = load_onnx(model) if isinstance(model, Path) else onnx.load_from_string(model)
    size = batch_size(graph_inputs(proto))
    wanted = (
        list(names) if names is not None else [o.name for o in sess.get_outputs() if is_tensor_type(o.type)]
    )
    collected: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    rows: list[int | None] = []
    for feed in feeds(dataset, size):
        rows.append(None if dataset.per_feed is not None else len(next(iter(feed.values()))))
        for name, value in zip(wanted, sess.run(wanted, feed), strict=True):
            collected[name].append(np.asarray(value))
    return {name: join_rows(name, parts, rows, pad) for name, parts in collected.items()}


def join_rows(
    name: str, parts: Sequence[np.ndarray], rows: Sequence[int | None] | None = None, pad: bool = True
) -> np.ndarray:
    """One tensor's arrays, one per feed, as one array whose axis 0 is the row axis.

    `rows[i]`: the rows of feed i (a row set's batch), None (or `rows` None) for a per-feed set,
    whose axis 0 is then taken as the row axis. 0-d parts are stacked. The row axis is axis 0
    when every part's axis 0 has its feed's rows; else the first axis that has them in every part
    (a time-major output such as an RNN's [T, N, C] is moved to [N, T, C]); else axis 0. Parts
    whose other axes differ (a per-feed set of images of several sizes, of sequences of several
    lengths) are, with `pad`, zero-padded at the end of those axes to the largest size: equal
    zeros in a float output and its artifact's change no cosine, SQNR or max abs error (they add
    nothing to a row's dot product, norms or squared error), and `compare_outputs` leaves rows
    that are zero in both out of top-1 agreement. A rank that changes from feed to feed gives one
    flattened row per feed. Without `pad` (a refit needs real samples only) differing parts raise
    InputSpecError naming `name`."""
    if not parts[0].ndim:
        return np.stack(parts)
    ndim = parts[0].ndim
    if any(p.ndim != ndim for p in parts):
        if not pad:
            raise InputSpecError(f"tensor {name!r} has different ranks over the feeds")
        parts, ndim = [p.reshape(1, -1) for p in parts], 2
    else:
        pairs = list(zip(parts, rows if rows is not None else [None] * len(parts), strict=True))
        fits = [a for a in range(ndim) if all(r in (None, p.shape[a]) for p, r in pairs)]
        parts = [np.moveaxis(p, fits[0] if fits else 0, 0) for p in parts]
    if len({p.shape[1:] for p in parts}) == 1:
        return np.concatenate(parts)
    if not pad:
        shapes = sorted({tuple(p.shape) for p in parts})
        raise InputSpecError(
            f"tensor {name!r} has different shapes over the feeds ({list(shapes[0])}, {list(shapes[-1])})"
        )
    largest = [max(p.shape[a] for p in parts) for a in range(1, ndim)]
    return np.concatenate([_pad_to(p, largest) for p in parts])


def _pad_to(array: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """`array` with zeros appended to axes 1.. up to `sizes` (itself when it has them)."""
    pad = [(0, 0)] + [(0, n - k) for n, k in zip(sizes, array.shape[1:], strict=True)]
    return np.pad(array, pad) if any(after for _, after in pad) else array


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB, 10 log10(sum r^2 / sum (r - t)^2) (inf when identical)."""
    reference = reference.astype(np.float64).ravel()
    noise = float(np.sum((reference - test.astype(np.float64).ravel()) ** 2))
    signal = float(np.sum(reference**2))
    if noise == 0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-30) / noise)


def row_cosines(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Cosine of each row pair of two [rows, D] float64 arrays: 1.0 when both rows are zero,
    0.0 when exactly one is (a collapsed output shares no direction with a live one)."""
    ref_norm, test_norm = np.linalg.norm(reference, axis=1), np.linalg.norm(test, axis=1)
    both = (ref_norm > 0) & (test_norm > 0)
    dots = np.sum(reference * test, axis=1)
    cosine = np.where(both, dots / np.maximum(ref_norm * test_norm, 1e-300), 0.0)
    return np.where((ref_norm == 0) & (test_norm == 0), 1.0, np.clip(cosine, -1.0, 1.0))


def _spread(array: np.ndarray) -> float:
    """How far the rows (several rows) or the elements (one row) of a [rows, D] array stray from
    the first, relative to the array's largest magnitude (0: constant)."""
    if not array.size:
        return 0.0
    first = array[:1] if len(array) > 1 else array.flat[0]
    scale = float(np.max(np.abs(array)))
    return float(np.max(np.abs(array - first))) / scale if scale > 0 else 0.0


CONSTANT_SPREAD = 1e-4  # float's output varies when its spread exceeds this (relative)


def compare_outputs(
    reference: np.ndarray, test: np.ndarray, labels: np.ndarray | None, kind: str | None = None
) -> dict[str, Any]:
    """Cosine, SQNR, max abs error and flags of one output ([rows, ...], the float model's and
    the artifact's), plus top-1 agreement and accuracy (with `labels`, 1-D ints, one per row) for
    class scores. `kind` None: scores when the output is [rows, C >= 2] (the classifier case)."""
    rows = len(reference)
    if kind is None:
        kind = "scores" if reference.ndim == 2 and reference.shape[1] > 1 else "values"
    flat_ref = reference.reshape(rows, -1).astype(np.float64)
    flat_test = test.reshape(rows, -1).astype(np.float64)
    finite_ref = np.isfinite(flat_ref)
    flat_ref = np.where(finite_ref, flat_ref, 0.0)
    bad = ~np.isfinite(flat_test) & finite_ref
    non_finite = int(np.sum(bad))
    clean_test = np.where(np.isfinite(flat_test), flat_test, 0.0)
    cosine = np.where(np.any(bad, axis=1), 0.0, row_cosines(flat_ref, clean_test))
    flags = []
    if non_finite:
        flags.append(f"non-finite: {non_finite} NaN/inf value(s) where float is finite")
    if _spread(clean_test) == 0.0 and _spread(flat_ref) > CONSTANT_SPREAD:
        flags.append("constant: the artifact's output does not vary where the float one does")
    result: dict[str, Any] = {
        "rows": rows,
        "kind": kind,
        "cosine_mean": float(np.mean(cosine)) if rows else None,
        "cosine_min": float(np.min(cosine)) if rows else None,
        "max_abs_error": float(np.max(np.abs(flat_ref - clean_test))) if flat_ref.size else 0.0,
        "sqnr_db": None if non_finite else sqnr_db(flat_ref, clean_test),
        "top1_agreement": None,
        "accuracy": None,
        "flags": flags,
    }
    if kind == "labels":
        result["top1_agreement"] = float(np.mean(np.all(flat_ref == flat_test, axis=1)))
    elif kind == "sequence" and reference.ndim == 3 and reference.shape[-1] > 1:
        # One row is a sequence of class scores (a CTC recognizer's frames, a tagger's tokens):
        # it agrees when the argmax at every position that is not padding agrees.
        live = np.any(reference != 0, axis=2) | np.any(test != 0, axis=2)
        same = reference.argmax(2) == np.where(np.isfinite(test), test, -np.inf).argmax(2)
        result["top1_agreement"] = float(np.mean(np.all(same | ~live, axis=1)))
        result["position_agreement"] = float(np.mean(same[live])) if live.any() else None
    elif kind == "scores" and reference.ndim >= 2 and reference.shape[-1] > 1:
        classes = reference.shape[-1]
        ref_rows, test_rows = reference.reshape(-1, classes), test.reshape(-1, classes)
        live = np.any(ref_rows != 0, axis=1) | np.any(test_rows != 0, axis=1)  # not padding (join_rows)
        top_ref = ref_rows.argmax(1)
        top_test = np.where(np.isfinite(test_rows), test_rows, -np.inf).argmax(1)
        result["top1_agreement"] = float(np.mean((top_ref == top_test)[live])) if live.any() else None
        if labels is not None and reference.ndim == 2:
            before, after = float(np.mean(top_ref == labels)), float(np.mean(top_test == labels))
            result["accuracy"] = {"before": before, "after": after, "drop_points": (before - after) * 100.0}
    return result


def parse_output_kinds(texts: Sequence[str]) -> dict[str, str]:
    """`NAME=KIND` items (from --output-kind) as {name: kind}. Raises UsageError on a bad item."""
    kinds: dict[str, str] = {}
    for text in texts:
        name, sep, kind = text.partition("=")
        name, kind = name.strip(), kind.strip().lower()
        if not sep or not name or kind not in OUTPUT_KINDS:
            raise UsageError(
                f"--output-kind {text!r}: expected NAME=KIND, KIND one of {', '.join(OUTPUT_KINDS)}"
            )
        kinds[name] = kind
    return kinds


def _producer_op(model: onnx.ModelProto, tensor: str) -> str | None:
    """The op that makes `tensor`, looking through shape-only ops (Identity, Reshape, ...)."""
    producers = {out: node for node in model.graph.node for out in node.output}
    seen = 0
    node = producers.get(tensor)
    while node is not None and node.op_type in _PASS_THROUGH and seen < 16:
        node, seen = producers.get(node.input[0]) if node.input else None, seen + 1
    return node.op_type if node is not None else None


def _marked_scores(model: onnx.ModelProto, name: str) -> bool:
    """Produced by Softmax/LogSoftmax (through shape-only ops) or read by ArgMax/TopK."""
    read_by = {n.op_type for n in model.graph.node if name in n.input}
    return _producer_op(model, name) in _SCORE_PRODUCERS or bool(read_by & _SCORE_READERS)


def _linear_head(model: onnx.ModelProto, name: str) -> bool:
    """Made by a linear layer (through shape-only ops): Gemm, MatMul with a constant weight, or
    such a MatMul plus a constant bias."""
    producers = {out: node for node in model.graph.node for out in node.output}
    constants = {t.name for t in model.graph.initializer} | {
        out for node in model.graph.node if node.op_type == "Constant" for out in node.output
    }
    node = producers.get(name)
    for _ in range(16):
        if node is None or node.op_type not in _PASS_THROUGH or not node.input:
            break
        node = producers.get(node.input[0])
    if node is not None and node.op_type == "Add" and len(node.input) == 2:
        other = [i for i in node.input if i not in constants]
        node = producers.get(other[0]) if len(other) == 1 else None
    if node is None:
        return False
    return node.op_type == "Gemm" or (node.op_type == "MatMul" and any(i in constants for i in node.input))


def output_kind(model: onnx.ModelProto | None, name: str, reference: np.ndarray) -> str:
    """The kind of one output by the rule in this module's docstring."""
    if reference.dtype.kind in "iub":
        return "labels"
    if reference.ndim == 2 and reference.shape[1] >= 2:
        if model is not None and _marked_scores(model, name):
            return "scores"
        if model is not None and any(_marked_scores(model, o.name) for o in model.graph.output):
            return "values"  # a regression head (boxes, landmarks) beside the model's score head
        producer = _producer_op(model, name) if model is not None else None
        rows = reference.astype(np.float64)
        unit_rows = bool(np.all(np.abs(np.linalg.norm(rows, axis=1) - 1.0) < 1e-3))
        return "embedding" if unit_rows or producer in _EMBEDDING_PRODUCERS else "scores"
    if reference.ndim == 3 and 4 <= reference.shape[-1] <= 7:
        return "boxes"
    sequence = model is not None and (_marked_scores(model, name) or _linear_head(model, name))
    if reference.ndim == 3 and sequence:
        return "sequence"
    return "map" if reference.ndim >= 3 else ("embedding" if reference.ndim == 2 else "values")


def _worst(outputs: Mapping[str, dict[str, Any]]) -> str:
    """Flagged outputs first, then the lowest mean cosine (labels outputs: agreement), then SQNR."""

    def badness(name: str) -> tuple[int, float, float]:
        item = outputs[name]
        score = item["cosine_mean"] if item["kind"] != "labels" else item["top1_agreement"]
        sqnr = item["sqnr_db"]
        return (0 if item["flags"] else 1, 1.0 if score is None else score, -1e9 if sqnr is None else sqnr)

    return min(outputs, key=badness)


def summarize(
    outputs: dict[str, dict[str, Any]], skipped: dict[str, str], data: str, note: str | None = None
) -> dict[str, Any]:
    """The fidelity report: the worst output's figures at the top (`output` names it; top-1
    agreement and accuracy are those of the worst class-score output), the per-output table
    under `outputs`, skipped outputs with their reason under `skipped`."""
    report: dict[str, Any] = {"data": data}
    if outputs:
        worst = _worst(outputs)
        report.update({"output": worst, "worst_output": worst, **outputs[worst]})
        scores = [item for item in outputs.values() if item["top1_agreement"] is not None]
        with_acc = [item for item in scores if item["accuracy"] is not None]
        report["top1_agreement"] = min((i["top1_agreement"] for i in scores), default=None)
        report["accuracy"] = (
            max((i["accuracy"] for i in with_acc), key=lambda a: a["drop_points"]) if with_acc else None
        )
    else:
        report.update({"output": None, "worst_output": None, "rows": 0, "cosine_mean": None,
                       "cosine_min": None, "max_abs_error": None, "sqnr_db": None,
                       "top1_agreement": None, "accuracy": None, "flags": []})  # fmt: skip
    report["outputs"] = outputs
    report["skipped"] = skipped
    if note:
        report["note"] = note
    return report


def fidelity(
    source: Path, artifact: Path, dataset: Dataset, output_kinds: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Compare every tensor output of both models on every row of the dataset (ONNX); a TFLite
    artifact is compared on its first output. `output_kinds` ({name: kind}) overrides the
    recognised kinds. Raises UsageError for an override naming no output."""
    kinds = dict(output_kinds or {})
    sess = session(source)
    outputs_info = sess.get_outputs()
    known = {o.name for o in outputs_info}
    unknown = sorted(set(kinds) - known)
    if unknown:
        raise UsageError(f"--output-kind {unknown[0]}: no such output; outputs: {', '.join(sorted(known))}")
    skipped = {
        o.name: f"{o.type} output: no row axis to compare (not measured)"
        for o in outputs_info
        if not is_tensor_type(o.type)
    }
    names = [o.name for o in outputs_info if is_tensor_type(o.type)]
    note = None
    if artifact.suffix == ".tflite":
        from edgekit.core.tflite_model import run_first_output

        names = names[:1]
        tests = {names[0]: run_first_output(artifact, _rows_of(dataset))} if names else {}
        note = "TFLite artifact: first output compared"
    else:
        tests = run_outputs(artifact, dataset, names)
    references = run_outputs(source, dataset, names)
    proto = load_onnx(source)
    table = {}
    for name in names:
        reference, test = references[name], tests[name]
        if reference.shape != test.shape:
            skipped[name] = f"shape {list(test.shape)} differs from float's {list(reference.shape)}"
            continue
        kind = kinds.get(name) or output_kind(proto, name, reference)
        table[name] = compare_outputs(reference, test, dataset.labels, kind)
    return summarize(table, skipped, str(dataset.path), note)


def _rows_of(dataset: Dataset) -> dict[str, np.ndarray]:
    """The set as rows {input: [rows, ...]}: a per-feed set's feeds joined along axis 0 (a TFLite
    artifact runs row by row at one input shape). Raises InputSpecError when they differ beyond
    axis 0."""
    if dataset.per_feed is None:
        return dataset.inputs
    try:
        return {
            name: join_rows(name, [f[name] for f in dataset.per_feed], pad=False)
            for name in dataset.per_feed[0]
        }
    except InputSpecError as exc:
        raise InputSpecError(
            f"{dataset.path}: a TFLite artifact runs at one input shape, but {exc}; give feeds of one shape"
        ) from None


def quality_loss(result: dict[str, Any]) -> float | None:
    """Points lost: accuracy drop with labels, else top-1 disagreement of the worst class-score
    output; None when the model has no class-score output (judge it by cosine instead)."""
    if result.get("accuracy") is not None:
        return float(result["accuracy"]["drop_points"])
    if result.get("top1_agreement") is not None:
        return (1.0 - float(result["top1_agreement"])) * 100.0
    return None


def worst_cosine(result: dict[str, Any]) -> float | None:
    """The lowest mean cosine over the report's float outputs (None: none measured)."""
    values = [
        item["cosine_mean"]
        for item in (result.get("outputs") or {}).values()
        if item.get("kind") != "labels" and item.get("cosine_mean") is not None
    ]
    if not values and result.get("cosine_mean") is not None:
        values = [result["cosine_mean"]]
    return min(values) if values else None


@dataclass(frozen=True)
class QualityFloor:
    """Below this an artifact is degraded (far from usable), by default:
    any output flagged non-finite or constant, the worst output's mean cosine < 0.90, top-1
    agreement < 80% on a class-score (or labels) output, or, when labels and a tolerance are
    given, an accuracy drop over `max_accuracy_drop` points."""

    min_cosine: float = 0.90
    min_top1: float = 0.80
    max_accuracy_drop: float | None = None


def degraded_reasons(report: dict[str, Any] | None, floor: QualityFloor) -> list[str]:
    """One line per way the report falls below the floor; empty when it holds."""
    if not report:
        return []
    reasons: list[str] = []
    outputs = report.get("outputs") or {report.get("output") or "output": report}
    for name, item in outputs.items():
        reasons += [f"output {name}: {flag}" for flag in item.get("flags") or []]
        cosine = item.get("cosine_mean")
        if item.get("kind") != "labels" and cosine is not None and cosine < floor.min_cosine:
            reasons.append(f"output {name}: cosine {cosine:.4f} < {floor.min_cosine:g}")
        top1 = item.get("top1_agreement")
        if top1 is not None and top1 < floor.min_top1:
            reasons.append(f"output {name}: top-1 agreement {top1 * 100:.1f}% < {floor.min_top1 * 100:g}%")
        accuracy = item.get("accuracy")
        limit = floor.max_accuracy_drop
        if accuracy and limit is not None and accuracy["drop_points"] > limit:
            drop = accuracy["drop_points"]
            reasons.append(f"output {name}: accuracy drop {drop:.2f} > {limit:g} points")
    return reasons


def floor_shortfall(report: dict[str, Any], floor: QualityFloor) -> float:
    """How far below the floor, in points (0 when it holds): 100 per flagged output, plus
    100 x each cosine and top-1 shortfall and each accuracy point over the tolerance."""
    total = 0.0
    for item in (report.get("outputs") or {}).values():
        total += 100.0 * len(item.get("flags") or [])
        cosine, top1, accuracy = item.get("cosine_mean"), item.get("top1_agreement"), item.get("accuracy")
        if item.get("kind") != "labels" and cosine is not None:
            total += 100.0 * max(0.0, floor.min_cosine - cosine)
        if top1 is not None:
            total += 100.0 * max(0.0, floor.min_top1 - top1)
        if accuracy and floor.max_accuracy_drop is not None:
            total += max(0.0, accuracy["drop_points"] - floor.max_accuracy_drop)
    return total


def with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> bytes:
    """The model serialised with extra graph outputs (intermediate tensors) for inspection.
    Raises ModelError for a model over protobuf's 2 GB limit (it has no serialised form in
    memory): per-layer inspection (the accuracy guard, --per-layer, the fp16 range check) is not
    available for such models."""
    if tensor_bytes(model) >= PROTOBUF_LIMIT_BYTES:
        raise ModelError(
            "per-layer inspection (the accuracy guard, --per-layer, the fp16 range check) needs the "
            "model in one protobuf message, and this one is over 2 GB; run without labels or --per-layer"
        )
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    existing = {o.name for o in copy.graph.output}
    for name in names:
        if name not in existing:
            copy.graph.output.append(onnx.ValueInfoProto(name=name))
    return copy.SerializeToString()


def per_layer_sqnr(
    source: onnx.ModelProto, artifact: onnx.ModelProto, dataset: Dataset, tensors: Sequence[str]
) -> dict[str, float]:
    """SQNR (dB) of each named intermediate tensor, artifact vs source; lower = more damaged."""
    reference = run_outputs(with_outputs(source, tensors), dataset, tensors)
    test = run_outputs(with_outputs(artifact, tensors), dataset, tensors)
    return {name: sqnr_db(reference[name], test[name]) for name in tensors}
