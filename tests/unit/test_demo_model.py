"""The committed demo model is real: it classifies the held-back digits as well as it claims."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from edgekit.core.onnx_model import graph_inputs, load_onnx
from edgekit.data import demo_calib_set_path, demo_metadata, demo_model_path, demo_test_set_path


def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(demo_model_path()), providers=["CPUExecutionProvider"])


def test_accuracy_on_held_back_split_matches_metadata() -> None:
    with np.load(demo_test_set_path()) as data:
        x, labels = data["input"], data["labels"]
    assert x.shape[1:] == (1, 8, 8) and x.dtype == np.float32 and len(x) == len(labels) >= 300
    logits = session().run(["logits"], {"input": x})[0]
    accuracy = float((logits.argmax(1) == labels).mean())
    stated = demo_metadata()["test_accuracy"]
    assert accuracy >= 0.95
    assert accuracy >= stated - 0.005


def test_batch_dim_is_symbolic() -> None:
    (info,) = graph_inputs(load_onnx(demo_model_path()))
    assert (info.name, info.dtype, info.dims) == ("input", "float32", ("batch", 1, 8, 8))
    out = session().run(None, {"input": np.zeros((7, 1, 8, 8), np.float32)})[0]
    assert out.shape == (7, 10)


def test_calibration_rows_are_not_test_rows() -> None:
    with np.load(demo_test_set_path()) as test, np.load(demo_calib_set_path()) as calib:
        test_rows = {row.tobytes() for row in test["input"]}
        calib_rows = [row.tobytes() for row in calib["input"]]
    assert len(calib_rows) == 256
    # sklearn's digits hold a few exact duplicate images; a calib row equal to a test row is rare.
    assert sum(row in test_rows for row in calib_rows) <= 3


def test_bundled_data_is_small() -> None:
    total = sum(p.stat().st_size for p in demo_model_path().parent.iterdir() if p.is_file())
    assert total < 1_000_000
