"""A folder of images as calibration / evaluation data for a one-input image model.

Images are resized (bilinear) to the model's fixed input size, converted to its channel count
and layout (NCHW or NHWC, read off the input shape) and normalised by one of the common
conventions. When every image sits in a class subfolder (`DIR/<class>/*.jpg`, the ImageFolder
convention) the sorted subfolder names give the labels 0, 1, 2, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import numpy as np

from edgekit.compress.data import Dataset
from edgekit.core.errors import InputSpecError, UsageError
from edgekit.core.onnx_model import TensorInfo

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ImagePreprocess = Literal["unit", "imagenet", "symmetric", "raw"]
PREPROCESSING: tuple[str, ...] = get_args(ImagePreprocess)


def image_geometry(info: TensorInfo, option: str) -> tuple[str, int, int, int]:
    """(layout, channels, height, width) of a 4-D image input with fixed C, H and W."""
    dims = info.dims
    if len(dims) != 4:
        raise InputSpecError(
            f"{option}: an image folder needs a 4-D image input, {info.name!r} is {list(dims)}"
        )
    if isinstance(dims[1], int) and dims[1] in (1, 3):
        layout, channels, height, width = "NCHW", dims[1], dims[2], dims[3]
    elif isinstance(dims[3], int) and dims[3] in (1, 3):
        layout, channels, height, width = "NHWC", dims[3], dims[1], dims[2]
    else:
        raise InputSpecError(f"{option}: cannot tell the channel axis of {info.name!r} {list(dims)}")
    if not isinstance(height, int) or not isinstance(width, int) or height <= 0 or width <= 0:
        raise InputSpecError(
            f"{option}: {info.name!r} has no fixed height/width {list(dims)}; export it with one"
        )
    return layout, channels, height, width


def normalise(pixels: np.ndarray, preprocessing: str) -> np.ndarray:
    """uint8 H x W x C -> float32 by convention (pure)."""
    x = pixels.astype(np.float32)
    if preprocessing == "raw":
        return x
    if preprocessing == "symmetric":
        return x / 127.5 - 1.0
    x = x / 255.0
    if preprocessing == "imagenet":
        channels = x.shape[-1]
        mean = np.array(IMAGENET_MEAN[:channels] if channels == 3 else [np.mean(IMAGENET_MEAN)], np.float32)
        std = np.array(IMAGENET_STD[:channels] if channels == 3 else [np.mean(IMAGENET_STD)], np.float32)
        x = (x - mean) / std
    return x


def _files(directory: Path) -> tuple[list[Path], list[int] | None]:
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    classes = sorted({p.parent.name for p in files if p.parent != directory})
    in_classes = all(p.parent.parent == directory for p in files)
    labels = [classes.index(p.parent.name) for p in files] if files and in_classes and classes else None
    return files, labels


def load_image_folder(directory: Path, info: TensorInfo, preprocessing: str, option: str) -> Dataset:
    if preprocessing not in PREPROCESSING:
        raise UsageError(f"--image-preprocess {preprocessing!r}: expected one of {', '.join(PREPROCESSING)}")
    try:
        from PIL import Image
    except ImportError:
        raise UsageError(f"{option} {directory}: reading images needs Pillow: pip install pillow") from None
    layout, channels, height, width = image_geometry(info, option)
    files, labels = _files(directory)
    if not files:
        raise InputSpecError(f"{option} {directory}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    rows = []
    for file in files:
        try:
            with Image.open(file) as image:
                converted = image.convert("RGB" if channels == 3 else "L").resize(
                    (width, height), Image.BILINEAR
                )
                pixels = np.asarray(converted)
        except OSError as exc:
            raise InputSpecError(f"{option}: cannot read image {file}: {exc}") from None
        pixels = pixels if pixels.ndim == 3 else pixels[:, :, None]
        x = normalise(pixels, preprocessing)
        rows.append(x.transpose(2, 0, 1) if layout == "NCHW" else x)
    inputs = {info.name: np.stack(rows).astype(np.dtype(info.dtype))}
    return Dataset(directory, inputs, np.array(labels, np.int64) if labels is not None else None)
