"""Public test helpers for edgekit's tests and users' own: small real ONNX models, fake sysfs trees.

The models are real ONNX graphs that onnxruntime executes; the sysfs trees use the exact file
formats of the Linux kernel (one ASCII value and a trailing newline per attribute; see
shared/reference/sensor-formats.md and Documentation/ABI/testing/sysfs-class-thermal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_mlp(
    path: Path,
    *,
    features: int = 64,
    hidden: int = 128,
    classes: int = 10,
    batch: int | str = "batch",
    seed: int = 0,
) -> Path:
    """input[batch, features] -> Gemm -> Relu -> Gemm -> logits[batch, classes]."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((features, hidden)).astype(np.float32) * 0.1, "w1")
    b1 = numpy_helper.from_array(np.zeros(hidden, np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, classes)).astype(np.float32) * 0.1, "w2")
    b2 = numpy_helper.from_array(np.zeros(classes, np.float32), "b2")
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["hr"]),
            helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        initializer=[w1, b1, w2, b2],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), path)


def make_multi_input(path: Path) -> Path:
    """Three inputs of different dtypes, a symbolic sequence dim, two outputs.

    tokens int64[batch, seq], mask bool[batch, seq], scale float32[1] ->
    summed float32[batch] (tokens where mask, cast, summed, scaled) and count int64[batch].
    """
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["mask"], ["mask_i"], to=TensorProto.INT64),
            helper.make_node("Mul", ["tokens", "mask_i"], ["masked"]),
            helper.make_node("Cast", ["masked"], ["masked_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["masked_f", "axes"], ["sum"], keepdims=0),
            helper.make_node("Mul", ["sum", "scale"], ["summed"]),
            helper.make_node("ReduceSum", ["mask_i", "axes"], ["count"], keepdims=0),
        ],
        "multi_input",
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", "seq"]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("summed", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("count", TensorProto.INT64, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), path)


def write_sysfs_value(root: Path, relative: str, value: str | int) -> Path:
    """One sysfs attribute: the value and a trailing newline, as the kernel writes it."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{value}\n")
    return path


def make_fake_sysfs(
    root: Path,
    *,
    thermal_zones: Sequence[tuple[str, int]] = (("cpu-thermal", 48312),),
    cpus: int = 4,
    governor: str = "ondemand",
    cur_khz: int = 1500000,
    min_khz: int = 600000,
    max_khz: int = 1800000,
) -> Path:
    """A sysfs tree with thermal zones (type, millidegrees C) and per-CPU cpufreq."""
    for index, (zone_type, millideg) in enumerate(thermal_zones):
        write_sysfs_value(root, f"class/thermal/thermal_zone{index}/type", zone_type)
        write_sysfs_value(root, f"class/thermal/thermal_zone{index}/temp", millideg)
    write_sysfs_value(root, "devices/system/cpu/online", f"0-{cpus - 1}" if cpus > 1 else "0")
    for cpu in range(cpus):
        base = f"devices/system/cpu/cpu{cpu}/cpufreq"
        write_sysfs_value(root, f"{base}/scaling_governor", governor)
        write_sysfs_value(root, f"{base}/scaling_cur_freq", cur_khz)
        write_sysfs_value(root, f"{base}/scaling_min_freq", min_khz)
        write_sysfs_value(root, f"{base}/scaling_max_freq", max_khz)
    return root


def synthetic_latencies_ms(
    rng: np.random.Generator,
    n: int = 300,
    median_ms: float = 10.0,
    slowdown: float = 0.0,
    run_sigma: float = 0.005,
    body_sigma: float = 0.04,
    drift_sigma: float = 0.01,
    outlier_rate: float = 0.01,
) -> NDArray[np.float64]:
    """One run's latencies shaped like a board's: a right-skewed (log-normal) body, a slow AR(1)
    drift (clocks, caches), rare large outliers (preemption, 1.5-4x) and a per-run offset
    (run-to-run variation). `slowdown` = 0.05 makes every inference 5% slower."""
    drift = np.empty(n)
    level = 0.0
    for index in range(n):
        level = 0.9 * level + rng.normal(0.0, drift_sigma * math.sqrt(1 - 0.81))
        drift[index] = level
    log_latency = math.log(median_ms * (1 + slowdown)) + rng.normal(0.0, run_sigma) + drift
    samples = np.exp(log_latency + rng.normal(0.0, body_sigma, n))
    spikes = rng.random(n) < outlier_rate
    samples[spikes] *= rng.uniform(1.5, 4.0, int(spikes.sum()))
    return samples
