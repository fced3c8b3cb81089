"""Calibration feeds: every row used, every feed of one shape, for any row count, and
onnxruntime's calibrators (minmax, entropy, percentile) accept them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.compress.data import MAX_BATCH, Dataset, calibration_batch_size, calibration_batches
from edgekit.core.errors import InputSpecError
from edgekit.core.onnx_model import TensorInfo


def _info(first: int | str) -> list[TensorInfo]:
    return [TensorInfo("input", "float32", [first, 1, 8, 8])]


def _dataset(rows: int) -> Dataset:
    data = np.arange(rows * 64, dtype=np.float32).reshape(rows, 1, 8, 8)
    return Dataset(Path("<test>"), {"input": data}, None)


@pytest.mark.parametrize("rows", [1, 31, 33, 90, 96, 100, 256])
@pytest.mark.parametrize("first", ["batch", 1, 4, 7])
def test_feeds_are_equal_and_cover_every_row(rows: int, first: int | str) -> None:
    feeds = list(calibration_batches(_dataset(rows), _info(first)))
    shapes = {feed["input"].shape for feed in feeds}
    assert len(shapes) == 1
    size = next(iter(shapes))[0]
    assert size == (first if isinstance(first, int) else calibration_batch_size(rows, _info(first)))
    assert 1 <= size <= max(MAX_BATCH, size)
    seen = np.concatenate([feed["input"][:, 0, 0, 0] for feed in feeds]) / 64
    assert set(seen.astype(int)) == set(range(rows))
    assert len(seen) - rows < size  # at most one feed completed with repeated rows


def test_free_batch_splits_into_divisors() -> None:
    assert calibration_batch_size(256, _info("batch")) == 32
    assert calibration_batch_size(90, _info("batch")) == 30
    assert calibration_batch_size(33, _info("batch")) == 11
    assert calibration_batch_size(31, _info("batch")) == 31
    assert calibration_batch_size(37, _info("batch")) == 1


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_every_shape_group_reaches_the_calibrator(tmp_path: Path, method: str) -> None:
    """Feeds of three shapes, the largest values only in the last group to be read: the input's
    quantization range must cover them, so every group was collected (not only the first)."""
    import onnx

    from edgekit.compress.quantize import calibration_reader, int8_static
    from edgekit.core.onnx_model import graph_inputs
    from edgekit.core.profiles import load_profile
    from edgekit.testing.models import make_open_conv

    model = make_open_conv(tmp_path / "open_conv.onnx")
    rng = np.random.default_rng(5)
    shapes = [(2, 3, 16, 16), (1, 3, 24, 40), (2, 3, 16, 16), (3, 3, 9, 31), (1, 3, 24, 40)]
    per_feed = tuple(
        {"image": rng.uniform(-1.0, 1.0, shape).astype(np.float32) * (40.0 if shape[0] == 3 else 1.0)}
        for shape in shapes
    )
    dataset = Dataset(tmp_path, {}, None, per_feed)
    reader = calibration_reader(dataset, graph_inputs(onnx.load(str(model))))
    assert reader.group_count == 3 and len(reader) == 3 * 2 and reader.options() == {"CalibStridedMinMax": 2}
    report = int8_static(model, tmp_path / "q.onnx", {"calib": method, "per-channel": True, "scheme": "s8s8"},
                         dataset, load_profile("local"))  # fmt: skip
    assert report["calibration"]["shape_groups"] == 3
    quantized = onnx.load(str(tmp_path / "q.onnx"))
    node = next(n for n in quantized.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "image")
    scale = next(
        onnx.numpy_helper.to_array(i) for i in quantized.graph.initializer if i.name == node.input[1]
    )
    assert float(scale) * 127 > 20.0  # the range reaches into the last group's values (|x| up to 40)


def test_tflite_calibration_joins_feeds_of_one_shape_and_names_what_cannot_be_joined(tmp_path: Path) -> None:
    from edgekit.compress.tflite import calibration_arrays

    image = TensorInfo("image", "float32", ["N", 3, "H", "W"])
    rng = np.random.default_rng(0)
    batches = [3, 1, 4, 2]  # different batch sizes, one H/W: joined into 10 rows
    feeds = tuple({"image": rng.standard_normal((b, 3, 20, 12)).astype(np.float32)} for b in batches)
    joined = calibration_arrays(Dataset(tmp_path, {}, None, feeds), [image])
    assert joined["image"].shape == (10, 3, 20, 12)
    np.testing.assert_array_equal(joined["image"][4:8], feeds[2]["image"])
    odd = (*feeds, {"image": np.zeros((1, 3, 21, 12), np.float32)})
    with pytest.raises(
        InputSpecError, match=r"differ in shape on input 'image' \(0 \[3, 3, 20, 12\], 4 \[1, 3, 21"
    ):
        calibration_arrays(Dataset(tmp_path, {}, None, odd), [image])
    sr = TensorInfo("sr", "int64", [])
    with pytest.raises(InputSpecError, match="'sr' is a scalar"):
        calibration_arrays(Dataset(tmp_path, {}, None, ({"sr": np.array(16000)},)), [sr])
    state = TensorInfo("state", "float32", ["S", 8])  # one state row per feed, several images
    two = tuple({"image": f["image"], "state": np.zeros((1, 8), np.float32)} for f in feeds)
    with pytest.raises(InputSpecError, match="different row counts"):
        calibration_arrays(Dataset(tmp_path, {}, None, two), [image, state])
