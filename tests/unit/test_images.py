from __future__ import annotations

import numpy as np
import pytest

from edgekit.compress.images import image_geometry, normalise
from edgekit.core.errors import InputSpecError
from edgekit.core.onnx_model import TensorInfo


def test_geometry_from_the_input_shape() -> None:
    assert image_geometry(TensorInfo("x", "float32", ("N", 3, 224, 200)), "--calib") == ("NCHW", 3, 224, 200)
    assert image_geometry(TensorInfo("x", "float32", (1, 96, 96, 1)), "--calib") == ("NHWC", 1, 96, 96)
    with pytest.raises(InputSpecError, match="no fixed height/width"):
        image_geometry(TensorInfo("x", "float32", ("N", 3, "h", "w")), "--calib")
    with pytest.raises(InputSpecError, match="4-D image input"):
        image_geometry(TensorInfo("x", "float32", ("N", 64)), "--calib")


def test_normalisation_conventions() -> None:
    pixels = np.array([[[0, 128, 255]]], np.uint8)
    assert np.allclose(normalise(pixels, "unit"), [[[0, 128 / 255, 1]]])
    assert np.allclose(normalise(pixels, "symmetric"), [[[-1, 128 / 127.5 - 1, 1]]], atol=1e-6)
    assert np.allclose(normalise(pixels, "raw"), [[[0, 128, 255]]])
    expected = (np.array([0, 128 / 255, 1]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    assert np.allclose(normalise(pixels, "imagenet"), [[expected]], atol=1e-6)
