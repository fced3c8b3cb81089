"""Per-feed sample sets whose feeds differ in shape (a classifier with open H/W fed images of
different sizes and batch sizes): int8-static calibrates with every method, the artifact loads,
runs on a size it never saw and is judged; optimize splits a per-feed --eval by file; tflite-int8
says in one line why it cannot take feeds of different shapes."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path
from edgekit.testing.models import make_open_conv
from tests.cli_run import run_cli
from tests.integration.test_cli import assert_one_line_error

pytestmark = pytest.mark.integration

# (batch, height, width) of each feed: counts, batch sizes and sizes varied on purpose, each
# set with at least two shapes that share nothing but the channel axis.
SHAPES = {
    3: [(1, 32, 32), (2, 48, 40), (3, 17, 64)],
    5: [(4, 24, 24), (1, 57, 33), (4, 24, 24), (3, 40, 16), (1, 8, 96)],
    7: [(1, 32, 32), (2, 32, 32), (5, 20, 28), (1, 64, 48), (3, 33, 31), (2, 16, 16), (1, 40, 72)],
}
EVAL = {3: 7, 5: 3, 7: 5}  # each calibration set judged on another set of shapes


def _write_feeds(folder: Path, model: Path, shapes: list[tuple[int, int, int]], seed: int) -> Path:
    """One .npz per feed: `image` [batch, 3, H, W] and `labels` (the float model's top-1 on most
    rows, so that accuracy is measurable and float is not perfect)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for index, (batch, height, width) in enumerate(shapes):
        scale = 0.5 + index % 3  # feeds of different ranges: the merged histogram must span them
        image = (rng.standard_normal((batch, 3, height, width)) * scale).astype(np.float32)
        top1 = session.run(None, {"image": image})[0].argmax(axis=1)
        labels = np.where(rng.random(batch) < 0.9, top1, (top1 + 1) % 10).astype(np.int64)
        np.savez(folder / f"feed{index:02d}.npz", image=image, labels=labels)
    return folder


@pytest.mark.parametrize(
    ("count", "method", "feature_map"),
    [(3, "minmax", False), (5, "entropy", True), (7, "percentile", False), (5, "minmax", True)],
)
def test_int8_static_calibrates_on_feeds_of_different_shapes(
    tmp_path: Path, count: int, method: str, feature_map: bool
) -> None:
    """With `feature_map`, a second output's shape follows the input's (a detector's map): its
    fidelity is judged over feeds of different sizes too."""
    model = make_open_conv(tmp_path / "open_conv.onnx", feature_map=feature_map)
    calib = _write_feeds(tmp_path / "calib", model, SHAPES[count], seed=count)
    evaluation = _write_feeds(tmp_path / "eval", model, SHAPES[EVAL[count]], seed=99)
    out = tmp_path / "out"
    proc = run_cli(
        "compress", str(model), "-o", str(out), "--recipe", f"int8-static:calib={method}",
        "--calib", str(calib), "--eval", str(evaluation), "--json", home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    report = manifest["recipe"][0]["report"]
    assert report["calibration"]["method"] == method and report["calibration"]["rows"] == count
    assert report["calibration"]["shape_groups"] == len(set(SHAPES[count]))
    fidelity = manifest["fidelity"]
    eval_rows = sum(batch for batch, _, _ in SHAPES[EVAL[count]])
    assert fidelity["rows"] == eval_rows
    assert fidelity["accuracy"]["drop_points"] <= 25.0
    assert fidelity["outputs"]["logits"]["cosine_mean"] > 0.95
    if feature_map:
        features = fidelity["outputs"]["features"]
        assert features["kind"] == "map" and features["rows"] == eval_rows
        assert features["cosine_mean"] > 0.95 and features["sqnr_db"] > 10.0
    # The artifact is quantized, loads and runs on a batch and a size no feed had.
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    ops = {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    image = np.random.default_rng(1).standard_normal((6, 3, 37, 53)).astype(np.float32)
    logits = session.run(["logits"], {"image": image})[0]
    assert logits.shape == (6, 10) and np.all(np.isfinite(logits))


def test_prune_refits_on_feeds_of_different_shapes(tmp_path: Path) -> None:
    """reconstruct=yes refits each pruned Conv's reader on calibration activations: feeds of
    different sizes give activations of different sizes, refit on all of them."""
    model = make_open_conv(tmp_path / "open_conv.onnx")
    calib = _write_feeds(tmp_path / "calib", model, SHAPES[5], seed=5)
    out = tmp_path / "out"
    proc = run_cli(
        "compress", str(model), "-o", str(out), "--recipe", "prune-channels:0.5",
        "--calib", str(calib), "--eval", str(calib), "--json", "--allow-degraded", home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)["recipe"][0]["report"]
    assert report["reconstruction"] == "least squares on calibration activations"
    assert report["reconstruction_mse"]


def test_optimize_splits_a_per_feed_eval_folder_by_file(tmp_path: Path) -> None:
    model = make_open_conv(tmp_path / "open_conv.onnx")
    shapes = SHAPES[7] + [(2, 32, 32), (1, 32, 32), (4, 32, 32), (3, 32, 32), (2, 32, 32)]
    evaluation = _write_feeds(tmp_path / "eval", model, shapes, seed=12)
    out = tmp_path / "opt"
    proc = run_cli(
        "optimize", str(model), "--eval", str(evaluation), "-o", str(out),
        "--recipe", "int8-static:calib=entropy", "--runs", "30", "--min-seconds", "0.2",
        "--confirm", "0", "--time-budget", "3m", "--json", home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    local = report["devices"]["local"]
    assert local["chosen"] in {"float", "int8-static:calib=entropy"}
    candidates = {c["name"]: c for c in local["candidates"]}
    int8 = candidates["int8-static:calib=entropy"]
    assert int8["accuracy"] is not None  # labels were found in the files' `labels` entries
    calib_files = sorted(p.name for p in (out / "data" / "calib").glob("*.npz"))
    heldout_files = sorted(p.name for p in (out / "data" / "heldout").glob("*.npz"))
    assert calib_files and heldout_files and not set(calib_files) & set(heldout_files)
    assert sorted(calib_files + heldout_files) == sorted(p.name for p in evaluation.glob("*.npz"))


def test_tflite_int8_refuses_feeds_of_different_shapes_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("onnx2tf", reason="the tflite extra is not installed")
    model = make_open_conv(tmp_path / "open_conv.onnx")
    calib = _write_feeds(tmp_path / "calib", model, SHAPES[3], seed=3)
    proc = run_cli(
        "compress", str(model), "-o", str(tmp_path / "out"), "--recipe", "tflite-int8",
        "--calib", str(calib), home=tmp_path,
    )  # fmt: skip
    assert_one_line_error(proc, 2, "differ in shape")
    assert "'image'" in proc.stderr


def test_tflite_int8_takes_per_feed_sets_of_one_shape_and_several_batch_sizes(tmp_path: Path) -> None:
    """The one TensorFlow conversion here: feeds of 3, 1, 5, 2 and 7 rows calibrate (joined into
    18 rows), and a per-feed --eval judges the TFLite artifact row by row."""
    pytest.importorskip("onnx2tf", reason="the tflite extra is not installed")
    pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")
    with np.load(demo_calib_set_path()) as data:
        rows = data["input"]
    with np.load(demo_test_set_path()) as data:
        eval_rows, eval_labels = data["input"], data["labels"]
    for folder, source, sizes in (("calib", rows, [3, 1, 5, 2, 7]), ("eval", eval_rows, [4, 9, 1, 6])):
        (tmp_path / folder).mkdir()
        starts = np.cumsum([0, *sizes])
        for index, (start, stop) in enumerate(pairwise(starts)):
            extra = {"labels": eval_labels[start:stop]} if folder == "eval" else {}
            np.savez(tmp_path / folder / f"{index}.npz", input=source[start:stop], **extra)
    out = tmp_path / "out"
    proc = run_cli(
        "compress", str(demo_model_path()), "-o", str(out), "--recipe", "tflite-int8",
        "--calib", str(tmp_path / "calib"), "--eval", str(tmp_path / "eval"), "--json", home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"][0]["report"]["calibration"]["rows"] == 18
    assert manifest["recipe"][0]["report"]["calibration"]["feeds"] == 5
    assert manifest["fidelity"]["rows"] == 20 and manifest["fidelity"]["accuracy"]["drop_points"] <= 10.0
